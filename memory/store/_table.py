"""The memory's entries: ids, labels, sources, superclasses, image references and weights.

One table is the single source of truth for an entry's metadata.  Columns
are numpy arrays (text columns as integer codes into a vocabulary), so
selecting by label or source is a vectorised comparison.  A table is never
changed in place: an edit builds a new table, which the memory swaps in only
once every other step of the edit has succeeded, so a failed edit leaves the
old table as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import InputError, UnknownEntryError
from .._validation import as_ids, as_set

__all__ = ["COLUMNS", "EntryTable", "Vocab"]

#: The text columns, by the name users select with.
COLUMNS = ("label", "source", "superclass")

_SCHEMA = """
CREATE TABLE entries (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    superclass TEXT NOT NULL,
    source TEXT NOT NULL,
    ref TEXT,
    weight REAL NOT NULL DEFAULT 1.0
);
"""
#: Built after the rows are in: one sort each, rather than a tree kept in order row by row.
_INDEXES = """
CREATE INDEX entries_label ON entries(label);
CREATE INDEX entries_source ON entries(source);
CREATE INDEX entries_superclass ON entries(superclass);
"""


class Vocab:
    """String <-> stable integer code; codes are never reused."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: list[str] = []
        self.code: dict[str, int] = {}
        self.encode(list(values))

    def encode(self, values: Sequence[str]) -> np.ndarray:
        """Codes of ``values``, shape (n,), int32; new values get new codes."""
        for v in dict.fromkeys(values):  # new values in order of first appearance
            if v not in self.code:
                self.code[v] = len(self.values)
                self.values.append(v)
        return np.fromiter(map(self.code.__getitem__, values), dtype=np.int32, count=len(values))

    def codes_of(self, values: Iterable[str]) -> np.ndarray:
        """Codes of the known ``values`` (unknown ones are left out), int32."""
        return np.array([self.code[v] for v in values if v in self.code], dtype=np.int32)

    def copy(self) -> Vocab:
        return Vocab(self.values)


