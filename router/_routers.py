"""Stage 1: pick the superclass.

Each router maps embeddings to superclass probabilities, shape
(n, n_superclasses), columns in the classifier's ``superclasses_`` order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memory import InputError, VisualMemory, get_voting

from ._heads import Head, fit_head, head_proba

__all__ = ["ROUTERS", "CentroidRouter", "HeadRouter", "MemoryRouter"]


class MemoryRouter:
    """Coarse kNN over the whole memory; the neighbours' votes are summed per superclass.

    The memory is the union of the specialist shards: each shard is searched
    and the per-shard top-k lists are merged, which is exactly a kNN over
    all entries.
    """

    name = "memory"

    def __init__(self, k: int = 10, voting: str = "softmax", temperature: float = 0.07) -> None:
        self.k, self.voting, self.temperature = k, voting, temperature

    def fit(self, shards: Sequence[VisualMemory], **_: Any) -> MemoryRouter:
        self.shards = shards
        return self

    def neighbours(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Merged top-k over all shards: (sims (n, k), shard index (n, k), -1 where none)."""
        sims, owner = [], []
        for s, shard in enumerate(self.shards):
            if len(shard) == 0:
                continue
            sim, _ = shard.search(X, self.k)
            sims.append(sim)
            owner.append(np.where(np.isfinite(sim), s, -1))
        allsims = np.concatenate(sims, axis=1)
        allown = np.concatenate(owner, axis=1)
        order = np.argsort(-allsims, axis=1, kind="stable")[:, : self.k]
        return np.take_along_axis(allsims, order, 1), np.take_along_axis(allown, order, 1)

    def proba(self, X: np.ndarray) -> np.ndarray:
        sims, owner = self.neighbours(X)
        w = get_voting(self.voting)(np.where(owner >= 0, sims, 0), self.temperature)
        w = np.where(owner >= 0, w, 0.0)
        n, s = len(X), len(self.shards)
        flat = (np.arange(n)[:, None] * s + np.maximum(owner, 0)).ravel()
        p = np.bincount(flat, weights=w.ravel(), minlength=n * s).reshape(n, s)
        return p / np.maximum(p.sum(1, keepdims=True), 1e-300)

    def state(self) -> dict[str, Any]:
        return {"k": self.k, "voting": self.voting, "temperature": self.temperature}


class CentroidRouter:
    """kNN over class centroids, each labelled with its superclass (a tiny memory).

    Routing costs one search over ``n_classes × per_class`` vectors instead
    of the whole memory.  Centroids are class means (``per_class=1``) or
    k-means sub-centroids (Deep Nearest Centroids).
    """

    name = "centroids"

    def __init__(self, k: int = 5, voting: str = "softmax", temperature: float = 0.07,
                 per_class: int = 1) -> None:
        self.k, self.voting, self.temperature, self.per_class = k, voting, temperature, per_class

    def fit(self, shards: Sequence[VisualMemory], superclasses: Sequence[str], **_: Any) -> CentroidRouter:
        self.superclasses = list(superclasses)
        self.memory = VisualMemory(k=self.k, voting=self.voting, temperature=self.temperature,
                                   progress=False)
        for s, shard in zip(self.superclasses, shards):
            self.refresh(shard, s)
        return self

    def refresh(self, shard: VisualMemory, superclass: str, classes: Sequence[str] | None = None) -> None:
        """Recompute the centroids of ``classes`` (default: all classes of the shard)."""
        classes = list(shard.classes_) if classes is None else list(classes)
        for c in classes:
            if self.memory.n_entries and c in self.memory.sources_:
                self.memory.remove(source=c)
            if c not in shard.classes_:
                continue
            vecs = shard.vectors(shard.select(label=c))
            if self.per_class > 1 and len(vecs) > self.per_class:
                import faiss

                km = faiss.Kmeans(vecs.shape[1], self.per_class, niter=20, seed=0, spherical=True)
                km.train(np.ascontiguousarray(vecs))
                cents = km.centroids
            else:
                cents = vecs.mean(0, keepdims=True)
            self.memory.add(cents, superclass, source=c)

    def proba(self, X: np.ndarray) -> np.ndarray:
        p = self.memory.predict_proba(X)
        cols = {s: i for i, s in enumerate(self.memory.classes_)}
        out = np.zeros((len(X), len(self.superclasses)))
        for j, s in enumerate(self.superclasses):
            if s in cols:
                out[:, j] = p[:, cols[s]]
        return out

    def state(self) -> dict[str, Any]:
        return {"k": self.k, "voting": self.voting, "temperature": self.temperature,
                "per_class": self.per_class}


class HeadRouter:
    """A generalist network: a linear or MLP head trained to predict the superclass."""

    name = "head"

    def __init__(self, hidden: int = 0, epochs: int = 15, lr: float = 1e-3, seed: int = 0) -> None:
        self.hidden, self.epochs, self.lr, self.seed = hidden, epochs, lr, seed
        self.head: Head | None = None

    def fit(self, X: np.ndarray, y_super: np.ndarray, n_superclasses: int, **_: Any) -> HeadRouter:
        self.head = fit_head(X, y_super, n_superclasses, hidden=self.hidden, epochs=self.epochs,
                             lr=self.lr, seed=self.seed)
        return self

    def proba(self, X: np.ndarray) -> np.ndarray:
        if self.head is None:
            raise InputError("the head router is not trained")
        return head_proba(self.head, X)

    def state(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "epochs": self.epochs, "lr": self.lr, "seed": self.seed}


ROUTERS = {"memory": MemoryRouter, "centroids": CentroidRouter, "head": HeadRouter}
