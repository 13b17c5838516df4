"""Two-stage, superclass-routed classification: the estimator's fitting and prediction.

Its edits live in :mod:`._routed_edits`, its explanations in :mod:`._explanations`,
its shards in :mod:`._shards` and the flat baseline in :mod:`._flat`.

Why one module: what is left is one class's parameters, fitting and prediction
(hard, soft and oracle routing), about half of it docstrings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import ClassTree, HierarchyError
from memory import InputError, Steer, as_embeddings, as_strings, check_k, parse_backend

from .._base import RoutedModel
from .._explanations import RoutedExplanation
from ._explain import explain_routed
from ._heads import Head, fit_head
from ._labels import check_labels, decode_labels, fit_labels
from ._routed_edits import RoutedEditsMixin
from ._routers import CentroidRouter, HeadRouter, MemoryRouter
from ._shards import ShardSet
from ._specialists import DeltaSpecialists, FullSpecialists

__all__ = ["TwoStageClassifier"]

log = logging.getLogger(__name__)

ROUTINGS = ("hard", "soft", "oracle")


class TwoStageClassifier(RoutedEditsMixin, RoutedModel):
    """Route each query to a superclass, then let that superclass's specialist decide.

    Parameters
    ----------
    tree : ClassTree
        Must carry a superclass cut (``tree.superclasses``).
    router : {"memory", "centroids", "head"}, default "centroids"
        Stage 1: coarse kNN over the whole memory with votes summed per
        superclass; kNN over class centroids; or a generalist head.  The
        network-level model (a fine-tuned backbone tail routes, its deltas
        specialise) is :class:`router.NetworkTwoStage`.
    specialist : {"memory", "delta", "full"}, default "memory"
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
    data : dict, optional
        Where the training images are (``{"root", "name", "split"}``): the
        folder the entries' references are relative to, so that neighbour
        images are read from the training data, whatever data a report is
        given later.  :func:`router.build_memory_model` records it.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Classes with data, as labels of the type fitted on (``str``, or
        ``int`` for integer labels): sorted as ``np.unique(y)`` sorts them
        at :meth:`fit`; :meth:`add_class` appends a new class at the end
        and :meth:`remove_class` drops one, so an edit never moves another
        class's column.  The columns of :meth:`predict_proba` follow it.
    class_ids_ : ndarray of shape (n_classes,), object
        The same classes as the tree's class ids (``str``).
    n_features_in_ : int
        Embedding dimension.
    superclasses_ : list of str
        Superclass ids, in the cut's order.
    assignment_ : dict of str to str
        Each class's superclass id.
    shards_ : list of MemoryBackend
        One memory per superclass (memory specialists and routers).
    shard_set_ : ShardSet
        The shards with their superclasses and the backend that holds them.
    """

    _fitted_attr = "shard_set_"
    _shape_params = ("router", "specialist", "routing")

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
        data: dict[str, Any] | None = None,
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
        self.data = data

    # ------------------------------------------------------------------ fit
    @property
    def shards_(self) -> list[Any]:
        """One memory shard per superclass, in ``superclasses_`` order."""
        return self.shard_set_.shards

    @property
    def superclasses_(self) -> list[str]:
        """Superclass ids with a shard, in the cut's order."""
        return self.shard_set_.superclasses

    def check_params(self) -> None:
        """Refuse invalid constructor arguments (a tree without a cut, an unknown option)."""
        if self.tree.superclasses is None:
            raise HierarchyError("the tree has no superclass cut; build one with a --cut")
        if self.router == "generalist" or str(self.specialist).startswith("tail-"):
            raise InputError("a fine-tuned generalist router and tail specialists make the network-level model: "
                             "use router.NetworkTwoStage(tree, specialist='tail-delta')")
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
            Embeddings.  An all-zero row is kept, as scikit-learn's
            estimators keep it, and matches no query (its cosine similarity
            is 0); :meth:`add` refuses one, as every memory edit does.
        y : array-like of shape (n,)
            Class ids of the tree (wnids, or a mapping-file tree's labels),
            or integers whose decimal form is one; predictions come back
            in the same type.
        source : str or sequence of str
            Where the samples came from (for unlearning by source).
        refs : sequence of str, optional
            Image references.

        Returns
        -------
        self
        """
        self.check_params()
        self.__dict__.pop("calibration_", None)  # a refit model is not the one calibrated
        if y is None:
            fit_labels(y, 0, set())  # the scikit-learn message for a missing target
        X = as_embeddings(X, None)
        y, self.class_ids_, self.label_kind_ = fit_labels(y, len(X), set(self.tree.classes))
        cut = self.tree.superclasses
        assert cut is not None
        present = set(y.tolist())
        self.assignment_ = dict(cut.assignment)
        supers = [s for s in cut.superclasses if s in {self.assignment_[c] for c in present}]
        self.dim_ = self.n_features_in_ = X.shape[1]
        sup = np.array([self.assignment_[c] for c in y], dtype=object)
        sources = as_strings(source, len(X), "source")
        refs_ = list(refs) if refs is not None else None
        self.shard_set_ = self._open_shards()
        for s in supers:
            rows = np.flatnonzero(sup == s)
            shard = self.shard_set_.new_shard(s)
            shard.add(X[rows], y[rows], superclass=s, source=[sources[i] for i in rows],
                      refs=[refs_[i] for i in rows] if refs_ is not None else None, allow_zero=True)
            self.shard_set_.append(s, shard)
        self._fit_router(X, y)
        self._fit_specialists(X, y)
        return self

    def _open_shards(self) -> ShardSet:
        """An empty shard set on the ``backend``."""
        if parse_backend(self.backend)[0] != "faiss" and (self.specialist != "memory" or self.router == "head"):
            raise InputError("a Milvus backend holds memory shards only: route with memory or centroids and "
                             "specialise with memory (--router memory|centroids --specialist memory)")
        return ShardSet.create(self.backend, self.dim_, k=self.k, voting=self.voting,
                               temperature=self.temperature, fingerprint=self.fingerprint)

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
        index = {c: i for i, c in enumerate(self.class_ids_)}
        return [np.array(sorted(index[c] for c in self.class_ids_ if self.assignment_[c] == s))
                for s in self.superclasses_]

    def _fit_specialists(self, X: np.ndarray, y: np.ndarray) -> None:
        self.base_: Head | None = None
        self.specialists_: DeltaSpecialists | FullSpecialists | None = None
        if self.specialist == "memory":
            return
        index = {c: i for i, c in enumerate(self.class_ids_)}
        yi = np.array([index[c] for c in y])
        self.base_ = fit_head(X, yi, len(self.class_ids_), hidden=self.head_hidden,
                              epochs=self.head_epochs, seed=self.seed)
        spec = DeltaSpecialists(self.delta_rank) if self.specialist == "delta" else FullSpecialists()
        self.specialists_ = spec.fit(self.base_, X, yi, self.class_groups(),
                                     epochs=max(2, self.head_epochs // 2), seed=self.seed)

    # ------------------------------------------------------------- predict
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
        self.check_fitted()
        return self._route(as_embeddings(X, self.dim_, owner=type(self).__name__), steer)

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
        out = np.zeros((len(X), len(self.class_ids_)))
        lam = self.cache_lambda if self.specialists_ is not None else 1.0
        if self.specialists_ is not None:
            out[:, self.class_groups()[s]] = (1 - lam) * self.specialists_.proba_in(s, X)
        shard = self.shards_[s]
        if lam > 0 and len(shard):
            index = {c: i for i, c in enumerate(self.class_ids_)}
            out[:, [index[c] for c in shard.classes_]] += lam * shard.predict_proba(X, steer=steer)
        return out

    def superclass_targets(self, y_true: Any, n: int) -> np.ndarray:
        """Index into ``superclasses_`` of each true class's superclass (for oracle routing), shape (n,)."""
        if y_true is None:
            raise InputError("oracle routing needs y_true, the true classes of the queries")
        y = check_labels(y_true, n, set(self.class_ids_))
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
        self.check_fitted()
        X = as_embeddings(X, self.dim_, owner=type(self).__name__)
        routing = routing or self.routing
        if routing not in ROUTINGS:
            raise InputError(f"routing must be one of {ROUTINGS}, got {routing!r}")
        n_sup = len(self.superclasses_)
        if routing == "oracle":
            chosen = self.superclass_targets(y_true, len(X))[:, None]
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
        out = np.zeros((len(X), len(self.class_ids_)))
        for j in range(chosen.shape[1]):
            for s in np.unique(chosen[:, j]):
                rows = np.flatnonzero(chosen[:, j] == s)
                out[rows] += weights[rows, j : j + 1] * self._within(int(s), X[rows], steer)
        total = out.sum(1, keepdims=True)
        return np.divide(out, total, out=np.zeros_like(out), where=total > 0)

    def predict(self, X: Any, *, decision: str = "argmax", **kwargs: Any) -> np.ndarray:
        """Predicted classes, shape (n,), of the labels' type (see ``classes_``).

        ``decision="crm"``: the class of least expected LCA height (:meth:`decide`).  A query
        on which nothing voted (every neighbour silenced or steered away) gets ``None``
        (dtype object), as in :meth:`memory.VisualMemory.predict`.
        """
        return self.predict_from_proba(self.predict_proba(X, **kwargs), decision)

    def predict_from_proba(self, proba: np.ndarray, decision: str = "argmax") -> np.ndarray:
        """Predicted classes from ``predict_proba``'s output, as :meth:`predict` gives them."""
        return self._decode(self._ids_from_proba(proba, decision))

    def _ids_from_proba(self, proba: np.ndarray, decision: str) -> np.ndarray:  # class ids, None where none voted
        out = self.class_ids_[self.decide(proba, decision)].astype(object)
        out[proba.sum(1) == 0] = None
        return out

    def _decode(self, ids: np.ndarray) -> np.ndarray:
        """Class ids (``None`` allowed) as labels of the type the classifier was fitted on."""
        missing = np.array([c is None for c in ids], dtype=bool)
        if not missing.any():
            return decode_labels(ids, self.label_kind)
        out = np.empty(len(ids), dtype=object)
        out[~missing] = decode_labels(ids[~missing], self.label_kind)
        return out

    @property
    def label_kind(self) -> str:
        """``"int"`` when fitted on integer labels, else ``"str"``."""
        return getattr(self, "label_kind_", "str")

    @property
    def classes_(self) -> np.ndarray:
        """The classes with data, as labels of the type fitted on; see the class docstring."""
        return decode_labels(self.class_ids_, self.label_kind)

    def predict_superclass(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Stage-1 top superclass per query, shape (n,), object array of str."""
        return np.asarray(self.superclasses_, dtype=object)[self.route_proba(X, steer=kwargs.get("steer")).argmax(1)]

    def score(self, X: Any, y: Any, **kwargs: Any) -> float:
        """Top-1 accuracy."""
        oracle = {"y_true": y} if kwargs.get("routing") == "oracle" else {}
        pred = self._ids_from_proba(self.predict_proba(X, **oracle, **kwargs), "argmax")
        return float(np.mean(pred == np.asarray(as_strings(y, len(pred), "y"), dtype=object)))

    def explain(self, X: Any, *, top: int = 5, **kwargs: Any) -> list[RoutedExplanation]:
        """The route and the stage-2 neighbours behind each prediction.

        Parameters
        ----------
        X : array-like of shape (n, dim)
        top : int, default 5
            Classes listed with their probabilities.
        **kwargs
            ``routing``, ``m``, ``y_true`` and ``steer``, as in :meth:`predict_proba`.

        Returns
        -------
        list of RoutedExplanation, one per query
        """
        return explain_routed(self, X, top=top, **kwargs)

    @property
    def n_entries(self) -> int:
        """Entries in all memory shards."""
        return self.shard_set_.n_entries

    def storage(self) -> dict[str, Any]:
        """Storage of the specialists against N full specialists (network specialists only)."""
        if self.specialists_ is None:
            raise InputError("storage() reports on network specialists (specialist='delta' or 'full')")
        return self.specialists_.storage()

    # ---------------------------------------------------------- persistence
    def _save_to(self, path: Path, wait: float) -> Path:
        from ._persist import save_twostage

        return save_twostage(self, path, wait=wait)

    @classmethod
    def _load_from(cls, path: Path, fingerprint: str | None) -> TwoStageClassifier:
        from ._persist import load_twostage

        return load_twostage(path, fingerprint=fingerprint)
