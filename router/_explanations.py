"""Explanations of routed predictions, for both model kinds: the route, the superclasses
searched, and the stage-2 neighbours with their votes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from collections.abc import Sequence
from typing import Any

import numpy as np

from memory import Neighbour

__all__ = ["RoutedExplanation", "routed_explanations"]


@dataclass(frozen=True)
class RoutedExplanation:
    """Why the routed classifier predicted what it did for one query.

    ``route`` gives every superclass's probability from stage 1; ``searched``
    the superclasses stage 2 looked in; ``neighbours`` the stage-2
    neighbours (memory specialists) of the chosen superclass, with weights.
    """

    prediction: str
    route: dict[str, float]
    searched: list[str]
    probabilities: dict[str, float]
    neighbours: list[Neighbour]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def routed_explanations(route: np.ndarray, proba: np.ndarray, orders: np.ndarray, width: int, *,
                        names: dict[str, str], superclasses: Sequence[str], classes: Sequence[Any],
                        neighbours: Sequence[list[Neighbour]], top: int) -> list[RoutedExplanation]:
    """One :class:`RoutedExplanation` per query, from either model kind's stage outputs.

    Parameters
    ----------
    route : ndarray of shape (n_queries, n_superclasses)
        Stage-1 probabilities.
    proba : ndarray of shape (n_queries, n_classes)
        Final class probabilities.
    orders : ndarray of shape (n_queries, >= width)
        Superclass indices in the order stage 2 searched them.
    width : int
        How many of ``orders`` stage 2 searched.
    names : dict
        Superclass id to display name.
    superclasses, classes : sequences
        Superclass ids and class labels, in the columns' order.
    neighbours : sequence of lists of Neighbour
        The first searched superclass's memory neighbours, per query.
    top : int
        Classes kept in ``probabilities``.
    """
    out = []
    for q in range(len(proba)):
        best = np.argsort(-proba[q], kind="stable")[:top]
        out.append(RoutedExplanation(
            prediction=str(classes[int(best[0])]),
            route={names[superclasses[i]]: float(route[q, i]) for i in np.argsort(-route[q], kind="stable")},
            searched=list(dict.fromkeys(superclasses[i] for i in orders[q, :width])),
            probabilities={str(classes[i]): float(proba[q, i]) for i in best if proba[q, i] > 0},
            neighbours=neighbours[q],
        ))
    return out
