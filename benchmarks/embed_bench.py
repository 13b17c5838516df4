"""Embedding throughput and agreement: eager PyTorch, ONNX Runtime, OpenVINO fp32 and bf16, in one run.

    python benchmarks/embed_bench.py             # Lite0 at 64, 128 and 224 px, then all of Tiny-ImageNet at 128 px
    python benchmarks/embed_bench.py --quick     # 64 px only, few images; nothing written
    python benchmarks/embed_bench.py --no-dataset  # the per-resolution rows only

Per resolution: the same real Tiny-ImageNet val images (decoded once), each
path on the same thread count, batches of --batch-size, best of --repeats.
Agreement is the cosine of each path's features to ONNX Runtime fp32 (mean
and minimum over the images).

The dataset part embeds all 100k train and 10k val images at 128 px with the
default path (decode included, overlapped with inference as the library does
it), times decoding and the model separately, and scores flat kNN top-1 on val
with fp32 embeddings, with the default path's, and with default-path queries
against the fp32 memory.  Writes benchmarks/results/embed.json
(``embed_avx512_bf16.json`` on a CPU with AVX-512 BF16 and no AMX).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import best_of, per_cpu_name, write_result  # noqa: E402
from memory import Embedder, VisualMemory, embed_dataset, get_backbone, tiny_imagenet  # noqa: E402
from memory.embedding import fill_batches  # noqa: E402

PATHS = (("eager fp32", "torch", "fp32"), ("ONNX Runtime fp32", "onnx", "fp32"),
         ("OpenVINO fp32", "openvino", "fp32"), ("OpenVINO bf16", "openvino", "bf16"))


def _embed(emb: Embedder, x: np.ndarray, runtime: str, precision: str, batch: int) -> np.ndarray:
    """In batches: one call over all images would size every runtime's buffers for all of them."""
    return np.concatenate([emb.embed_tensors(x[i:i + batch], runtime=runtime, precision=precision)
                           for i in range(0, len(x), batch)])


def _throughput(emb: Embedder, x: np.ndarray, runtime: str, precision: str, batch: int,
                repeats: int) -> tuple[float, np.ndarray]:
    """(images/s, best of ``repeats``; the features), after a warm-up at the timed shapes."""
    _embed(emb, x[:batch], runtime, precision, batch)
    out, secs = best_of(lambda: _embed(emb, x, runtime, precision, batch), repeats)
    return len(x) / secs, out


