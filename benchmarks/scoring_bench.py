"""When the low-precision pass pays: exact search through it against faiss's fp32 search, over a grid.

    python benchmarks/scoring_bench.py           # writes results/scoring.json (scoring_<kind>.json without AMX)
    python benchmarks/scoring_bench.py --quick   # a small grid; nothing written

An exact search of a flat memory runs either faiss's fp32 ``IndexFlatIP``
(with the library's BLAS threshold, :func:`memory.store.blas_for_small_batches`)
or the certified low-precision pass of this CPU's scoring mode
(:class:`memory.store.Bf16Vectors` or :class:`memory.store.Int8Vectors`: low-precision
scores, then an fp32 re-rank of the candidates; the same top-k).
:func:`memory.store.use_low_precision` chooses between them from the number of
queries, rows and dimensions.  This benchmark times both paths on every cell
of a grid, in one process, and records which one the rule takes:

* rows x dimensions x queries per batch, on clustered data (200 Gaussian
  clusters around unit centres, spread 3, L2-normalised, as in ``memory_bench.py``'s
  synthetic mode); the queries are drawn from the same clusters.  On random
  unit vectors every score lies near 0, the low-precision scores separate
  the top k from the rest less often and the pass re-searches more, a case
  that Tiny-ImageNet's embeddings did not present (at 1280-d against 5,000 rows
  the pass lost on random vectors and gained on those embeddings);
* k = 10; each path's best of 10 timed calls, in two blocks per path that
  alternate (:func:`cell`);
* per cell: both times, the speed-up of the pass over faiss, and whether the
  rule takes the pass; in all, the cells where the rule takes the faster path
  and the geometric mean of (time of the path taken) / (time of the faster one).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import clustered, per_cpu_name, write_result  # noqa: E402
from memory.store import (Bf16Vectors, Int8Vectors, blas_for_small_batches, scoring_mode,  # noqa: E402
                          use_low_precision)

ROWS = (2000, 5000, 8192, 16384, 30000, 100_000)
DIMS = (256, 512, 768, 1280)
QUERIES = (1, 4, 16, 64, 256, 1000)
N_CLUSTERS, SPREAD = 200, 3.0  # memory_bench.py's synthetic defaults


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def cell(X: np.ndarray, Q: np.ndarray, lowp: Any, index: Any, k: int = 10, repeats: int = 5) -> tuple[float, float]:
    """Best seconds of faiss's fp32 search and of the low-precision pass.

    Each path runs in blocks of one untimed call and ``repeats`` timed ones,
    the blocks alternating twice: faiss's and torch's OpenMP threads spin a
    while after their work, so a call right after the other library's waits
    for cores (:func:`memory.store.faiss_threads`); the untimed call takes
    that wait, and alternating blocks see the same machine states.
    """
    def fp32() -> None:
        with blas_for_small_batches():
            index.search(Q, k)

    def lp() -> None:
        lowp.search(Q, X, k)

    best = {fp32: np.inf, lp: np.inf}
    for _ in range(2):
        for fn in best:
            fn()
            for _ in range(repeats):
                t = time.perf_counter()
                fn()
                best[fn] = min(best[fn], time.perf_counter() - t)
    return best[fp32], best[lp]


def run(rows: tuple[int, ...] = ROWS, dims: tuple[int, ...] = DIMS, queries: tuple[int, ...] = QUERIES, *,
        k: int = 10, repeats: int = 5, seed: int = 0) -> dict[str, Any]:
    """Every cell of the grid; the mode is this CPU's default scoring mode (bf16 or int8)."""
    import faiss

    mode = scoring_mode()
    if mode == "fp32":
        raise SystemExit("this CPU scores in fp32 only: there is no low-precision pass to time")
    scorer = {"bf16": Bf16Vectors, "int8": Int8Vectors}[mode]
    out_rows = []
    for d in dims:
        for n in rows:
            X, _, centres = clustered(n, d, N_CLUSTERS, seed, SPREAD)
            Qall, _, _ = clustered(max(queries), d, N_CLUSTERS, seed + 1, SPREAD, centres=centres)
            X, Qall = _unit(X), _unit(Qall)
            index = faiss.IndexFlatIP(d)
            index.add(X)
            lowp = scorer(d)
            lowp.append(X)
            for q in queries:
                Q = np.ascontiguousarray(Qall[:q])
                fp32, lp = cell(X, Q, lowp, index, k, repeats)
                takes = bool(use_low_precision(q, n, d, mode))
                out_rows.append({"rows": n, "dim": d, "queries": q, "fp32_ms": round(fp32 * 1e3, 3),
                                 "lowp_ms": round(lp * 1e3, 3), "speedup": round(fp32 / lp, 2),
                                 "rule_takes_lowp": takes})
                print(f"  {n:>7,} x {d:>4}-d, {q:>4} queries: fp32 {fp32 * 1e3:8.2f} ms, {mode} {lp * 1e3:8.2f} ms "
                      f"({fp32 / lp:5.2f}x); the rule takes {mode if takes else 'fp32'}", flush=True)
            del X, index, lowp
    return {"mode": mode, "k": k, "repeats": repeats, "data": f"{N_CLUSTERS} Gaussian clusters around unit centres (spread {SPREAD:g}), L2-normalised; queries from the same clusters",
            "rows": out_rows, "summary": summary(out_rows)}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How well the rule chose: cells where it took the faster path, and what its choices cost."""
    chosen = np.array([r["lowp_ms"] if r["rule_takes_lowp"] else r["fp32_ms"] for r in rows])
    best = np.array([min(r["lowp_ms"], r["fp32_ms"]) for r in rows])
    fp32 = np.array([r["fp32_ms"] for r in rows])
    regret = chosen / best
    worst = int(np.argmax(regret))
    return {
        "cells": len(rows),
        "rule_takes_the_faster_path": int(np.sum(regret == 1.0)),
        "geomean_taken_over_faster": round(float(np.exp(np.mean(np.log(regret)))), 3),
        "geomean_speedup_of_the_rule_over_fp32": round(float(np.exp(np.mean(np.log(fp32 / chosen)))), 3),
        "worst_cell": {**{k: rows[worst][k] for k in ("rows", "dim", "queries")},
                       "taken_over_faster": round(float(regret[worst]), 2)},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="rows 2,000 and 8,192; 256 and 1280-d; 1, 16 and 256 "
                                                         "queries; nothing written")
    args = ap.parse_args(argv)
    if args.quick:
        return run((2000, 8192), (256, 1280), (1, 16, 256), repeats=2)
    out = run()
    print("wrote", write_result(per_cpu_name("scoring"), out))
    return out


if __name__ == "__main__":
    main()
