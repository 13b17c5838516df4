"""Reliability runs too long for every CI run, recorded in benchmarks/results/reliability.json.

    python benchmarks/reliability_bench.py [--quick]

* concurrent writers: processes that each load a saved memory, add a batch tagged with their
  own source, and save, started 0 to 2 s apart; once holding the lock from load to save
  (``edit_memory``), once as plain load -> edit -> save (the commit then refuses a writer whose
  snapshot is stale).  Edits acknowledged must equal edits present at the end;
* the same through the command line: two ``supersub memory add`` runs on one model, 20
  offsets from 0 to 2 s (tests/test_integrity.py, SUPERSUB_WRITER_REPS=20);
* SIGKILL aimed at the write window: a process saves a memory (and a routed classifier) in a
  loop; this process watches for its temporary snapshot and kills the writer while it exists.
  A kill counts as inside the window when the temporary snapshot is still there after the
  writer died.  After each kill the directory must load as the old or the new state, and the
  next open must remove the temporary snapshot;

* 50 SIGKILLs of a process that edits and saves a memory in a loop; after each, the memory on
  disk must load in a consistent state (tests/memory/store/test_crash_safety.py, SUPERSUB_KILLS=50);
* the long property run: random add/remove/prune/save/load sequences against a brute-force
  model, 1000 sequences of up to 20 steps (tests/memory/store/test_properties.py, SUPERSUB_LONG_PROPERTIES=1);
* the hostile-input matrix (benchmarks/hostile_inputs.py): links, text encodings, files that
  used to end in an internal error, inputs that hang, the web app's request checks, sizes and
  values, a deep tree, and messages; the cases, passes and failures (which must be 0);
* peak resident memory while searching many queries (Linux: the VmHWM high-water mark, reset
  before the search): queries are searched in chunks of memory.store.QUERY_CHUNK,
  so only the (n, k) results grow with n, never an (n, entries) similarity matrix.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
        row = pytest_run("tests/memory/store/test_properties.py", SUPERSUB_LONG_PROPERTIES="1",
                         SUPERSUB_STEP_LOG=log.name)
        steps = [int(x) for x in open(log.name).read().split()]
    row.update(sequences=len(steps), steps=sum(steps))
    print(f"property run: {len(steps)} sequences, {sum(steps)} steps", flush=True)
    return row


EDITOR = """
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from memory import ConcurrentWriteError, VisualMemory, edit_memory
path, name, locked = sys.argv[2], sys.argv[3], sys.argv[4] == "1"
X = np.random.default_rng(abs(hash(name)) % 2**32).standard_normal((10, 32)).astype("float32")
try:
    if locked:
        with edit_memory(path, wait=120) as mem:
            mem.add(X, "c0", source=name)
    else:
        mem = VisualMemory.load(path)
        time.sleep(0.2)  # a slow edit between load and save
        mem.add(X, "c0", source=name)
        mem.save(path, wait=120)
    print("acknowledged", flush=True)
except ConcurrentWriteError as exc:
    print("refused", exc, flush=True)
"""


def concurrent_writers(reps: int = 20, writers: int = 2, locked: bool = True) -> dict[str, Any]:
    """Writers started 0 to 2 s apart; every acknowledged edit must be present at the end."""
    import tempfile

    import numpy as np

    from memory import VisualMemory

    acknowledged = refused = present = lost = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mem"
        base = VisualMemory(32, progress=False)
        base.add(np.random.default_rng(0).standard_normal((5000, 32)).astype("float32"),
                 [f"c{i % 10}" for i in range(5000)], source="base")
        base.save(path)
        for rep in range(reps):
            offset = 2.0 * rep / max(reps - 1, 1)
            procs = []
            for w in range(writers):
                name = f"r{rep}w{w}"
                procs.append((name, subprocess.Popen(
                    [sys.executable, "-c", EDITOR, str(ROOT), str(path), name, "1" if locked else "0"],
                    stdout=subprocess.PIPE, text=True)))
                time.sleep(offset / max(writers - 1, 1))
            said = {name: p.communicate(timeout=300)[0].split()[0] for name, p in procs}
            counts = VisualMemory.load(path).counts("source")
            for name, word in said.items():
                if word == "acknowledged":
                    acknowledged += 1
                    present += int(counts.get(name) == 10)
                    lost += int(counts.get(name) != 10)
                else:
                    refused += 1
    row = {"mode": "edit_memory (lock held from load to save)" if locked else "load -> edit -> save",
           "repetitions": reps, "writers_per_repetition": writers, "offsets_s": "0 to 2",
           "acknowledged": acknowledged, "present": present, "refused": refused, "lost": lost}
    print(row, flush=True)
    return row


SAVER = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from memory import ConcurrentWriteError, VisualMemory
from router import TwoStageClassifier
path, kind = sys.argv[2], sys.argv[3]
obj = VisualMemory.load(path) if kind == "memory" else TwoStageClassifier.load(path)
print("ready", flush=True)
rng = np.random.default_rng()
while True:
    x = rng.standard_normal((50, 32)).astype("float32")
    if kind == "memory":
        obj.add(x, [f"c{i % 10}" for i in range(50)])
    else:
        obj.add(x, [obj.classes_[i % len(obj.classes_)] for i in range(50)])
    obj.save(path)
"""


