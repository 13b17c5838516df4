"""Answers along the tree with a promised accuracy, better mistakes, and classes the model lacks.

    python benchmarks/hedging_bench.py                 # all of Tiny-ImageNet; writes results/hedging.json
    python benchmarks/hedging_bench.py --demo-size     # the demo's size; writes results/hedging.json too
    python benchmarks/hedging_bench.py --quick         # a small subset, no network model; nothing written

Calibration images are held out of train (the first ``--calibration-per-class``
images of each class); the models are built on the rest of train, and every
figure is scored on val, which neither building nor calibration sees.

Systems: a frozen flat kNN (Lite0 embeddings, k = 50, softmax), the frozen
linear probe, the memory-level routed model (kNN router, soft m = 2), and at
the network level the fine-tuned flat tail and the routed network model
(WordNet balanced:10, soft m = 3, int8 tail deltas with specialist memories).
Each gets a temperature and both rules' calibration (:func:`router.calibrate_proba`);
for each promised accuracy the table gives the accuracy achieved on val with
its 95% (Wilson) interval, the share answered at class level, the mean
normalised information gain and the mean depth.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result  # noqa: E402
from hierarchy import crm_decisions, shipped_tree  # noqa: E402
from memory import get_backbone  # noqa: E402
from router import (FlatClassifier, NetworkTwoStage, TrunkActivations, TwoStageClassifier, calibrate_proba,  # noqa: E402
                    ece, hedge, hedged_metrics, paired_difference, split_backbone, trunk_activations)

ALPHAS = (0.7, 0.8, 0.9, 0.95, 0.99)
RULES = ("threshold", "darts")


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(centre - half, 4), round(centre + half, 4))


def _paired(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """B's top-1 change over A's on the same queries: the paired 95% interval and McNemar's p."""
    d = paired_difference(a, b)
    return {"top1_change_95": (round(d.low, 4), round(d.high, 4)), "top1_change_p": float(f"{d.p_value:.4g}"),
            "top1_change_verdict": d.verdict}


def severity(tree: Any, classes: list[str], pred: np.ndarray, y: np.ndarray) -> float:
    H = tree.lca_height_matrix(classes)
    col = {c: i for i, c in enumerate(classes)}
    wrong = [(col[t], p) for t, p in zip(y, pred) if col[t] != p]
    return float(np.mean([H[t, p] for t, p in wrong])) if wrong else 0.0


