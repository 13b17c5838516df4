"""The specialist memories of a network-level classifier, and their edits.

Each superclass keeps a memory shard embedded by its own specialist tail.
Edits go to the shards only: :meth:`add` embeds images with the specialist of
every superclass that covers their class and leaves every other shard
bit-identical; :meth:`remove` is exact for the memories.  The generalist and
the specialist deltas were trained once; no edit changes them, so whatever
they learnt from removed images stays in their weights until the model is
retrained without those images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hierarchy import SuperclassMap, UnknownClassError
from memory import InputError, UnknownEntryError, VisualMemory
from memory import as_strings

from .._base import edits_memory

if TYPE_CHECKING:
    from ._tail_specialists import TailSpecialists
    from ._trunk import BackboneSplit

__all__ = ["ShardMemories", "normalise", "restrict_cut"]


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32."""
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def restrict_cut(cut: SuperclassMap, classes: Sequence[str]) -> SuperclassMap:
    """``cut`` limited to ``classes`` (superclasses left without a class are dropped)."""
    keep = set(classes)
    assignment = {c: s for c, s in cut.assignment.items() if c in keep}
    used = set(assignment.values())
    names = {s: n for s, n in cut.names.items() if s in used}
    overlap = {s: [c for c in v if c in keep] for s, v in cut.overlap.items() if s in used}
    return SuperclassMap(assignment, names, cut.method, overlap)


