"""Embedding throughput: eager PyTorch against the ONNX Runtime fast path, in one run.

    python benchmarks/embed_bench.py             # Lite0 at 64, 128 and 224 px
    python benchmarks/embed_bench.py --quick     # 64 px only, few batches

Measures model throughput (images/s) on batches of preprocessed images, both
runtimes on the same input and thread count, best of --repeats; checks that
the two agree within 1e-4 on the normalised features.  Writes
benchmarks/results/embed.json.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import best_of, write_result  # noqa: E402
from memory import Embedder, get_backbone  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="lite0")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--batches", type=int, default=4, help="batches per timed run")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.batches, args.repeats = [64], 1, 1

    out: dict = {"backbone": args.backbone, "batch_size": args.batch_size, "timing": f"best of {args.repeats}",
                 "threads": args.threads or len(os.sched_getaffinity(0)), "sizes": {}}
    rng = np.random.default_rng(0)
    for size in args.sizes:
        emb = Embedder(get_backbone(args.backbone, size=size), threads=args.threads, progress=False)
        x = rng.standard_normal((args.batch_size, 3, size, size), dtype=np.float32)
        row = {}
        for runtime in ("torch", "onnx"):
            emb.embed_tensors(x, runtime=runtime)  # warm up at the timed shape

            def run() -> None:
                for _ in range(args.batches):
                    emb.embed_tensors(x, runtime=runtime)

            _, secs = best_of(run, args.repeats)
            row[f"{runtime}_img_per_s"] = round(args.batches * args.batch_size / secs, 1)
        row["speedup"] = round(row["onnx_img_per_s"] / row["torch_img_per_s"], 2)
        row["max_abs_diff"] = float(emb.check_fast_path(x[:16]))
        out["sizes"][str(size)] = row
        print(f"{size:4d} px: eager {row['torch_img_per_s']:7.1f} img/s, onnx {row['onnx_img_per_s']:7.1f} img/s, "
              f"{row['speedup']}x, max |diff| {row['max_abs_diff']:.1e}", flush=True)
    if not args.quick:
        print("wrote", write_result("embed", out))
    return out


if __name__ == "__main__":
    main()
