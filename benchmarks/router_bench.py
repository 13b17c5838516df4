"""Routed against flat classification on Tiny-ImageNet, for two superclass cuts.

    python benchmarks/router_bench.py            # 100k train memory, 10k val queries
    python benchmarks/router_bench.py --quick    # 20 train / 5 val images per class

Embeddings: Lite0 at 128 px through the embedding cache ($SUPERSUB_DATA).  For
each cut (WordNet balanced:10, and 10 superclasses induced from class-mean
embeddings) it measures, in one run: top-1, superclass accuracy, queries/s and
the share of errors that cross superclasses, for flat kNN, a linear probe, an
MLP head, routed kNN with each router and routing mode, and generalist-routed
delta and full specialists; each routed row against its flat counterpart
(flat kNN, or the flat MLP head for the MLP generalist's rows) with a paired
95% interval and McNemar's p.  Writes benchmarks/results/router.json.
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
from hierarchy import cut_balanced, cut_induced, shipped_tree  # noqa: E402
from memory import Embedder, embed_dataset, get_backbone, tiny_imagenet  # noqa: E402
from router import FlatClassifier, TwoStageClassifier, paired_difference  # noqa: E402


def measure(clf: Any, Q: np.ndarray, qy: np.ndarray, cut: dict[str, str], right: dict[str, np.ndarray] | None = None,
            name: str = "", **kw: Any) -> dict[str, Any]:
    if kw.get("routing") == "oracle":
        kw["y_true"] = qy
    t = time.perf_counter()
    pred = clf.predict(Q, **kw)
    secs = time.perf_counter() - t
    true_sup = np.array([cut[c] for c in qy], dtype=object)
    pred_sup = np.array([cut[c] for c in pred], dtype=object)
    wrong = pred != qy
    if right is not None:
        right[name] = ~wrong
    row = {
        "top1": round(float(np.mean(~wrong)), 4),
        "superclass_accuracy": round(float(np.mean(pred_sup == true_sup)), 4),
        "queries_per_s": round(len(Q) / secs, 1),
        "errors_across_share": round(float(np.mean(pred_sup[wrong] != true_sup[wrong])), 4) if wrong.any() else 0.0,
    }
    if isinstance(clf, TwoStageClassifier):
        route = clf.predict_superclass(Q)
        row["router_superclass_accuracy"] = round(float(np.mean(route == true_sup)), 4)
    return row


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int, default=8, help="epochs of the network heads")
    ap.add_argument("--throughput", action="store_true",
                    help="only time flat kNN against hard routing (best of 3, WordNet cut) and "
                         "merge the result into router.json")
    args = ap.parse_args(argv)

    emb = Embedder(get_backbone("lite0", size=128), precision="fp32")
    train_ds, val_ds = tiny_imagenet("train"), tiny_imagenet("val")
    if args.quick:
        train_ds, val_ds = train_ds.subset(20), val_ds.subset(5)
    tr, va = embed_dataset(train_ds, emb), embed_dataset(val_ds, emb)
    X, y, Q, qy = tr.X, tr.labels.astype(object), va.X, va.labels.astype(object)
    base_tree = shipped_tree("tiny-imagenet-200")
    induced = cut_induced(base_tree, tr.class_means(list(base_tree.classes)), 10, seed=0)
    trees = {"wordnet-balanced-10": base_tree.with_superclasses(cut_balanced(base_tree, 10)),
             "induced-10": base_tree.with_superclasses(induced)}
    if args.throughput:
        return throughput(trees["wordnet-balanced-10"], X, y, Q, args)
    out: dict[str, Any] = {"data": f"Tiny-ImageNet train ({len(X)}) / val ({len(Q)}), {tr.fingerprint}",
                           "k": 10, "voting": "softmax", "cuts": {}}
    heads = dict(head_epochs=args.epochs, router_epochs=args.epochs)
    flat_rows: dict[str, Any] = {}
    for cut_name, tree in trees.items():
        cut = dict(tree.superclasses.assignment)
        sizes = sorted(tree.superclasses.sizes().values())
        rows: dict[str, Any] = {}
        right: dict[str, np.ndarray] = {}

        def run(name: str, clf: Any, **kw: Any) -> None:
            rows[name] = measure(clf, Q, qy, cut, right, name, **kw)
            print(f"[{cut_name}] {name:<44} {rows[name]}", flush=True)

        if not flat_rows:
            flat_knn = FlatClassifier("knn").fit(X, y)
            flat_rows["flat kNN"] = flat_knn
            flat_rows["linear probe"] = FlatClassifier("head", epochs=args.epochs).fit(X, y)
            flat_rows["flat MLP head"] = FlatClassifier("head", hidden=1024, epochs=args.epochs).fit(X, y)
        for name, clf in flat_rows.items():
            run(name, clf)
        for router in ("memory", "centroids", "head"):
            clf = TwoStageClassifier(tree, router=router, **heads).fit(X, y)
            label = {"memory": "kNN router", "centroids": "centroid router", "head": "linear-head router"}[router]
            run(f"routed kNN, {label}, hard", clf)
            run(f"routed kNN, {label}, soft m=2", clf, routing="soft", m=2)
            run(f"routed kNN, {label}, soft m=3", clf, routing="soft", m=3)
            run(f"routed kNN, {label}, oracle", clf, routing="oracle")
        for spec in ("delta", "full"):
            t = time.perf_counter()
            clf = TwoStageClassifier(tree, router="head", router_hidden=1024, specialist=spec, **heads).fit(X, y)
            fit_s = time.perf_counter() - t
            run(f"MLP generalist + {spec} specialists, hard", clf)
            run(f"MLP generalist + {spec} specialists, soft m=3", clf, routing="soft", m=3)
            run(f"MLP generalist + {spec} specialists, oracle", clf, routing="oracle")
            clf.cache_lambda = 0.5
            run(f"MLP generalist + {spec} specialists + shard kNN cache, soft m=3", clf, routing="soft", m=3)
            clf.cache_lambda = 0.0
            st = clf.storage()
            rows[f"MLP generalist + {spec} specialists, hard"]["storage_heads"] = round(st["heads"], 3)
            rows[f"MLP generalist + {spec} specialists, hard"]["fit_s"] = round(fit_s, 1)
        for name, row in rows.items():  # paired on the same queries, against the flat system of the same kind
            base = "flat MLP head" if name.startswith("MLP generalist") else "flat kNN"
            if name.startswith(("routed", "MLP generalist")) and "oracle" not in name:
                row["against"] = {"system": base, **paired_difference(right[base], right[name]).to_dict()}
        out["cuts"][cut_name] = {"sizes": sizes, "systems": rows}
    if not args.quick:
        print("wrote", write_result("router", out))
    return out


def throughput(tree: Any, X: np.ndarray, y: np.ndarray, Q: np.ndarray, args: Any) -> dict:
    """Queries/s of flat kNN and of hard routing over the same memory, best of 3."""
    import json

    from benchmarks._common import RESULTS, best_of

    systems = {
        "flat kNN": FlatClassifier("knn").fit(X, y),
        "routed kNN, kNN router, hard": TwoStageClassifier(tree, router="memory").fit(X, y),
        "routed kNN, centroid router, hard": TwoStageClassifier(tree, router="centroids").fit(X, y),
        "routed kNN, linear-head router, hard": TwoStageClassifier(
            tree, router="head", router_epochs=args.epochs).fit(X, y),
    }
    rows = {}
    for name, clf in systems.items():
        clf.predict(Q[:256])
        _, secs = best_of(lambda: clf.predict(Q), 3)
        rows[name] = round(len(Q) / secs, 1)
        print(f"{name:<40} {rows[name]:10,.1f} q/s", flush=True)
    flat = rows["flat kNN"]
    table = {name: {"queries_per_s": qps, "vs_flat": round(qps / flat, 2)} for name, qps in rows.items()}
    path = RESULTS / "router.json"
    if not args.quick and path.is_file():
        data = json.loads(path.read_text())
        data["throughput"] = {"timing": "best of 3, nothing else running", "systems": table}
        write_result("router", {k: v for k, v in data.items() if k != "machine"})
    return table


if __name__ == "__main__":
    main()