class ShardMemories:
    """Mixin of :class:`router.NetworkTwoStage`: one memory shard per superclass, in its specialist's space."""

    classes_: np.ndarray
    superclasses_: list[str]
    groups_: list[np.ndarray]
    cut_: SuperclassMap
    split_: BackboneSplit
    specialists_: TailSpecialists | None
    memories_: list[VisualMemory] | None
    precision: str
    k: int

    if TYPE_CHECKING:
        def check_fitted(self) -> None: ...

    def activations(self, X: Any) -> np.ndarray:  # pragma: no cover - provided by the classifier
        raise NotImplementedError

    def specialist_outputs(self, s: int, acts: Any) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError  # provided by NetworkRuntime

    def fit_memories(self, acts: Any, y: Any, *, refs: Sequence[str] | None = None,
                     source: str = "train") -> Any:
        """Build one memory shard per superclass in its specialist's feature space.

        Shard ``s`` holds the samples of the classes specialist ``s`` covers,
        embedded by that specialist's tail (L2-normalised).  ``y`` holds class
        indices into :attr:`classes_`.
        """
        self.check_fitted()
        if self.specialists_ is None:
            raise InputError("specialist memories need specialists; fit TailSpecialists first")
        acts = self.activations(acts)
        y = np.asarray(y, dtype=np.int64)
        labels = self.classes_[y]
        self.memories_ = []
        for s, rows in enumerate(self.groups_):
            mask = np.isin(y, rows)
            feats = normalise(self.specialist_outputs(s, acts[mask])[0])
            mem = VisualMemory(feats.shape[1], k=self.k, progress=False,
                               fingerprint=f"{self.split_.fingerprint}|specialist:{self.superclasses_[s]}")
            if mask.any():  # ids are sample positions, shared by every shard an image is in
                mem.add(feats, list(labels[mask]), ids=np.flatnonzero(mask), source=source,
                        superclass=self.superclasses_[s],
                        refs=[refs[i] for i in np.flatnonzero(mask)] if refs is not None else None)
            self.memories_.append(mem)
        return self

    @edits_memory
    def add(self, X: Any, y: Any, *, source: Any = "added", refs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Add images of known classes to the memory shards that cover their class.

        Each image is embedded by the specialist of every superclass whose
        classes include its label, and added to that shard only; every other
        shard stays bit-identical.  The networks are not retrained.

        Returns
        -------
        dict of superclass id to the new entry ids
        """
        self.check_fitted()
        if self.memories_ is None:
            raise InputError("this classifier keeps no specialist memories (memory=False)")
        acts = self.activations(X)
        labels = np.asarray(as_strings(y, len(acts), "y"), dtype=object)
        index = {c: i for i, c in enumerate(self.classes_)}
        unknown = [c for c in labels if c not in index]
        if unknown:
            raise UnknownClassError(
                f"unknown class {unknown[0]!r}: the generalist and the specialists have no output for it; "
                "rebuild the model with its images, or use a memory-specialist TwoStageClassifier"
            )
        yi = np.array([index[c] for c in labels])
        start = 1 + max((int(m.ids_.max()) for m in self.memories_ if len(m)), default=-1)
        new_ids = np.arange(start, start + len(yi))
        out = {}
        for s, rows in enumerate(self.groups_):
            mask = np.isin(yi, rows)
            if not mask.any():
                continue
            feats = normalise(self.specialist_outputs(s, acts[mask])[0])
            srcs = source if isinstance(source, str) else [source[i] for i in np.flatnonzero(mask)]
            out[self.superclasses_[s]] = self.memories_[s].add(
                feats, list(labels[mask]), ids=new_ids[mask], source=srcs, superclass=self.superclasses_[s],
                refs=[refs[i] for i in np.flatnonzero(mask)] if refs is not None else None)
        return out

    @edits_memory
    def remove(self, *, source: Any = None, label: Any = None, ids: Any = None) -> dict[str, np.ndarray]:
        """Remove entries from every memory shard, exactly; the networks keep what they learnt.

        Returns
        -------
        dict of superclass id to the removed ids
        """
        self.check_fitted()
        if self.memories_ is None:
            raise InputError("this classifier keeps no specialist memories (memory=False)")
        if source is None and label is None and ids is None:
            raise InputError("say what to remove: source=, label= or ids=")
        wanted = None if ids is None else set(np.atleast_1d(np.asarray(ids, dtype=np.int64)).tolist())
        out = {}
        for s, mem in zip(self.superclasses_, self.memories_):
            mine = None
            if wanted is not None:
                mine = sorted(wanted & set(mem.ids_.tolist()))
                if not mine:
                    continue
            try:
                got = mem.remove(mine, source=source, label=label)
            except UnknownEntryError:
                continue  # this shard holds no such label or source
            if len(got):
                out[s] = got
        if not out:
            raise UnknownEntryError("no memory entry matches; nothing was removed")
        return out

    @property
    def n_entries(self) -> int:
        """Entries in all memory shards."""
        return sum(len(m) for m in self.memories_ or [])

    def _knn(self, s: int, feats: np.ndarray, steer: Any = None) -> np.ndarray:
        assert self.memories_ is not None
        mem = self.memories_[s]
        out = np.zeros((len(feats), len(self.groups_[s])))
        if not len(mem):
            return out
        p = mem.predict_proba(feats, self.k, steer=steer)
        col = {c: i for i, c in enumerate(self.classes_[self.groups_[s]])}
        for j, c in enumerate(mem.classes_):
            out[:, col[c]] = p[:, j]
        return out

    @property
    def assignment_(self) -> dict[str, str]:
        """Class id to its (primary) superclass id."""
        return dict(self.cut_.assignment)

    @property
    def shards_(self) -> list[VisualMemory]:
        """The specialist memories, one per superclass (empty without memories)."""
        return list(self.memories_ or [])

    @property
    def embedding(self) -> dict[str, Any]:
        """How queries are encoded: the backbone recipe and the split point."""
        return {"backbone": self.backbone, "size": self.size, "crop_pct": self.crop_pct, "split_at": self.split_at}

    @edits_memory
    def set_weight(self, weight: float, *, label: Any = None, source: Any = None) -> dict[str, np.ndarray]:
        """Set the stored vote weight of matching memory entries, in every shard; returns their ids per superclass.

        Only the memories' votes change; the networks are untouched.

        Raises
        ------
        UnknownEntryError
            No entry matches.
        """
        self.check_fitted()
        if label is None and source is None:
            raise InputError("say whose weight to set: label= and/or source=")
        out: dict[str, np.ndarray] = {}
        for s, mem in enumerate(self.memories_ or []):
            try:
                got = mem.set_weight(weight, label=label, source=source)
            except UnknownEntryError:
                continue  # this shard holds no such label or source
            if len(got):
                out[self.superclasses_[s]] = got
        if not out:
            raise UnknownEntryError("no memory entry matches; no weight was set")
        return out

    @edits_memory
    def remove_class(self, cls: str) -> np.ndarray:
        """Remove every memory entry of ``cls``; the networks keep what they learnt of it."""
        return np.concatenate(list(self.remove(label=cls).values()))

    def add_class(self, cls: str, *args: Any, **kwargs: Any) -> str:
        """Refused: the trained networks have no output for a new class."""
        raise UnknownClassError(
            f"cannot add the new class {cls!r} to a network-level classifier: the generalist and the "
            "specialists have no output for it; rebuild with its images, or use a memory-specialist model"
        )
