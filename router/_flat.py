"""The one-stage baseline behind the routed classifier's API: kNN over all entries, or one head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memory import InputError, VisualMemory, as_embeddings, as_strings

from ._heads import fit_head, head_proba
from ._labels import check_labels

__all__ = ["FlatClassifier"]


class FlatClassifier:
    """The one-stage baseline behind the same API: kNN over all entries, or one head.

    Parameters
    ----------
    kind : {"knn", "head"}
        ``"head"`` with ``hidden=0`` is a linear probe.
    k, voting, temperature
        kNN settings.
    hidden, epochs, seed
        Head settings.
    """

    def __init__(self, kind: str = "knn", *, k: int = 10, voting: str = "softmax",
                 temperature: float = 0.07, hidden: int = 0, epochs: int = 15, seed: int = 0,
                 fingerprint: str | None = None) -> None:
        self.kind, self.k, self.voting, self.temperature = kind, k, voting, temperature
        self.hidden, self.epochs, self.seed, self.fingerprint = hidden, epochs, seed, fingerprint

    def fit(self, X: Any, y: Any, *, source: Any = "train", refs: Sequence[str] | None = None) -> FlatClassifier:
        if self.kind not in ("knn", "head"):
            raise InputError(f"kind must be 'knn' or 'head', got {self.kind!r}")
        X = as_embeddings(X, None)
        y = check_labels(y, len(X), None)
        self.dim_ = X.shape[1]
        if self.kind == "knn":
            self.memory_ = VisualMemory(self.dim_, k=self.k, voting=self.voting,
                                        temperature=self.temperature, fingerprint=self.fingerprint,
                                        progress=False)
            self.memory_.add(X, y, source=source, refs=refs)
            self.classes_ = self.memory_.classes_.astype(object)
        else:
            self.classes_ = np.array(sorted(set(y.tolist())), dtype=object)
            index = {c: i for i, c in enumerate(self.classes_)}
            self.head_ = fit_head(X, np.array([index[c] for c in y]), len(self.classes_),
                                  hidden=self.hidden, epochs=self.epochs, seed=self.seed)
        return self

    def predict_proba(self, X: Any, **_: Any) -> np.ndarray:
        X = as_embeddings(X, self.dim_)
        if self.kind == "knn":
            return self.memory_.predict_proba(X)
        return head_proba(self.head_, X)

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]

    def score(self, X: Any, y: Any, **_: Any) -> float:
        pred = self.predict(X)
        return float(np.mean(pred == np.asarray(as_strings(y, len(pred), "y"), dtype=object)))

    def __repr__(self) -> str:
        return f"FlatClassifier(kind={self.kind!r})"
