"""Scale: flat against routed search on synthetic memories of 100k, 1M and 5M entries.

    python benchmarks/scale_bench.py                     # 100k, 1M, 5M; writes results/scale.json
    python benchmarks/scale_bench.py --sizes 20000 50000 # any sizes; nothing written unless --write
    python benchmarks/scale_bench.py --crossover         # where approximate search starts to pay; results/crossover.json
                                                         # (crossover_<kind>.json on a CPU without AMX)

The memory is clustered Gaussian data on the real Tiny-ImageNet tree (200
classes under the WordNet balanced:10 cut; class centres near their
superclass's centre), 256-d: 5M entries fit in memory (5.1 GB), and single
exact queries take the low-precision scoring pass from 256-d up (batches from
1024-d, or from 256-d for bf16 on a CPU that multiplies bf16 in hardware; see
``LOWP_MIN_DIM``, ``LOWP_BATCH_MIN_DIM`` and ``LOWP_BATCH_MIN_DIM_BF16``).
For each size, in one run:

* flat exact memory against the routed classifier (centroid router, hard
  routing, exact shards): single-query latency p50 / p99, batched
  throughput (1,000 queries, best of 3), top-1 on the clustered labels, and the
  process's resident-memory growth while the structure was built and after
  its first searches (which add the low-precision scoring copy);
* both again with ``SUPERSUB_SCORING=fp32`` (no low-precision pass), on the
  same objects, so the scoring path's gain is a ratio from one run;
* index choice for the flat memory: exact, ``IVF1024,Flat`` and
  ``IVF1024,SQ8`` (8-bit scalar quantiser) and ``IVF1024,PQ32x4fs``
  (4-bit fast-scan product quantiser), nprobe 16, with recall@10 against exact search,
  build time, the first batch's time (which builds an IVF index's bf16 lists where they
  are used) and throughput after it (best of 3).

Growth exponents (``cost ~ n^b``) are fitted over the sizes.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import best_of, per_cpu_name, scoring, write_result  # noqa: E402
from hierarchy import ClassTree, shipped_tree  # noqa: E402
from memory import VisualMemory  # noqa: E402
from memory.store import ivf_in_bf16, scoring_mode  # noqa: E402
from router import TwoStageClassifier  # noqa: E402

SIZES = (100_000, 1_000_000, 5_000_000)
INDEXES = ("IVF1024,Flat", "IVF1024,SQ8", "IVF1024,PQ32x4fs")


def rss_bytes() -> int:
    """Resident memory of this process (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class Clustered:
    """Draw labelled unit vectors around class centres that sit near their superclass centre."""

    def __init__(self, tree: ClassTree, dim: int, seed: int = 0, noise: float = 3.0) -> None:
        rng = np.random.default_rng(seed)
        self.classes = np.array(tree.classes, dtype=object)
        supers = sorted({tree.superclass_of(c) for c in self.classes})
        sup_centre = {s: rng.normal(size=dim) * 1.5 for s in supers}
        self.centres = np.stack([sup_centre[tree.superclass_of(c)] + rng.normal(size=dim)
                                 for c in self.classes]).astype(np.float32)
        self.dim, self.noise = dim, noise

    def draw(self, n: int, seed: int, chunk: int = 500_000) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        X = np.empty((n, self.dim), dtype=np.float32)
        y = rng.integers(0, len(self.classes), size=n)
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            x = self.centres[y[a:b]] + self.noise * rng.standard_normal((b - a, self.dim), dtype=np.float32)
            X[a:b] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return X, self.classes[y]


def latency(fn: Any, Q: np.ndarray, n: int) -> dict[str, float]:
    """p50 / p99 of single-query calls, in ms, after 50 untimed ones (each shard's first
    search builds its low-precision copy; that one-off cost is not a query's latency)."""
    for i in range(min(50, len(Q))):
        fn(Q[i : i + 1])
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(Q[i : i + 1])
        times.append(time.perf_counter() - t)
    return {"p50_ms": round(1000 * float(np.percentile(times, 50)), 3),
            "p99_ms": round(1000 * float(np.percentile(times, 99)), 3), "single_queries": n}


def one_size(gen: Clustered, tree: ClassTree, n: int, queries: int, singles: int, k: int,
             indexes: tuple[str, ...], nprobe: int, repeats: int = 3) -> dict[str, Any]:
    X, y = gen.draw(n, seed=n)
    Q, qy = gen.draw(queries, seed=1)
    row: dict[str, Any] = {"entries": n, "vector_bytes": int(X.nbytes)}

    def measure(name: str, build: Any, predict: Any) -> Any:
        gc.collect()
        r0, t = rss_bytes(), time.perf_counter()
        obj = build()
        build_s = time.perf_counter() - t
        grown = rss_bytes() - r0
        lat = latency(lambda q: predict(obj, q), Q, singles)
        pred, secs = best_of(lambda: predict(obj, Q), repeats)
        row[name] = {"build_s": round(build_s, 2), "rss_growth_bytes": int(grown),
                     "rss_growth_after_search_bytes": int(rss_bytes() - r0), **lat,
                     "queries_per_s": round(len(Q) / secs, 1), "top1": round(float(np.mean(pred == qy)), 4)}
        with scoring("fp32"):
            lat = latency(lambda q: predict(obj, q), Q, singles)
            same, secs = best_of(lambda: predict(obj, Q), repeats)
        row[name]["fp32_scoring"] = {**lat, "queries_per_s": round(len(Q) / secs, 1)}
        row[name]["identical_predictions"] = bool(np.array_equal(same, pred))
        fp32 = row[name]["fp32_scoring"]
        row[name]["scoring_speedup_batched"] = round(row[name]["queries_per_s"] / fp32["queries_per_s"], 2)
        row[name]["scoring_speedup_p50"] = round(row[name]["fp32_scoring"]["p50_ms"] / row[name]["p50_ms"], 2)
        print(f"{n:>9,} {name:<8} {row[name]}", flush=True)
        return obj

    def flat_build() -> VisualMemory:
        mem = VisualMemory(gen.dim, k=k, progress=False)
        mem.add(X, y)
        return mem

    flat = measure("flat", flat_build, lambda m, q: m.predict(q))
    _, exact_ids = flat.search(Q, k)
    del flat
    routed = measure("routed", lambda: TwoStageClassifier(tree, k=k).fit(X, y), lambda c, q: c.predict(q))
    route_right = float(np.mean(routed.predict_superclass(Q) == np.array(
        [tree.superclass_of(c) for c in qy], dtype=object)))
    row["routed"]["router_accuracy"] = round(route_right, 4)
    del routed
    row["flat"]["routed_speedup_batched"] = round(row["routed"]["queries_per_s"] / row["flat"]["queries_per_s"], 2)
    row["flat"]["routed_speedup_p50"] = round(row["flat"]["p50_ms"] / row["routed"]["p50_ms"], 2)
    row["indexes"] = {}
    for spec in indexes:
        gc.collect()
        r0 = rss_bytes()
        mem = VisualMemory(gen.dim, k=k, index=spec, nprobe=nprobe, progress=False)
        t = time.perf_counter()
        mem.add(X, y)
        mem.build_index()
        build_s = time.perf_counter() - t
        grown = rss_bytes() - r0
        t = time.perf_counter()
        mem.search(Q, k)  # the first batch builds what searches keep (an IVF index's bf16 lists)
        first_s = time.perf_counter() - t
        (_, ids), secs = best_of(lambda mem=mem: mem.search(Q, k), repeats)
        recall = float(np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(ids, exact_ids)]))
        lat = latency(lambda q, mem=mem: mem.search(q, k), Q, singles)
        row["indexes"][spec] = {"nprobe": nprobe, "build_s": round(build_s, 2), "rss_growth_bytes": int(grown),
                                "recall_at_10": round(recall, 4), "queries_per_s": round(len(Q) / secs, 1),
                                "first_batch_s": round(first_s, 3), "bf16_lists": mem.index_.lists is not None,
                                **lat}
        print(f"{n:>9,} {spec:<14} {row['indexes'][spec]}", flush=True)
        del mem
    return row


