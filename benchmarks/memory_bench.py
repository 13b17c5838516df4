"""Visual memory benchmark: exact and approximate kNN classification against scikit-learn.

    python benchmarks/memory_bench.py            # 100k x 1280-d memory, 5k queries
    python benchmarks/memory_bench.py --quick    # a small run to check it works

Writes benchmarks/results/memory.json.  Exact search is bound by matrix-multiply
FLOPs, so the run also measures this machine's single-precision matmul peak and
reports the fraction of it that the search reaches.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import Timer, best_of, clustered, matmul_peak_gflops, write_result  # noqa: E402
from memory import VisualMemory  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--classes", type=int, default=200)
    ap.add_argument("--queries", type=int, default=None,
                    help="default: 5000 synthetic, or all 10k Tiny-ImageNet val images")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ivf", default="IVF1024,Flat")
    ap.add_argument("--nprobe", type=int, default=32)
    ap.add_argument("--spread", type=float, default=3.0,
                    help="noise norm relative to the unit class centres (higher: harder)")
    ap.add_argument("--repeats", type=int, default=3, help="timings are best of this many runs")
    ap.add_argument("--data", choices=["synthetic", "tiny"], default="synthetic",
                    help="tiny: Tiny-ImageNet train (memory) and val (queries) embedded by "
                         "Lite0 at 128 px, from $SUPERSUB_DATA and the embedding cache")
    ap.add_argument("--quick", action="store_true", help="20k entries, 1k queries")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.entries, args.queries, args.ivf = 20_000, 1000, "IVF256,Flat"
        args.data = "synthetic"

    if args.data == "tiny":
        from memory import Embedder, embed_dataset, get_backbone, tiny_imagenet

        emb = Embedder(get_backbone("lite0", size=128))
        train = embed_dataset(tiny_imagenet("train"), emb)
        val = embed_dataset(tiny_imagenet("val"), emb)
        X, y = train.X[: args.entries], train.labels[: args.entries]
        Q, qy = val.X[: args.queries], val.labels[: args.queries]  # None: all
        args.entries, args.queries, args.dim = len(X), len(Q), X.shape[1]
        source = f"Tiny-ImageNet train/val, {train.fingerprint}"
    else:
        args.queries = args.queries or 5000
        X, y, centres = clustered(args.entries, args.dim, args.classes, seed=0, spread=args.spread)
        Q, qy, _ = clustered(args.queries, args.dim, args.classes, seed=1, spread=args.spread,
                             centres=centres)
        source = f"synthetic: {args.classes} Gaussian classes, noise/centre = {args.spread}"
    out: dict = {"data": source,
                 "entries": args.entries, "dim": args.dim, "queries": args.queries, "k": args.k,
                 "timing": f"best of {args.repeats}"}

    peak = matmul_peak_gflops()
    out["matmul_peak_gflops"] = round(peak, 1)
    print(f"matmul peak: {peak:.1f} GFLOP/s")

    mem = VisualMemory(k=args.k, voting="plurality", progress=False)
    with Timer() as t:
        mem.add(X, y, source="bench")
    out["add_s"] = round(t.s, 3)
    out["add_per_s"] = round(args.entries / t.s)
    print(f"add: {t.s:.2f} s ({args.entries / t.s:,.0f} entries/s)")

    mem.predict(Q[:200])  # warm up
    ours, secs = best_of(lambda: mem.predict(Q), args.repeats)
    search_flops = 2.0 * args.queries * args.entries * args.dim
    out["exact"] = {
        "queries_per_s": round(args.queries / secs, 1),
        "seconds": round(secs, 3),
        "gflops": round(search_flops / secs / 1e9, 1),
        "fraction_of_peak": round(search_flops / secs / 1e9 / peak, 3),
        "accuracy": round(float(np.mean(ours == qy)), 4),
    }
    print(f"exact (ours): {args.queries / secs:,.0f} q/s, {search_flops / secs / 1e9:.0f} GFLOP/s")

    from sklearn.neighbors import KNeighborsClassifier

    ref = KNeighborsClassifier(n_neighbors=args.k, metric="cosine", algorithm="brute").fit(X, y)
    ref.predict(Q[:200])
    theirs, secs = best_of(lambda: ref.predict(Q), args.repeats)
    out["sklearn"] = {"queries_per_s": round(args.queries / secs, 1), "seconds": round(secs, 3)}
    out["exact"]["ratio_vs_sklearn"] = round(out["exact"]["queries_per_s"] / out["sklearn"]["queries_per_s"], 2)
    out["exact"]["identical_predictions"] = bool(np.array_equal(ours.astype(str), theirs))
    out["exact"]["prediction_agreement"] = float(np.mean(ours.astype(str) == theirs))
    print(f"sklearn brute cosine: {args.queries / secs:,.0f} q/s; ratio {out['exact']['ratio_vs_sklearn']}x, "
          f"identical predictions: {out['exact']['identical_predictions']}")

    _, exact_ids = mem.search(Q, args.k)
    approx = VisualMemory(k=args.k, voting="plurality", index=args.ivf, nprobe=args.nprobe, progress=False)
    approx.add(X, y)
    with Timer() as t:
        approx.build_index()
    build_s = t.s
    approx.predict(Q[:200])
    approx_pred, secs = best_of(lambda: approx.predict(Q), args.repeats)
    _, approx_ids = approx.search(Q, args.k)
    recall = float(np.mean([len(np.intersect1d(a, e)) / args.k for a, e in zip(approx_ids, exact_ids)]))
    out["approximate"] = {
        "index": args.ivf,
        "nprobe": args.nprobe,
        "build_s": round(build_s, 2),
        "queries_per_s": round(args.queries / secs, 1),
        "recall_at_10": round(recall, 4),
        "ratio_vs_sklearn": round(args.queries / secs / out["sklearn"]["queries_per_s"], 2),
        "accuracy": round(float(np.mean(approx_pred == qy)), 4),
        "prediction_agreement_with_exact": round(float(np.mean(approx_pred == ours)), 4),
    }
    print(f"{args.ivf} nprobe={args.nprobe}: {args.queries / secs:,.0f} q/s, recall@10 {recall:.3f}, "
          f"{out['approximate']['ratio_vs_sklearn']}x sklearn (build {build_s:.1f} s)")

    doomed = np.random.default_rng(2).choice(mem.ids_, 1000, replace=False)
    with Timer() as t:
        mem.remove(doomed)
    out["remove_1k_s"] = round(t.s, 4)
    print(f"remove 1k ids: {t.s * 1000:.0f} ms")

    tmp = Path(tempfile.mkdtemp(prefix="supersub-bench-"))
    try:
        with Timer() as t:
            mem.save(tmp / "mem")
        out["save_s"] = round(t.s, 3)
        with Timer() as t:
            back = VisualMemory.load(tmp / "mem")
        out["load_s"] = round(t.s, 3)
        assert len(back) == len(mem)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"save {out['save_s']:.2f} s, load {out['load_s']:.2f} s")
    if not args.no_write and not args.quick:
        print("wrote", write_result("memory", out))
    return out


if __name__ == "__main__":
    main()
