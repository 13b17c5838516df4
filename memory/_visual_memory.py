"""The visual memory: L2-normalised embeddings, metadata, kNN search and voting.

One class whose store, index, query path and edits share one lock and one set of
columns; edits must stay all-or-nothing across them, which is why they sit together.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import sys
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import faiss
import numpy as np

from ._errors import InputError, UnknownEntryError
from ._explain import Explanation, Steer, build_explanations
from ._faiss import blas_for_small_batches
from ._validation import (
    as_embeddings,
    as_id_set,
    as_ids,
    as_set,
    as_strings,
    check_k,
    check_knn,
    check_weight,
    prepare_rows,
)
from ._voting import class_scores, decisions, probabilities, vote_weights

__all__ = ["VisualMemory"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    superclass TEXT NOT NULL,
    source TEXT NOT NULL,
    ref TEXT,
    weight REAL NOT NULL DEFAULT 1.0
);
CREATE INDEX IF NOT EXISTS entries_label ON entries(label);
CREATE INDEX IF NOT EXISTS entries_source ON entries(source);
CREATE INDEX IF NOT EXISTS entries_superclass ON entries(superclass);
"""

#: Queries are searched in chunks of this many rows, to bound memory use.
QUERY_CHUNK = 4096


def _locked(method: Any) -> Any:
    """Run a method under the memory's lock: edits and reads never interleave."""

    @functools.wraps(method)
    def wrapper(self: VisualMemory, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class _Vocab:
    """String <-> stable integer code; codes are never reused."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: list[str] = []
        self.code: dict[str, int] = {}
        for v in values:
            self.encode([v])

    def encode(self, values: Sequence[str]) -> np.ndarray:
        out = np.empty(len(values), dtype=np.int32)
        for i, v in enumerate(values):
            c = self.code.get(v)
            if c is None:
                c = self.code[v] = len(self.values)
                self.values.append(v)
            out[i] = c
        return out

    def codes_of(self, values: Iterable[str]) -> np.ndarray:
        return np.array([self.code[v] for v in values if v in self.code], dtype=np.int32)


class VisualMemory:
    """An editable kNN memory over L2-normalised embeddings.

    Every entry has an integer id, a label, a superclass, a source (the
    dataset or batch it came from), an optional image reference and a
    persistent vote weight.  Metadata lives in an embedded SQLite database,
    so selecting by label or source is a query; vectors live in a faiss
    index.  Knowledge changes by editing entries, never by training.

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
        self.nprobe = nprobe
        self.ef_search = ef_search
        self.rebuild_fraction = float(rebuild_fraction)
        self.fingerprint = fingerprint
        self.progress = progress
        self.metric = "cosine"
        self.dim: int | None = None
        # One re-entrant lock: threads may share a memory, reading while another edits.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._next_id = 0
        self._ann: Any = None
        self._ann_ids = np.empty(0, dtype=np.int64)
        self._tomb = np.empty(0, dtype=np.int64)
        self._reset_columns()
        if dim is not None:
            self._init_dim(int(dim))

    # ------------------------------------------------------------ internals
    def _init_dim(self, dim: int) -> None:
        self.dim = dim
        self._flat = faiss.IndexFlatIP(dim)
        self._ann: Any = None
        self._ann_ids = np.empty(0, dtype=np.int64)
        self._tomb = np.empty(0, dtype=np.int64)
        if self.index_spec != "Flat":
            try:
                faiss.index_factory(dim, self.index_spec, faiss.METRIC_INNER_PRODUCT)
            except RuntimeError as exc:
                raise InputError(
                    f"faiss cannot build index {self.index_spec!r}: {str(exc).splitlines()[0]}; "
                    "use 'Flat', 'IVF<n>,Flat', 'HNSW<m>' or another index-factory string"
                ) from exc

    def _reset_columns(self) -> None:
        self._ids = np.empty(0, dtype=np.int64)
        self._label = np.empty(0, dtype=np.int32)
        self._source = np.empty(0, dtype=np.int32)
        self._super = np.empty(0, dtype=np.int32)
        self._weight = np.empty(0, dtype=np.float32)
        self._labels = _Vocab()
        self._sources = _Vocab()
        self._supers = _Vocab()
        self._derived: dict[str, Any] = {}

    def _invalidate(self) -> None:
        self._derived.clear()

    @property
    def _order(self) -> np.ndarray:
        if "order" not in self._derived:
            self._derived["order"] = np.argsort(self._ids, kind="stable")
        return self._derived["order"]  # type: ignore[no-any-return]

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of existing ids; raises for unknown ids."""
        order = self._order
        if "sorted_ids" not in self._derived:
            self._derived["sorted_ids"] = self._ids[order]
        sorted_ids = self._derived["sorted_ids"]
        if len(sorted_ids) == 0:
            found = np.zeros(len(ids), dtype=bool)
            pos = np.zeros(len(ids), dtype=np.int64)
        else:
            pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
            found = sorted_ids[pos] == ids
        if not np.all(found):
            missing = ids[~found]
            raise UnknownEntryError(
                f"unknown id {int(missing[0])}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
                + "; it is not (or no longer) in the memory"
            )
        return order[pos]

    def _vectors(self) -> np.ndarray:
        """The stored vectors, shape (n, dim); a read-only view into faiss."""
        n = self._flat.ntotal
        if n == 0:
            return np.empty((0, self.dim or 0), dtype=np.float32)
        view = faiss.rev_swig_ptr(self._flat.get_xb(), n * self.dim).reshape(n, self.dim)
        view.flags.writeable = False
        return view

    @property
    def _class_of_code(self) -> np.ndarray:
        """Label code -> index into ``classes_`` (-1 for labels no longer present)."""
        if "class_of_code" not in self._derived:
            classes = self.classes_
            lookup = {c: i for i, c in enumerate(classes)}
            self._derived["class_of_code"] = np.array(
                [lookup.get(v, -1) for v in self._labels.values], dtype=np.int64
            )
        return self._derived["class_of_code"]  # type: ignore[no-any-return]

    def _load_columns(self, ids: np.ndarray, rows: Sequence[tuple[Any, ...]], next_id: int) -> None:
        """Set the numpy columns from stored ``(label, source, superclass, weight)`` rows (loading)."""
        if not all(isinstance(r[0], str) and isinstance(r[1], str) and isinstance(r[2], str)
                   and isinstance(r[3], (int, float)) and np.isfinite(r[3]) and r[3] >= 0 for r in rows):
            raise InputError("stored metadata holds a non-text label, source or superclass, or an "
                             "invalid weight")
        self._ids = ids.astype(np.int64)
        self._labels, self._sources, self._supers = _Vocab(), _Vocab(), _Vocab()
        self._label = self._labels.encode([r[0] for r in rows])
        self._source = self._sources.encode([r[1] for r in rows])
        self._super = self._supers.encode([r[2] for r in rows])
        self._weight = np.array([r[3] for r in rows], dtype=np.float32)
        self._next_id = next_id
        self._invalidate()

    # ------------------------------------------------------------ properties
    def __len__(self) -> int:
        return int(self._ids.shape[0])

    @property
    def n_entries(self) -> int:
        """Number of entries."""
        return len(self)

    @property
    def classes_(self) -> np.ndarray:
        """Sorted labels present in the memory, shape (n_classes,), str."""
        if "classes" not in self._derived:
            present = np.unique(self._label)
            self._derived["classes"] = np.array(
                sorted(self._labels.values[c] for c in present), dtype=str
            )
        return self._derived["classes"]  # type: ignore[no-any-return]

    @property
    def superclasses_(self) -> np.ndarray:
        """Sorted superclasses present, shape (n_superclasses,), str."""
        return np.array(sorted({self._supers.values[c] for c in np.unique(self._super)}), dtype=str)

    @property
    def sources_(self) -> np.ndarray:
        """Sorted sources present, shape (n_sources,), str."""
        return np.array(sorted({self._sources.values[c] for c in np.unique(self._source)}), dtype=str)

    @property
    def ids_(self) -> np.ndarray:
        """Entry ids in storage order, shape (n_entries,), int64 (a copy)."""
        return self._ids.copy()

    def __repr__(self) -> str:
        return (
            f"VisualMemory({len(self)} entries, {len(self.classes_)} classes, dim={self.dim}, "
            f"index={self.index_spec!r}, k={self.k}, voting={self.voting!r})"
        )

    @_locked
    def counts(self, by: str = "label") -> dict[str, int]:
        """Entries per label, source or superclass."""
        if by not in ("label", "source", "superclass"):
            raise InputError(f"by must be 'label', 'source' or 'superclass', got {by!r}")
        rows = self._db.execute(f"SELECT {by}, COUNT(*) FROM entries GROUP BY {by} ORDER BY {by}")
        return {str(a): int(b) for a, b in rows}

    # ------------------------------------------------------------------ add
    @_locked
    def add(
        self,
        X: Any,
        labels: Any,
        *,
        ids: Any = None,
        superclass: Any = "",
        source: Any = "default",
        refs: Any = None,
        weight: float = 1.0,
        batch_size: int = 65536,
    ) -> np.ndarray:
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
            Rows inserted per step; a progress bar shows for several steps.

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
                            refs=refs, weight=weight)
        X, labels_, supers, sources, refs_ = rows.X, rows.labels, rows.superclasses, rows.sources, rows.refs
        n = len(rows)
        if rows.ids is None:
            new_ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        else:
            new_ids = rows.ids
            clash = np.isin(new_ids, self._ids)
            if clash.any():
                raise InputError(
                    f"duplicate id {int(new_ids[clash][0])}: it is already in the memory; "
                    "remove it first or leave ids=None"
                )
        if self.dim is None:
            self._init_dim(X.shape[1])

        steps = range(0, n, batch_size)
        if self.progress and len(steps) > 1:
            from tqdm.auto import tqdm

            steps = tqdm(steps, desc="add", unit="batch", file=sys.stderr, disable=None)
        n_before = self._flat.ntotal
        # All or nothing: metadata rows (uncommitted), then vectors, then the new
        # columns; any failure rolls the rows back and drops the added vectors.
        try:
            for start in steps:
                sl = slice(start, start + batch_size)
                self._insert_rows(new_ids[sl], labels_[sl], supers[sl], sources[sl], refs_[sl], weight)
            for start in range(0, n, batch_size):
                self._index_add(X[start : start + batch_size])
            columns = (
                np.concatenate([self._ids, new_ids]),
                np.concatenate([self._label, self._labels.encode(labels_)]),
                np.concatenate([self._source, self._sources.encode(sources)]),
                np.concatenate([self._super, self._supers.encode(supers)]),
                np.concatenate([self._weight, np.full(n, weight, dtype=np.float32)]),
            )
            self._db.commit()
        except BaseException:
            self._db.rollback()
            if self._flat.ntotal > n_before:
                self._flat.remove_ids(faiss.IDSelectorRange(n_before, self._flat.ntotal))
            raise
        self._ids, self._label, self._source, self._super, self._weight = columns
        self._next_id = max(self._next_id, int(new_ids.max()) + 1)
        self._invalidate()
        return new_ids

    def _insert_rows(self, ids: np.ndarray, labels: Sequence[str], supers: Sequence[str],
                     sources: Sequence[str], refs: Sequence[str | None], weight: float) -> None:
        """Insert metadata rows inside the open (uncommitted) transaction."""
        self._db.executemany(
            "INSERT INTO entries (id, label, superclass, source, ref, weight) VALUES (?, ?, ?, ?, ?, ?)",
            zip(ids.tolist(), labels, supers, sources, refs, [float(weight)] * len(labels)),
        )

    def _index_add(self, X: np.ndarray) -> None:
        """Append normalised vectors to the exact index."""
        self._flat.add(X)

    # --------------------------------------------------------------- select
    @_locked
    def select(
        self,
        ids: Any = None,
        *,
        label: Any = None,
        source: Any = None,
        superclass: Any = None,
    ) -> np.ndarray:
        """Ids of the entries matching every given criterion.

        Each criterion is a value or a collection of values (any of them
        matches).  Unknown labels, sources or superclasses raise
        :class:`UnknownEntryError`.

        Returns
        -------
        ndarray of shape (m,), int64, sorted
        """
        clauses: list[str] = []
        params: list[Any] = []
        for column, values, vocab in (
            ("label", label, self._labels),
            ("source", source, self._sources),
            ("superclass", superclass, self._supers),
        ):
            if values is None:
                continue
            wanted = sorted(as_set(values))
            present = {r[0] for r in self._db.execute(
                f"SELECT DISTINCT {column} FROM entries WHERE {column} IN ({','.join('?' * len(wanted))})",
                wanted,
            )}
            unknown = [v for v in wanted if v not in present]
            if unknown:
                raise UnknownEntryError(
                    f"unknown {column} {unknown[0]!r}: no entry has it; "
                    f"see memory.counts({column!r})"
                )
            clauses.append(f"{column} IN ({','.join('?' * len(wanted))})")
            params.extend(wanted)
        if ids is not None:
            id_arr = as_ids(ids, name="ids")
            self._rows_of(id_arr)  # raises for unknown ids
            if not clauses:
                return np.sort(id_arr)
        if not clauses:
            raise InputError("give ids, label, source or superclass to select entries")
        found = np.array(
            [r[0] for r in self._db.execute(
                f"SELECT id FROM entries WHERE {' AND '.join(clauses)} ORDER BY id", params
            )],
            dtype=np.int64,
        )
        if ids is not None:
            found = np.intersect1d(found, id_arr)
        return found

    @_locked
    def get(self, ids: Any) -> list[dict[str, Any]]:
        """Metadata of the given entries, in the order given."""
        id_arr = as_ids(ids, name="ids")
        self._rows_of(id_arr)
        out: dict[int, dict[str, Any]] = {}
        for start in range(0, len(id_arr), 900):  # SQLite's parameter limit
            chunk = id_arr[start : start + 900].tolist()
            for row in self._db.execute(
                "SELECT id, label, superclass, source, ref, weight FROM entries "
                f"WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                out[row[0]] = dict(zip(("id", "label", "superclass", "source", "ref", "weight"), row))
        return [out[i] for i in id_arr.tolist()]

    @_locked
    def weights(self, ids: Any) -> np.ndarray:
        """The stored vote weights of ``ids``, shape (m,), float32 (see :meth:`set_weight`)."""
        return self._weight[self._rows_of(as_ids(ids, name="ids"))].copy()

    @_locked
    def vectors(self, ids: Any) -> np.ndarray:
        """The stored (normalised) vectors of ``ids``, shape (m, dim), float32."""
        rows = self._rows_of(as_ids(ids, name="ids"))
        return self._vectors()[rows].copy()

    # --------------------------------------------------------------- remove
    @_locked
    def remove(
        self,
        ids: Any = None,
        *,
        label: Any = None,
        source: Any = None,
        superclass: Any = None,
    ) -> np.ndarray:
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
        doomed = self.select(ids, label=label, source=source, superclass=superclass)
        if doomed.size == 0:
            return doomed
        rows = np.sort(self._rows_of(doomed))
        keep = np.ones(len(self._ids), dtype=bool)
        keep[rows] = False
        # All or nothing: delete the rows (uncommitted), compute the new columns,
        # then remove the vectors -- the last step, after which nothing can fail.
        try:
            self._delete_rows(doomed)
            columns = tuple(getattr(self, name)[keep] for name in ("_ids", "_label", "_source", "_super", "_weight"))
            tomb = np.union1d(self._tomb, doomed) if self._ann is not None else self._tomb
            self._index_remove(rows)
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise
        self._ids, self._label, self._source, self._super, self._weight = columns
        self._tomb = tomb
        self._invalidate()
        log.info("removed %d entries", doomed.size)
        return doomed

    def _delete_rows(self, ids: np.ndarray) -> None:
        """Delete metadata rows inside the open (uncommitted) transaction."""
        for start in range(0, len(ids), 900):  # SQLite's parameter limit
            chunk = ids[start : start + 900].tolist()
            self._db.execute(f"DELETE FROM entries WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def _index_remove(self, rows: np.ndarray) -> None:
        """Remove rows (sorted positions) from the exact index."""
        removed = self._flat.remove_ids(faiss.IDSelectorBatch(rows.astype(np.int64)))
        if removed != len(rows):  # pragma: no cover - faiss removes every listed row
            raise RuntimeError(f"faiss removed {removed} of {len(rows)} rows")

    @_locked
    def set_weight(
        self,
        weight: float,
        ids: Any = None,
        *,
        label: Any = None,
        source: Any = None,
        superclass: Any = None,
    ) -> np.ndarray:
        """Persistently set the vote weight of matching entries (0 silences them).

        Returns the affected ids.
        """
        weight = check_weight(weight)
        chosen = self.select(ids, label=label, source=source, superclass=superclass)
        with self._db:
            for start in range(0, len(chosen), 900):
                chunk = chosen[start : start + 900].tolist()
                self._db.execute(
                    f"UPDATE entries SET weight = ? WHERE id IN ({','.join('?' * len(chunk))})",
                    [float(weight), *chunk],
                )
        self._weight[self._rows_of(chosen)] = weight
        return chosen

    # --------------------------------------------------------------- search
    def _check_ready(self) -> None:
        if len(self) == 0 or self.dim is None:
            raise InputError("the memory is empty; add entries before searching")

    def _allowed_rows(self, superclass: Any, steer: Steer | None) -> np.ndarray | None:
        mask: np.ndarray | None = None
        if superclass is not None:
            wanted = as_set(superclass)
            unknown = [s for s in wanted if s not in self._supers.code]
            if unknown:
                raise UnknownEntryError(
                    f"unknown superclass {unknown[0]!r}; present: {', '.join(self.superclasses_)}"
                )
            mask = np.isin(self._super, self._supers.codes_of(wanted))
        if steer is not None and steer.excludes:
            drop = np.zeros(len(self), dtype=bool)
            if len(steer.exclude_ids):
                drop |= np.isin(self._ids, as_id_set(steer.exclude_ids))
            if steer.exclude_labels:
                drop |= np.isin(self._label, self._labels.codes_of(steer.exclude_labels))
            if steer.exclude_sources:
                drop |= np.isin(self._source, self._sources.codes_of(steer.exclude_sources))
            if steer.exclude_superclasses:
                drop |= np.isin(self._super, self._supers.codes_of(steer.exclude_superclasses))
            mask = ~drop if mask is None else mask & ~drop
        return mask

    def _ensure_ann(self) -> None:
        stale = self._ann is None or (
            self._tomb.size > self.rebuild_fraction * max(len(self), 1)
        )
        if not stale:
            if self._derived.get("ann_synced"):  # nothing changed since the last check
                return
            new = ~np.isin(self._ids, self._ann_ids)
            if new.any():  # entries added since the build
                self._ann.add_with_ids(self._vectors()[new], self._ids[new])
                self._ann_ids = np.concatenate([self._ann_ids, self._ids[new]])
            self._derived["ann_synced"] = True
            return
        base = faiss.index_factory(self.dim, self.index_spec, faiss.METRIC_INNER_PRODUCT)
        ann = faiss.IndexIDMap2(base)
        vecs = self._vectors()
        if not base.is_trained:
            train = vecs
            if len(vecs) > 100_000:
                pick = np.random.default_rng(0).choice(len(vecs), 100_000, replace=False)
                train = vecs[np.sort(pick)]
            base.train(np.ascontiguousarray(train))
        ann.add_with_ids(vecs, self._ids)
        self._ann, self._ann_ids, self._tomb = ann, self._ids.copy(), np.empty(0, dtype=np.int64)
        self._derived["ann_synced"] = True
        self._set_search_params()

    @_locked
    def build_index(self) -> VisualMemory:
        """Build (or refresh) the approximate index now rather than on the next search.

        A no-op for the exact ``"Flat"`` index.  Returns ``self``.
        """
        if self.index_spec != "Flat":
            self._check_ready()
            self._ensure_ann()
        return self

    def _set_search_params(self) -> None:
        if self._ann is None:
            return
        ps = faiss.ParameterSpace()
        base = faiss.downcast_index(self._ann.index)
        if self.nprobe is not None and hasattr(base, "nprobe"):
            ps.set_index_parameter(base, "nprobe", int(self.nprobe))
        if self.ef_search is not None and hasattr(base, "hnsw"):
            base.hnsw.efSearch = int(self.ef_search)

    def _search_rows(
        self, Q: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (sims, rows) of normalised queries, rows -1 where fewer exist."""
        with blas_for_small_batches():
            return self._search_rows_unscoped(Q, k, mask)

    def _search_rows_unscoped(
        self, Q: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        sims = np.full((Q.shape[0], k), -np.inf, dtype=np.float32)
        rows = np.full((Q.shape[0], k), -1, dtype=np.int64)
        if mask is not None and not mask.any():
            return sims, rows
        kk = min(k, n if mask is None else int(mask.sum()))
        if mask is not None:
            n_out = n - int(mask.sum())
            if n_out <= 256 and self._ann is None and self.index_spec == "Flat":
                # Few exclusions: over-fetch from the whole index and filter.
                s, r = self._flat.search(Q, min(n, kk + n_out))
                keep = np.where(r >= 0, mask[np.maximum(r, 0)], False)
                order = np.argsort(~keep, axis=1, kind="stable")[:, :kk]
                s, r = np.take_along_axis(s, order, 1), np.take_along_axis(r, order, 1)
            else:
                # Exact search over the allowed rows only.
                allowed = np.flatnonzero(mask)
                sub = np.ascontiguousarray(self._vectors()[allowed])
                s, r = faiss.knn(Q, sub, kk, metric=faiss.METRIC_INNER_PRODUCT)
                r = np.where(r >= 0, allowed[np.maximum(r, 0)], -1)
        elif self.index_spec == "Flat":
            s, r = self._flat.search(Q, kk)
        else:
            self._ensure_ann()
            extra = int(self._tomb.size)
            s, found = self._ann.search(Q, min(kk + extra, self._ann.ntotal))
            if extra:
                dead = np.isin(found, self._tomb) | (found < 0)
                order = np.argsort(dead, axis=1, kind="stable")[:, :kk]
                s, found = np.take_along_axis(s, order, 1), np.take_along_axis(found, order, 1)
                found = np.where(np.take_along_axis(dead, order, 1), -1, found)
            else:
                s, found = s[:, :kk], found[:, :kk]
            valid = found >= 0
            r = np.full(found.shape, -1, dtype=np.int64)
            if valid.any():
                r[valid] = self._rows_of(found[valid])
        sims[:, : r.shape[1]] = np.where(r >= 0, s, -np.inf)
        rows[:, : r.shape[1]] = r
        return sims, rows

    @_locked
    def _neighbours(
        self, X: Any, k: int | None, superclass: Any, steer: Steer | None
    ) -> tuple[np.ndarray, np.ndarray]:
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
                sims[sel], rows[sel] = self._neighbours(Q[sel], k, g, steer)
            return sims, rows
        mask = self._allowed_rows(superclass, steer)
        for start in range(0, Q.shape[0], QUERY_CHUNK):
            sl = slice(start, start + QUERY_CHUNK)
            chunk = Q[sl] / np.maximum(np.linalg.norm(Q[sl], axis=1, keepdims=True), 1e-12)
            sims[sl], rows[sl] = self._search_rows(chunk, k, mask)
        return sims, rows

    @_locked
    def search(
        self,
        X: Any,
        k: int | None = None,
        *,
        superclass: Any = None,
        steer: Steer | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
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
        sims, rows = self._neighbours(X, k, superclass, steer)
        return sims, np.where(rows >= 0, self._ids[np.maximum(rows, 0)], -1)

    @_locked
    def neighbours(
        self,
        X: Any,
        k: int | None = None,
        *,
        superclass: Any = None,
        steer: Steer | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        sims, rows = self._neighbours(X, k, superclass, steer)
        mult = self._weights(sims, rows, "plurality", None, steer)
        return sims, np.where(rows >= 0, self._ids[np.maximum(rows, 0)], -1), mult

    # ------------------------------------------------------------- classify
    def _weights(
        self, sims: np.ndarray, rows: np.ndarray, voting: str | None, temperature: float | None,
        steer: Steer | None,
    ) -> np.ndarray:
        r = np.maximum(rows, 0)

        def column(key: str) -> tuple[np.ndarray, Any]:
            if key == "id":
                return self._ids[r], None
            values, vocab = (self._label, self._labels) if key == "label" else (self._source, self._sources)
            return values[r], lambda v: vocab.code.get(str(v), -1)

        return vote_weights(sims, rows >= 0, self._weight[r], voting or self.voting,
                            temperature or self.temperature, steer, column)

    @_locked
    def _scores(
        self, X: Any, k: int | None, voting: str | None, temperature: float | None,
        superclass: Any, steer: Steer | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        sims, rows = self._neighbours(X, k, superclass, steer)
        w = self._weights(sims, rows, voting, temperature, steer)
        codes = np.where(rows >= 0, self._class_of_code[self._label[np.maximum(rows, 0)]], -1)
        scores = class_scores(w, codes, len(self.classes_))
        return scores, sims, rows, w

    @_locked
    def predict_proba(
        self,
        X: Any,
        k: int | None = None,
        *,
        voting: str | None = None,
        temperature: float | None = None,
        superclass: Any = None,
        steer: Steer | None = None,
    ) -> np.ndarray:
        """Class probabilities from the neighbours' votes.

        Returns
        -------
        ndarray of shape (n, n_classes), float64
            Columns follow :attr:`classes_`.  A row is all zero when no
            neighbour voted (everything excluded).
        """
        return probabilities(self._scores(X, k, voting, temperature, superclass, steer)[0])

    @_locked
    def predict(
        self,
        X: Any,
        k: int | None = None,
        *,
        voting: str | None = None,
        temperature: float | None = None,
        superclass: Any = None,
        steer: Steer | None = None,
    ) -> np.ndarray:
        """Predicted labels, shape (n,), object array of str.

        Ties go to the class first in :attr:`classes_`; a query with no
        voting neighbour gets ``None``.  Parameters as in :meth:`predict_proba`.
        """
        return decisions(self._scores(X, k, voting, temperature, superclass, steer)[0], self.classes_)

    @_locked
    def top_k(
        self,
        X: Any,
        n: int = 5,
        *,
        k: int | None = None,
        voting: str | None = None,
        temperature: float | None = None,
        superclass: Any = None,
        steer: Steer | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` most probable classes per query.

        Returns
        -------
        labels : ndarray of shape (q, n), object
        probabilities : ndarray of shape (q, n), float64
        """
        n = check_k(n, "n")
        p = self.predict_proba(
            X, k, voting=voting, temperature=temperature, superclass=superclass, steer=steer
        )
        n = min(n, p.shape[1])
        order = np.argsort(-p, axis=1, kind="stable")[:, :n]
        return self.classes_.astype(object)[order], np.take_along_axis(p, order, 1)

    @_locked
    def score(self, X: Any, y: Any, k: int | None = None, **kwargs: Any) -> float:
        """Top-1 accuracy on ``(X, y)``."""
        pred = self.predict(X, k, **kwargs)
        y_ = np.asarray(as_strings(y, len(pred), "y"), dtype=object)
        return float(np.mean(pred == y_))

    @_locked
    def explain(
        self,
        X: Any,
        k: int | None = None,
        *,
        voting: str | None = None,
        temperature: float | None = None,
        superclass: Any = None,
        steer: Steer | None = None,
    ) -> list[Explanation]:
        """The neighbours behind each prediction, with their weights.

        Returns
        -------
        list of Explanation, one per query
        """
        scores, sims, rows, w = self._scores(X, k, voting, temperature, superclass, steer)
        ids = np.where(rows >= 0, self._ids[np.maximum(rows, 0)], -1)
        valid = ids[ids >= 0]
        meta = {m["id"]: m for m in self.get(np.unique(valid))} if valid.size else {}
        return build_explanations(scores, sims, ids, w, self.classes_, meta)

    # -------------------------------------------------------------- pruning
    @_locked
    def prune_harmful(self, X: Any, y: Any, k: int | None = None, **kwargs: Any) -> Any:
        """Remove entries that take part in more wrong than right decisions.

        See :func:`memory.prune_harmful`.
        """
        from ._prune import prune_harmful

        return prune_harmful(self, X, y, k, **kwargs)

    @_locked
    def prune_redundant(self, threshold: float = 0.98) -> Any:
        """Remove near-duplicates inside each class; see :func:`memory.prune_redundant`."""
        from ._prune import prune_redundant

        return prune_redundant(self, threshold)

    @_locked
    def compress(self, m: int = 4, *, snap: bool = False, seed: int = 0) -> Any:
        """Reduce each class to ``m`` sub-centroids; see :func:`memory.compress`."""
        from ._prune import compress

        return compress(self, m, snap=snap, seed=seed)

    # ---------------------------------------------------------- persistence
    def save(self, path: Any, *, wait: float = 0.0) -> Any:
        """Save atomically to a directory (see :func:`memory.save_memory`)."""
        from ._persist import save_memory

        return save_memory(self, path, wait=wait)

    @classmethod
    def load(
        cls, path: Any, *, dim: int | None = None, fingerprint: str | None = None
    ) -> VisualMemory:
        """Load a memory saved by :meth:`save` (see :func:`memory.load_memory`)."""
        from ._persist import load_snapshot

        return load_snapshot(path, dim=dim, fingerprint=fingerprint)

    @_locked
    def copy(self) -> VisualMemory:
        """An independent deep copy."""
        new = VisualMemory(
            self.dim, k=self.k, voting=self.voting, temperature=self.temperature,
            index=self.index_spec, nprobe=self.nprobe, ef_search=self.ef_search,
            rebuild_fraction=self.rebuild_fraction, fingerprint=self.fingerprint,
            progress=self.progress,
        )
        self._db.backup(new._db)
        new._next_id = self._next_id
        if self.dim is not None:
            new._flat = faiss.clone_index(self._flat)
        for name in ("_ids", "_label", "_source", "_super", "_weight"):
            setattr(new, name, getattr(self, name).copy())
        for name in ("_labels", "_sources", "_supers"):
            setattr(new, name, _Vocab(getattr(self, name).values))
        return new

