"""The accuracy table: voting rules, flat against routed, sub-centroids, the cache model.

    python benchmarks/accuracy_bench.py              # Tiny-ImageNet, writes results/accuracy.json
    python benchmarks/accuracy_bench.py --quick      # a subset; nothing written
    python benchmarks/accuracy_bench.py --synthetic  # no dataset needed; nothing written

Memory: train minus a held-out dev split (50 images per class), which tunes
the cache model; val scores every row.  Each row reports top-1, superclass
accuracy and the mean LCA height (WordNet) of the mistakes, and its difference
from flat kNN (softmax, k = 10) with a paired 95% interval and McNemar's p.
Routed rows use the shipped WordNet balanced:10 cut.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._data import Split, command  # noqa: E402
from memory import VisualMemory, fit_cache  # noqa: E402
from router import FlatClassifier, TwoStageClassifier, paired_difference  # noqa: E402

RULES = ("plurality", "distance", "softmax", "rank")
KS = (1, 10, 50)


def run(s: Split, *, epochs: int = 8, ks: tuple[int, ...] = KS, ms: tuple[int, ...] = (1, 4, 16)) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    right: dict[str, np.ndarray] = {}

    def add(name: str, group: str, pred: Any, secs: float, **extra: Any) -> None:
        rows[name] = {"group": group, **s.score(pred), "queries_per_s": round(len(s.Q) / secs, 1), **extra}
        right[name] = np.asarray(pred, dtype=object) == s.qy
        print(f"{name:<52} {rows[name]}", flush=True)

    def timed(fn: Any) -> tuple[Any, float]:
        t = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t

    mem = VisualMemory(s.X.shape[1], progress=False)
    mem.add(s.X, s.y, superclass=s.superclass(s.y), source="train")
    # 1. voting rules x k over the flat memory
    for rule in RULES:
        for k in ks:
            pred, secs = timed(lambda: mem.predict(s.Q, k, voting=rule))
            add(f"flat kNN, {rule}, k={k}", "voting", pred, secs, k=k, voting=rule)
    # 2. flat against routed (stage-2 kNN k=10, softmax)
    for router, label in (("memory", "kNN router"), ("centroids", "centroid router")):
        clf = TwoStageClassifier(s.tree, router=router).fit(s.X, s.y)
        for routing, kw in (("hard", {}), ("soft m=2", {"routing": "soft", "m": 2}),
                            ("oracle", {"routing": "oracle", "y_true": s.qy})):
            pred, secs = timed(lambda: clf.predict(s.Q, **kw))
            add(f"routed kNN, {label}, {routing}", "routing", pred, secs)
    # 3. Deep Nearest Centroids: m sub-centroids per class, nearest one decides
    for m in ms:
        small = mem.copy()
        small.compress(m)
        pred, secs = timed(lambda: small.predict(s.Q, 1))
        add(f"sub-centroids, m={m} per class, nearest", "centroids", pred, secs, entries=len(small))
    small = mem.copy()
    small.compress(4, snap=True)
    pred, secs = timed(lambda: small.predict(s.Q, 1))
    add("sub-centroids snapped to real images, m=4, nearest", "centroids", pred, secs, entries=len(small))
    # 4. the cache model against the linear head it augments; 5. the linear probe
    head, fit_s = timed(lambda: FlatClassifier("head", epochs=epochs).fit(s.X, s.y))
    classes = list(head.classes_)
    p_val, secs = timed(lambda: head.predict_proba(s.Q))
    add("linear probe", "heads", np.asarray(classes, dtype=object)[p_val.argmax(1)], secs, fit_s=round(fit_s, 1))
    cache, grid = fit_cache(mem, s.dev_X, head.predict_proba(s.dev_X), s.dev_y, classes)
    p_mix, secs_cache = timed(lambda: cache.predict_proba(s.Q, p_val))
    add("linear probe + cache model", "heads", np.asarray(classes, dtype=object)[p_mix.argmax(1)],
        secs + secs_cache, theta=cache.theta, lam=round(float(cache.lam), 2), k=cache.k)
    flat = rows["flat kNN, softmax, k=10"]["top1"] if 10 in ks else None
    base = "flat kNN, softmax, k=10" if 10 in ks else next(iter(rows))
    for name, row in rows.items():  # paired on the same queries: each row against flat kNN, the cache against the probe
        if name != base:
            row["against_flat_knn"] = paired_difference(right[base], right[name]).to_dict()
    rows["linear probe + cache model"]["against_linear_probe"] = paired_difference(
        right["linear probe"], right["linear probe + cache model"]).to_dict()
    return {"data": s.description, "flat_knn_softmax_k10": flat, "rows": rows,
            "cache_fit": "theta and lambda chosen on the dev split by NLL"}


def main(argv: list[str] | None = None) -> dict:
    return command("accuracy", __doc__, lambda s, a: run(s, epochs=a.epochs), argv,
                   lambda ap: ap.add_argument("--epochs", type=int, default=8, help="epochs of the linear probe"))


if __name__ == "__main__":
    main()
