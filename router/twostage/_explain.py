"""The explanation of a memory-level model's predictions: route, superclasses searched, neighbours."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from memory import Neighbour, as_embeddings

from .._explanations import RoutedExplanation, routed_explanations

if TYPE_CHECKING:
    from ._classifier import TwoStageClassifier

__all__ = ["explain_routed"]


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
    return routed_explanations(route, proba, orders, width, names=names, superclasses=clf.superclasses_,
                               classes=clf.class_ids_, neighbours=neighbours, top=top)
