"""The embedding caches: a whole split embedded cold, then re-used whole, as a subset and as a
held-out-class list, in one run on Tiny-ImageNet val (10k images).

    python benchmarks/cache_bench.py            # 10k val images at 64 px
    python benchmarks/cache_bench.py --quick    # 20 images per class, nothing written

Each case runs against fresh cache folders except where it re-uses the one the cold run
filled.  Reported: seconds, images embedded (by the backbone) and images per second;
the per-image cache's extra cost on the cold run (hashing the files, writing the chunk) is
measured separately.  Writes benchmarks/results/cache.json.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result  # noqa: E402
from memory import Embedder, embed_dataset, get_backbone, tiny_imagenet  # noqa: E402
from memory.embedding import image_digests  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    ds = tiny_imagenet("val")
    if args.quick:
        ds = ds.subset(20)
    emb = Embedder(get_backbone("lite0", size=args.size), precision="fp32", progress=False)
    calls: list[int] = []
    real = emb.embed_images
    emb.embed_images = lambda images, **k: calls.append(len(images)) or real(images, **k)  # type: ignore[method-assign]
    work = Path(tempfile.mkdtemp(prefix="supersub-cache-bench-"))
    rows: dict = {}

    def case(name: str, data: object, cache: Path, use_cache: bool = True) -> np.ndarray:
        calls.clear()
        t = time.perf_counter()
        es = embed_dataset(data, emb, cache=cache, use_cache=use_cache)  # type: ignore[arg-type]
        secs = time.perf_counter() - t
        rows[name] = {"images": len(es), "embedded": int(sum(calls)), "seconds": round(secs, 2),
                      "images_per_s": round(len(es) / secs, 1)}
        print(f"{name:<44} {len(es):6d} images, {sum(calls):6d} embedded, {secs:7.2f} s", flush=True)
        return es.X

    try:
        X_plain = case("no cache", ds, work / "none", use_cache=False)
        X_cold = case("cold: both caches filled", ds, work / "c")
        t = time.perf_counter()
        image_digests(ds.paths)
        hashing = time.perf_counter() - t
        case("same list again (split cache)", ds, work / "c")
        half = ds.subset(len(ds) // len(ds.classes) // 2)
        X_half = case("half of each class (per-image cache)", half, work / "c")
        held = ds.subset(None, classes=ds.classes[10:])
        case("ten classes held out (per-image cache)", held, work / "c")
        row = {r: i for i, r in enumerate(ds.refs)}
        same = bool(np.array_equal(X_half, X_cold[[row[r] for r in half.refs]]) and np.array_equal(X_cold, X_plain))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {"data": f"Tiny-ImageNet val, {len(ds)} images, Lite0 @ {args.size} px", "cases": rows,
           "hashing_s": round(hashing, 2),
           "cold_overhead_vs_no_cache": round(rows["cold: both caches filled"]["seconds"] / rows["no cache"]["seconds"], 3),
           "subset_speedup_vs_no_cache": round(rows["half of each class (per-image cache)"]["images_per_s"]
                                               / rows["no cache"]["images_per_s"], 1),
           "cached_equals_computed": same}
    print(f"hashing {len(ds)} files: {hashing:.2f} s; cold run {out['cold_overhead_vs_no_cache']}x the uncached time; "
          f"a subset {out['subset_speedup_vs_no_cache']}x faster than embedding it; identical: {same}")
    if not args.quick:
        print("wrote", write_result("cache", out))
    return out


if __name__ == "__main__":
    main()