def growth(rows: list[dict[str, Any]], get: Any) -> float | None:
    """Exponent b of cost ~ n^b, fitted in log-log space."""
    n = np.array([r["entries"] for r in rows], dtype=float)
    v = np.array([get(r) for r in rows], dtype=float)
    if len(n) < 2 or np.any(v <= 0):
        return None
    return round(float(np.polyfit(np.log(n), np.log(v), 1)[0]), 2)


def run(sizes: tuple[int, ...] = SIZES, *, dim: int = 256, queries: int = 1000, singles: int = 200, k: int = 10,
        indexes: tuple[str, ...] = INDEXES, nprobe: int = 16, seed: int = 0) -> dict[str, Any]:
    tree = shipped_tree("tiny-imagenet-200")
    gen = Clustered(tree, dim, seed)
    rows = [one_size(gen, tree, n, queries, singles, k, indexes, nprobe) for n in sizes]
    fits = {
        "flat_p50": growth(rows, lambda r: r["flat"]["p50_ms"]),
        "routed_p50": growth(rows, lambda r: r["routed"]["p50_ms"]),
        "flat_batched_time": growth(rows, lambda r: 1 / r["flat"]["queries_per_s"]),
        "routed_batched_time": growth(rows, lambda r: 1 / r["routed"]["queries_per_s"]),
        "flat_rss": growth(rows, lambda r: r["flat"]["rss_growth_bytes"]),
    }
    return {"data": f"clustered {dim}-d data on the Tiny-ImageNet tree (200 classes, WordNet balanced:10)",
            "scoring": scoring_mode(), "dim": dim, "k": k, "queries": queries, "rows": rows, "growth_exponents": fits}


