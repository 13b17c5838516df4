"""Voting rules: how the k neighbours of a query weigh in on its class.

Each rule maps the similarities of the neighbours, sorted best first, to one
weight per neighbour.  A class's score is the sum of the weights of its
neighbours (times any per-entry or per-query weights).  Ties between classes
go to the class that sorts first in ``classes_``, as in scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._errors import InputError

__all__ = ["VOTING_RULES", "class_scores", "get_voting", "register_voting"]

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


@register_voting("distance")
def distance(sims: np.ndarray, temperature: float) -> np.ndarray:
    """``1 / (1 - sim)``, the inverse cosine distance (scikit-learn ``weights='distance'``).

    As in scikit-learn, a row with an exact match (distance 0) gives weight
    1 to its exact matches and 0 to the rest.
    """
    dist = 1.0 - sims.astype(np.float64)
    with np.errstate(divide="ignore"):
        w = 1.0 / dist
    exact = np.isinf(w) | (dist <= 0)
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
