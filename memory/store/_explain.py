"""Structures returned by :meth:`VisualMemory.explain` and the edit operations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Explanation", "Neighbour", "PruneReport", "Steer", "build_explanations"]


@dataclass(frozen=True)
class Neighbour:
    """One neighbour of a query and its part in the vote.

    ``weight`` is the neighbour's final vote weight (voting rule times
    persistent entry weight times query-time steering); ``contribution`` is
    the share of the winning distribution it adds to its own class, so the
    contributions of a query sum to 1 when any neighbour voted.
    """

    id: int
    label: str
    source: str
    superclass: str
    ref: str | None
    similarity: float
    weight: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """Why the memory predicted what it did for one query."""

    prediction: str | None
    probabilities: Mapping[str, float]
    neighbours: list[Neighbour]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def contributions(self) -> dict[str, float]:
        """Class to the summed contribution of its neighbours."""
        out: dict[str, float] = {}
        for n in self.neighbours:
            out[n.label] = out.get(n.label, 0.0) + n.contribution
        return out


def build_explanations(
    scores: np.ndarray, sims: np.ndarray, ids: np.ndarray, weights: np.ndarray,
    classes: np.ndarray, meta: Mapping[int, Mapping[str, Any]],
) -> list[Explanation]:
    """Explanations from a vote.

    Parameters
    ----------
    scores : ndarray of shape (n, n_classes)
        Summed vote weight per class; columns follow ``classes``.
    sims, ids, weights : ndarray of shape (n, k)
        Neighbour similarities, entry ids (-1 past the last hit) and final
        vote weights.
    meta : mapping
        Entry id to its metadata (``label, source, superclass, ref``).
    """
    out: list[Explanation] = []
    for q in range(scores.shape[0]):
        total = scores[q].sum()
        probs = {str(c): float(scores[q, i] / total) for i, c in enumerate(classes)
                 if total > 0 and scores[q, i] > 0}
        neighbours = []
        for j in range(ids.shape[1]):
            if ids[q, j] < 0:
                continue
            m = meta[int(ids[q, j])]
            neighbours.append(Neighbour(
                id=int(ids[q, j]), label=m["label"], source=m["source"],
                superclass=m["superclass"], ref=m["ref"], similarity=float(sims[q, j]),
                weight=float(weights[q, j]), contribution=float(weights[q, j] / total) if total > 0 else 0.0,
            ))
        pred = str(classes[int(scores[q].argmax())]) if total > 0 else None
        out.append(Explanation(prediction=pred, probabilities=probs, neighbours=neighbours))
    return out


@dataclass(frozen=True)
class Steer:
    """Query-time intervention: exclude or reweight entries.

    Parameters
    ----------
    exclude_ids, exclude_labels, exclude_sources, exclude_superclasses
        Entries matching any of these take no part in the search, so the
        k neighbours come from the rest.
    id_weights, label_weights, source_weights : mapping
        Multipliers on the vote weight of matching neighbours (0 silences
        them without changing which neighbours are found).
    """

    exclude_ids: tuple[int, ...] = ()
    exclude_labels: tuple[str, ...] = ()
    exclude_sources: tuple[str, ...] = ()
    exclude_superclasses: tuple[str, ...] = ()
    id_weights: Mapping[int, float] = field(default_factory=dict)
    label_weights: Mapping[str, float] = field(default_factory=dict)
    source_weights: Mapping[str, float] = field(default_factory=dict)

    @property
    def excludes(self) -> bool:
        return bool(
            len(self.exclude_ids) or self.exclude_labels or self.exclude_sources
            or self.exclude_superclasses
        )

    @property
    def reweights(self) -> bool:
        return bool(self.id_weights or self.label_weights or self.source_weights)


@dataclass(frozen=True)
class PruneReport:
    """What a prune or compression removed (and, for centroids, added)."""

    mode: str
    removed_ids: np.ndarray
    added_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_removed(self) -> int:
        return int(self.removed_ids.size)

    def __str__(self) -> str:
        return (
            f"{self.mode}: removed {self.n_removed} entries"
            + (f", added {self.added_ids.size}" if self.added_ids.size else "")
        )
