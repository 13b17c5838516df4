"""Structures returned by :meth:`VisualMemory.explain` and the edit operations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Explanation", "Neighbour", "PruneReport", "Steer"]


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
