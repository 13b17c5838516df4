"""Edits of the Milvus memory: add, select, read back, unlearn and re-weight entries.

A mixin of :class:`memory.MilvusMemory`.  Every edit validates all its input
before the first row is written; deletes make this client's next reads
``Strong`` so a removed entry never comes back to it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .._errors import InputError, UnknownEntryError
from .._validation import as_ids, check_weight, prepare_rows
from ._client import FIELDS, ID_BATCH, MAX_REF, MAX_TEXT, all_of, as_values, in_clause
from ._state import MilvusState

__all__ = ["MilvusEditMixin"]


class MilvusEditMixin(MilvusState):
    """Add, select, remove and re-weight entries (see :class:`memory.MilvusMemory`)."""

    def add(self, X: Any, labels: Any, *, ids: Any = None, superclass: Any = "", source: Any = "default",
            refs: Any = None, weight: float = 1.0, allow_zero: bool = False) -> np.ndarray:
        """Add embeddings with their metadata; see :meth:`memory.VisualMemory.add`.

        Everything is validated before the first row is written.  Zero
        vectors are refused even with ``allow_zero``: Milvus's cosine metric
        is undefined on them.
        """
        with self._lock:
            rows = prepare_rows(X, labels, dim=self.dim, ids=ids, superclass=superclass, source=source,
                                refs=refs, weight=weight, allow_zero=allow_zero)
            if allow_zero and not np.linalg.norm(rows.X, axis=1).all():
                raise InputError("a Milvus memory cannot hold zero vectors (cosine similarity is undefined "
                                 "on them); drop those rows or use the faiss backend")
            for name, values, limit in (("labels", rows.labels, MAX_TEXT), ("superclass", rows.superclasses,
                                        MAX_TEXT), ("source", rows.sources, MAX_TEXT),
                                        ("refs", [r or "" for r in rows.refs], MAX_REF)):
                long = next((v for v in values if len(v.encode()) > limit), None)
                if long is not None:
                    raise InputError(f"{name} value {long[:40]!r}... is over {limit} bytes; shorten it")
            if rows.ids is not None:
                if len(set(rows.ids.tolist())) != len(rows):
                    raise InputError("ids repeat within the batch; give unique ids")
                clash = self._existing(rows.ids)
                if clash.size:
                    raise InputError(f"duplicate id {int(clash[0])}: it is already in the memory; "
                                     "remove it first or leave ids=None")
            if self.dim is None:
                self._create(rows.X.shape[1])
            new_ids = rows.ids if rows.ids is not None else self._new_ids(len(rows))
            step = max(1, (16 << 20) // (4 * rows.X.shape[1]))
            for start in range(0, len(rows), step):
                sl = slice(start, start + step)
                data = [
                    {"id": int(i), "vector": v, "label": lab, "superclass": sup, "source": src,
                     "ref": ref or "", "weight": float(rows.weight)}
                    for i, v, lab, sup, src, ref in zip(
                        new_ids[sl], rows.X[sl], rows.labels[sl], rows.superclasses[sl], rows.sources[sl],
                        rows.refs[sl])
                ]
                self._client.insert(self.collection, data=data)
            self._after_delete = False  # the insert's timestamp covers any earlier delete
            self._tally.update(zip(rows.labels, rows.superclasses, rows.sources))
            self._next_id = max(self._next_id, int(new_ids.max()) + 1)
            return np.asarray(new_ids, dtype=np.int64)

    def _existing(self, ids: np.ndarray) -> np.ndarray:
        if self.dim is None:
            return np.empty(0, dtype=np.int64)
        found: list[int] = []
        for start in range(0, len(ids), ID_BATCH):
            chunk = ids[start:start + ID_BATCH]
            res = self._client.query(self.collection, filter=in_clause("id", chunk), output_fields=["id"],
                                     consistency_level=self._read_level())
            found += [int(r["id"]) for r in res]
        return np.array(sorted(found), dtype=np.int64)

    def select(self, ids: Any = None, *, label: Any = None, source: Any = None,
               superclass: Any = None) -> np.ndarray:
        """Ids of the entries matching every given criterion, sorted.

        Unknown ids, labels, sources or superclasses raise :class:`UnknownEntryError`.
        """
        rows = self._matching(ids, label, source, superclass, [])
        return np.array(sorted(int(r["id"]) for r in rows), dtype=np.int64)

    def _expected(self, label: Any, source: Any, superclass: Any) -> int:
        """How many entries match, from the local tally of (label, superclass, source)."""
        want = [None if v is None else set(as_values(v) or []) for v in (label, superclass, source)]
        return int(sum(c for key, c in self._tally.items()
                       if all(w is None or k in w for k, w in zip(key, want))))

    def _matching(self, ids: Any, label: Any, source: Any, superclass: Any,
                  fields: list[str]) -> list[dict[str, Any]]:
        """Rows (id plus ``fields``) matching every criterion, in one pass over Milvus."""
        clauses = []
        for field, value, present in (("label", label, self.classes_), ("source", source, self.sources_),
                                      ("superclass", superclass, self.superclasses_)):
            vals = as_values(value)
            if vals is None:
                continue
            unknown = [v for v in vals if v not in set(present.tolist())]
            if unknown:
                raise UnknownEntryError(f"unknown {field} {unknown[0]!r}; see counts(by={field!r})")
            clauses.append(in_clause(field, vals))
        if ids is None:
            if not clauses:
                raise InputError("give ids, label, source and/or superclass to select")
            if self.dim is None:
                return []
            return list(self._iterate(all_of(*clauses), ["id", *fields],
                                      expected=self._expected(label, source, superclass)))
        wanted = np.unique(as_ids(ids))
        rows: list[dict[str, Any]] = []
        seen: set[int] = set()
        for start in range(0, len(wanted), ID_BATCH):
            chunk = wanted[start:start + ID_BATCH]
            for r in self._client.query(self.collection, filter=all_of(in_clause("id", chunk), *clauses),
                                        output_fields=["id", "superclass", *fields],
                                        consistency_level=self._read_level()) if self.dim is not None else []:
                rows.append(r)
                seen.add(int(r["id"]))
        if not clauses:
            missing = [int(i) for i in wanted if int(i) not in seen]
            if missing:
                raise UnknownEntryError(f"unknown id {missing[0]}; it is not (or no longer) in the memory")
        return rows

    def get(self, ids: Any) -> list[dict[str, Any]]:
        """Metadata of entries, in the order of ``ids``."""
        wanted = as_ids(ids)
        rows: dict[int, dict[str, Any]] = {}
        for start in range(0, len(wanted), ID_BATCH):
            chunk = np.unique(wanted[start:start + ID_BATCH])
            for r in self._client.query(self.collection, filter=in_clause("id", chunk), output_fields=list(FIELDS),
                                        consistency_level=self._read_level()):
                rows[int(r["id"])] = {"id": int(r["id"]), "label": r["label"], "superclass": r["superclass"],
                                      "source": r["source"], "ref": r["ref"] or None,
                                      "weight": float(r["weight"])}
        missing = [int(i) for i in wanted if int(i) not in rows]
        if missing:
            raise UnknownEntryError(f"unknown id {missing[0]}; it is not (or no longer) in the memory")
        return [rows[int(i)] for i in wanted]

    def weights(self, ids: Any) -> np.ndarray:
        """The stored vote weights of ``ids``, shape (len(ids),), float32."""
        return np.array([m["weight"] for m in self.get(ids)], dtype=np.float32)

    def vectors(self, ids: Any) -> np.ndarray:
        """Stored (normalised) vectors, shape (len(ids), dim), in the order of ``ids``."""
        wanted = as_ids(ids)
        found: dict[int, np.ndarray] = {}
        for start in range(0, len(wanted), ID_BATCH):
            chunk = np.unique(wanted[start:start + ID_BATCH])
            for r in self._client.query(self.collection, filter=in_clause("id", chunk), output_fields=["vector"],
                                        consistency_level=self._read_level()):
                found[int(r["id"])] = np.asarray(r["vector"], dtype=np.float32)
        missing = [int(i) for i in wanted if int(i) not in found]
        if missing:
            raise UnknownEntryError(f"unknown id {missing[0]}; it is not (or no longer) in the memory")
        return np.stack([found[int(i)] for i in wanted]) if len(wanted) else np.empty((0, self.dim or 0),
                                                                                      np.float32)

    def remove(self, ids: Any = None, *, label: Any = None, source: Any = None,
               superclass: Any = None) -> np.ndarray:
        """Exactly unlearn entries by id, label, source and/or superclass; returns the removed ids.

        This client never sees a removed id again (``Session`` consistency);
        with ``Strong`` no client does.
        """
        with self._lock:
            rows = self._matching(ids, label, source, superclass, ["label", "superclass", "source"])
            doomed = np.array(sorted(int(r["id"]) for r in rows), dtype=np.int64)
            if doomed.size == 0:
                return doomed
            for start in range(0, len(doomed), ID_BATCH):
                self._client.delete(self.collection, ids=doomed[start:start + ID_BATCH].tolist())
            self._after_delete = True
            self._tally.subtract(Counter((r["label"], r["superclass"], r["source"]) for r in rows))
            self._tally = Counter({key: c for key, c in self._tally.items() if c > 0})
            return doomed

    def set_weight(self, weight: float, ids: Any = None, *, label: Any = None, source: Any = None,
                   superclass: Any = None) -> np.ndarray:
        """Persistently set the vote weight of matching entries (0 silences them); returns their ids.

        Same signature and meaning as :meth:`memory.VisualMemory.set_weight`.
        """
        weight = check_weight(weight)
        with self._lock:
            chosen = self.select(ids, label=label, source=source, superclass=superclass)
            for start in range(0, len(chosen), ID_BATCH):
                chunk = chosen[start:start + ID_BATCH]
                rows = self._client.query(self.collection, filter=in_clause("id", chunk),
                                          output_fields=["vector", *FIELDS], consistency_level=self._read_level())
                old = [dict(r, vector=np.asarray(r["vector"], dtype=np.float32)) for r in rows]
                new = [dict(r, weight=float(weight)) for r in old]
                # Delete, then insert: Milvus 2.3 can keep an earlier upserted copy of a row
                # beside a later one, and a search then returns either.  If the insert
                # fails, the rows go back as they were.
                self._client.delete(self.collection, ids=[int(r["id"]) for r in old])
                try:
                    self._client.insert(self.collection, data=new)
                except BaseException:
                    self._client.insert(self.collection, data=old)
                    raise
            return chosen
