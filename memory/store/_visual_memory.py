"""The visual memory: L2-normalised embeddings with metadata, kNN search and voting, and edits.

The class is assembled from parts that each hold one concern: the entry
table (:mod:`._table`), the vector index (:mod:`._index`), the query path
(:mod:`._query`) and the edits (:mod:`._edits`).  This module holds the
constructor, the read accessors, copying and the persistence entry points.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .._validation import as_ids, check_k, check_knn
from ._edits import EditMixin
from ._index import VectorIndex
from ._lock import locked
from ._query import QueryMixin
from ._table import EntryTable

__all__ = ["VisualMemory"]


class VisualMemory(QueryMixin, EditMixin):
    """An editable kNN memory over L2-normalised embeddings.

    Every entry has an integer id, a label, a superclass, a source (the
    dataset or batch it came from), an optional image reference and a
    persistent vote weight.  Metadata lives in one entry table
    (:attr:`table_`), vectors in a faiss index (:attr:`index_`); both are
    read and changed under one re-entrant lock (:attr:`lock`), so threads may
    share a memory.  Knowledge changes by editing entries, never by training.

    Parameters
    ----------
    dim : int, optional
        Embedding dimension; taken from the first :meth:`add` if omitted.
    k : int, default 10
        Default number of neighbours.
    voting : {"softmax", "rank", "distance", "plurality"}, default "softmax"
        Default voting rule (see :mod:`memory._voting`).
    temperature : float, default 0.07
        Temperature of softmax voting.
    index : str, default "Flat"
        ``"Flat"`` for exact inner-product search, or a faiss index-factory
        string such as ``"IVF1024,Flat"``, ``"HNSW32"`` or ``"IVF256,PQ32"``.
        Approximate indexes sit beside the exact vectors, are (re)built on
        the first search after a change, and handle removals with
        tombstones (HNSW cannot delete): removed ids are filtered out of
        every result, and the index is rebuilt once tombstones exceed
        ``rebuild_fraction`` of the entries.
    nprobe, ef_search : int, optional
        Search-time parameters of IVF and HNSW indexes.
    rebuild_fraction : float, default 0.1
    fingerprint : str, optional
        Identifies the backbone and preprocessing that made the embeddings;
        checked by :meth:`load`.
    progress : bool, default True
        Show a progress bar (on stderr) for large adds.

    Attributes
    ----------
    table_ : EntryTable
        Ids, labels, sources, superclasses, references and weights, row by row.
    index_ : VectorIndex or None
        The vectors, row ``i`` for the table's row ``i`` (None until the first add).
    lock : threading.RLock
        Held by every method; hold it to read several things consistently.

    Examples
    --------
    >>> import numpy as np
    >>> from memory import VisualMemory
    >>> mem = VisualMemory(k=3, voting="plurality")
    >>> ids = mem.add(np.eye(4, dtype="float32"), ["a", "a", "b", "b"], source="demo")
    >>> mem.predict(np.array([[1.0, 0.1, 0.0, 0.0]], dtype="float32")).tolist()
    ['a']
    """

    def __init__(
        self,
        dim: int | None = None,
        *,
        k: int = 10,
        voting: str = "softmax",
        temperature: float = 0.07,
        index: str = "Flat",
        nprobe: int | None = None,
        ef_search: int | None = None,
        rebuild_fraction: float = 0.1,
        fingerprint: str | None = None,
        progress: bool = True,
    ) -> None:
        if dim is not None:
            check_k(dim, "dim")
        self.k, self.voting, self.temperature = check_knn(k, voting, temperature)
        self.index_spec = index
        self.nprobe = None if nprobe is None else check_k(nprobe, "nprobe")
        self.ef_search = None if ef_search is None else check_k(ef_search, "ef_search")
        self.rebuild_fraction = float(rebuild_fraction)
        self.fingerprint = fingerprint
        self.progress = progress
        self.metric = "cosine"
        self.dim: int | None = None
        self.lock = threading.RLock()
        self.table_ = EntryTable()
        self.index_: VectorIndex | None = None
        if dim is not None:
            self.index_ = self._new_index(int(dim))
            self.dim = int(dim)

    def _new_index(self, dim: int) -> VectorIndex:
        return VectorIndex(dim, self.index_spec, nprobe=self.nprobe, ef_search=self.ef_search,
                           rebuild_fraction=self.rebuild_fraction)

    @classmethod
    def from_parts(cls, table: EntryTable, vectors: VectorIndex | None, /, **params: Any) -> VisualMemory:
        """A memory holding ``table`` and the index ``vectors`` (what a loader builds).

        ``params`` are constructor arguments; ``dim`` and ``index`` are taken
        from ``vectors``.  The parts must agree row by row.
        """
        if vectors is not None:
            params = {**params, "index": vectors.spec}
        mem = cls(None if vectors is None else vectors.dim, **params)
        if vectors is not None and vectors.ntotal != len(table):
            raise ValueError(f"the index holds {vectors.ntotal} vectors but the table {len(table)} rows")
        mem.table_ = table
        if vectors is not None:
            mem.index_ = vectors
        return mem

    # ------------------------------------------------------------ properties
    def __len__(self) -> int:
        return len(self.table_)

    @property
    def n_entries(self) -> int:
        """Number of entries."""
        return len(self.table_)

    @property
    def classes_(self) -> np.ndarray:
        """Sorted labels present in the memory, shape (n_classes,), str."""
        return self.table_.present("label")

    @property
    def superclasses_(self) -> np.ndarray:
        """Sorted superclasses present, shape (n_superclasses,), str."""
        return self.table_.present("superclass")

    @property
    def sources_(self) -> np.ndarray:
        """Sorted sources present, shape (n_sources,), str."""
        return self.table_.present("source")

    @property
    def ids_(self) -> np.ndarray:
        """Entry ids in storage order, shape (n_entries,), int64 (a copy)."""
        return self.table_.ids.copy()

    def __repr__(self) -> str:
        return (
            f"VisualMemory({len(self)} entries, {len(self.classes_)} classes, dim={self.dim}, "
            f"index={self.index_spec!r}, k={self.k}, voting={self.voting!r})"
        )

    # -------------------------------------------------------------- reading
    @locked
    def counts(self, by: str = "label") -> dict[str, int]:
        """Entries per label, source or superclass, sorted by value."""
        return self.table_.counts(by)

    @locked
    def select(self, ids: Any = None, *, label: Any = None, source: Any = None,
               superclass: Any = None) -> np.ndarray:
        """Ids of the entries matching every given criterion.

        Each criterion is a value or a collection of values (any of them
        matches).  Unknown ids, labels, sources or superclasses raise
        :class:`UnknownEntryError`.

        Returns
        -------
        ndarray of shape (m,), int64, sorted
        """
        return self.table_.select(ids, label=label, source=source, superclass=superclass)

    @locked
    def get(self, ids: Any) -> list[dict[str, Any]]:
        """Metadata of the given entries, in the order given.

        Returns
        -------
        list of dict
            ``{"id", "label", "superclass", "source", "ref", "weight"}`` per id.
        """
        return self.table_.get(as_ids(ids, name="ids"))

    @locked
    def labels(self, ids: Any) -> np.ndarray:
        """The labels of ``ids``, shape (m,), object array of str."""
        return self.table_.values("label", self.table_.rows_of(as_ids(ids, name="ids")))

    @locked
    def weights(self, ids: Any) -> np.ndarray:
        """The stored vote weights of ``ids``, shape (m,), float32 (see :meth:`set_weight`)."""
        return self.table_.weight[self.table_.rows_of(as_ids(ids, name="ids"))].copy()

    @locked
    def vectors(self, ids: Any) -> np.ndarray:
        """The stored (normalised) vectors of ``ids``, shape (m, dim), float32."""
        rows = self.table_.rows_of(as_ids(ids, name="ids"))
        if self.index_ is None:
            return np.empty((0, 0), dtype=np.float32)
        return self.index_.vectors()[rows].copy()

    # ------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        """Everything but the lock (a pickle holds the vectors, the table and the settings)."""
        with self.lock:
            return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.lock = threading.RLock()

    # ---------------------------------------------------------- persistence
    def save(self, path: Any, *, wait: float = 0.0) -> Any:
        """Save atomically to a directory (see :func:`memory.save_memory`)."""
        from ._persist import save_memory

        return save_memory(self, path, wait=wait)

    @classmethod
    def load(cls, path: Any, *, dim: int | None = None, fingerprint: str | None = None) -> VisualMemory:
        """Load a memory saved by :meth:`save` (see :func:`memory.load_memory`)."""
        from ._persist import load_snapshot

        return load_snapshot(path, dim=dim, fingerprint=fingerprint)

    def params(self) -> dict[str, Any]:
        """The constructor arguments (other than ``dim``) this memory was made with."""
        return {"k": self.k, "voting": self.voting, "temperature": self.temperature, "index": self.index_spec,
                "nprobe": self.nprobe, "ef_search": self.ef_search, "rebuild_fraction": self.rebuild_fraction,
                "fingerprint": self.fingerprint, "progress": self.progress}

    @locked
    def copy(self) -> VisualMemory:
        """An independent deep copy (an approximate index is rebuilt on its first search)."""
        new = VisualMemory(self.dim, **self.params())
        new.table_ = self.table_.copy()
        if self.index_ is not None:
            new.index_ = self.index_.copy()
        return new
