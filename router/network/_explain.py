"""The explanation of a network-level model's predictions: route, specialists searched, memory neighbours."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._explanations import RoutedExplanation, routed_explanations
from ._memory import normalise

if TYPE_CHECKING:
    from ._classifier import NetworkTwoStage

__all__ = ["explain_network"]


def explain_network(clf: NetworkTwoStage, X: Any, *, top: int = 5, **kwargs: Any) -> list[RoutedExplanation]:
    """The route, the specialists searched and the first one's memory neighbours (see
    :meth:`NetworkTwoStage.explain`)."""
    acts = clf.activations(X)
    route = clf.route_proba(acts)
    proba = clf.predict_proba(acts, **kwargs)
    routing = kwargs.get("routing") or clf.routing
    width = 1 if routing != "soft" else (clf.m if kwargs.get("m") is None else kwargs["m"])
    orders = np.argsort(-route, axis=1, kind="stable")
    if routing == "oracle":
        first = clf.superclass_targets(kwargs.get("y_true"), len(acts))
        orders = np.column_stack([first, orders])
    neighbours: list[list[Any]] = [[] for _ in range(len(acts))]
    if clf.memories_ is not None:
        for s in np.unique(orders[:, 0]):
            q = np.flatnonzero(orders[:, 0] == s)
            mem = clf.memories_[int(s)]
            if len(mem):
                feats = normalise(clf.specialist_outputs(int(s), acts[q])[0])
                for i, e in zip(q, mem.explain(feats, steer=kwargs.get("steer"))):
                    neighbours[i] = e.neighbours
    return routed_explanations(route, proba, orders, width, names=clf.cut_.names, superclasses=clf.superclasses_,
                               classes=clf.classes_, neighbours=neighbours, top=top)