#: The recall an approximate index must reach before its speed counts.
TARGET_RECALL = 0.95
CROSSOVER_SIZES = (100_000, 300_000, 1_000_000)
NPROBES = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
EF_SEARCHES = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def ivf_lists(n: int) -> int:
    """Inverted lists for ``n`` vectors: the power of two nearest 4 sqrt(n) (faiss's guideline)."""
    return int(2 ** round(np.log2(4 * np.sqrt(n))))


def ivf_lists_bf16(n: int) -> int:
    """A quarter of :func:`ivf_lists` (about sqrt(n)): fewer, longer lists suit the bf16 list search,
    whose cost is mostly per list probed by a batch, not per vector scored."""
    return ivf_lists(n) // 4


def family_spec(family: str, n: int) -> str:
    """The index-factory string of a crossover family at ``n`` entries: ``IVF,...`` takes
    :func:`ivf_lists` lists, ``IVFsqrt,...`` :func:`ivf_lists_bf16`; others are as written."""
    if family.startswith("IVFsqrt,"):
        return f"IVF{ivf_lists_bf16(n)},{family[8:]}"
    if family.startswith("IVF,"):
        return f"IVF{ivf_lists(n)},{family[4:]}"
    return family


def sweep(mem: VisualMemory, knob: str, values: tuple[int, ...], Q: np.ndarray, exact_ids: np.ndarray,
          k: int, repeats: int) -> list[dict[str, Any]]:
    """Recall@k and batched q/s of ``mem`` at each setting of ``knob``, up to the first that reaches the target."""
    points = []
    lists_in_bf16 = mem.index_spec.startswith("IVF") and mem.index_spec.endswith(",Flat") and ivf_in_bf16()
    for v in values:
        mem.set_search_params(**{knob: v})
        mem.search(Q, k)  # builds what the first search builds, and compiles the products' shapes
        (_, ids), secs = best_of(lambda: mem.search(Q, k), repeats)
        recall = float(np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(ids, exact_ids)]))
        point = {knob: v, "recall_at_10": round(recall, 4), "queries_per_s": round(len(Q) / secs, 1)}
        note = ""
        if lists_in_bf16:  # the same index through faiss's own fp32 scan, in the same run
            with scoring("fp32"):
                mem.search(Q[:50], k)
                (_, faiss_ids), faiss_secs = best_of(lambda: mem.search(Q, k), repeats)
            point["bf16_lists"] = mem.index_.lists is not None  # whether the batch took them (ivf_bf16_pays)
            point["faiss_scan_queries_per_s"] = round(len(Q) / faiss_secs, 1)
            point["identical_top10_vs_faiss_scan"] = int(sum(np.array_equal(a, b) for a, b in zip(ids, faiss_ids)))
            note = (f"; faiss's scan {len(Q) / faiss_secs:,.0f} q/s, identical top-{k} "
                    f"{point['identical_top10_vs_faiss_scan']:,} of {len(Q):,}")
        points.append(point)
        print(f"    {knob} {v}: recall@{k} {recall:.3f}, {len(Q) / secs:,.0f} q/s{note}", flush=True)
        if recall >= TARGET_RECALL:
            break
    return points


