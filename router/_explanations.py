"""Explanations of routed predictions: the route, the superclasses searched, and the
stage-2 neighbours with their votes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from memory import Neighbour, as_embeddings

if TYPE_CHECKING:
    from ._classifier import TwoStageClassifier

__all__ = ["RoutedExplanation", "explain_routed"]


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


def explain_routed(clf: TwoStageClassifier, X: Any, *, top: int = 5, **kwargs: Any) -> list[RoutedExplanation]:
    """The route and the stage-2 neighbours behind each of ``clf``'s predictions (see
    :meth:`TwoStageClassifier.explain`)."""
    X = as_embeddings(X, getattr(clf, "dim_", None), owner=type(clf).__name__)
    steer = kwargs.get("steer")
    route = clf.route_proba(X, steer=steer)
    proba = clf.predict_proba(X, **kwargs)
    names = clf.tree.superclasses.names  # type: ignore[union-attr]
    routing = kwargs.get("routing") or clf.routing
    width = len(clf.superclasses_) if routing == "oracle" else (
        1 if routing != "soft" else (clf.m if kwargs.get("m") is None else kwargs["m"]))
    orders = np.argsort(-route, axis=1, kind="stable")
    neighbours: list[list[Neighbour]] = [[] for _ in range(len(X))]
    if clf.specialist == "memory":  # one batched search per routed shard
        for s in np.unique(orders[:, 0]):
            rows = np.flatnonzero(orders[:, 0] == s)
            if not len(clf.shards_[int(s)]):
                continue
            for q, e in zip(rows, clf.shards_[int(s)].explain(X[rows], steer=steer)):
                neighbours[q] = e.neighbours
    out = []
    for q in range(len(X)):
        order = orders[q]
        best = np.argsort(-proba[q], kind="stable")[:top]
        out.append(RoutedExplanation(
            prediction=str(clf.class_ids_[int(best[0])]),
            route={names[clf.superclasses_[i]]: float(route[q, i]) for i in order},
            searched=[clf.superclasses_[i] for i in order[:width]],
            probabilities={str(clf.class_ids_[i]): float(proba[q, i]) for i in best if proba[q, i] > 0},
            neighbours=neighbours[q],
        ))
    return out
