"""The memory's query path: search, votes, predictions and explanations.

A mixin of :class:`memory.VisualMemory`; it reads the memory's entry table
(``self.table_``) and vector index (``self.index_``) under ``self.lock`` and
changes neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError, UnknownEntryError
from .._validation import as_embeddings, as_id_set, as_set, as_strings, check_k
from ._explain import Explanation, Steer, build_explanations
from ._lock import locked
from ._voting import class_scores, decisions, probabilities, vote_weights

if TYPE_CHECKING:
    import threading

    from ._index import VectorIndex
    from ._table import EntryTable

__all__ = ["QUERY_CHUNK", "QueryMixin"]

#: Queries are searched in chunks of this many rows, to bound memory use.
QUERY_CHUNK = 4096


class QueryMixin:
    """Search, vote, predict and explain (see :class:`memory.VisualMemory`)."""

    table_: EntryTable
    index_: VectorIndex | None
    lock: threading.RLock
    dim: int | None
    k: int
    voting: str
    temperature: float
    index_spec: str
    nprobe: int | None
    ef_search: int | None
    classes_: np.ndarray
    superclasses_: np.ndarray

    # ------------------------------------------------------------ neighbours
    def _check_ready(self) -> VectorIndex:
        if len(self.table_) == 0 or self.index_ is None:
            raise InputError("the memory is empty; add entries before searching")
        return self.index_

    def _allowed_rows(self, superclass: Any, steer: Steer | None) -> np.ndarray | None:
        t = self.table_
        mask: np.ndarray | None = None
        if superclass is not None:
            wanted = as_set(superclass)
            unknown = [s for s in wanted if s not in t.vocabs["superclass"].code]
            if unknown:
                raise UnknownEntryError(
                    f"unknown superclass {unknown[0]!r}; present: {', '.join(self.superclasses_)}"
                )
            mask = t.mask("superclass", wanted)
        if steer is not None and steer.excludes:
            drop = np.zeros(len(t), dtype=bool)
            if len(steer.exclude_ids):
                drop |= np.isin(t.ids, as_id_set(steer.exclude_ids))
            for column, values in (("label", steer.exclude_labels), ("source", steer.exclude_sources),
                                   ("superclass", steer.exclude_superclasses)):
                if values:
                    drop |= t.mask(column, values)
            mask = ~drop if mask is None else mask & ~drop
        return mask

    @locked
    def build_index(self) -> Any:
        """Build (or refresh) the approximate index now rather than on the next search.

        A no-op for the exact ``"Flat"`` index.  Returns ``self``.
        """
        if self.index_spec != "Flat":
            self._check_ready().ensure_ann(self.table_.ids)
        return self

    @locked
    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> Any:
        """Change the approximate index's search-time parameters, without rebuilding it.

        Parameters
        ----------
        nprobe : int, optional
            Inverted lists an IVF index scans per query (more: higher recall, slower).
        ef_search : int, optional
            Candidate-list length of an HNSW search (more: higher recall, slower).

        Returns ``self``.  A parameter left out keeps its value; both are
        saved with the memory.
        """
        if nprobe is not None:
            self.nprobe = check_k(nprobe, "nprobe")
        if ef_search is not None:
            self.ef_search = check_k(ef_search, "ef_search")
        if self.index_ is not None:
            self.index_.nprobe, self.index_.ef_search = self.nprobe, self.ef_search
            self.index_.set_search_params()
        return self

    def _search_rows(self, Q: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (sims, rows) of one chunk of normalised queries."""
        return self._check_ready().search(Q, k, mask, self.table_)

    @locked
    def neighbour_rows(self, X: Any, k: int | None = None, *, superclass: Any = None,
                       steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Nearest entries as row positions of :attr:`table_` (for code built on the memory).

        Returns
        -------
        sims : ndarray of shape (n, k), float32 (``-inf`` past the last hit)
        rows : ndarray of shape (n, k), int64 (``-1`` past the last hit)
        """
        self._check_ready()
        k = self.k if k is None else check_k(k)
        Q = as_embeddings(X, self.dim)  # normalised chunk by chunk below, to bound memory
        per_query = isinstance(superclass, (list, np.ndarray))
        if per_query and len(superclass) != Q.shape[0]:
            raise InputError(
                f"a list of superclasses routes each query ({Q.shape[0]} queries) and must match "
                f"their number, got {len(superclass)}; pass a set or tuple to search several shards"
            )
        sims = np.empty((Q.shape[0], k), dtype=np.float32)
        rows = np.empty((Q.shape[0], k), dtype=np.int64)
        if per_query:
            groups = np.asarray([str(s) for s in superclass])
            for g in np.unique(groups):
                sel = np.flatnonzero(groups == g)
                sims[sel], rows[sel] = self.neighbour_rows(Q[sel], k, superclass=g, steer=steer)
            return sims, rows
        mask = self._allowed_rows(superclass, steer)
        for start in range(0, Q.shape[0], QUERY_CHUNK):
            sl = slice(start, start + QUERY_CHUNK)
            chunk = Q[sl] / np.maximum(np.linalg.norm(Q[sl], axis=1, keepdims=True), 1e-12)
            sims[sl], rows[sl] = self._search_rows(chunk, k, mask)
        return sims, rows

    def _ids_of(self, rows: np.ndarray) -> np.ndarray:
        return np.where(rows >= 0, self.table_.ids[np.maximum(rows, 0)], -1)

    @locked
    def search(self, X: Any, k: int | None = None, *, superclass: Any = None,
               steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Nearest entries by cosine similarity.

        Parameters
        ----------
        X : array-like of shape (n, dim)
        k : int, optional
            Defaults to ``self.k``.
        superclass : str, set/tuple of str, or list/array of length n, optional
            Search only this superclass's entries (a shard), or those of a
            set or tuple of superclasses; a list or array of length ``n``
            gives each query its own superclass.
        steer : Steer, optional
            Entries to exclude from the search.

        Returns
        -------
        sims : ndarray of shape (n, k), float32
            Cosine similarities, best first; ``-inf`` past the last hit.
        ids : ndarray of shape (n, k), int64
            Entry ids; ``-1`` past the last hit.
        """
        sims, rows = self.neighbour_rows(X, k, superclass=superclass, steer=steer)
        return sims, self._ids_of(rows)

    @locked
    def neighbours(self, X: Any, k: int | None = None, *, superclass: Any = None,
                   steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest entries, each with the multiplier its vote carries.

        The multiplier is the entry's stored weight times any steering
        weight that matches it; a voting rule's weight times the multiplier
        is the neighbour's vote.  Routers use it to count votes across
        shards exactly as each shard counts its own.

        Returns
        -------
        sims : ndarray of shape (n, k), float32 (``-inf`` past the last hit)
        ids : ndarray of shape (n, k), int64 (``-1`` past the last hit)
        multipliers : ndarray of shape (n, k), float (0 past the last hit)
        """
        sims, rows = self.neighbour_rows(X, k, superclass=superclass, steer=steer)
        mult = self._weights(sims, rows, "plurality", None, steer)
        return sims, self._ids_of(rows), mult

    # ----------------------------------------------------------------- votes
    def _weights(self, sims: np.ndarray, rows: np.ndarray, voting: str | None, temperature: float | None,
                 steer: Steer | None) -> np.ndarray:
        t = self.table_
        r = np.maximum(rows, 0)

        def column(key: str) -> tuple[np.ndarray, Any]:
            if key == "id":
                return t.ids[r], None
            vocab = t.vocabs[key]
            return t.codes[key][r], lambda v: vocab.code.get(str(v), -1)

        return vote_weights(sims, rows >= 0, t.weight[r], voting or self.voting,
                            temperature or self.temperature, steer, column)

    @locked
    def votes(self, X: Any, k: int | None = None, *, voting: str | None = None,
              temperature: float | None = None, superclass: Any = None,
              steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The tally behind every prediction: per-class scores and each neighbour's vote.

        Returns
        -------
        scores : ndarray of shape (n, n_classes), float64
            Summed vote weight per class (columns follow :attr:`classes_`).
        sims : ndarray of shape (n, k), float32
        rows : ndarray of shape (n, k), int64
            The neighbours as row positions of :attr:`table_` (``-1`` past the last hit).
        weights : ndarray of shape (n, k), float64
            Each neighbour's final vote weight.
        """
        sims, rows = self.neighbour_rows(X, k, superclass=superclass, steer=steer)
        w = self._weights(sims, rows, voting, temperature, steer)
        scores = class_scores(w, self.table_.class_index(rows), len(self.classes_))
        return scores, sims, rows, w

    @locked
    def predict_proba(self, X: Any, k: int | None = None, *, voting: str | None = None,
                      temperature: float | None = None, superclass: Any = None,
                      steer: Steer | None = None) -> np.ndarray:
        """Class probabilities from the neighbours' votes.

        Returns
        -------
        ndarray of shape (n, n_classes), float64
            Columns follow :attr:`classes_`.  A row is all zero when no
            neighbour voted (everything excluded).
        """
        return probabilities(self.votes(X, k, voting=voting, temperature=temperature,
                                        superclass=superclass, steer=steer)[0])

    @locked
    def predict(self, X: Any, k: int | None = None, *, voting: str | None = None,
                temperature: float | None = None, superclass: Any = None,
                steer: Steer | None = None) -> np.ndarray:
        """Predicted labels, shape (n,), object array of str.

        Ties go to the class first in :attr:`classes_`; a query with no
        voting neighbour gets ``None``.  Parameters as in :meth:`predict_proba`.
        """
        scores = self.votes(X, k, voting=voting, temperature=temperature, superclass=superclass,
                            steer=steer)[0]
        return decisions(scores, self.classes_)

    @locked
    def top_k(self, X: Any, n: int = 5, *, k: int | None = None, voting: str | None = None,
              temperature: float | None = None, superclass: Any = None,
              steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` most probable classes per query.

        Returns
        -------
        labels : ndarray of shape (q, n), object
        probabilities : ndarray of shape (q, n), float64
        """
        n = check_k(n, "n")
        p = self.predict_proba(X, k, voting=voting, temperature=temperature, superclass=superclass,
                               steer=steer)
        n = min(n, p.shape[1])
        order = np.argsort(-p, axis=1, kind="stable")[:, :n]
        return self.classes_.astype(object)[order], np.take_along_axis(p, order, 1)

    @locked
    def score(self, X: Any, y: Any, k: int | None = None, **kwargs: Any) -> float:
        """Top-1 accuracy on ``(X, y)``."""
        pred = self.predict(X, k, **kwargs)
        y_ = np.asarray(as_strings(y, len(pred), "y"), dtype=object)
        return float(np.mean(pred == y_))

    @locked
    def explain(self, X: Any, k: int | None = None, *, voting: str | None = None,
                temperature: float | None = None, superclass: Any = None,
                steer: Steer | None = None) -> list[Explanation]:
        """The neighbours behind each prediction, with their weights.

        Returns
        -------
        list of Explanation, one per query
        """
        scores, sims, rows, w = self.votes(X, k, voting=voting, temperature=temperature,
                                           superclass=superclass, steer=steer)
        ids = self._ids_of(rows)
        valid = np.unique(ids[ids >= 0])
        meta = {m["id"]: m for m in self.table_.get(valid)} if valid.size else {}
        return build_explanations(scores, sims, ids, w, self.classes_, meta)
