"""Does one seed give one model? Network builds repeated, across thread counts and precisions.

    python benchmarks/reproducibility_bench.py           # 20 train / 10 val images per class; writes results
    python benchmarks/reproducibility_bench.py --quick   # 4 / 2 per class, 64 px; nothing written

The network-level model (WordNet balanced:10, int8 tail deltas, soft m = 3,
specialist memories) is built several times on the same Tiny-ImageNet subset,
changing one thing at a time: nothing (the same seed, threads and precision),
the thread count (2 against 1), the precision (bf16 autocast against fp32),
and the seed.  For each pair: whether the two models' val probabilities are
bit-identical, the largest probability difference, the share of val images
whose prediction differs, and the two top-1 accuracies with their paired 95%
interval.  The trunk alone is also run at 1 and 2 threads on the same images.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result  # noqa: E402
from hierarchy import shipped_tree  # noqa: E402
from memory import get_backbone, tiny_imagenet  # noqa: E402
from router import NetworkTwoStage, paired_difference, run_trunk_on_images, split_backbone  # noqa: E402

#: (name, seed, precision, threads) of each build.
BUILDS = (("reference", 0, "bf16", 2), ("again", 0, "bf16", 2), ("1 thread", 0, "bf16", 1),
          ("fp32", 0, "fp32", 2), ("fp32, 1 thread", 0, "fp32", 1), ("seed 1", 1, "bf16", 2))
#: The pairs compared, and what differs between them.
PAIRS = (("reference", "again", "nothing"), ("reference", "1 thread", "threads, 2 → 1 (bf16)"),
         ("fp32", "fp32, 1 thread", "threads, 2 → 1 (fp32)"), ("reference", "fp32", "precision, bf16 → fp32"),
         ("reference", "seed 1", "seed, 0 → 1"))


def _threads(n: int) -> None:
    import faiss
    import torch

    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)


def run(*, per_class: int, val_per_class: int, size: int, epochs: int) -> dict[str, Any]:
    tree = shipped_tree("tiny-imagenet-200")
    fit_ds = tiny_imagenet("train").subset(per_class)
    val_ds = tiny_imagenet("val").subset(val_per_class)
    truth = np.asarray(val_ds.labels, dtype=object)
    out: dict[str, Any] = {"data": f"Tiny-ImageNet: {len(fit_ds):,} train images ({per_class} per class), "
                                   f"{len(val_ds):,} val images; Lite0 @ {size} px; {epochs} generalist epochs",
                           "builds": {}, "pairs": []}
    proba: dict[str, np.ndarray] = {}
    classes: np.ndarray | None = None
    for name, seed, precision, threads in BUILDS:
        _threads(threads)
        t = time.perf_counter()
        net = NetworkTwoStage(tree, routing="soft", m=3, size=size, epochs=epochs, specialist_epochs=1,
                              dev_per_class=max(1, per_class // 4), seed=seed, precision=precision,
                              progress=False).fit(fit_ds)
        proba[name] = net.predict_proba(val_ds)
        classes = net.classes_
        out["builds"][name] = {"seed": seed, "precision": precision, "threads": threads,
                               "top1": round(float(np.mean(classes[proba[name].argmax(1)] == truth)), 4),
                               "seconds": round(time.perf_counter() - t, 1)}
        print(name, out["builds"][name], flush=True)
    _threads(2)
    assert classes is not None
    for a, b, what in PAIRS:
        pa, pb = proba[a], proba[b]
        ra, rb = classes[pa.argmax(1)] == truth, classes[pb.argmax(1)] == truth
        out["pairs"].append({"a": a, "b": b, "differs_in": what, "bit_identical": bool(np.array_equal(pa, pb)),
                             "max_probability_difference": float(f"{np.abs(pa - pb).max():.3g}"),
                             "predictions_differ": round(float(np.mean(pa.argmax(1) != pb.argmax(1))), 4),
                             "top1_change": paired_difference(ra, rb).to_dict()})
        print(out["pairs"][-1], flush=True)
    split = split_backbone(get_backbone("lite0", size=size))
    images = list(val_ds.paths[:256])
    trunk = {}
    for precision in ("bf16", "fp32"):
        acts = {}
        for n in (2, 1):
            _threads(n)
            acts[n] = run_trunk_on_images(split, images, precision=precision).astype(np.float32)
        trunk[precision] = {"images": len(images), "bit_identical": bool(np.array_equal(acts[1], acts[2])),
                            "max_abs_difference": float(f"{np.abs(acts[1] - acts[2]).max():.3g}")}
    _threads(2)
    out["trunk_threads_2_vs_1"] = trunk
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4 train / 2 val images per class at 64 px; nothing written")
    args = ap.parse_args(argv)
    if args.quick:
        out = run(per_class=4, val_per_class=2, size=64, epochs=1)
    else:
        out = run(per_class=20, val_per_class=10, size=160, epochs=2)
        print("wrote", write_result("reproducibility", out))
    return out


if __name__ == "__main__":
    main()
