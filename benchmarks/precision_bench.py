"""bf16 autocast against fp32 on this CPU: matmul rate, the trunk, and fine-tuning the tail.

    python benchmarks/precision_bench.py               # Tiny-ImageNet, writes results/precision.json
    python benchmarks/precision_bench.py --part heads  # only the heads part, updated in that file
    python benchmarks/precision_bench.py --part epoch  # only the epoch study, updated in that file
    python benchmarks/precision_bench.py --quick       # a small subset; nothing written

Both sides of every comparison run in the same process on the same data:

* matrix multiply (2048², torch) in fp32 and bf16;
* the Lite0 trunk at 128 px on 512 val images: images/s and the cosine of bf16 activations
  (channels-last) against fp32;
* the generalist tail fine-tuned for the same epochs, same seed, on the cached trunk
  activations (train minus the 20-per-class dev split), in fp32 and with bf16 autocast:
  training images/s and val top-1;
* the heads on frozen 1280-d embeddings (100k train minus the dev split, 10k val), each
  trained in fp32 and under bf16 autocast with the same seed: the flat linear probe, the
  two-stage classifier's MLP base head, and its int8 delta specialists (fitted on the fp32
  base, scored within the true superclass): training seconds and val accuracy;
* one epoch of tail fine-tuning, timed by phase (batch, forward, backward, optimiser), under
  each of ``EPOCH_SETTINGS``: the row layout the library trains in against the tail's modules
  (NCHW and channels-last), all cores against one thread, bf16 against fp32.
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

from benchmarks._common import machine, write_result  # noqa: E402
from benchmarks.specialists_bench import Data  # noqa: E402
from memory import Embedder  # noqa: E402
from router import (DeltaSpecialists, fit_head, head_proba, paired_difference, rows_forward,  # noqa: E402
                    tail_logits, train_epoch, train_tail)
from router.network import PHASES  # noqa: E402


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
    right = {}
    for precision in ("fp32", "bf16"):
        model = split.tail(len(d.classes))
        hist = train_tail(model, d.A, d.y, epochs=epochs, precision=precision, seed=seed)
        right[precision] = tail_logits(model, d.vA, precision=precision).argmax(1) == d.vy
        tail[precision] = {"top1": round(float(np.mean(right[precision])), 4), "seconds": hist["seconds"],
                           "images_per_s": hist["images_per_s"]}
        print(precision, tail[precision], flush=True)
    tail["speedup"] = round(tail["bf16"]["images_per_s"] / tail["fp32"]["images_per_s"], 2)
    tail["top1_change"] = paired_difference(right["fp32"], right["bf16"]).to_dict()
    out = {"matmul_gflops": rates, "matmul_speedup": round(rates["bf16"] / rates["fp32"], 2), "trunk": trunk,
           "tail": tail, "setup": {"backbone": d.fingerprint, "epochs": epochs, "train": int(len(d.y)),
                                   "val": int(len(d.vy)), "trunk_images": len(images)}}
    print(out, flush=True)
    return out


def heads(quick: bool = False, *, seed: int = 0) -> dict[str, Any]:
    """fp32 against bf16 autocast training for the heads on frozen embeddings."""
    from benchmarks._data import tiny

    s = tiny(per_class=60, val_per_class=10, dev_per_class=10) if quick else tiny()
    classes = s.classes
    index = {c: i for i, c in enumerate(classes)}
    yi, qi = np.array([index[c] for c in s.y]), np.array([index[c] for c in s.qy])
    sup = s.superclass(classes)
    groups = [np.flatnonzero(sup == g) for g in sorted(set(sup))]
    rows: dict[str, Any] = {}

    def timed(fn: Any) -> tuple[Any, float]:
        t = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t

    bases = {}
    right: dict[tuple[str, str], np.ndarray] = {}  # (row, precision) -> whether each val query is right
    for name, hidden, epochs in (("linear probe", 0, 15), ("MLP base head (1024 hidden)", 1024, 10)):
        row: dict[str, Any] = {}
        for precision in ("fp32", "bf16"):
            head, secs = timed(lambda: fit_head(s.X, yi, len(classes), hidden=hidden, epochs=epochs, seed=seed,
                                                precision=precision))
            right[name, precision] = head_proba(head, s.Q).argmax(1) == qi
            row[precision] = {"seconds": round(secs, 1), "top1": round(float(np.mean(right[name, precision])), 4)}
            bases[(hidden, precision)] = head
        rows[name] = row
    base = bases[(1024, "fp32")]
    row = {}
    name = "int8 delta specialists (rank 16), within the true superclass"
    for precision in ("fp32", "bf16"):
        spec, secs = timed(lambda: DeltaSpecialists(16).fit(base, s.X, yi, groups, epochs=5, seed=seed,
                                                            precision=precision))
        ok = np.zeros(len(qi), dtype=bool)
        for g, members in enumerate(groups):
            q = np.flatnonzero(np.isin(qi, members))
            ok[q] = members[spec.proba_in(g, s.Q[q]).argmax(1)] == qi[q]
        right[name, precision] = ok
        row[precision] = {"seconds": round(secs, 1), "top1": round(float(ok.mean()), 4)}
    rows[name] = row
    for name, row in rows.items():
        row["speedup"] = round(row["fp32"]["seconds"] / row["bf16"]["seconds"], 2)
        row["top1_change"] = paired_difference(right[name, "fp32"], right[name, "bf16"]).to_dict()
        print(f"{name:<62} {row}", flush=True)
    return {"machine": machine(), "rows": rows,
            "setup": {"train": int(len(s.y)), "val": int(len(s.qy)), "classes": len(classes),
                      "superclasses": len(groups), "seed": seed}}


#: The training settings the epoch part compares: (name, threads, layout, precision).  Layouts: "rows"
#: (:func:`router.rows_forward`, which :func:`router.train_tail` uses), the tail's modules on NCHW
#: batches, or on channels-last batches.
EPOCH_SETTINGS = (("bf16, rows, all cores (the library's)", None, "rows", "bf16"),
                  ("bf16, modules NCHW, all cores", None, "nchw", "bf16"),
                  ("bf16, modules channels-last, all cores", None, "channels-last", "bf16"),
                  ("bf16, rows, 1 thread", 1, "rows", "bf16"),
                  ("fp32, rows, all cores", None, "rows", "fp32"),
                  ("fp32, modules NCHW, all cores", None, "nchw", "fp32"))


def timed_epoch(tail: Any, A: np.ndarray, y: torch.Tensor, *, layout: str, precision: str,
                batch_size: int = 256, seed: int = 0) -> dict[str, float]:
    """One epoch of :func:`router.train_epoch` (the step :func:`router.train_tail` runs), each phase timed.

    ``layout``: ``"rows"`` trains through :func:`router.rows_forward`; ``"nchw"`` and
    ``"channels-last"`` through the tail's modules, on batches in that memory format.
    """
    opt = torch.optim.AdamW(tail.parameters(), lr=1e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    if layout == "rows":
        forward = rows_forward(tail)
    elif layout == "channels-last":
        forward = lambda x: tail(x.contiguous(memory_format=torch.channels_last))  # noqa: E731
    else:
        forward = tail
    phases = dict.fromkeys(PHASES, 0.0)
    tail.train()
    train_epoch(forward, A, y, batch_size, opt, sched, torch.Generator().manual_seed(seed), flip=True,
                precision=precision, label_smoothing=0.1, phases=phases)
    return phases


def epoch_study(quick: bool = False, *, images: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """What an epoch of tail fine-tuning spends its time on, and what memory format, threads and precision do.

    Every setting trains a fresh tail (same seed) for one epoch over the same
    ``images`` cached trunk activations, after a 4-batch warm-up, with the
    training step :func:`router.train_tail` runs (:func:`router.train_epoch`).
    """
    d = Data(quick, seed)
    n = min(images, len(d.y))
    A, y = d.A[:n], torch.from_numpy(d.y[:n].astype(np.int64))
    cores = torch.get_num_threads()
    rows: dict[str, Any] = {}
    try:
        for name, threads, layout, precision in EPOCH_SETTINGS:
            torch.set_num_threads(threads or cores)
            torch.manual_seed(seed)
            tail = d.split.tail(len(d.classes))
            if layout == "channels-last":
                tail = tail.to(memory_format=torch.channels_last)
            timed_epoch(tail, A[:1024], y[:1024], layout=layout, precision=precision)  # warm-up
            phases = timed_epoch(tail, A, y, layout=layout, precision=precision, seed=seed)
            total = sum(phases.values())
            rows[name] = {"threads": threads or cores, "layout": layout, "precision": precision,
                          "images_per_s": round(n / total, 1), "seconds": round(total, 2),
                          "phases_s": {k: round(v, 2) for k, v in phases.items()}}
            print(name, rows[name], flush=True)
    finally:
        torch.set_num_threads(cores)
    base = rows[EPOCH_SETTINGS[0][0]]["images_per_s"]
    for row in rows.values():
        row["against_library"] = round(row["images_per_s"] / base, 2)
    return {"machine": machine(), "images": n, "activations": list(A.shape[1:]), "cores": cores,
            "backbone": d.fingerprint, "rows": rows}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small subset; results are not written")
    ap.add_argument("--epochs", type=int, default=3, help="tail fine-tuning epochs for each precision")
    ap.add_argument("--part", choices=["all", "heads", "epoch"], default="all",
                    help="heads / epoch: rerun only that part and update it in the results file")
    args = ap.parse_args(argv)
    if args.part in ("heads", "epoch"):
        import json

        from benchmarks._common import RESULTS

        out = json.loads((RESULTS / "precision.json").read_text()) if not args.quick else {}
        out[args.part] = heads(args.quick) if args.part == "heads" else epoch_study(args.quick)
    else:
        out = run(args.quick, epochs=args.epochs)
        out["heads"] = heads(args.quick)
        out["epoch"] = epoch_study(args.quick)
    if not args.quick:
        print("wrote", write_result("precision", out))
    return out


if __name__ == "__main__":
    main()