class EntryTable:
    """The metadata of every entry, in storage order (row ``i`` is the index's vector ``i``).

    Attributes
    ----------
    ids : ndarray of shape (n,), int64
    codes : dict of str to ndarray of shape (n,), int32
        ``codes[c][i]`` is row ``i``'s value of column ``c`` (one of :data:`COLUMNS`)
        as a code into ``vocabs[c]``.
    vocabs : dict of str to Vocab
    weight : ndarray of shape (n,), float32
        Persistent vote weights.
    refs : ndarray of shape (n,), object
        Image references (str) or None.
    next_id : int
        The id the next automatically numbered entry gets.
    """

    def __init__(self, ids: np.ndarray | None = None, codes: dict[str, np.ndarray] | None = None,
                 vocabs: dict[str, Vocab] | None = None, weight: np.ndarray | None = None,
                 refs: np.ndarray | None = None, next_id: int = 0) -> None:
        self.ids = np.empty(0, dtype=np.int64) if ids is None else ids
        self.codes = codes or {c: np.empty(0, dtype=np.int32) for c in COLUMNS}
        self.vocabs = vocabs or {c: Vocab() for c in COLUMNS}
        self.weight = np.empty(0, dtype=np.float32) if weight is None else weight
        self.refs = np.empty(0, dtype=object) if refs is None else refs
        self.next_id = int(next_id)
        self._derived: dict[str, Any] = {}

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    # ------------------------------------------------------------- lookups
    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of ``ids``, shape (m,), int64; raises for an unknown id."""
        if "order" not in self._derived:
            order = np.argsort(self.ids, kind="stable")
            self._derived["order"], self._derived["sorted"] = order, self.ids[order]
        order, sorted_ids = self._derived["order"], self._derived["sorted"]
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
        return order[pos]  # type: ignore[no-any-return]

    def values(self, column: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Column ``column``'s text at ``rows`` (all rows by default), object array of str."""
        codes = self.codes[column] if rows is None else self.codes[column][rows]
        return np.asarray(self.vocabs[column].values, dtype=object)[codes] if len(codes) else np.empty(0, object)

    def present(self, column: str) -> np.ndarray:
        """The sorted distinct values of ``column`` that some row holds, str array."""
        key = "present:" + column
        if key not in self._derived:
            vocab = self.vocabs[column]
            self._derived[key] = np.array(sorted(vocab.values[c] for c in np.unique(self.codes[column])),
                                          dtype=str)
        return self._derived[key]  # type: ignore[no-any-return]

    @property
    def class_of_code(self) -> np.ndarray:
        """Label code -> index into ``present("label")`` (-1 for labels no row holds)."""
        if "class_of_code" not in self._derived:
            lookup = {c: i for i, c in enumerate(self.present("label"))}
            self._derived["class_of_code"] = np.array(
                [lookup.get(v, -1) for v in self.vocabs["label"].values], dtype=np.int64
            )
        return self._derived["class_of_code"]  # type: ignore[no-any-return]

    def class_index(self, rows: np.ndarray) -> np.ndarray:
        """Index into ``present("label")`` of each row's label; -1 where ``rows`` is -1."""
        return np.where(rows >= 0, self.class_of_code[self.codes["label"][np.maximum(rows, 0)]], -1)

    def mask(self, column: str, values: Iterable[str]) -> np.ndarray:
        """Rows whose ``column`` is one of ``values`` (unknown values match nothing), bool (n,)."""
        return np.isin(self.codes[column], self.vocabs[column].codes_of(values))

    def match(self, column: str, values: Any) -> np.ndarray:
        """Like :meth:`mask`, but a value no row holds raises :class:`UnknownEntryError`."""
        wanted = sorted(as_set(values))
        held = set(self.present(column).tolist())
        unknown = [v for v in wanted if v not in held]
        if unknown:
            raise UnknownEntryError(
                f"unknown {column} {unknown[0]!r}: no entry has it; see memory.counts({column!r})"
            )
        return self.mask(column, wanted)

    def select(self, ids: Any = None, *, label: Any = None, source: Any = None,
               superclass: Any = None) -> np.ndarray:
        """Sorted ids of the rows matching every given criterion, int64."""
        keep: np.ndarray | None = None
        for column, values in zip(COLUMNS, (label, source, superclass)):
            if values is not None:
                m = self.match(column, values)
                keep = m if keep is None else keep & m
        if ids is not None:
            id_arr = as_ids(ids, name="ids")
            rows = self.rows_of(id_arr)  # raises for unknown ids
            if keep is None:
                return np.unique(id_arr)
            return np.unique(id_arr[keep[rows]])
        if keep is None:
            raise InputError("give ids, label, source or superclass to select entries")
        return np.sort(self.ids[keep])

    def get(self, ids: np.ndarray) -> list[dict[str, Any]]:
        """Each id's metadata as a dict (id, label, superclass, source, ref, weight), in order."""
        rows = self.rows_of(ids)
        labels, supers, sources = (self.values(c, rows) for c in ("label", "superclass", "source"))
        return [
            {"id": int(i), "label": str(lab), "superclass": str(sup), "source": str(src),
             "ref": None if ref is None else str(ref), "weight": float(w)}
            for i, lab, sup, src, ref, w in zip(ids.tolist(), labels, supers, sources,
                                                self.refs[rows], self.weight[rows])
        ]

    def counts(self, by: str) -> dict[str, int]:
        """Rows per value of ``by`` (a column name), sorted by value."""
        if by not in COLUMNS:
            raise InputError(f"by must be 'label', 'source' or 'superclass', got {by!r}")
        codes, n = np.unique(self.codes[by], return_counts=True)
        vocab = self.vocabs[by].values
        return dict(sorted((vocab[c], int(k)) for c, k in zip(codes, n)))

    # --------------------------------------------------------------- edits
    def appended(self, ids: np.ndarray, labels: Sequence[str], superclasses: Sequence[str],
                 sources: Sequence[str], refs: Sequence[str | None], weight: float) -> EntryTable:
        """A new table with these rows added at the end (this one is unchanged)."""
        vocabs = {c: v.copy() for c, v in self.vocabs.items()}
        new = {"label": labels, "source": sources, "superclass": superclasses}
        return EntryTable(
            np.concatenate([self.ids, ids]),
            {c: np.concatenate([self.codes[c], vocabs[c].encode(new[c])]) for c in COLUMNS},
            vocabs,
            np.concatenate([self.weight, np.full(len(ids), weight, dtype=np.float32)]),
            np.concatenate([self.refs, np.asarray(list(refs), dtype=object).reshape(-1)]),
            max(self.next_id, int(ids.max()) + 1) if len(ids) else self.next_id,
        )

    def kept(self, keep: np.ndarray) -> EntryTable:
        """A new table of the rows where ``keep`` (bool, shape (n,)) is true."""
        return EntryTable(self.ids[keep], {c: self.codes[c][keep] for c in COLUMNS}, self.vocabs,
                          self.weight[keep], self.refs[keep], self.next_id)

    def reweighted(self, rows: np.ndarray, weight: float) -> EntryTable:
        """A new table with the weight of ``rows`` set to ``weight``."""
        w = self.weight.copy()
        w[rows] = weight
        return EntryTable(self.ids, self.codes, self.vocabs, w, self.refs, self.next_id)

    def copy(self) -> EntryTable:
        return EntryTable(self.ids.copy(), {c: a.copy() for c, a in self.codes.items()},
                          {c: v.copy() for c, v in self.vocabs.items()}, self.weight.copy(),
                          self.refs.copy(), self.next_id)

    # --------------------------------------------------------------- files
    def write_sqlite(self, path: Path) -> None:
        """Write every row to a new SQLite database at ``path`` (table ``entries``).

        The file is new, in a snapshot that is synced and published whole
        (:func:`memory.store.snapshot_writer`), so SQLite keeps no journal and
        does not sync it itself: a crash leaves an unpublished snapshot, never
        a half-written database in a published one.
        """
        db = sqlite3.connect(path)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.executescript(_SCHEMA)
            labels, supers, sources = (self.values(c) for c in ("label", "superclass", "source"))
            with db:
                db.executemany(
                    "INSERT INTO entries (id, label, superclass, source, ref, weight) VALUES (?, ?, ?, ?, ?, ?)",
                    zip(self.ids.tolist(), labels.tolist(), supers.tolist(), sources.tolist(),
                        self.refs.tolist(), self.weight.astype(np.float64).tolist()),
                )
            db.executescript(_INDEXES)
        finally:
            db.close()

    @classmethod
    def read_sqlite(cls, path: Path, ids: np.ndarray, next_id: int) -> EntryTable:
        """The table stored at ``path``, rows in the order of ``ids``.

        Raises
        ------
        sqlite3.Error
            The file is not a readable database with an ``entries`` table.
        InputError
            The rows differ from ``ids`` or hold values of the wrong type.
        """
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            by_id = {r[0]: r[1:] for r in db.execute(
                "SELECT id, label, source, superclass, ref, weight FROM entries"
            )}
        finally:
            db.close()
        if len(by_id) != len(ids) or any(int(i) not in by_id for i in ids.tolist()):
            raise InputError("metadata and ids disagree")
        rows = [by_id[int(i)] for i in ids.tolist()]
        if not all(isinstance(r[0], str) and isinstance(r[1], str) and isinstance(r[2], str)
                   and (r[3] is None or isinstance(r[3], str))
                   and isinstance(r[4], (int, float)) and np.isfinite(r[4]) and r[4] >= 0 for r in rows):
            raise InputError("stored metadata holds a non-text label, source, superclass or ref, or an "
                             "invalid weight")
        vocabs = {c: Vocab() for c in COLUMNS}
        codes = {c: vocabs[c].encode([r[j] for r in rows]) for j, c in enumerate(("label", "source", "superclass"))}
        refs = np.empty(len(rows), dtype=object)
        refs[:] = [r[3] for r in rows]
        return cls(ids.astype(np.int64), codes, vocabs, np.array([r[4] for r in rows], dtype=np.float32),
                   refs, next_id)
