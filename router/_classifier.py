"""Two-stage, superclass-routed classification, and flat baselines behind the same API.

The estimator, its per-superclass edits and its explanations share the shard list and the
router, which every edit must keep in step; hence one long module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hierarchy import ClassTree, HierarchyError, UnknownClassError
from memory import InputError, Neighbour, Steer, UnknownEntryError, VisualMemory, open_memory, parse_backend
from memory import as_embeddings, as_strings, check_k

from ._heads import Head, fit_head, head_proba
from ._routers import CentroidRouter, HeadRouter, MemoryRouter
from ._specialists import DeltaSpecialists, FullSpecialists

__all__ = ["FlatClassifier", "RoutedExplanation", "TwoStageClassifier"]

log = logging.getLogger(__name__)

ROUTINGS = ("hard", "soft", "oracle")


@dataclass(frozen=True)
class RoutedExplanation:
    """Why the routed classifier predicted what it did for one query.

    ``route`` gives every superclass's probability from stage 1; ``searched``
    the superclasses stage 2 looked in; ``neighbours`` the stage-2
    neighbours (memory specialists) of the chosen superclass, with weights.
    """

    prediction: str
    route: dict[str, float]
    searched: list[str]
    probabilities: dict[str, float]
    neighbours: list[Neighbour]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _labels(y: Any, n: int, known: set[str] | None, what: str = "label") -> np.ndarray:
    out = np.asarray(as_strings(y, n, "y"), dtype=object)
    if known is not None:
        bad = [v for v in dict.fromkeys(out.tolist()) if v not in known]
        if bad:
            raise UnknownClassError(
                f"unknown {what} {bad[0]!r}: it is not a class of the tree; "
                "add it with add_class() or rebuild the tree"
            )
    return out


class TwoStageClassifier:
    """Route each query to a superclass, then let that superclass's specialist decide.

    Parameters
    ----------
    tree : ClassTree
        Must carry a superclass cut (``tree.superclasses``).
    router : {"memory", "centroids", "head", "generalist"}, default "centroids"
        Stage 1: coarse kNN over the whole memory with votes summed per
        superclass; kNN over class centroids; or a generalist head.
        ``"generalist"`` (with ``specialist="tail-delta"`` or ``"tail-full"``)
        makes a :class:`NetworkTwoStage` instead, which takes images: a
        backbone tail fine-tuned on all classes routes, and per-superclass
        deltas of that tail specialise.
    specialist : {"memory", "delta", "full", "tail-delta", "tail-full"}, default "memory"
        Stage 2: kNN in the superclass's memory shard; a shared base head
        with int8 low-rank deltas per superclass; or full fine-tuned copies.
    routing : {"hard", "soft", "oracle"}, default "hard"
        Top-1 superclass; top-``m`` superclasses weighted by
        ``P(superclass) · P(class | superclass)``; or the true superclass
        (analysis only: pass ``y_true``).
    m : int, default 2
        Superclasses searched by soft routing.
    k, voting, temperature
        Stage-2 (and memory-router) kNN settings.
    router_k : int, optional
        Neighbours of the centroid router (default 5).
    head_hidden, head_epochs, router_hidden, router_epochs, delta_rank
        Sizes and training lengths of the network parts.
    fingerprint : str, optional
        Backbone fingerprint of the embeddings; stored with the shards.
    embedding : dict, optional
        How queries are embedded (``{"backbone", "size", "crop_pct"}``), for
        the command line.
    cache_lambda : float, default 0
        With network specialists, mix in the shard memory's kNN vote as in
        the cache model: ``P(c|s) = (1-λ)·P_head(c|s) + λ·P_memory(c|s)``.
    seed : int, default 0
    backend : str, optional
        Where the shards live: ``None`` or ``"faiss"`` for one embedded
        memory per superclass; ``milvus://HOST:PORT[/COLLECTION]`` (a Milvus
        server or cluster) or ``PATH.db`` (Milvus Lite) for one collection
        whose partition key is the superclass.  See :func:`memory.parse_backend`.

    Attributes
    ----------
    classes_ : ndarray of str
        Classes with data, in tree order.
    superclasses_ : list of str
        Superclass ids, in the cut's order.
    assignment_ : dict of str to str
        Each class's superclass id.
    shards_ : list of VisualMemory
        One memory per superclass (memory specialists and routers).
    """

    def __new__(cls, tree: Any = None, **kwargs: Any) -> Any:
        # router="generalist" / specialist="tail-delta" select the network-level classifier
        router, specialist = kwargs.get("router"), str(kwargs.get("specialist", ""))
        if router == "generalist" or specialist.startswith("tail-"):
            from ._network import SPECIALISTS, NetworkTwoStage

            if router not in (None, "generalist") or (specialist and specialist not in SPECIALISTS):
                raise InputError(
                    f"router={router!r} with specialist={specialist!r}: the network-level classifier needs "
                    f"router='generalist' and specialist in {SPECIALISTS}"
                )
            kwargs.pop("router", None)
            return NetworkTwoStage(tree, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        tree: ClassTree,
        *,
        router: str = "centroids",
        specialist: str = "memory",
        routing: str = "hard",
        m: int = 2,
        k: int = 10,
        voting: str = "softmax",
        temperature: float = 0.07,
        router_k: int | None = None,
        head_hidden: int = 1024,
        head_epochs: int = 10,
        router_hidden: int = 0,
        router_epochs: int = 15,
        delta_rank: int = 16,
        fingerprint: str | None = None,
        embedding: dict[str, Any] | None = None,
        cache_lambda: float = 0.0,
        seed: int = 0,
        backend: str | None = None,
    ) -> None:
        self.tree = tree
        self.router = router
        self.specialist = specialist
        self.routing = routing
        self.m = m
        self.k = k
        self.voting = voting
        self.temperature = temperature
        self.router_k = router_k
        self.head_hidden = head_hidden
        self.head_epochs = head_epochs
        self.router_hidden = router_hidden
        self.router_epochs = router_epochs
        self.delta_rank = delta_rank
        self.fingerprint = fingerprint
        self.embedding = embedding
        self.cache_lambda = cache_lambda
        self.seed = seed
        self.backend = backend
        self._store: Any = None

    # ------------------------------------------------------------------ fit
    def _check_params(self) -> None:
        if self.tree.superclasses is None:
            raise HierarchyError("the tree has no superclass cut; build one with a --cut")
        if self.router not in ("memory", "centroids", "head"):
            raise InputError(f"router must be 'memory', 'centroids' or 'head', got {self.router!r}")
        if self.specialist not in ("memory", "delta", "full"):
            raise InputError(f"specialist must be 'memory', 'delta' or 'full', got {self.specialist!r}")
        if self.routing not in ROUTINGS:
            raise InputError(f"routing must be one of {ROUTINGS}, got {self.routing!r}")
        check_k(self.k)
        check_k(self.m, "m")

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        source: Any = "train",
        refs: Sequence[str] | None = None,
    ) -> TwoStageClassifier:
        """Build the shards and train the network parts.

        Parameters
        ----------
        X : array-like of shape (n, dim)
            Embeddings.
        y : sequence of str, length n
            Class ids of the tree (wnids).
        source : str or sequence of str
            Where the samples came from (for unlearning by source).
        refs : sequence of str, optional
            Image references.

        Returns
        -------
        self
        """
        self._check_params()
        X = as_embeddings(X, None)
        y = _labels(y, len(X), set(self.tree.classes))
        cut = self.tree.superclasses
        assert cut is not None
        present = set(y.tolist())
        self.classes_ = np.array([c for c in self.tree.classes if c in present], dtype=object)
        self.assignment_ = dict(cut.assignment)
        self.superclasses_ = [s for s in cut.superclasses if s in {self.assignment_[c] for c in present}]
        self.dim_ = X.shape[1]
        sup = np.array([self.assignment_[c] for c in y], dtype=object)
        sources = as_strings(source, len(X), "source")
        refs_ = list(refs) if refs is not None else None
        self._store = self._open_store()
        self.shards_ = []
        for s in self.superclasses_:
            rows = np.flatnonzero(sup == s)
            shard = self._new_shard(s)
            shard.add(X[rows], y[rows], superclass=s, source=[sources[i] for i in rows],
                      refs=[refs_[i] for i in rows] if refs_ is not None else None)
            self.shards_.append(shard)
        self._fit_router(X, y)
        self._fit_specialists(X, y)
        return self

    def _open_store(self) -> Any:
        """The shared Milvus memory of a ``backend`` URI (None for embedded faiss shards)."""
        kind, settings = parse_backend(self.backend)
        if kind == "faiss":
            return None
        if self.specialist != "memory" or self.router == "head":
            raise InputError("a Milvus backend holds memory shards: use router='memory' or 'centroids' "
                             "and specialist='memory'")
        store = open_memory(self.backend, dim=self.dim_, k=self.k, voting=self.voting,
                            temperature=self.temperature, fingerprint=self.fingerprint)
        if len(store):
            raise InputError(
                f"Milvus collection {store.collection!r} at {store.uri} already holds {len(store)} entries; "
                "fit builds a new memory: name another collection in the URI (milvus://HOST:PORT/NAME) "
                "or drop this one first"
            )
        return store

    def _new_shard(self, superclass: str) -> Any:
        if self._store is not None:
            return self._store.shard(superclass)
        return VisualMemory(self.dim_, k=self.k, voting=self.voting, temperature=self.temperature,
                            fingerprint=self.fingerprint, progress=False)

    def _fit_router(self, X: np.ndarray, y: np.ndarray) -> None:
        if self.router == "memory":
            self.router_ = MemoryRouter(self.k, self.voting, self.temperature).fit(self.shards_)
        elif self.router == "centroids":
            self.router_ = CentroidRouter(self.router_k or 5, "softmax", self.temperature).fit(
                self.shards_, self.superclasses_)
        else:
            idx = {s: i for i, s in enumerate(self.superclasses_)}
            self.router_ = HeadRouter(self.router_hidden, self.router_epochs, seed=self.seed).fit(
                X, np.array([idx[self.assignment_[c]] for c in y]), len(self.superclasses_))

    def class_groups(self) -> list[np.ndarray]:
        """Each superclass's classes, as sorted column indices into ``classes_`` (in ``superclasses_`` order)."""
        index = {c: i for i, c in enumerate(self.classes_)}
        return [np.array(sorted(index[c] for c in self.classes_ if self.assignment_[c] == s))
                for s in self.superclasses_]

    def _fit_specialists(self, X: np.ndarray, y: np.ndarray) -> None:
        self.base_: Head | None = None
        self.specialists_: DeltaSpecialists | FullSpecialists | None = None
        if self.specialist == "memory":
            return
        index = {c: i for i, c in enumerate(self.classes_)}
        yi = np.array([index[c] for c in y])
        self.base_ = fit_head(X, yi, len(self.classes_), hidden=self.head_hidden,
                              epochs=self.head_epochs, seed=self.seed)
        spec = DeltaSpecialists(self.delta_rank) if self.specialist == "delta" else FullSpecialists()
        self.specialists_ = spec.fit(self.base_, X, yi, self.class_groups(),
                                     epochs=max(2, self.head_epochs // 2), seed=self.seed)

    # ------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "shards_"):
            raise InputError("this classifier is not fitted; call fit(X, y) first")

    def route_proba(self, X: Any, *, steer: Steer | None = None) -> np.ndarray:
        """Stage-1 superclass probabilities, shape (n, n_superclasses), columns ``superclasses_``.

        Parameters
        ----------
        X : array-like of shape (n, dim)
        steer : Steer, optional
            Applied as in stage 2 by the memory router (exclusions, and
            reweighting, times the entries' stored weights); the centroid
            router applies class- and superclass-level steering; every
            router drops ``exclude_superclasses`` from the route.
        """
        self._check_fitted()
        return self._route(as_embeddings(X, self.dim_), steer)

    def _route(self, X: np.ndarray, steer: Steer | None) -> np.ndarray:
        """Stage 1 on validated embeddings."""
        p = self.router_.proba(X, steer=steer)
        if steer is not None and steer.exclude_superclasses:
            drop = [j for j, s in enumerate(self.superclasses_) if s in set(steer.exclude_superclasses)]
            p[:, drop] = 0.0
            p = p / np.maximum(p.sum(1, keepdims=True), 1e-300)
        return p

    def _within(self, s: int, X: np.ndarray, steer: Steer | None = None) -> np.ndarray:
        """P(class | superclass s) over all classes_, shape (n, n_classes)."""
        out = np.zeros((len(X), len(self.classes_)))
        lam = self.cache_lambda if self.specialists_ is not None else 1.0
        if self.specialists_ is not None:
            out[:, self.class_groups()[s]] = (1 - lam) * self.specialists_.proba_in(s, X)
        shard = self.shards_[s]
        if lam > 0 and len(shard):
            index = {c: i for i, c in enumerate(self.classes_)}
            out[:, [index[c] for c in shard.classes_]] += lam * shard.predict_proba(X, steer=steer)
        return out

    def _superclass_targets(self, y_true: Any, n: int) -> np.ndarray:
        if y_true is None:
            raise InputError("oracle routing needs y_true, the true classes of the queries")
        y = _labels(y_true, n, set(self.classes_))
        idx = {s: i for i, s in enumerate(self.superclasses_)}
        return np.array([idx[self.assignment_[c]] for c in y])

    def predict_proba(
        self, X: Any, *, routing: str | None = None, m: int | None = None, y_true: Any = None,
        steer: Steer | None = None,
    ) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns ``classes_``.

        Parameters
        ----------
        routing, m
            Override the classifier's routing mode and soft-routing width.
        y_true : sequence of str, optional
            True classes, for oracle routing only.
        steer : Steer, optional
            Query-time exclusions and reweighting, applied to the memory
            shards in stage 2 and to the route in stage 1 (see
            :meth:`route_proba`).  Network specialists are not steered; with
            ``cache_lambda`` their memory part is.
        """
        self._check_fitted()
        X = as_embeddings(X, self.dim_)
        routing = routing or self.routing
        if routing not in ROUTINGS:
            raise InputError(f"routing must be one of {ROUTINGS}, got {routing!r}")
        n_sup = len(self.superclasses_)
        if routing == "oracle":
            chosen = self._superclass_targets(y_true, len(X))[:, None]
            weights = np.ones((len(X), 1))
        else:
            route = self._route(X, steer)
            width = 1 if routing == "hard" else check_k(self.m if m is None else m, "m")
            if width > n_sup:
                raise InputError(f"m = {width} exceeds the number of superclasses ({n_sup})")
            chosen = np.argsort(-route, axis=1, kind="stable")[:, :width]
            weights = np.take_along_axis(route, chosen, 1)
            if routing == "hard":
                weights = np.ones_like(weights)
        out = np.zeros((len(X), len(self.classes_)))
        for j in range(chosen.shape[1]):
            for s in np.unique(chosen[:, j]):
                rows = np.flatnonzero(chosen[:, j] == s)
                out[rows] += weights[rows, j : j + 1] * self._within(int(s), X[rows], steer)
        total = out.sum(1, keepdims=True)
        return np.divide(out, total, out=np.zeros_like(out), where=total > 0)

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Predicted classes, shape (n,), object array of str.

        A query on which nothing voted (every neighbour silenced or steered
        away) gets ``None``, as in :meth:`memory.VisualMemory.predict`.
        """
        proba = self.predict_proba(X, **kwargs)
        out = self.classes_[proba.argmax(1)].astype(object)
        out[proba.sum(1) == 0] = None
        return out

    def predict_superclass(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Stage-1 top superclass per query, shape (n,), object array of str."""
        return np.asarray(self.superclasses_, dtype=object)[self.route_proba(X, steer=kwargs.get("steer")).argmax(1)]

    def score(self, X: Any, y: Any, **kwargs: Any) -> float:
        """Top-1 accuracy."""
        pred = self.predict(X, **({"y_true": y} if kwargs.get("routing") == "oracle" else {}), **kwargs)
        return float(np.mean(pred == np.asarray(as_strings(y, len(pred), "y"), dtype=object)))

    def explain(self, X: Any, *, top: int = 5, **kwargs: Any) -> list[RoutedExplanation]:
        """The route and the stage-2 neighbours behind each prediction."""
        X = as_embeddings(X, getattr(self, "dim_", None))
        steer = kwargs.get("steer")
        route = self.route_proba(X, steer=steer)
        proba = self.predict_proba(X, **kwargs)
        names = self.tree.superclasses.names  # type: ignore[union-attr]
        routing = kwargs.get("routing") or self.routing
        width = len(self.superclasses_) if routing == "oracle" else (
            1 if routing != "soft" else (self.m if kwargs.get("m") is None else kwargs["m"]))
        orders = np.argsort(-route, axis=1, kind="stable")
        neighbours: list[list[Neighbour]] = [[] for _ in range(len(X))]
        if self.specialist == "memory":  # one batched search per routed shard
            for s in np.unique(orders[:, 0]):
                rows = np.flatnonzero(orders[:, 0] == s)
                if not len(self.shards_[int(s)]):
                    continue
                for q, e in zip(rows, self.shards_[int(s)].explain(X[rows], steer=steer)):
                    neighbours[q] = e.neighbours
        out = []
        for q in range(len(X)):
            order = orders[q]
            best = np.argsort(-proba[q], kind="stable")[:top]
            out.append(RoutedExplanation(
                prediction=str(self.classes_[int(best[0])]),
                route={names[self.superclasses_[i]]: float(route[q, i]) for i in order},
                searched=[self.superclasses_[i] for i in order[:width]],
                probabilities={str(self.classes_[i]): float(proba[q, i]) for i in best if proba[q, i] > 0},
                neighbours=neighbours[q],
            ))
        return out

    # -------------------------------------------------------------- updates
    def _shard_of(self, superclass: str) -> VisualMemory:
        if superclass not in self.superclasses_:
            raise UnknownClassError(
                f"unknown superclass {superclass!r}; known: {', '.join(self.superclasses_)}"
            )
        return self.shards_[self.superclasses_.index(superclass)]

    def _open_shard(self, superclass: str) -> VisualMemory:
        """The shard of ``superclass``, created empty (in the cut's order) if it has no data yet."""
        if superclass in self.superclasses_:
            return self._shard_of(superclass)
        cut = self.tree.superclasses
        assert cut is not None
        if superclass not in cut.superclasses:
            raise UnknownClassError(
                f"unknown superclass {superclass!r}; known: {', '.join(cut.superclasses)}"
            )
        order = {s: i for i, s in enumerate(cut.superclasses)}
        at = sum(order.get(s, -1) < order[superclass] for s in self.superclasses_)
        shard = self._new_shard(superclass)
        # MemoryRouter holds this very list, so it sees the new shard.
        self.shards_.insert(at, shard)
        self.superclasses_.insert(at, superclass)
        if isinstance(self.router_, CentroidRouter):
            self.router_.superclasses = list(self.superclasses_)
        return shard

    def _require_memory_specialists(self, what: str) -> None:
        if self.specialist != "memory" or self.router == "head":
            raise InputError(
                f"{what} edits the memory only; it needs router='memory' or 'centroids' and "
                "specialist='memory' (network parts would need retraining)"
            )

    def add(self, X: Any, y: Any, *, source: Any = "added", refs: Sequence[str] | None = None) -> np.ndarray:
        """Add samples of existing classes; each goes to its class's superclass shard only.

        Returns
        -------
        ndarray of int64
            The new entries' ids (unique within their shard).
        """
        self._check_fitted()
        self._require_memory_specialists("add")
        X = as_embeddings(X, self.dim_)
        y = _labels(y, len(X), set(self.classes_))
        sources = as_strings(source, len(X), "source")
        if refs is not None and len(refs) != len(X):
            raise InputError(f"got {len(refs)} refs for {len(X)} embeddings; give one per row")
        ids = np.empty(len(X), dtype=np.int64)
        sup = np.array([self.assignment_[c] for c in y], dtype=object)
        done: list[tuple[str, Any, np.ndarray, list[str]]] = []
        shards_before = (list(self.superclasses_), list(self.shards_))
        try:  # all shards or none: a failure undoes the shards already written
            for s in dict.fromkeys(sup.tolist()):
                rows = np.flatnonzero(sup == s)
                shard = self._open_shard(s)
                ids[rows] = shard.add(X[rows], y[rows], superclass=s, source=[sources[i] for i in rows],
                                      refs=[refs[i] for i in rows] if refs is not None else None)
                touched = sorted(set(y[rows].tolist()))
                done.append((s, shard, ids[rows], touched))
                if isinstance(self.router_, CentroidRouter):
                    self.router_.refresh(shard, s, touched)
        except BaseException:
            for s, shard, added, touched in done:
                shard.remove(added)
                if isinstance(self.router_, CentroidRouter):
                    self.router_.refresh(shard, s, touched)
            self.superclasses_[:], self.shards_[:] = shards_before
            if isinstance(self.router_, CentroidRouter):
                self.router_.superclasses = list(self.superclasses_)
            raise
        return ids

    def add_class(
        self, cls: str, X: Any, *, superclass: str | None = None, source: Any = "added",
        refs: Sequence[str] | None = None, wordnet: Any = None,
    ) -> str:
        """Add a whole new class; returns the superclass it was placed in.

        The class may be a class of the tree without data yet, or a new wnid,
        which is grafted onto the tree along its WordNet path and placed in
        the superclass whose node is its deepest ancestor.  ``superclass``
        places it explicitly.
        """
        self._check_fitted()
        self._require_memory_specialists("add_class")
        X = as_embeddings(X, self.dim_)
        if cls in set(self.classes_.tolist()):
            raise InputError(f"class {cls!r} is already present; use add() for more samples")
        before = (self.tree, dict(self.assignment_), self.classes_)
        try:
            return self._add_class(cls, X, superclass, source, refs, wordnet)
        except BaseException:  # nothing of a failed add_class stays behind
            self.tree, self.assignment_, self.classes_ = before
            raise

    def _add_class(self, cls: str, X: np.ndarray, superclass: str | None, source: Any,
                   refs: Sequence[str] | None, wordnet: Any) -> str:
        if cls not in self.tree.classes:
            self.tree = self.tree.with_class(cls, superclass=superclass, wordnet=wordnet)
        placed = superclass or self.tree.superclass_of(cls)
        if superclass is not None and superclass != self.tree.superclass_of(cls):
            self.tree = self.tree.with_class(cls, superclass=superclass, wordnet=wordnet)
        self.assignment_[cls] = placed
        order = {c: i for i, c in enumerate(self.tree.classes)}
        self.classes_ = np.array(sorted([*self.classes_.tolist(), cls], key=order.__getitem__), dtype=object)
        self.add(X, [cls] * len(X), source=source, refs=refs)
        return placed

    def remove_class(self, cls: str) -> np.ndarray:
        """Unlearn a class: its entries leave its shard; returns the removed ids."""
        self._check_fitted()
        self._require_memory_specialists("remove_class")
        if cls not in set(self.classes_.tolist()):
            raise UnknownClassError(f"unknown class {cls!r}: it has no data in this classifier")
        s = self.assignment_[cls]
        shard = self._shard_of(s)
        removed = shard.remove(label=cls)
        self.classes_ = np.array([c for c in self.classes_ if c != cls], dtype=object)
        if isinstance(self.router_, CentroidRouter):
            self.router_.refresh(shard, s, [cls])
        return removed

    def remove(self, *, source: Any = None, label: Any = None) -> dict[str, np.ndarray]:
        """Unlearn entries by source and/or label across shards; returns removed ids per superclass."""
        self._check_fitted()
        self._require_memory_specialists("remove")
        if source is None and label is None:
            raise InputError("give source and/or label to remove")
        out = {}
        for s, shard in zip(self.superclasses_, self.shards_):
            try:
                ids = shard.select(source=source, label=label)
            except KeyError:  # this shard lacks that source or label
                continue
            if ids.size:
                out[s] = shard.remove(ids)
                if isinstance(self.router_, CentroidRouter):
                    self.router_.refresh(shard, s)
        if not out:
            raise UnknownEntryError(
                f"no entry has source {source!r} and label {label!r}; see 'supersub memory info'"
            )
        self.classes_ = np.array(
            [c for c in self.classes_ if any(c in sh.classes_ for sh in self.shards_)], dtype=object)
        return out

    def set_weight(self, weight: float, *, label: Any = None, source: Any = None) -> dict[str, np.ndarray]:
        """Persistently set the vote weight of entries by label and/or source, in every shard.

        The weight counts in stage 2 and in stage 1 alike: the memory router
        multiplies each neighbour's vote by it, and the centroid router
        recomputes the touched classes' centroids as weighted means (weight
        0 leaves an entry out).  A head router is a network and does not see
        it.  Returns the affected ids per superclass.
        """
        self._check_fitted()
        self._require_memory_specialists("set_weight")
        if label is None and source is None:
            raise InputError("give label and/or source to set weights")
        out: dict[str, np.ndarray] = {}
        for s, shard in zip(self.superclasses_, self.shards_):
            try:
                ids = shard.select(label=label, source=source) if len(shard) else np.empty(0, np.int64)
            except KeyError:  # this shard lacks that label or source
                continue
            if ids.size:
                out[s] = shard.set_weight(weight, ids)
                if isinstance(self.router_, CentroidRouter):
                    self.router_.refresh(shard, s, sorted({e["label"] for e in shard.get(ids)}))
        if not out:
            raise UnknownEntryError(f"no entry has label {label!r} and source {source!r}")
        return out

    @property
    def n_entries(self) -> int:
        """Entries in all memory shards."""
        return sum(len(s) for s in self.shards_)

    def storage(self) -> dict[str, Any]:
        """Storage of the specialists against N full specialists (network specialists only)."""
        if self.specialists_ is None:
            raise InputError("storage() reports on network specialists (specialist='delta' or 'full')")
        return self.specialists_.storage()

    # ---------------------------------------------------------- persistence
    def save(self, path: Any, *, wait: float = 0.0) -> Any:
        """Save tree, shards, router and heads atomically; see :func:`router.save_classifier`."""
        from ._persist import save_classifier

        return save_classifier(self, path, wait=wait)

    @classmethod
    def load(cls, path: Any, *, fingerprint: str | None = None) -> TwoStageClassifier:
        """Load a classifier saved by :meth:`save`."""
        from ._persist import load_classifier

        return load_classifier(path, fingerprint=fingerprint)

    def __repr__(self) -> str:
        fitted = f", {self.n_entries} entries" if hasattr(self, "shards_") else ""
        return (f"TwoStageClassifier(router={self.router!r}, specialist={self.specialist!r}, "
                f"routing={self.routing!r}{fitted})")


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
        y = _labels(y, len(X), None)
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
