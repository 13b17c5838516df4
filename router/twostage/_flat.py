"""The one-stage baseline behind the routed classifier's API: kNN over all entries, or one head.

A scikit-learn classifier: ``get_params``/``set_params``, ``clone``, pipelines,
grid search and pickling work, and labels keep their type (``classes_`` is
``np.unique(y)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from memory import InputError, VisualMemory

from ._heads import fit_head, head_proba

__all__ = ["FlatClassifier"]


class FlatClassifier(ClassifierMixin, BaseEstimator):
    """The one-stage baseline: kNN over all entries (cosine), or one head over the embeddings.

    Parameters
    ----------
    kind : {"knn", "head"}, default "knn"
        ``"head"`` with ``hidden=0`` is a linear probe.
    k : int, default 10
        Neighbours per query (kNN).
    voting : {"softmax", "rank", "distance", "plurality"}, default "softmax"
        How neighbours vote (kNN); ``"plurality"`` and ``"distance"`` equal
        ``KNeighborsClassifier(metric="cosine", algorithm="brute")`` with
        ``weights="uniform"`` and ``"distance"``.
    temperature : float, default 0.07
        Softmax voting temperature.
    hidden, epochs, lr, seed
        Head width (0: linear), training epochs, peak learning rate and seed
        (head).  The defaults suit backbone embeddings (hundreds of
        standardised dimensions); a head over a few raw features may need a
        larger ``lr``.
    fingerprint : str, optional
        Backbone fingerprint of the embeddings, kept with the kNN memory.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        ``np.unique(y)``: the labels, of their own type and order.  The
        columns of :meth:`predict_proba` follow it.
    n_features_in_ : int
    memory_ : VisualMemory
        The kNN memory (kind ``"knn"``); its labels are ``str`` of the classes.
    head_ : Head
        The trained head (kind ``"head"``).

    Notes
    -----
    Ties between classes go to the class first in ``classes_``, as in
    scikit-learn.  Neighbours at exactly the same similarity are ranked by
    faiss's order (insertion order for the exact index); when such a tie
    crosses the k-th place, which of them is counted may differ from
    scikit-learn's choice.
    """

    def __init__(self, kind: str = "knn", *, k: int = 10, voting: str = "softmax",
                 temperature: float = 0.07, hidden: int = 0, epochs: int = 15, lr: float = 1e-3,
                 seed: int = 0, fingerprint: str | None = None) -> None:
        self.kind = kind
        self.k = k
        self.voting = voting
        self.temperature = temperature
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.seed = seed
        self.fingerprint = fingerprint

    def fit(self, X: Any, y: Any, *, source: Any = "train", refs: Sequence[str] | None = None) -> FlatClassifier:
        """Store the embeddings (kNN) or train the head.

        Parameters
        ----------
        X : array-like of shape (n, dim)
        y : array-like of shape (n,)
            Labels of any type that ``np.unique`` sorts (str, int...).
        source : str or sequence of str, default "train"
            Where the samples came from (kNN memory metadata).
        refs : sequence of str, optional
            Image references (kNN memory metadata).
        """
        if self.kind not in ("knn", "head"):
            raise InputError(f"kind must be 'knn' or 'head', got {self.kind!r}")
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.kind == "knn":
            self.memory_ = VisualMemory(X.shape[1], k=self.k, voting=self.voting, temperature=self.temperature,
                                        fingerprint=self.fingerprint, progress=False)
            names = [str(c) for c in self.classes_]
            if len(set(names)) != len(names):
                raise InputError("two labels have the same text form (such as 1 and '1'); give labels of one type")
            self.memory_.add(X, [names[i] for i in codes], source=source, refs=refs, allow_zero=True)
            held = {c: i for i, c in enumerate(self.memory_.classes_)}
            self._columns = np.array([held[n] for n in names], dtype=np.int64)
        else:
            self.head_ = fit_head(X, codes, len(self.classes_), hidden=self.hidden, epochs=self.epochs,
                                  lr=self.lr, seed=self.seed)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes); columns follow ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        if self.kind == "knn":
            return self.memory_.predict_proba(X)[:, self._columns]  # type: ignore[no-any-return]
        return head_proba(self.head_, X)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels, shape (n,), of the type of ``classes_``."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(1)]  # type: ignore[no-any-return]


