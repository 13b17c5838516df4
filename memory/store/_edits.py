"""The memory's edits: add, unlearn, re-weight, prune and compress.

A mixin of :class:`memory.VisualMemory`.  Every edit is all or nothing: it
builds the new entry table first (a pure computation), then changes the
vector index (undone if it fails part way), and only then swaps the new
table in.  An edit changes the memory only; a network trained on it earlier
(a generalist head, specialist deltas) keeps what it learned.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError
from .._validation import check_weight, prepare_rows
from ._lock import locked

if TYPE_CHECKING:
    import threading

    from ._index import VectorIndex
    from ._table import EntryTable

__all__ = ["EditMixin"]

log = logging.getLogger(__name__)


class EditMixin:
    """Add, remove, re-weight and prune entries (see :class:`memory.VisualMemory`)."""

    table_: EntryTable
    index_: VectorIndex | None
    lock: threading.RLock
    dim: int | None
    k: int
    progress: bool

    def _new_index(self, dim: int) -> VectorIndex:  # provided by VisualMemory
        raise NotImplementedError

    @locked
    def add(self, X: Any, labels: Any, *, ids: Any = None, superclass: Any = "", source: Any = "default",
            refs: Any = None, weight: float = 1.0, batch_size: int = 65536,
            allow_zero: bool = False) -> np.ndarray:
        """Add embeddings with their metadata.

        Parameters
        ----------
        X : array-like of shape (n, dim)
            Embeddings; they are L2-normalised on the way in.
        labels : str or sequence of str, length n
        ids : sequence of int, optional
            Unique non-negative ids; assigned consecutively when omitted.
        superclass, source : str or sequence of str
            One value for all rows or one per row.
        refs : sequence of str, optional
            Image references (paths or dataset indices), one per row.
        weight : float, default 1.0
            Persistent vote weight of the new entries.
        batch_size : int
            Vectors indexed per step; a progress bar shows for several steps.
        allow_zero : bool, default False
            Store all-zero rows as they are (similarity 0 to every query, as
            scikit-learn's cosine metric treats them) instead of refusing them.

        Returns
        -------
        ndarray of shape (n,), int64
            The ids of the new entries.

        Raises
        ------
        InputError
            For a wrong shape or dimension, NaN/inf, zero vectors, mismatched
            lengths or duplicate ids.  The memory is unchanged.
        """
        rows = prepare_rows(X, labels, dim=self.dim, ids=ids, superclass=superclass, source=source,
                            refs=refs, weight=weight, allow_zero=allow_zero, normalize=False)
        t = self.table_
        if rows.ids is None:
            new_ids = np.arange(t.next_id, t.next_id + len(rows), dtype=np.int64)
        else:
            new_ids = rows.ids
            clash = np.isin(new_ids, t.ids)
            if clash.any():
                raise InputError(
                    f"duplicate id {int(new_ids[clash][0])}: it is already in the memory; "
                    "remove it first or leave ids=None"
                )
        index = self.index_ if self.index_ is not None else self._new_index(rows.X.shape[1])
        table = t.appended(new_ids, rows.labels, rows.superclasses, rows.sources, rows.refs, weight)
        index.add(rows, batch_size, progress=self.progress)  # normalised into the index; all or nothing
        self.index_, self.dim, self.table_ = index, index.dim, table
        return new_ids

    @locked
    def remove(self, ids: Any = None, *, label: Any = None, source: Any = None,
               superclass: Any = None) -> np.ndarray:
        """Exactly unlearn entries: by id, label, source and/or superclass.

        Criteria given together must all match.  Afterwards no removed id
        appears in any result, and every prediction equals, bit for bit,
        that of a memory built without the removed entries (for the exact
        index; approximate indexes filter tombstones until rebuilt).

        Returns
        -------
        ndarray of shape (m,), int64
            The removed ids.
        """
        doomed = self.table_.select(ids, label=label, source=source, superclass=superclass)
        if doomed.size == 0 or self.index_ is None:
            return doomed
        rows = np.sort(self.table_.rows_of(doomed))
        keep = np.ones(len(self.table_), dtype=bool)
        keep[rows] = False
        table = self.table_.kept(keep)
        self.index_.remove(rows, doomed)  # the last step that can fail
        self.table_ = table
        log.info("removed %d entries", doomed.size)
        return doomed

    @locked
    def set_weight(self, weight: float, ids: Any = None, *, label: Any = None, source: Any = None,
                   superclass: Any = None) -> np.ndarray:
        """Persistently set the vote weight of matching entries (0 silences them).

        Returns the affected ids.
        """
        weight = check_weight(weight)
        chosen = self.table_.select(ids, label=label, source=source, superclass=superclass)
        self.table_ = self.table_.reweighted(self.table_.rows_of(chosen), weight)
        return chosen

    # -------------------------------------------------------------- pruning
    @locked
    def prune_harmful(self, X: Any, y: Any, k: int | None = None, **kwargs: Any) -> Any:
        """Remove entries that take part in more wrong than right decisions.

        See :func:`memory.prune_harmful`.
        """
        from ._prune import prune_harmful

        return prune_harmful(self, X, y, k, **kwargs)  # type: ignore[arg-type]

    @locked
    def prune_redundant(self, threshold: float = 0.98) -> Any:
        """Remove near-duplicates inside each class; see :func:`memory.prune_redundant`."""
        from ._prune import prune_redundant

        return prune_redundant(self, threshold)  # type: ignore[arg-type]

    @locked
    def compress(self, m: int = 4, *, snap: bool = False, seed: int = 0) -> Any:
        """Reduce each class to ``m`` sub-centroids; see :func:`memory.compress`."""
        from ._prune import compress

        return compress(self, m, snap=snap, seed=seed)  # type: ignore[arg-type]
