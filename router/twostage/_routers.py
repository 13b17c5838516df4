"""Stage 1: pick the superclass.

Each router maps embeddings to superclass probabilities, shape
(n, n_superclasses), columns in the classifier's ``superclasses_`` order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memory import InputError, Steer, VisualMemory, get_voting

from ._heads import Head, fit_head, head_proba

__all__ = ["CentroidRouter", "HeadRouter", "MemoryRouter"]


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

    def neighbours(self, X: np.ndarray, steer: Steer | None = None) -> tuple[np.ndarray, ...]:
        """Merged top-k over all shards.

        Returns
        -------
        sims : ndarray of shape (n, k)
        owner : ndarray of shape (n, k), int
            Shard index of each neighbour, -1 where none.
        multipliers : ndarray of shape (n, k)
            Stored weight times steering weight of each neighbour (see
            :meth:`memory.VisualMemory.neighbours`), so stage 1 counts votes
            exactly as the shards do in stage 2.
        """
        sims, owner, mult = [], [], []
        for s, shard in enumerate(self.shards):
            if len(shard) == 0:
                continue
            sim, _, m = shard.neighbours(X, self.k, steer=steer)
            sims.append(sim)
            owner.append(np.where(np.isfinite(sim), s, -1))
            mult.append(m)
        if not sims:
            raise InputError("every shard is empty; add entries before routing")
        allsims = np.concatenate(sims, axis=1)
        order = np.argsort(-allsims, axis=1, kind="stable")[:, : self.k]
        return tuple(np.take_along_axis(a, order, 1) for a in (allsims, np.concatenate(owner, axis=1),
                                                                np.concatenate(mult, axis=1)))

    def proba(self, X: np.ndarray, steer: Steer | None = None) -> np.ndarray:
        sims, owner, mult = self.neighbours(X, steer)
        valid = owner >= 0
        w = get_voting(self.voting)(np.where(valid, sims, 0).astype(np.float32), self.temperature)
        w = np.where(valid, w * mult, 0.0)
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
        """Recompute the centroids of ``classes`` (default: all classes of the shard).

        A centroid is the mean of its class's entries, weighted by their stored
        weights, and votes with their mean weight.
        """
        classes = list(shard.classes_) if classes is None else list(classes)
        for c in classes:
            if self.memory.n_entries and c in self.memory.sources_:
                self.memory.remove(source=c)
            if c not in shard.classes_:
                continue
            ids = shard.select(label=c)
            weights = shard.weights(ids).astype(np.float64)
            vecs = shard.vectors(ids)
            # A centroid votes with its class's mean stored weight, as its entries do in stage 2
            # (all silenced: it still takes a neighbour slot, with no vote); the weights also
            # shape where it lies, unless they are all zero.
            uniform = bool(np.all(weights == weights[0])) or not weights.any()
            if self.per_class > 1 and len(vecs) > self.per_class:
                import faiss

                km = faiss.Kmeans(vecs.shape[1], self.per_class, niter=20, seed=0, spherical=True)
                km.train(np.ascontiguousarray(vecs), weights=None if uniform else weights.astype(np.float32))
                cents = km.centroids
            elif uniform:
                cents = vecs.mean(0, keepdims=True)
            else:
                cents = ((weights[:, None] * vecs).sum(0, keepdims=True) / weights.sum()).astype(np.float32)
            self.memory.add(cents, superclass, source=c, weight=float(weights.mean()), allow_zero=True)

    def proba(self, X: np.ndarray, steer: Steer | None = None) -> np.ndarray:
        """Superclass probabilities; class- and superclass-level steering applies to the centroids.

        A centroid stands for a whole class, so ``exclude_labels``,
        ``label_weights`` and ``exclude_superclasses`` act on it; steering
        of single entries or sources cannot, and is applied in stage 2 only.
        Persistent weights shape the centroids and their votes (see :meth:`refresh`).
        """
        centroid_steer = None
        if steer is not None:
            known = set(self.memory.sources_.tolist()) if self.memory.n_entries else set()
            centroid_steer = Steer(
                exclude_sources=tuple(c for c in steer.exclude_labels if c in known),
                exclude_labels=tuple(steer.exclude_superclasses),
                source_weights={c: w for c, w in steer.label_weights.items() if c in known},
            )
        p = self.memory.predict_proba(X, steer=centroid_steer)
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

    def proba(self, X: np.ndarray, steer: Steer | None = None) -> np.ndarray:
        """Superclass probabilities from the network.

        A network has no entries: steering of entries, labels or sources and
        persistent weights reach stage 2 only (the classifier still drops
        ``exclude_superclasses`` from the route).
        """
        if self.head is None:
            raise InputError("the head router is not trained")
        return head_proba(self.head, X)

    def state(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "epochs": self.epochs, "lr": self.lr, "seed": self.seed}

