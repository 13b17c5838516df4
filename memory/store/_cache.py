"""The cache model (Orhan 2018): a classifier's probabilities mixed with the memory's.

``p = (1 - lam) * p_model + lam * p_cache``, where ``p_cache(c)`` is
proportional to the sum of ``exp(theta * q . k)`` over the query's nearest
memory entries ``k`` of class ``c``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError
from .._validation import as_strings, check_k

if TYPE_CHECKING:
    from ._visual_memory import VisualMemory

__all__ = ["CacheModel", "fit_cache"]


@dataclass
class CacheModel:
    """Combine any classifier's probabilities with a memory's ``p_cache``.

    Parameters
    ----------
    memory : VisualMemory
    classes : sequence of str
        The classifier's class order; the columns of ``p_model`` and of the
        output.  Memory entries with other labels are ignored.
    theta : float
        Sharpness of the cache kernel ``exp(theta * similarity)``.
    lam : float
        Mixing weight of the cache, in [0, 1].
    k : int
        Neighbours searched per query.
    """

    memory: VisualMemory
    classes: Sequence[str]
    theta: float = 20.0
    lam: float = 0.5
    k: int = 50

    def __post_init__(self) -> None:
        if not 0.0 <= self.lam <= 1.0:
            raise InputError(f"lam must be in [0, 1], got {self.lam!r}")
        check_k(self.k)
        self.classes = list(self.classes)
        lookup = {c: i for i, c in enumerate(self.classes)}
        self._code_to_col = np.array(
            [lookup.get(v, -1) for v in self.memory.table_.vocabs["label"].values], dtype=np.int64
        )

    def p_cache(self, X: Any, *, theta: float | None = None) -> np.ndarray:
        """The cache distribution, shape (n, n_classes), rows summing to 1."""
        sims, rows = self.memory.neighbour_rows(X, self.k)
        return self.p_cache_of(sims, rows, self.theta if theta is None else theta)

    def p_cache_of(self, sims: np.ndarray, rows: np.ndarray, theta: float) -> np.ndarray:
        """The cache distribution from searched neighbours (see :meth:`VisualMemory.neighbour_rows`)."""
        table = self.memory.table_
        if self._code_to_col.size < len(table.vocabs["label"].values):
            self.__post_init__()
        valid = rows >= 0
        cols = np.where(valid, self._code_to_col[table.codes["label"][np.maximum(rows, 0)]], -1)
        s = np.where(valid, sims, -np.inf).astype(np.float64) * theta
        w = np.exp(s - s.max(axis=1, keepdims=True))
        w = np.where(cols >= 0, w, 0.0)
        n, c = rows.shape[0], len(self.classes)
        flat = (np.arange(n)[:, None] * c + np.maximum(cols, 0)).ravel()
        p = np.bincount(flat, weights=w.ravel(), minlength=n * c).reshape(n, c)
        total = p.sum(axis=1, keepdims=True)
        return np.divide(p, total, out=np.full_like(p, 1.0 / c), where=total > 0)

    def predict_proba(self, X: Any, p_model: Any) -> np.ndarray:
        """Mixed probabilities, shape (n, n_classes)."""
        p_model = _check_p(p_model, len(self.classes))
        return (1 - self.lam) * p_model + self.lam * self.p_cache(X)

    def predict(self, X: Any, p_model: Any) -> np.ndarray:
        """Predicted classes, shape (n,), object array of str."""
        return np.asarray(self.classes, dtype=object)[self.predict_proba(X, p_model).argmax(1)]


def _check_p(p: Any, n_classes: int) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != n_classes:
        raise InputError(f"p_model must have shape (n, {n_classes}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError("p_model contains NaN or inf")
    return arr


def fit_cache(
    memory: VisualMemory,
    X: Any,
    p_model: Any,
    y: Any,
    classes: Sequence[str],
    *,
    thetas: Sequence[float] = (1, 2, 5, 10, 20, 50, 100),
    lambdas: Sequence[float] = tuple(np.linspace(0, 1, 11)),
    k: int = 50,
) -> tuple[CacheModel, dict[str, Any]]:
    """Pick ``theta`` and ``lam`` by grid search on a validation split.

    The pair with the lowest negative log-likelihood of the true classes
    wins (ties: higher accuracy).  The neighbours are searched once.

    Returns
    -------
    model : CacheModel
    table : dict
        ``{"theta", "lam", "nll", "accuracy"}`` lists over the grid.
    """
    model = CacheModel(memory, classes, k=k)
    p_model = _check_p(p_model, len(model.classes))
    truth = as_strings(y, p_model.shape[0], "y")
    lookup = {c: i for i, c in enumerate(model.classes)}
    unknown = [t for t in truth if t not in lookup]
    if unknown:
        raise InputError(f"label {unknown[0]!r} of y is not among classes")
    t_idx = np.array([lookup[t] for t in truth])
    sims, rows = memory.neighbour_rows(X, k)
    table: dict[str, list[float]] = {"theta": [], "lam": [], "nll": [], "accuracy": []}
    best: tuple[float, float, float, float] | None = None
    for theta in thetas:
        pc = model.p_cache_of(sims, rows, float(theta))
        for lam in lambdas:
            p = (1 - lam) * p_model + lam * pc
            nll = float(-np.mean(np.log(np.maximum(p[np.arange(len(t_idx)), t_idx], 1e-12))))
            acc = float(np.mean(p.argmax(1) == t_idx))
            for key, v in zip(table, (float(theta), float(lam), nll, acc)):
                table[key].append(v)
            if best is None or (nll, -acc) < (best[2], -best[3]):
                best = (float(theta), float(lam), nll, acc)
    assert best is not None
    model.theta, model.lam = best[0], best[1]
    return model, table