def resolution_rows(size: int, images: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    emb = Embedder(get_backbone(args.backbone, size=size), threads=args.threads, progress=False)
    x = emb.preprocess(images)
    ref = _embed(emb, x, "onnx", "fp32", args.batch_size)
    row: dict[str, Any] = {"default": emb.numeric_path, "default_runtime": emb.runtime, "paths": {}}
    for name, runtime, precision in PATHS:
        if runtime == "openvino" and precision == "bf16" and emb.precision != "bf16":
            continue  # no native bf16 here, or no measured plan for this backbone
        xs = x[: args.eager_images] if runtime == "torch" else x  # eager is slow; fewer images
        ips, feats = _throughput(emb, xs, runtime, precision, args.batch_size, args.repeats)
        cos = (feats * ref[: len(xs)]).sum(1)
        row["paths"][name] = {"img_per_s": round(ips, 1), "cos_mean": round(float(cos.mean()), 6),
                              "cos_min": round(float(cos.min()), 6), "images": len(xs)}
    onnx = row["paths"]["ONNX Runtime fp32"]["img_per_s"]
    for r in row["paths"].values():
        r["vs_onnx"] = round(r["img_per_s"] / onnx, 2)
    print(f"{size:4d} px:", {n: (r["img_per_s"], r["vs_onnx"], r["cos_mean"]) for n, r in row["paths"].items()},
          flush=True)
    return row


def _memory(X: np.ndarray, y: np.ndarray) -> VisualMemory:
    mem = VisualMemory(X.shape[1], progress=False)
    mem.add(X, y, source="train")
    return mem


def _correct(mem: VisualMemory, Q: np.ndarray, qy: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(mem.predict(Q, k)) == qy


def knn_change(correct: dict[str, np.ndarray], base: str = "fp32") -> dict[str, Any]:
    """Top-1 of each path and its paired change against ``base``, from per-query correctness.

    ``correct`` maps a path to a bool array of shape (queries,).  The change is
    (gained - lost) / n, gained being the queries a path gets right and ``base``
    gets wrong; its standard error, sqrt(gained + lost) / n, says how much of a
    change the flips alone make by chance.
    """
    ref = correct[base]
    flips = {n: {"gained": int((c & ~ref).sum()), "lost": int((~c & ref).sum())}
             for n, c in correct.items() if n != base}
    return {"top1": {n: round(float(c.mean()), 4) for n, c in correct.items()},
            "change_points": {n: round(100 * (f["gained"] - f["lost"]) / len(ref), 2) for n, f in flips.items()},
            "flips": flips,
            "change_se_points": {n: round(100 * float(np.sqrt(f["gained"] + f["lost"])) / len(ref), 2)
                                 for n, f in flips.items()}}


def dataset_rows(args: argparse.Namespace) -> dict[str, Any]:
    """Embed all of Tiny-ImageNet with the default path; kNN top-1 against fp32."""
    bb = get_backbone(args.backbone, size=128)
    emb = Embedder(bb, threads=args.threads, progress=False, batch_size=args.batch_size)
    ref = Embedder(bb, threads=args.threads, progress=False, precision="fp32")
    out: dict[str, Any] = {"path": emb.numeric_path, "runtime": emb.runtime, "size": 128, "splits": {}}
    embedded = {}
    for split in ("train", "val"):
        ds = tiny_imagenet(split)
        paths = ds.paths
        decode_s = model_s = 0.0

        def load(batch: Any) -> np.ndarray:
            nonlocal decode_s
            t = time.perf_counter()
            x = emb.preprocess(batch)
            decode_s += time.perf_counter() - t
            return x

        def compute(x: np.ndarray) -> np.ndarray:
            nonlocal model_s
            t = time.perf_counter()
            y = emb.embed_tensors(x)
            model_s += time.perf_counter() - t
            return y

        X = np.empty((len(paths), bb.dim), dtype=np.float32)
        t0 = time.perf_counter()
        fill_batches(X, (paths[i:i + args.batch_size] for i in range(0, len(paths), args.batch_size)),
                     load, compute, desc=split, progress=False)
        wall = time.perf_counter() - t0
        embedded[split] = (X, np.asarray(ds.labels))
        out["splits"][split] = {"images": len(paths), "wall_s": round(wall, 1), "decode_s": round(decode_s, 1),
                                "model_s": round(model_s, 1), "img_per_s": round(len(paths) / wall, 1),
                                "decode_img_per_s": round(len(paths) / decode_s, 1),
                                "model_img_per_s": round(len(paths) / model_s, 1)}
        print(split, out["splits"][split], flush=True)
    fp32 = {s: embed_dataset(tiny_imagenet(s), ref) for s in ("train", "val")}  # the fp32 cache
    (Xt, yt), (Xv, yv) = embedded["train"], embedded["val"]
    cos = (Xv * fp32["val"].X).sum(1)
    out["cos_val_mean"], out["cos_val_min"] = round(float(cos.mean()), 6), round(float(cos.min()), 6)
    k = args.k
    fp32_memory = _memory(fp32["train"].X, fp32["train"].labels)
    correct = {
        "fp32": _correct(fp32_memory, fp32["val"].X, fp32["val"].labels, k),
        emb.numeric_path: _correct(_memory(Xt, yt), Xv, yv, k),
        f"{emb.numeric_path} queries, fp32 memory": _correct(fp32_memory, Xv, yv, k),
    }
    out["knn"] = {"k": k, **knn_change(correct)}
    print(out["knn"], f"cos {out['cos_val_mean']} / {out['cos_val_min']}", flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="lite0")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    ap.add_argument("--images", type=int, default=512, help="val images per resolution")
    ap.add_argument("--eager-images", type=int, default=128, help="of those, how many eager torch embeds")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--k", type=int, default=10, help="neighbours for the kNN top-1")
    ap.add_argument("--no-dataset", action="store_true", help="skip embedding the whole dataset")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.images, args.eager_images, args.repeats, args.no_dataset = [64], 128, 64, 1, True

    val = tiny_imagenet("val")
    idx = np.linspace(0, len(val) - 1, args.images).astype(int)
    images = [val.paths[i] for i in idx]
    out: dict[str, Any] = {"backbone": args.backbone, "batch_size": args.batch_size, "timing": f"best of {args.repeats}",
                           "threads": args.threads or len(os.sched_getaffinity(0)), "images": args.images,
                           "eager_images": args.eager_images, "sizes": {}}
    for size in args.sizes:
        out["sizes"][str(size)] = resolution_rows(size, images, args)
    if not args.no_dataset:
        out["dataset"] = dataset_rows(args)
    if not args.quick:
        print("wrote", write_result(per_cpu_name("embed"), out))
    return out


if __name__ == "__main__":
    main()
