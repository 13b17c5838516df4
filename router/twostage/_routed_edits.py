"""The routed classifier's memory edits: add samples or classes, unlearn, re-weight.

A mixin of :class:`router.TwoStageClassifier`.  Each edit goes to the shards
of the superclasses it touches and keeps the router in step (the centroid
router's centroids are recomputed for the touched classes).  Edits change the
memory only: a head router or network specialists keep what they learned, so
these edits are refused for them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hierarchy import UnknownClassError
from memory import InputError, UnknownEntryError, as_embeddings, as_strings

from .._base import edits_memory
from ._labels import check_labels, label_ids
from ._routers import CentroidRouter

if TYPE_CHECKING:
    from hierarchy import ClassTree

    from ._shards import ShardSet

__all__ = ["RoutedEditsMixin"]


class RoutedEditsMixin:
    """Per-superclass memory edits (see :class:`router.TwoStageClassifier`)."""

    tree: ClassTree
    specialist: str
    router: str
    router_: Any
    shard_set_: ShardSet
    class_ids_: np.ndarray
    assignment_: dict[str, str]
    dim_: int
    superclasses_: list[str]
    shards_: list[Any]

    label_kind: str

    if TYPE_CHECKING:
        def check_fitted(self) -> None: ...

    def _shard_of(self, superclass: str) -> Any:
        return self.shard_set_.of(superclass)

    def _open_shard(self, superclass: str) -> Any:
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
        shard = self.shard_set_.new_shard(superclass)
        self.shard_set_.insert(at, superclass, shard)  # routers hold the same lists and see it
        if isinstance(self.router_, CentroidRouter):
            self.router_.superclasses = list(self.superclasses_)
        return shard

    def _require_memory_specialists(self, what: str) -> None:
        if self.specialist != "memory" or self.router == "head":
            raise InputError(
                f"{what} edits the memory only; it needs router='memory' or 'centroids' and "
                "specialist='memory' (network parts would need retraining)"
            )

    @edits_memory
    def add(self, X: Any, y: Any, *, source: Any = "added", refs: Sequence[str] | None = None) -> np.ndarray:
        """Add samples of existing classes; each goes to its class's superclass shard only.

        Returns
        -------
        ndarray of int64
            The new entries' ids (unique within their shard).
        """
        self.check_fitted()
        self._require_memory_specialists("add")
        X = as_embeddings(X, self.dim_, owner=type(self).__name__)
        y = check_labels(y, len(X), set(self.class_ids_))
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
            self.shard_set_.restore(*shards_before)
            if isinstance(self.router_, CentroidRouter):
                self.router_.superclasses = list(self.superclasses_)
            raise
        return ids

    @edits_memory
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
        self.check_fitted()
        self._require_memory_specialists("add_class")
        cls = str(cls)
        if self.label_kind == "int" and not re.fullmatch(r"-?[0-9]+", cls):
            raise InputError(f"class {cls!r} is not an integer, but this classifier was fitted on integer "
                             "labels; name the new class by an integer")
        X = as_embeddings(X, self.dim_, owner=type(self).__name__)
        if cls in set(self.class_ids_.tolist()):
            raise InputError(f"class {cls!r} is already present; use add() for more samples")
        before = (self.tree, dict(self.assignment_), self.class_ids_)
        try:
            return self._add_class(cls, X, superclass, source, refs, wordnet)
        except BaseException:  # nothing of a failed add_class stays behind
            self.tree, self.assignment_, self.class_ids_ = before
            raise

    def _add_class(self, cls: str, X: np.ndarray, superclass: str | None, source: Any,
                   refs: Sequence[str] | None, wordnet: Any) -> str:
        if cls not in self.tree.classes:
            self.tree = self.tree.with_class(cls, superclass=superclass, wordnet=wordnet)
        placed = superclass or self.tree.superclass_of(cls)
        if superclass is not None and superclass != self.tree.superclass_of(cls):
            self.tree = self.tree.with_class(cls, superclass=superclass, wordnet=wordnet)
        self.assignment_[cls] = placed
        self.class_ids_ = np.array([*self.class_ids_.tolist(), cls], dtype=object)  # other columns stay put
        self.add(X, [cls] * len(X), source=source, refs=refs)
        return placed

    @edits_memory
    def remove_class(self, cls: str) -> np.ndarray:
        """Unlearn a class: its entries leave its shard; returns the removed ids."""
        self.check_fitted()
        self._require_memory_specialists("remove_class")
        cls = str(cls)
        if cls not in set(self.class_ids_.tolist()):
            raise UnknownClassError(f"unknown class {cls!r}: it has no data in this classifier")
        s = self.assignment_[cls]
        shard = self._shard_of(s)
        removed = shard.remove(label=cls)
        self.class_ids_ = np.array([c for c in self.class_ids_ if c != cls], dtype=object)
        if isinstance(self.router_, CentroidRouter):
            self.router_.refresh(shard, s, [cls])
        return removed

    @edits_memory
    def remove(self, *, source: Any = None, label: Any = None) -> dict[str, np.ndarray]:
        """Unlearn entries by source and/or label across shards; returns removed ids per superclass."""
        self.check_fitted()
        self._require_memory_specialists("remove")
        if source is None and label is None:
            raise InputError("give source and/or label to remove")
        label = label_ids(label)
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
        self.class_ids_ = np.array(
            [c for c in self.class_ids_ if any(c in sh.classes_ for sh in self.shards_)], dtype=object)
        return out

    @edits_memory
    def set_weight(self, weight: float, *, label: Any = None, source: Any = None) -> dict[str, np.ndarray]:
        """Persistently set the vote weight of entries by label and/or source, in every shard.

        The weight counts in stage 2 and in stage 1 alike: the memory router
        multiplies each neighbour's vote by it, and the centroid router
        recomputes the touched classes' centroids as weighted means (weight
        0 leaves an entry out).  A head router is a network and does not see
        it.  Returns the affected ids per superclass.
        """
        self.check_fitted()
        self._require_memory_specialists("set_weight")
        if label is None and source is None:
            raise InputError("give label and/or source to set weights")
        label = label_ids(label)
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

