"""Time ``make demo`` and record what it printed, so the README's demo figures come from a file.

    python benchmarks/demo_bench.py            # empty caches (a fresh SUPERSUB_CACHE), after make setup
    python benchmarks/demo_bench.py --warm     # the caches the demo filled last time

It runs the Makefile's own ``demo`` target in this checkout (``runs/demo``), with
its subset (100 train and 20 val images per class), and reads the two
evaluations it wrote: the memory-level model against flat kNN on the same
memory, and the network-level model against its own flat tail.  The result,
with the CPU named, goes to ``benchmarks/results/demo.json`` (``demo_<kind>.json``
on a CPU without AMX; see :func:`benchmarks._common.per_cpu_name`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import per_cpu_name, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "runs" / "demo"


def _level(metrics: dict) -> dict:
    return {"routed_top1": metrics["routed"]["top1"], "flat_top1": metrics["flat_baseline"]["top1"],
            "flat": metrics["flat"], "routing": metrics["routing"], "queries": metrics["queries"],
            "routed_minus_flat": metrics.get("routed_minus_flat")}


def _tree_buys(metrics: dict) -> dict:
    """The demo's last line, as figures: hedged answers at the promised accuracy, and CRM against argmax."""
    h, routed = metrics["hedged"], metrics["routed"]
    return {"accuracy": h["accuracy"], "achieved": h["achieved"], "class_level": h["class_level"],
            "mean_gain": h["mean_gain"],
            "crm_severity_change": routed["mistake_severity"] - routed["argmax"]["mistake_severity"],
            "crm_top1_change": routed["minus_argmax"]["difference"], "crm_top1_change_paired": routed["minus_argmax"]}


def _run_demo(env: dict[str, str], start: float) -> list[dict[str, Any]]:
    """Run ``make demo``, passing its output through; the seconds each command of the recipe took."""
    steps: list[dict[str, Any]] = []
    with subprocess.Popen(["make", "demo"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            words = line.split()
            if len(words) > 1 and words[0].endswith("/bin/supersub"):  # make echoes each command it starts
                now = time.perf_counter() - start
                if steps:
                    steps[-1]["seconds"] = round(now - steps[-1].pop("start"), 1)
                network = any(w == "generalist" or "network" in w for w in words)
                label = " ".join(words[1:3] if words[1] in ("tree", "memory") else words[1:2])
                steps.append({"command": label + (" (network)" if network else ""), "start": now})
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, "make demo")
    if steps:
        steps[-1]["seconds"] = round(time.perf_counter() - start - steps[-1].pop("start"), 1)
    return steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warm", action="store_true", help="keep the caches instead of starting from empty ones")
    args = ap.parse_args(argv)
    env = dict(os.environ)
    scratch = None if args.warm else tempfile.mkdtemp(prefix="supersub-demo-cache-")
    if scratch:
        env["SUPERSUB_CACHE"] = scratch
    shutil.rmtree(DEMO, ignore_errors=True)
    start = time.perf_counter()
    try:
        steps = _run_demo(env, start)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.perf_counter() - start
    memory = json.loads((DEMO / "eval" / "metrics.json").read_text())
    network = json.loads((DEMO / "network-eval" / "metrics.json").read_text())
    path = write_result(per_cpu_name("demo"), {
        "command": "make demo" + ("" if args.warm else " (empty caches, after make setup)"),
        "caches": "warm" if args.warm else "empty",
        "subset": {"train_per_class": 100, "val_per_class": 20},
        "seconds": round(seconds, 1),
        "steps": steps,
        "memory_level": _level(memory),
        "network_level": _level(network),
        "tree_buys": _tree_buys(json.loads((DEMO / "network-hedged" / "metrics.json").read_text())),
    })
    print(f"make demo: {seconds / 60:.1f} min; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