def score(name: str, tree: Any, classes: list[str], p_cal: np.ndarray, y_cal: np.ndarray, p_val: np.ndarray,
          y_val: np.ndarray, right: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every figure of one system; ``right`` collects its per-query right/wrong for paired comparisons."""
    cal = calibrate_proba(p_cal, y_cal, tree, classes)
    col = {c: i for i, c in enumerate(classes)}
    yi = np.array([col[c] for c in y_val])
    scaled = cal.scale(p_val)
    out: dict[str, Any] = {"temperature": round(cal.temperature, 3), "floor": cal.floor, "calibration_images": cal.n,
                           "top1": round(float(np.mean(p_val.argmax(1) == yi)), 4),
                           "ece_before": round(ece(p_val, yi), 4), "ece_after": round(ece(scaled, yi), 4),
                           "hedged": {}}
    gains: dict[str, np.ndarray] = {}
    for rule in RULES:
        for alpha in ALPHAS:
            try:
                answers = hedge(p_val, tree, cal, alpha, rule=rule)
                m = hedged_metrics(answers, tree, y_val)
            except ValueError as exc:  # too few calibration images for this level
                out["hedged"][f"{rule} {alpha}"] = {"error": str(exc)}
                continue
            hits = round(m["achieved"] * m["n"])
            out["hedged"][f"{rule} {alpha}"] = {
                "rule": rule, "accuracy": alpha, "achieved": round(m["achieved"], 4),
                "achieved_95": wilson(hits, m["n"]), "class_level": round(m["class_level"], 4),
                "root": round(m["root"], 4), "mean_gain": round(m["mean_gain"], 4),
                "mean_depth": round(m["mean_depth"], 2), "parameter": m["parameter"],
                "guarantee_held": m["achieved"] >= alpha - 0.005}
            if alpha == 0.9:
                gains[rule] = answers.gain
    if len(gains) == 2:  # the two rules on the same queries and probabilities
        d = paired_difference(gains["threshold"], gains["darts"])
        out["darts_minus_threshold_gain_0.9"] = {"difference": round(d.difference, 4),
                                                 "interval_95": (round(d.low, 4), round(d.high, 4)),
                                                 "verdict": d.verdict}
    H = tree.lca_height_matrix(classes)
    for label, p in (("uncalibrated", p_val), ("calibrated", scaled)):
        arg, crm = p.argmax(1), crm_decisions(p, H)
        out[f"crm_{label}"] = {
            "argmax_top1": round(float(np.mean(arg == yi)), 4), "crm_top1": round(float(np.mean(crm == yi)), 4),
            **_paired(arg == yi, crm == yi),
            "argmax_severity": round(severity(tree, classes, arg, y_val), 3),
            "crm_severity": round(severity(tree, classes, crm, y_val), 3)}
        if right is not None:
            right[f"argmax_{label}"], right[f"crm_{label}"] = arg == yi, crm == yi
    print(f"{name}: top-1 {out['top1']}, T {out['temperature']}, ECE {out['ece_before']} -> {out['ece_after']}; "
          f"darts 0.9 {out['hedged'].get('darts 0.9')}", flush=True)
    return out


def novel_answers(tree: Any, classes: list[str], p_cal: np.ndarray, y_cal: np.ndarray, p_q: np.ndarray,
                  y_q: np.ndarray) -> dict[str, Any]:
    """How queries of classes the model lacks are answered at α = 0.9 (DARTS)."""
    m = hedged_metrics(hedge(p_q, tree, calibrate_proba(p_cal, y_cal, tree, classes), 0.9), tree, y_q)
    return {"queries": m["n"], "correct_ancestor": round(m["achieved"] - m["root"], 4),  # the root holds every class
            "root": round(m["root"], 4), "wrong": round(1 - m["achieved"], 4)}


def novel(tree: Any, make: Any, kw: dict[str, Any], fit: Any, cal: Any, val: Any, held: list[str]) -> dict[str, Any]:
    """A memory-level system built without the ``held`` classes, asked about their val images."""
    keep = [c for c in sorted(set(fit[1])) if c not in held]
    model = make().fit(fit[0][np.isin(fit[1], keep)], fit[1][np.isin(fit[1], keep)])
    classes = [str(c) for c in getattr(model, "class_ids_", model.classes_)]
    mc, q = np.isin(cal[1], keep), np.isin(val[1], held)
    return novel_answers(tree, classes, model.predict_proba(cal[0][mc], **kw), cal[1][mc],
                         model.predict_proba(val[0][q], **kw), val[1][q])


def novel_network(tree: Any, make: Any, fit_ds: Any, cal_ds: Any, val_ds: Any, held: list[str]) -> dict[str, Any]:
    """The routed network model trained without the ``held`` classes (on the cached trunk activations)."""
    model = make()
    split = split_backbone(get_backbone(model.backbone, size=model.size, crop_pct=model.crop_pct), model.split_at)

    def part(ds: Any, keep: bool) -> TrunkActivations:
        ta = trunk_activations(ds, split, precision=model.precision, progress=False)
        rows = np.flatnonzero(np.isin(ta.labels, held) != keep)
        return TrunkActivations(ta.acts[rows], ta.labels[rows], [ta.refs[i] for i in rows], ta.fingerprint,
                                f"{ta.dataset_key}:without-held" if keep else f"{ta.dataset_key}:held")

    model.fit(part(fit_ds, True))
    cal_in, val_out = part(cal_ds, True), part(val_ds, False)
    return novel_answers(tree, [str(c) for c in model.classes_], model.predict_proba(cal_in),
                         np.asarray(cal_in.labels, dtype=object), model.predict_proba(val_out),
                         np.asarray(val_out.labels, dtype=object))


def run(*, per_class: int | None, cal_per_class: int, val_per_class: int | None, network: bool,
        epochs: int = 4, spec_epochs: int = 2, seed: int = 0, beta: float = 0.0) -> dict[str, Any]:
    from memory import Embedder, embed_dataset, tiny_imagenet

    tree = shipped_tree("tiny-imagenet-200")
    train, val = tiny_imagenet("train"), tiny_imagenet("val")
    cal_ds = train.subset(cal_per_class)
    fit_ds = train.subset(per_class, skip=cal_per_class)
    val_ds = val.subset(val_per_class) if val_per_class else val
    emb = Embedder(get_backbone("lite0", size=128), precision="fp32")
    F, C, V = (embed_dataset(ds, emb) for ds in (fit_ds, cal_ds, val_ds))
    fit = (F.X, F.labels.astype(object))
    cal = (C.X, C.labels.astype(object))
    vq = (V.X, V.labels.astype(object))
    out: dict[str, Any] = {"data": f"Tiny-ImageNet: models built on {len(fit_ds):,} train images, calibrated on "
                                   f"{len(cal_ds):,} other train images ({cal_per_class} per class), scored on "
                                   f"{len(val_ds):,} val images", "alphas": list(ALPHAS), "delta": 0.1,
                           "systems": {}}
    t = time.perf_counter()
    makers = {
        "frozen kNN (k=50, softmax)": (lambda: FlatClassifier("knn", k=50), {}),
        "frozen linear probe": (lambda: FlatClassifier("head"), {}),
        "memory-level routed (kNN router, soft m=2)": (lambda: TwoStageClassifier(tree, router="memory"),
                                                       {"routing": "soft", "m": 2}),
    }
    for name, (make, kw) in makers.items():
        model = make().fit(*fit)
        classes = [str(c) for c in getattr(model, "class_ids_", model.classes_)]
        out["systems"][name] = score(name, tree, classes, model.predict_proba(cal[0], **kw), cal[1],
                                     model.predict_proba(vq[0], **kw), vq[1])
    rng = np.random.default_rng(seed)
    held = sorted(rng.choice(sorted(set(fit[1])), 20, replace=False).tolist())
    out["novel"] = {"held_out_classes": held, "alpha": 0.9, "rule": "darts", "systems": {
        name: novel(tree, make, kw, fit, cal, vq, held) for name, (make, kw) in makers.items()}}
    if network:
        def make_net(beta: float = 0.0) -> NetworkTwoStage:
            return NetworkTwoStage(tree, specialist="tail-delta", routing="soft", m=3, epochs=epochs,
                                   specialist_epochs=spec_epochs, dev_per_class=20, seed=seed, hierarchy_beta=beta)

        net = make_net().fit(fit_ds)
        classes = [str(c) for c in net.classes_]
        flat = net.flat()
        y_cal, y_val = np.asarray(cal_ds.labels, dtype=object), np.asarray(val_ds.labels, dtype=object)
        out["systems"]["fine-tuned flat tail"] = score("fine-tuned flat tail", tree, classes,
                                                       flat.predict_proba(cal_ds), y_cal, flat.predict_proba(val_ds),
                                                       y_val)
        plain_right: dict[str, Any] = {}
        out["systems"]["routed network model (WordNet balanced:10, soft m=3)"] = score(
            "routed network model", tree, classes, net.predict_proba(cal_ds), y_cal, net.predict_proba(val_ds), y_val,
            plain_right)
        if beta:  # the same model, its generalist trained on hierarchy-aware soft labels
            soft = make_net(beta).fit(fit_ds)
            soft_right: dict[str, Any] = {}
            out["systems"][f"routed network model, hierarchy-aware labels (β={beta:g})"] = score(
                "routed network model, soft labels", tree, classes, soft.predict_proba(cal_ds), y_cal,
                soft.predict_proba(val_ds), y_val, soft_right)
            out["soft_labels_crm_against_plain_argmax"] = _paired(plain_right["argmax_calibrated"],
                                                                  soft_right["crm_calibrated"])
        out["novel"]["systems"]["routed network model (WordNet balanced:10, soft m=3)"] = novel_network(
            tree, make_net, fit_ds, cal_ds, val_ds, held)
    out["seconds"] = round(time.perf_counter() - t, 1)
    best = max(out["systems"], key=lambda n: out["systems"][n]["top1"])
    d9 = out["systems"][best]["hedged"].get("darts 0.9", {})
    crm = out["systems"][best]["crm_calibrated"]  # what predict(decision="crm") does once calibrated
    out["summary"] = {
        "best_system": best, "darts_0.9_mean_gain": d9.get("mean_gain"), "darts_0.9_class_level": d9.get("class_level"),
        "guarantee_held_everywhere": all(r.get("guarantee_held", False) for s in out["systems"].values()
                                         for r in s["hedged"].values() if "error" not in r),
        "darts_never_below_threshold_at_0.9": all(
            s["hedged"]["darts 0.9"].get("mean_gain", 0) >= s["hedged"]["threshold 0.9"].get("mean_gain", 0) - 1e-9
            for s in out["systems"].values() if "error" not in s["hedged"]["darts 0.9"]),
        "crm_severity_change": round(crm["crm_severity"] - crm["argmax_severity"], 3),
        "crm_top1_change": round(crm["crm_top1"] - crm["argmax_top1"], 4),
        "novel_wrong_below_half": all(v["wrong"] < 0.5 for v in out["novel"]["systems"].values()),
    }
    soft_rows = [n for n in out["systems"] if "hierarchy-aware" in n]
    out["summary"]["crm_uncalibrated_severity_change"] = round(
        out["systems"][best]["crm_uncalibrated"]["crm_severity"] - crm["argmax_severity"], 3)
    out["summary"]["crm_uncalibrated_top1_change"] = round(
        out["systems"][best]["crm_uncalibrated"]["crm_top1"] - crm["argmax_top1"], 4)
    if soft_rows:  # soft labels with CRM, against the plain routed network model with argmax
        plain = out["systems"]["routed network model (WordNet balanced:10, soft m=3)"]["crm_calibrated"]
        soft = out["systems"][soft_rows[0]]["crm_calibrated"]
        out["summary"]["soft_labels_and_crm"] = {
            "system": soft_rows[0], "severity_change": round(soft["crm_severity"] - plain["argmax_severity"], 3),
            "top1_change": round(soft["crm_top1"] - plain["argmax_top1"], 4),
            **out.pop("soft_labels_crm_against_plain_argmax")}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="10 train, 25 calibration and 5 val images per class, "
                                                            "no network model; nothing written")
    size.add_argument("--demo-size", action="store_true", help="100 train images per class, 50 per class to "
                                                                "calibrate, 20 val per class (the demo's size)")
    ap.add_argument("--calibration-per-class", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--specialist-epochs", type=int, default=2)
    ap.add_argument("--hierarchy-beta", type=float, default=0.0,
                    help="also train the routed network model on hierarchy-aware soft labels with this β")
    args = ap.parse_args(argv)
    if args.quick:
        out = run(per_class=10, cal_per_class=25, val_per_class=5, network=False)
    elif args.demo_size:
        out = run(per_class=100, cal_per_class=args.calibration_per_class, val_per_class=20, network=True,
                  epochs=args.epochs, spec_epochs=args.specialist_epochs, beta=args.hierarchy_beta)
    else:
        out = run(per_class=None, cal_per_class=args.calibration_per_class, val_per_class=None, network=True,
                  epochs=args.epochs, spec_epochs=args.specialist_epochs, beta=args.hierarchy_beta)
    if not args.quick:
        print("wrote", write_result("hedging", out))
    return out


if __name__ == "__main__":
    main()
