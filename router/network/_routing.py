"""Combining stage 1 and stage 2 of the network-level classifier, and its flat baseline.

``P(c) = sum over routed s of w_s * P_s(c)``: ``w`` is the route
probabilities kept for the top ``m`` superclasses (one for hard routing, the
true one for the oracle) and renormalised; ``P_s`` is specialist ``s``'s
conditional over the classes it covers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memory import InputError

__all__ = ["ROUTINGS", "GeneralistFlat", "combine", "route_weights", "routed_sum", "softmax"]

ROUTINGS = ("hard", "soft", "oracle")


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, shape unchanged."""
    z = z.astype(np.float64)
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def route_weights(route: np.ndarray, *, routing: str = "soft", m: int = 2,
                  superclass: np.ndarray | None = None) -> np.ndarray:
    """Weight of each superclass per query, shape (n, n_superclasses).

    Parameters
    ----------
    route : ndarray of shape (n, n_superclasses)
        Stage-1 superclass probabilities.
    routing : {"hard", "soft", "oracle"}
    m : int
        Superclasses kept by soft routing.
    superclass : ndarray of shape (n,), int, optional
        True superclass indices (oracle routing only).
    """
    if routing not in ROUTINGS:
        raise InputError(f"routing must be one of {ROUTINGS}, got {routing!r}")
    n, n_sup = route.shape
    if routing == "oracle":
        if superclass is None:
            raise InputError("oracle routing needs the true labels: pass y_true")
        w = np.zeros_like(route)
        w[np.arange(n), np.asarray(superclass)] = 1.0
        return w
    m = 1 if routing == "hard" else m
    if not 1 <= m <= n_sup:
        raise InputError(f"m must be between 1 and {n_sup}, got {m}")
    top = np.argsort(-route, axis=1, kind="stable")[:, :m]
    w = np.zeros_like(route)
    np.put_along_axis(w, top, np.take_along_axis(route, top, 1), 1)
    return w / np.maximum(w.sum(1, keepdims=True), 1e-300)


def combine(weights: np.ndarray, within: Sequence[np.ndarray | None], groups: Sequence[np.ndarray],
            n_classes: int, names: Sequence[str]) -> np.ndarray:
    """``sum_s weights[:, s] * within[s]`` scattered onto the classes of ``groups[s]``, shape (n, n_classes)."""
    out = np.zeros((len(weights), n_classes))
    for s, rows in enumerate(groups):
        w = weights[:, s]
        if w.any():
            ws = within[s]
            if ws is None:
                raise InputError(f"superclass {names[s]!r} is routed to but was not computed")
            out[:, rows] += w[:, None] * ws
    return out


def routed_sum(weights: np.ndarray, groups: Sequence[np.ndarray], n_classes: int,
               within: Callable[[list[tuple[int, np.ndarray]]], list[np.ndarray]], *, settle: bool = False,
               tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """``sum_s weights[:, s] * P_s``: superclass conditionals ``P_s`` (from ``within``) on ``groups[s]``.

    Parameters
    ----------
    weights : ndarray of shape (n, n_superclasses)
        Route weights (:func:`route_weights`); superclass ``s`` is computed for
        the queries where its weight is not 0.
    groups : sequence of ndarray of int
        The classes each superclass covers.
    n_classes : int
    within : callable
        ``within(pairs)`` gives, for each ``(s, q)`` in ``pairs``, the
        conditionals of superclass ``s`` for the query indices ``q``, shape
        (len(q), len(groups[s])), each in [0, 1].  It is called once per
        pass with every superclass that pass needs.
    settle : bool, default False
        Compute each query's heaviest superclass first, and the others only
        where its argmax could still change: where its leading class is not
        ahead of every other by more than the weight not yet computed (``tol``
        covers the rounding of another summation order).  The argmax is then
        the full sum's; the other entries are partial.  (Two passes: a pass
        per rank ran 7% slower on 1,024 Tiny-ImageNet queries with three
        superclasses each, for 7% fewer specialist runs.)

    Returns
    -------
    total : ndarray of shape (n, n_classes)
    computed : ndarray of shape (n, n_superclasses), bool
        Which superclasses were computed for which query.
    """
    n, n_sup = weights.shape
    out = np.zeros((n, n_classes))
    computed = np.zeros((n, n_sup), dtype=bool)
    if not settle:
        pairs = [(s, q) for s in range(n_sup) if len(q := np.flatnonzero(weights[:, s]))]
        for (s, q), p in zip(pairs, within(pairs) if pairs else []):
            out[np.ix_(q, groups[s])] += weights[q, s][:, None] * p
            computed[q, s] = True
        return out, computed
    order = np.argsort(-weights, axis=1, kind="stable")
    ranked = np.take_along_axis(weights, order, 1)
    rest = np.cumsum(ranked[:, ::-1], axis=1)[:, ::-1]  # rest[:, r]: the weight of ranks r and after
    active = np.arange(n)
    lo = 0
    for hi in (1, n_sup):  # each query's first superclass; then, where unsettled, the rest
        active = active[ranked[active, lo] > 0]
        if not len(active):
            break
        qs = np.repeat(active, hi - lo)
        sup = order[active, lo:hi].ravel()
        live = weights[qs, sup] > 0
        qs, sup = qs[live], sup[live]
        pairs = [(int(s), qs[sup == s]) for s in np.unique(sup)]
        for (s, q), p in zip(pairs, within(pairs)):
            out[np.ix_(q, groups[s])] += weights[q, s][:, None] * p
            computed[q, s] = True
        if hi >= n_sup or n_classes < 2:
            break
        top = np.partition(out[active], n_classes - 2, axis=1)[:, -2:]
        active = active[top[:, 1] - top[:, 0] <= rest[active, hi] + tol]
        lo = hi
    return out, computed


class GeneralistFlat:
    """The fine-tuned generalist tail of a :class:`NetworkTwoStage` used as a flat classifier."""

    def __init__(self, net: Any) -> None:
        self.net = net
        self.classes_ = net.classes_

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns ``classes_``."""
        return self.net.generalist_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class ids, shape (n,)."""
        return self.classes_[self.predict_proba(X).argmax(1)]

    def __repr__(self) -> str:
        return "fine-tuned flat tail (the generalist)"