def crossover_size(gen: Clustered, n: int, queries: int, k: int, families: tuple[str, ...],
                   repeats: int = 3) -> dict[str, Any]:
    """Exact search against each approximate family, tuned to recall@k >= ``TARGET_RECALL``, at ``n`` entries."""
    X, y = gen.draw(n, seed=n)
    Q, _ = gen.draw(queries, seed=1)
    exact = VisualMemory(gen.dim, k=k, progress=False)
    exact.add(X, y)
    exact.search(Q[:50], k)
    (_, exact_ids), secs = best_of(lambda: exact.search(Q, k), repeats)
    row: dict[str, Any] = {"entries": n, "exact": {"scoring": scoring_mode(), "queries_per_s": round(queries / secs, 1)}}
    print(f"{n:>9,} exact ({scoring_mode()} scoring): {queries / secs:,.0f} q/s", flush=True)
    del exact
    row["approximate"] = {}
    for family in families:
        spec = family_spec(family, n)
        knob, values = ("nprobe", NPROBES) if family.startswith("IVF") else ("ef_search", EF_SEARCHES)
        gc.collect()
        mem = VisualMemory(gen.dim, k=k, index=spec, progress=False)
        t = time.perf_counter()
        mem.add(X, y)
        mem.build_index()
        build_s = time.perf_counter() - t
        print(f"{n:>9,} {spec} (built in {build_s:.1f} s)", flush=True)
        points = sweep(mem, knob, values, Q, exact_ids, k, repeats)
        del mem
        met = [p for p in points if p["recall_at_10"] >= TARGET_RECALL]
        best = met[0] if met else None
        row["approximate"][spec] = {
            "knob": knob, "build_s": round(build_s, 1), "points": points,
            "at_target": best,
            "speedup_at_target": None if best is None else round(best["queries_per_s"] / row["exact"]["queries_per_s"], 2),
        }
    return row


def crossover(sizes: tuple[int, ...] = CROSSOVER_SIZES, *, dim: int = 256, queries: int = 1000, k: int = 10,
              families: tuple[str, ...] = ("IVF,Flat", "IVFsqrt,Flat", "IVF,SQ8", "HNSW32"),
              seed: int = 0) -> dict[str, Any]:
    """From which memory size does an approximate index at recall@k >= 0.95 beat exact search?

    Each family is tuned on the spot: IVF with ``ivf_lists(n)`` lists (or
    ``ivf_lists_bf16(n)`` for ``IVFsqrt``) and ``nprobe`` raised through ``NPROBES``, HNSW with ``ef_search`` raised
    through ``EF_SEARCHES``, each until recall@k against exact search reaches
    ``TARGET_RECALL``; the first setting that does is the family's figure.
    """
    tree = shipped_tree("tiny-imagenet-200")
    gen = Clustered(tree, dim, seed)
    rows = [crossover_size(gen, n, queries, k, families) for n in sizes]
    wins = [r["entries"] for r in rows
            if any((a["speedup_at_target"] or 0) > 1 for a in r["approximate"].values())]
    return {"data": f"clustered {dim}-d data on the Tiny-ImageNet tree (200 classes, WordNet balanced:10)",
            "dim": dim, "k": k, "queries": queries, "target_recall": TARGET_RECALL,
            "ivf_flat_lists_in_bf16": ivf_in_bf16(), "rows": rows,
            "first_size_where_approximate_wins": wins[0] if wins else None}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--singles", type=int, default=200, help="single queries timed per system")
    ap.add_argument("--crossover", action="store_true",
                    help="tune IVF and HNSW to recall@10 >= 0.95 at each size against exact search; "
                         "writes results/crossover.json (default sizes 100k, 300k, 1M)")
    ap.add_argument("--write", action="store_true", help="write the results for custom sizes too")
    args = ap.parse_args(argv)
    if args.crossover:
        sizes = tuple(args.sizes or CROSSOVER_SIZES)
        out = crossover(sizes)
        if args.write or sizes == CROSSOVER_SIZES:
            print("wrote", write_result(per_cpu_name("crossover"), out))
        return out
    sizes = tuple(args.sizes or SIZES)
    out = run(sizes, singles=args.singles)
    if args.write or sizes == SIZES:
        print("wrote", write_result("scale", out))
    return out


if __name__ == "__main__":
    main()