def _entries(path: Path, kind: str) -> int:
    from memory import VisualMemory
    from router import TwoStageClassifier

    obj = VisualMemory.load(path) if kind == "memory" else TwoStageClassifier.load(path)
    return len(obj) if kind == "memory" else obj.n_entries


def kills_in_write_window(kills: int = 50, kind: str = "memory", entries: int = 100_000) -> dict[str, Any]:
    """SIGKILL a saving writer while its temporary snapshot exists; check the state after each kill."""
    import signal
    import tempfile

    import numpy as np

    from hierarchy import shipped_tree
    from memory import VisualMemory
    from router import TwoStageClassifier

    inside = consistent = cleaned = 0
    states: set[int] = set()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / kind
        rng = np.random.default_rng(0)
        X = rng.standard_normal((entries, 32)).astype("float32")
        if kind == "memory":
            mem = VisualMemory(32, progress=False)
            mem.add(X, [f"c{i % 10}" for i in range(entries)])
            mem.save(path)
        else:
            tree = shipped_tree("tiny-imagenet-200")
            y = [tree.classes[i % 200] for i in range(entries)]
            TwoStageClassifier(tree, k=5).fit(X, y).save(path)
        snaps = path / "snapshots"
        for _ in range(kills):
            before = _entries(path, kind)
            proc = subprocess.Popen([sys.executable, "-c", SAVER, str(ROOT), str(path), kind],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()
            windows, seen, was_open = int(rng.integers(1, 4)), 0, False  # let 0-2 saves complete
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with os.scandir(snaps) as it:
                    is_open = any(e.name.startswith(".tmp-") for e in it)
                seen += int(is_open and not was_open)
                was_open = is_open
                if is_open and seen == windows:
                    break
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            inside += int(any(p.name.startswith(".tmp-") for p in snaps.iterdir()))
            after = _entries(path, kind)  # a load: the old or a new complete state
            consistent += int(after >= before and (after - before) % 50 == 0)
            states.add(after)
            cleaned += int(not any(p.name.startswith(".tmp-") for p in snaps.iterdir()))
    row = {"target": kind, "entries": entries, "kills": kills, "kills_inside_write_window": inside,
           "loads_consistent": consistent, "temporaries_removed_on_next_open": cleaned,
           "distinct_states_seen": len(states)}
    print(row, flush=True)
    return row


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few repetitions, nothing written")
    args = parser.parse_args()
    from benchmarks.hostile_inputs import run_matrix

    if args.quick:
        run_matrix()
        concurrent_writers(reps=3)
        concurrent_writers(reps=3, locked=False)
        kills_in_write_window(5, entries=20_000)
        return
    out = {
        "concurrent_writers": [concurrent_writers(20), concurrent_writers(20, writers=3),
                               concurrent_writers(20, locked=False)],
        "cli_concurrent_writers_20": pytest_run(
            "tests/test_integrity.py::test_staggered_writers_never_lose_an_acknowledged_edit",
            SUPERSUB_WRITER_REPS="20"),
        "kills_in_write_window": [kills_in_write_window(50, "memory"),
                                  kills_in_write_window(20, "classifier", entries=20_000)],
        "crash_safety_50_kills": pytest_run("tests/memory/store/test_crash_safety.py", SUPERSUB_KILLS="50"),
        "long_property_run": long_properties(),
        "streaming_search": [rss(100_000, 10_000, 256), rss(100_000, 100_000, 256)],
        "hostile_inputs": run_matrix(),
    }
    print("wrote", write_result("reliability", out))


if __name__ == "__main__":
    main()
