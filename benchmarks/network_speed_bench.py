"""The network-level model on eager torch, ONNX Runtime and OpenVINO, in one run.

    python benchmarks/network_speed_bench.py           # Tiny-ImageNet, writes results/network_speed.json
                                                       # (network_speed_avx512_bf16.json on a CPU without AMX)
    python benchmarks/network_speed_bench.py --quick   # a small subset; nothing written

One routed network model is trained (Lite0 at 160 px, int8 delta specialists
with memories, the WordNet cut of ten superclasses, soft routing over ``m``
superclasses, the mix chosen on 20 held-out images per class)
on the training cache computed by the default path.  Its generalist alone is
the flat fine-tuned tail.  Both then run on every path:

* eager torch with bf16 autocast (the path they were trained on);
* ONNX Runtime fp32, OpenVINO fp32, and OpenVINO bf16 where the CPU runs bf16
  natively.

For each: images/s end to end from files over all of val (decoding overlapped
with inference), images/s from decoded tensors (best of 3 on ``--tensors``
images; for the routed model also ``predict_proba``'s, which runs every routed
specialist where ``predict`` settles), top-1 on val, and the top-1 change and the answers that changed
against eager, with the paired 95% interval.  The trunk-cache computation is
timed on ``--cache-images`` train images on each path.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import best_of, per_cpu_name, write_result  # noqa: E402
from hierarchy import shipped_tree  # noqa: E402
from memory import Embedder, get_backbone, tiny_imagenet  # noqa: E402
from memory.embedding import usable_cores  # noqa: E402
from router import (NetworkPath, NetworkTwoStage, choose_path, paired_difference, run_trunk_on_images,  # noqa: E402
                    split_backbone, trunk_activations)
from router.network import trunk_cache_dir  # noqa: E402

PATHS = [("eager torch bf16", "torch", "bf16"), ("ONNX Runtime fp32", "onnx", "fp32"),
         ("OpenVINO fp32", "openvino", "fp32"), ("OpenVINO bf16", "openvino", "bf16")]


def _paths() -> list[tuple[str, str, str]]:
    native = choose_path("auto", "bf16").precision == "bf16"
    return [p for p in PATHS if p[1:] != ("openvino", "bf16") or native]


def run(quick: bool = False, *, size: int = 160, m: int = 3, tensors: int = 1024, cache_images: int = 2048, seed: int = 0) -> dict[str, Any]:
    """Every figure in one run; ``quick`` takes 12 train and 4 val images per class and one epoch."""
    t_start = time.perf_counter()
    train, val = tiny_imagenet("train"), tiny_imagenet("val")
    if quick:
        train, val = train.subset(12), val.subset(4)
        tensors, cache_images = min(tensors, 128), min(cache_images, 256)
    split = split_backbone(get_backbone("lite0", size=size))
    paths = _paths()

    # ---- the trunk cache: images/s from files, on each path
    sample = train.paths[:: max(1, len(train) // cache_images)][:cache_images]
    cache_rates = {}
    for name, runtime, precision in paths:
        run_trunk_on_images(split, sample[:64], runtime=runtime, precision=precision)  # export, compile, warm up
        t = time.perf_counter()
        run_trunk_on_images(split, sample, runtime=runtime, precision=precision, batch_size=64)
        cache_rates[name] = round(len(sample) / (time.perf_counter() - t), 1)
        print(f"trunk cache {name}: {cache_rates[name]} img/s", flush=True)
    reused = trunk_cache_dir(train, split).exists()
    t = time.perf_counter()
    acts = trunk_activations(train, split, progress=True)
    cache_seconds = round(time.perf_counter() - t, 1)
    default_path = str(choose_path("auto", "bf16"))
    print(f"trunk cache of {len(train):,} images on {default_path}: {cache_seconds} s", flush=True)

    # ---- one model, trained once on the default path's cache
    t = time.perf_counter()
    model = NetworkTwoStage(shipped_tree("tiny-imagenet-200"), size=size, routing="soft", m=m,
                            epochs=1 if quick else 4, specialist_epochs=1 if quick else 2,
                            dev_per_class=2 if quick else 20, seed=seed, progress=True).fit(acts)
    train_seconds = round(time.perf_counter() - t, 1)
    y = np.asarray(val.labels)
    x = Embedder(split.backbone, runtime="torch", progress=False).preprocess(val.paths[:tensors])

    rows: list[dict[str, Any]] = []
    for system in ("flat", "routed"):
        eager_pred: np.ndarray | None = None
        for name, runtime, precision in paths:
            model.set_params(runtime=runtime, precision=precision, progress=False)
            clf: Any = model.flat() if system == "flat" else model
            run_trunk = split.trunk_fn(NetworkPath(runtime, model.path_.precision))

            def trunk(images: np.ndarray) -> np.ndarray:  # in batches of 64, as from files
                return np.concatenate([run_trunk(images[i:i + 64]) for i in range(0, len(images), 64)])

            clf.predict(trunk(x[:64]))  # export, compile, warm up
            t = time.perf_counter()
            pred = np.asarray(clf.predict(list(val.paths)))
            files_rate = round(len(val) / (time.perf_counter() - t), 1)
            _, seconds = best_of(lambda: clf.predict(trunk(x)))
            row: dict[str, Any] = {
                "system": system, "path": name, "numeric_path": model.numeric_path,
                "images_per_s_files": files_rate, "images_per_s_tensors": round(len(x) / seconds, 1),
                "top1": round(float(np.mean(pred == y)), 4)}
            if system == "routed":  # predict settles; predict_proba runs every routed specialist
                _, seconds = best_of(lambda: model.predict_proba(trunk(x)))
                row["images_per_s_tensors_every_specialist"] = round(len(x) / seconds, 1)
            if eager_pred is None:
                eager_pred = pred
            else:
                d = paired_difference(eager_pred == y, pred == y)
                row.update(top1_change=round(d.difference, 4), change_interval=[round(d.low, 4), round(d.high, 4)],
                           p_value=d.p_value, flips=int(np.sum(pred != eager_pred)))
            rows.append(row)
            print(f"{system:6s} {name:18s} files {files_rate:7.1f} img/s, tensors {row['images_per_s_tensors']:7.1f}"
                  f" img/s, top-1 {row['top1']:.4f} {row.get('top1_change', '')}", flush=True)
    model.set_params(runtime="auto", precision="bf16")
    acts_x = split.trunk_fn(NetworkPath(model.path_.runtime, model.path_.precision))(x)
    specialists = {"predict": round(float(model.specialists_run(acts_x).mean()), 3),
                   "predict_proba": round(float(model.specialists_run(acts_x, settle=False).mean()), 3),
                   "settled_by_the_first": round(float(np.mean(model.specialists_run(acts_x) == 1)), 4)}
    print("specialists per image:", specialists, flush=True)

    def rate(system: str, path: str, key: str) -> float:
        return next(r[key] for r in rows if r["system"] == system and r["path"] == path)

    best = "OpenVINO bf16" if any(p[0] == "OpenVINO bf16" for p in paths) else "OpenVINO fp32"
    targets = {
        "routed_end_to_end_vs_eager": round(rate("routed", best, "images_per_s_files")
                                            / rate("routed", "eager torch bf16", "images_per_s_files"), 2),
        "routed_top1_change_points": round(100 * next(r["top1_change"] for r in rows
                                                      if r["system"] == "routed" and r["path"] == best), 2),
        "trunk_cache_vs_eager": round(cache_rates[best] / cache_rates["eager torch bf16"], 2),
        "routed_cost_vs_flat": {p[0]: round(rate("flat", p[0], "images_per_s_tensors")
                                            / rate("routed", p[0], "images_per_s_tensors"), 2) for p in paths},
        "routed_cost_vs_flat_files": {p[0]: round(rate("flat", p[0], "images_per_s_files")
                                                  / rate("routed", p[0], "images_per_s_files"), 2) for p in paths},
    }
    print("targets:", targets, flush=True)
    return {
        "setup": {"backbone": split.fingerprint, "size": size, "routing": f"soft m={m}", "mix": list(model.mix_),
                  "cut": "wordnet balanced:10", "train": len(train), "val": len(val), "tensors": len(x),
                  "cache_images": len(sample), "default_path": default_path, "threads": usable_cores(),
                  "timing": "end to end: one pass over val from files; tensors: best of 3"},
        "trunk_cache": {"images_per_s": cache_rates, "full_cache_seconds": cache_seconds, "full_cache_reused": reused,
                        "full_cache_images": len(train)},
        "train_seconds": train_seconds, "rows": rows, "targets": targets, "best_path": best,
        "specialists_per_image": specialists,
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small subset, one epoch; results are not written")
    ap.add_argument("--size", type=int, default=160, help="input size in pixels (default 160)")
    ap.add_argument("--m", type=int, default=3, help="superclasses searched by soft routing (default 3)")
    ap.add_argument("--tensors", type=int, default=1024, help="val images timed from decoded tensors (default 1024)")
    ap.add_argument("--cache-images", type=int, default=2048, help="train images the trunk cache is timed on")
    args = ap.parse_args(argv)
    out = run(args.quick, size=args.size, m=args.m, tensors=args.tensors, cache_images=args.cache_images)
    if not args.quick:
        print("wrote", write_result(per_cpu_name("network_speed"), out))
    return out


if __name__ == "__main__":
    main()
