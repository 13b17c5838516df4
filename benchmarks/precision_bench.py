"""bf16 autocast against fp32 on this CPU: matmul rate, the trunk, and fine-tuning the tail.

    python benchmarks/precision_bench.py           # Tiny-ImageNet, writes results/precision.json
    python benchmarks/precision_bench.py --quick   # a small subset; nothing written

Both sides of every comparison run in the same process on the same data:

* matrix multiply (2048², torch) in fp32 and bf16;
* the Lite0 trunk at 128 px on 512 val images: images/s and the cosine of bf16 activations
  (channels-last) against fp32;
* the generalist tail fine-tuned for the same epochs, same seed, on the cached trunk
  activations (train minus the 20-per-class dev split), in fp32 and with bf16 autocast:
  training images/s and val top-1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result  # noqa: E402
from benchmarks.specialists_bench import Data  # noqa: E402
from memory import Embedder  # noqa: E402
from router import tail_logits, train_tail  # noqa: E402


def matmul_rates(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeats))
        out[name] = round(2 * n**3 / best / 1e9, 1)
    return out


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run(quick: bool = False, *, epochs: int = 3, seed: int = 0) -> dict[str, Any]:
    d = Data(quick, seed)
    split = d.split
    rates = matmul_rates()
    images = d.val_paths[:128 if quick else 512]
    x = torch.from_numpy(Embedder(split.backbone, runtime="torch", progress=False).preprocess(images))
    trunk: dict[str, Any] = {}
    acts = {}
    for precision in ("fp32", "bf16"):
        split.run_trunk(x[:16], precision=precision)
        secs = min(_timed(lambda: acts.__setitem__(precision, split.run_trunk(x, precision=precision)))
                   for _ in range(2))
        trunk[precision] = {"images_per_s": round(len(x) / secs, 1)}
    cos = torch.nn.functional.cosine_similarity(acts["bf16"].flatten(1), acts["fp32"].flatten(1))
    trunk["cosine_min"], trunk["cosine_mean"] = round(float(cos.min()), 5), round(float(cos.mean()), 5)
    trunk["speedup"] = round(trunk["bf16"]["images_per_s"] / trunk["fp32"]["images_per_s"], 2)
    tail: dict[str, Any] = {}
    epochs = 1 if quick else epochs
    for precision in ("fp32", "bf16"):
        model = split.tail(len(d.classes))
        hist = train_tail(model, d.A, d.y, epochs=epochs, precision=precision, seed=seed)
        pred = tail_logits(model, d.vA, precision=precision).argmax(1)
        tail[precision] = {"top1": round(float(np.mean(pred == d.vy)), 4), "seconds": hist["seconds"],
                           "images_per_s": hist["images_per_s"]}
        print(precision, tail[precision], flush=True)
    tail["speedup"] = round(tail["bf16"]["images_per_s"] / tail["fp32"]["images_per_s"], 2)
    tail["top1_change_points"] = round(100 * (tail["bf16"]["top1"] - tail["fp32"]["top1"]), 2)
    out = {"matmul_gflops": rates, "matmul_speedup": round(rates["bf16"] / rates["fp32"], 2), "trunk": trunk,
           "tail": tail, "setup": {"backbone": d.fingerprint, "epochs": epochs, "train": int(len(d.y)),
                                   "val": int(len(d.vy)), "trunk_images": len(images)}}
    print(out, flush=True)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small subset; results are not written")
    ap.add_argument("--epochs", type=int, default=3, help="tail fine-tuning epochs for each precision")
    args = ap.parse_args(argv)
    out = run(args.quick, epochs=args.epochs)
    if not args.quick:
        print("wrote", write_result("precision", out))
    return out


if __name__ == "__main__":
    main()
