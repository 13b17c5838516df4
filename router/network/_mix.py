"""Choosing the network model's within-superclass mix of specialist, generalist and memory on dev data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._classifier import NetworkTwoStage

__all__ = ["choose_mix"]


def held_out_rows(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Which of the training rows (class indices ``y``, shape (n,)) to hold out, bool (n,).

    ``per_class`` seeded draws of each class, at most half of the class.
    """
    mask = np.zeros(len(y), dtype=bool)
    if per_class:
        rng = np.random.default_rng(seed)
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            mask[rng.choice(rows, size=min(per_class, len(rows) // 2), replace=False)] = True
    return mask


def choose_mix(clf: NetworkTwoStage, dacts: np.ndarray, dy: np.ndarray) -> tuple[float, float]:
    """The mix (generalist share, memory share) with the best dev top-1, from a fixed grid.

    The specialist gets the rest.  Every dev accuracy is kept in ``clf.history_['mix']``.
    """
    p_gen = clf.generalist_proba(dacts)
    route = clf.route_from(p_gen)
    parts = [clf.within_parts(s, dacts, p_gen) for s in range(clf.n_superclasses)]
    best: tuple[float, tuple[float, float]] | None = None
    scores: dict[str, float] = {}
    for a in (0.0, 0.25, 0.5):
        for b in ((0.0, 0.25, 0.5) if clf.memories_ is not None else (0.0,)):
            if a + b > 0.75:
                continue
            within = [(1 - a - b) * p["specialist"] + a * p["generalist"] + (b * p["memory"] if b else 0)
                      for p in parts]
            acc = float(np.mean(clf.combine(route, within, routing=clf.routing, m=clf.m,
                                             superclass=clf.primary_[dy]).argmax(1) == dy))
            scores[f"{a:g},{b:g}"] = acc
            if best is None or acc > best[0]:
                best = (acc, (a, b))
    assert best is not None
    clf.history_["mix"] = {"dev_top1": scores, "chosen": list(best[1])}
    return best[1]
