"""Reliability runs too long for every CI run, recorded in benchmarks/results/reliability.json.

    python benchmarks/reliability_bench.py

* 50 SIGKILLs of a process that edits and saves a memory in a loop; after each, the memory on
  disk must load in a consistent state (tests/memory/test_crash_safety.py, SUPERSUB_KILLS=50);
* the long property run: random add/remove/prune/save/load sequences against a brute-force
  model, 1000 sequences of up to 20 steps (tests/memory/test_properties.py, SUPERSUB_LONG_PROPERTIES=1);
* peak resident memory while searching many queries (Linux: the VmHWM high-water mark, reset
  before the search): queries are searched in chunks of memory._visual_memory.QUERY_CHUNK,
  so only the (n, k) results grow with n, never an (n, entries) similarity matrix.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import write_result  # noqa: E402


def pytest_run(test: str, **env: str) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", test], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, **env))
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    print(f"{test} {env}: {last}", flush=True)
    return {"passed": proc.returncode == 0, "summary": last, "seconds": round(time.perf_counter() - t, 1)}


RSS_PROBE = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
from memory import VisualMemory
n_mem, n_q, dim = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
mem = VisualMemory(dim, k=10, progress=False)
mem.add(rng.standard_normal((n_mem, dim), dtype=np.float32), [f"c{i % 100}" for i in range(n_mem)])
Q = rng.standard_normal((n_q, dim), dtype=np.float32)

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])

open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS:")
sims, ids = mem.search(Q, 10)
after = status("VmHWM:")
print(before, after, sims.nbytes + ids.nbytes)
"""


def rss(n_mem: int, n_q: int, dim: int) -> dict:
    out = subprocess.run([sys.executable, "-c", RSS_PROBE, str(ROOT), str(n_mem), str(n_q), str(dim)],
                         capture_output=True, text=True, check=True).stdout.split()
    before, after, results = (int(x) for x in out)
    row = {"memory_entries": n_mem, "queries": n_q, "dim": dim,
           "rss_before_search_mb": round(before / 1024, 1), "peak_rss_during_search_mb": round(after / 1024, 1),
           "growth_mb": round((after - before) / 1024, 1), "result_arrays_mb": round(results / 2**20, 1),
           "unchunked_similarity_matrix_mb": round(n_q * n_mem * 4 / 2**20, 1)}
    print(row, flush=True)
    return row


def long_properties() -> dict:
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".steps") as log:
        row = pytest_run("tests/memory/test_properties.py", SUPERSUB_LONG_PROPERTIES="1",
                         SUPERSUB_STEP_LOG=log.name)
        steps = [int(x) for x in open(log.name).read().split()]
    row.update(sequences=len(steps), steps=sum(steps))
    print(f"property run: {len(steps)} sequences, {sum(steps)} steps", flush=True)
    return row


def main() -> None:
    out = {
        "crash_safety_50_kills": pytest_run("tests/memory/test_crash_safety.py", SUPERSUB_KILLS="50"),
        "long_property_run": long_properties(),
        "streaming_search": [rss(100_000, 10_000, 256), rss(100_000, 100_000, 256)],
    }
    print("wrote", write_result("reliability", out))


if __name__ == "__main__":
    main()
