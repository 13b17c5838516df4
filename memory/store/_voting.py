"""Voting rules: how the k neighbours of a query weigh in on its class.

Each rule maps the similarities of the neighbours, sorted best first, to one
weight per neighbour.  A class's score is the sum of the weights of its
neighbours (times any per-entry or per-query weights).  Ties between classes
go to the class that sorts first in ``classes_``, as in scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._errors import InputError

__all__ = ["VOTING_RULES", "class_scores", "decisions", "get_voting", "probabilities", "register_voting",
           "vote_weights"]

#: A rule takes ``sims`` of shape (n, k), float32, best first, and a
#: ``temperature``, and returns weights of shape (n, k).
VotingRule = Callable[[np.ndarray, float], np.ndarray]

VOTING_RULES: dict[str, VotingRule] = {}


def register_voting(name: str) -> Callable[[VotingRule], VotingRule]:
    """Decorator adding a voting rule under ``name``."""

    def add(fn: VotingRule) -> VotingRule:
        VOTING_RULES[name] = fn
        return fn

    return add


@register_voting("plurality")
def plurality(sims: np.ndarray, temperature: float) -> np.ndarray:
    """One vote per neighbour (scikit-learn ``weights='uniform'``)."""
    return np.ones_like(sims, dtype=np.float64)


#: Cosine distance at or below which ``distance`` voting treats a neighbour as an exact match:
#: float32 rounding leaves an identical embedding up to about 1e-6 from distance 0.
EXACT_MATCH_DISTANCE = 1e-5


@register_voting("distance")
def distance(sims: np.ndarray, temperature: float) -> np.ndarray:
    """``1 / (1 - sim)``, the inverse cosine distance (scikit-learn ``weights='distance'``).

    As in scikit-learn, a row with an exact match gives weight 1 to its
    exact matches and 0 to the rest.  An exact match is a neighbour within
    :data:`EXACT_MATCH_DISTANCE` of the query, not only at distance 0.0:
    float32 rounding puts a stored copy of the query at a distance of 0 or
    of a few 1e-8, at random.  So a query that equals stored entries of two
    labels splits its vote evenly between them, and the tie goes to the
    label first in ``classes_``.  scikit-learn gives that case to whichever
    copy happened to round to exactly 0, so there the two may differ;
    everywhere else they agree.
    """
    dist = 1.0 - sims.astype(np.float64)
    with np.errstate(divide="ignore"):
        w = 1.0 / dist
    exact = np.isinf(w) | (dist <= EXACT_MATCH_DISTANCE)
    rows = exact.any(axis=1)
    w[rows] = exact[rows]
    return w


@register_voting("softmax")
def softmax(sims: np.ndarray, temperature: float) -> np.ndarray:
    """``exp(sim / temperature)``; the default temperature is 0.07."""
    s = sims.astype(np.float64) / temperature
    return np.exp(s - s.max(axis=1, keepdims=True))  # scale-free per row


@register_voting("rank")
def rank(sims: np.ndarray, temperature: float) -> np.ndarray:
    """RankVoting: ``1 / (rank + 2)`` with rank 0 for the nearest neighbour."""
    return np.broadcast_to(1.0 / (np.arange(sims.shape[1]) + 2.0), sims.shape).copy()


def get_voting(name: str) -> VotingRule:
    """The voting rule called ``name``."""
    try:
        return VOTING_RULES[name]
    except KeyError:
        raise InputError(
            f"unknown voting rule {name!r}; available: {', '.join(sorted(VOTING_RULES))}"
        ) from None


def class_scores(
    weights: np.ndarray, codes: np.ndarray, n_classes: int
) -> np.ndarray:
    """Sum neighbour weights per class.

    Parameters
    ----------
    weights : ndarray of shape (n, k)
        Zero for missing or excluded neighbours.
    codes : ndarray of shape (n, k), int
        Class index of each neighbour; negative for none.
    n_classes : int

    Returns
    -------
    ndarray of shape (n, n_classes), float64
    """
    n = weights.shape[0]
    valid = codes >= 0
    flat = (np.arange(n)[:, None] * n_classes + np.where(valid, codes, 0)).ravel()
    w = np.where(valid, weights, 0.0).ravel()
    return np.bincount(flat, weights=w, minlength=n * n_classes).reshape(n, n_classes)


def vote_weights(
    sims: np.ndarray,
    valid: np.ndarray,
    entry_weights: np.ndarray,
    voting: str,
    temperature: float,
    steer: Any = None,
    column: Callable[[str], tuple[np.ndarray, Callable[[Any], Any] | None]] | None = None,
) -> np.ndarray:
    """Each neighbour's final vote: the rule's weight x its stored weight x query-time steering.

    Parameters
    ----------
    sims, valid, entry_weights : ndarray of shape (n, k)
        Similarities, which slots hold a neighbour, and the neighbours' stored weights.
    voting, temperature
        The voting rule.
    steer : Steer, optional
        Its ``id_weights``, ``label_weights`` and ``source_weights`` multiply matching neighbours.
    column : callable, optional
        ``column("id" | "label" | "source")`` gives that field of the neighbours, shape (n, k),
        and a function mapping a steering value into the field's encoding (or None); asked only
        when ``steer`` reweights.

    Returns
    -------
    ndarray of shape (n, k), zero where ``valid`` is False
    """
    w = get_voting(voting)(np.where(valid, sims, 0.0).astype(np.float32), temperature)
    w = w * np.where(valid, entry_weights, 0.0).astype(np.float32)
    if steer is not None and steer.reweights and column is not None:
        for key, table in (("id", steer.id_weights), ("label", steer.label_weights),
                           ("source", steer.source_weights)):
            if not table:
                continue
            values, encode = column(key)
            for value, factor in table.items():
                target = value if encode is None else encode(value)
                w = np.where(values == target, w * float(factor), w)
    return np.where(valid, w, 0.0)


def probabilities(scores: np.ndarray) -> np.ndarray:
    """Rows of class scores, shape (n, n_classes), normalised to sum to 1 (all zero where nothing voted)."""
    total = scores.sum(axis=1, keepdims=True)
    return np.divide(scores, total, out=np.zeros_like(scores), where=total > 0)


def decisions(scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The top class per row, shape (n,), object; ``None`` where nothing voted.

    Ties go to the class first in ``classes``.
    """
    if scores.shape[1] == 0:
        return np.full(len(scores), None, dtype=object)
    out = np.asarray(classes).astype(object)[scores.argmax(axis=1)]
    out[scores.sum(axis=1) <= 0] = None
    return out
