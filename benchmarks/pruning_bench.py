"""Pruning curves: val accuracy against the fraction of the memory pruned.

    python benchmarks/pruning_bench.py              # writes results/pruning.json
    python benchmarks/pruning_bench.py --quick      # a subset; nothing written
    python benchmarks/pruning_bench.py --synthetic  # no dataset needed; nothing written

Four ways to shrink a memory of the training embeddings (k = 10, softmax):

* harmful: entries ranked by (right - wrong) decisions they took part in on
  the dev split held out of train (``memory.harm_counts``), most harmful
  first, unused entries next, in a seeded random order; the plain
  ``prune_harmful`` rule (wrong > right) is reported as its own point;
* redundant: ``prune_redundant`` with the similarity threshold bisected to
  reach each fraction (the achieved fraction is reported);
* sub-centroid: each class replaced by m spherical k-means centroids,
  m = round(per_class * (1 - fraction)) (``memory.compress``);
* random: a seeded random subset.

The dev split picks what to prune; val only scores.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._data import Split, command  # noqa: E402
from memory import VisualMemory, harm_counts, prune_harmful  # noqa: E402

FRACTIONS = (0.0, 0.25, 0.5, 0.75, 0.9, 0.98)


def _point(mem: VisualMemory, s: Split, total: int, **extra: Any) -> dict[str, Any]:
    return {"fraction": round(1 - len(mem) / total, 4), "entries": len(mem),
            "top1": round(float(np.mean(mem.predict(s.Q) == s.qy)), 4), **extra}


def _redundant(base: VisualMemory, target: float, total: int) -> tuple[VisualMemory, float]:
    """Bisect the threshold of prune_redundant so that about ``target`` is pruned."""
    lo, hi = -1.0, 1.0
    best: tuple[VisualMemory, float] | None = None
    for _ in range(9):
        mid = (lo + hi) / 2
        trial = base.copy()
        trial.prune_redundant(mid)
        frac = 1 - len(trial) / total
        if best is None or abs(frac - target) < abs(1 - len(best[0]) / total - target):
            best = (trial, mid)
        if frac > target:
            lo = mid  # too much pruned: raise the threshold
        else:
            hi = mid
    assert best is not None
    return best


def run(s: Split, *, k: int = 10, fractions: tuple[float, ...] = FRACTIONS, seed: int = 0) -> dict[str, Any]:
    base = VisualMemory(s.X.shape[1], k=k, progress=False)
    ids = base.add(s.X, s.y, source="train", superclass=s.superclass(s.y))
    total = len(base)
    per_class = total / len(s.classes)
    rng = np.random.default_rng(seed)
    curves: dict[str, list[dict[str, Any]]] = {m: [] for m in ("harmful", "redundant", "sub-centroid", "random")}
    entry_ids, right, wrong = harm_counts(base, s.dev_X, s.dev_y)
    tiebreak = rng.random(len(entry_ids))
    harm_order = entry_ids[np.lexsort((tiebreak, right - wrong))]  # most harmful first
    random_order = rng.permutation(ids)

    def log(method: str, point: dict[str, Any]) -> None:
        curves[method].append(point)
        print(f"{method:<13} {point}", flush=True)

    for f in fractions:
        n_drop = int(round(f * total))
        for method, order in (("harmful", harm_order), ("random", random_order)):
            mem = base.copy()
            if n_drop:
                mem.remove(order[:n_drop])
            log(method, _point(mem, s, total))
        if f == 0:
            for method in ("redundant", "sub-centroid"):
                log(method, _point(base, s, total))
            continue
        mem, threshold = _redundant(base, f, total)
        log("redundant", _point(mem, s, total, threshold=round(threshold, 4)))
        m = max(1, int(round(per_class * (1 - f))))
        mem = base.copy()
        mem.compress(m, seed=seed)
        log("sub-centroid", _point(mem, s, total, m=m))
    rule = base.copy()
    report = prune_harmful(rule, s.dev_X, s.dev_y)
    harmful_rule = _point(rule, s, total, removed=report.n_removed)
    print(f"{'harmful rule':<13} {harmful_rule}", flush=True)
    return {"data": s.description, "k": k, "voting": "softmax", "entries": total,
            "curves": curves, "harmful_rule": harmful_rule,
            "dev_entries_in_wrong_decisions": int((wrong > 0).sum())}


def main(argv: list[str] | None = None) -> dict:
    return command("pruning", __doc__, lambda s, a: run(s), argv)


if __name__ == "__main__":
    main()
