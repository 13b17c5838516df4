"""The visual memory on Milvus: Milvus Lite on a local file, or a Milvus server or cluster.

One collection holds the whole memory: ``id`` (int64 primary key), the
L2-normalised ``vector``, and scalar fields ``label``, ``superclass`` (the
partition key, so one superclass is one partition), ``source``, ``ref`` and
``weight``.  Searches rank by inner product (cosine on the normalised
vectors) and vote on the client exactly as :class:`~memory.VisualMemory`
does.  Reads use ``Session`` consistency by default (a client always sees
its own inserts and deletes); ``Strong`` makes every reader see every
client's deletes at once.

The memory and its per-superclass shard view live together: the view is a thin filter over
the memory's client, tally and read-consistency state.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import atomic_write

from .._backend import DEFAULT_COLLECTION
from .._errors import BackboneMismatchError, InputError, MemoryFormatError, MissingBackendError, UnknownEntryError
from .._validation import as_embeddings, as_id_set, as_ids, check_k, check_knn, check_weight, prepare_rows
from ..store import Explanation, Steer, build_explanations, class_scores, decisions, probabilities, vote_weights

__all__ = ["MilvusMemory", "MilvusShard", "milvus_client"]

FIELDS = ("label", "superclass", "source", "ref", "weight")
MAX_TEXT = 512
MAX_REF = 2048
INDEXES = ("FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8")
QUERY_BATCH = 256
QUERY_WINDOW = 16384  # Milvus's largest offset + limit of one query
ID_BATCH = 1000


class _OldServerNotice(logging.Filter):
    """Drop pymilvus's notice that a 2.3 server does not report MVCC timestamps (it falls back correctly)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "mvccTs" not in record.getMessage()


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_OldServerNotice())


def milvus_client(uri: str, token: str | None = None, timeout: float | None = None) -> Any:
    """A ``pymilvus.MilvusClient`` for ``uri``, with clear errors when it cannot be had."""
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise MissingBackendError(
            "the Milvus backend needs pymilvus (and milvus-lite for a local .db file): "
            "pip install 'supersub[milvus]'"
        ) from exc
    # Ping at most every 5 minutes: gRPC servers (Milvus among them) answer more frequent
    # keepalive pings on an idle connection with GOAWAY "too_many_pings".
    kwargs: dict[str, Any] = {"uri": uri, "grpc_options": {"grpc.keepalive_time_ms": 300_000}}
    if token:
        kwargs["token"] = token
    if timeout is not None:
        kwargs["timeout"] = timeout
    try:
        return MilvusClient(**kwargs)
    except Exception as exc:
        where = "Milvus Lite file" if uri.endswith(".db") else "Milvus server"
        hint = ("install milvus-lite (pip install 'supersub[milvus]')" if uri.endswith(".db")
                else "start the server or check the host and port")
        raise ConnectionError(f"cannot open the {where} at {uri}: {str(exc).splitlines()[0]}; {hint}") from exc


def _quote(value: str) -> str:
    return json.dumps(str(value))


def _in(field: str, values: Iterable[Any], negate: bool = False) -> str:
    vals = list(values)
    if field == "id":
        body = ", ".join(str(int(v)) for v in vals)
    else:
        body = ", ".join(_quote(v) for v in vals)
    return f"{field} {'not in' if negate else 'in'} [{body}]"


def _and(*clauses: str) -> str:
    return " and ".join(f"({c})" for c in clauses if c)


def _values(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or np.isscalar(value):
        return [str(value)]
    return [str(v) for v in value]


class MilvusMemory:
    """An editable kNN memory stored in a Milvus collection.

    Parameters
    ----------
    uri : str
        ``http://HOST:PORT`` for a Milvus server or cluster, or a local
        ``PATH.db`` for Milvus Lite.
    collection : str, default "supersub"
    dim : int, optional
        Needed to create the collection; read from it when it exists.
    k, voting, temperature
        kNN settings, as in :class:`~memory.VisualMemory`.
    index : {"FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8"}, default "FLAT"
        Milvus index on the vectors; FLAT is exact.
    index_params : dict, optional
        Build parameters (``M``/``efConstruction`` for HNSW, ``nlist`` for IVF).
    ef_search, nprobe : int, optional
        Search parameters of HNSW and IVF indexes (the names
        :class:`~memory.VisualMemory` uses; ``ef=`` is a deprecated alias).
    consistency : str, default "Session"
        Milvus consistency level of every read.  "Session" lets this client
        read its own writes at once (an entry it removed never comes back to
        it); readers that must never see entries another client unlearned
        use "Strong", which waits for the latest writes (about 200 ms a read
        on a standalone server).  The first read after this client deletes
        is always strong.
    fingerprint : str, optional
        Backbone fingerprint; stored with a new collection and checked
        against an existing one.
    create : bool, default True
        Create the collection when it does not exist.
    num_partitions : int, default 16
        Partitions the superclass partition key hashes into.
    token : str, optional
        Credentials for a secured server (``"user:password"``).
    """

    def __init__(
        self,
        uri: str,
        collection: str = DEFAULT_COLLECTION,
        *,
        dim: int | None = None,
        k: int = 10,
        voting: str = "softmax",
        temperature: float = 0.07,
        index: str = "FLAT",
        index_params: dict[str, Any] | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
        consistency: str = "Session",
        fingerprint: str | None = None,
        create: bool = True,
        num_partitions: int = 16,
        token: str | None = None,
        ef: int | None = None,
    ) -> None:
        if ef is not None:
            warnings.warn("MilvusMemory(ef=...) is deprecated; use ef_search=, as VisualMemory does",
                          DeprecationWarning, stacklevel=2)
            ef_search = ef if ef_search is None else ef_search
        self.k, self.voting, self.temperature = check_knn(k, voting, temperature)
        if index.upper() not in INDEXES:
            raise InputError(f"index must be one of {INDEXES}, got {index!r}")
        self.index = index.upper()
        self.index_params = dict(index_params or {})
        self.ef_search, self.nprobe = ef_search, nprobe
        self.consistency = consistency
        self.uri, self.collection = str(uri), str(collection)
        self.num_partitions = int(num_partitions)
        self._lock = threading.RLock()
        self._client = milvus_client(self.uri, token)
        self._tally: Counter[tuple[str, str, str]] = Counter()
        self._after_delete = False
        self._next_id = 0
        self.dim: int | None = None
        self.fingerprint = fingerprint
        if self._client.has_collection(self.collection):
            self._attach(dim, fingerprint)
        elif not create:
            raise MemoryFormatError(f"there is no collection {self.collection!r} at {self.uri}")
        elif dim is not None:
            self._create(check_k(dim, "dim"))

    # ------------------------------------------------------------ internals
    def _create(self, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        about = {"supersub": 1, "fingerprint": self.fingerprint}
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                            description=json.dumps(about))
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("label", DataType.VARCHAR, max_length=MAX_TEXT)
        schema.add_field("superclass", DataType.VARCHAR, max_length=MAX_TEXT, is_partition_key=True)
        schema.add_field("source", DataType.VARCHAR, max_length=MAX_TEXT)
        schema.add_field("ref", DataType.VARCHAR, max_length=MAX_REF)
        schema.add_field("weight", DataType.FLOAT)
        params = self._client.prepare_index_params()
        defaults = {"HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 1024},
                    "IVF_SQ8": {"nlist": 1024}}.get(self.index, {})
        params.add_index(field_name="vector", index_type=self.index, metric_type="IP",
                         params={**defaults, **self.index_params})
        self._client.create_collection(self.collection, schema=schema, index_params=params,
                                       consistency_level=self.consistency, num_partitions=self.num_partitions)
        if self.fingerprint is not None:  # Milvus Lite keeps properties but not the description
            self._client.alter_collection_properties(self.collection,
                                                     properties={"supersub.fingerprint": self.fingerprint})
        self.dim = dim

    def _attach(self, dim: int | None, fingerprint: str | None) -> None:
        info = self._client.describe_collection(self.collection)
        fields = {f["name"]: f for f in info["fields"]}
        missing = {"id", "vector", *FIELDS} - set(fields)
        if missing:
            raise MemoryFormatError(
                f"collection {self.collection!r} at {self.uri} is not a supersub memory "
                f"(no field {sorted(missing)[0]!r}); use another collection name"
            )
        params = fields["vector"].get("params", {})
        self.dim = int(params.get("dim", 0)) or None
        if dim is not None and self.dim is not None and int(dim) != self.dim:
            raise InputError(
                f"collection {self.collection!r} holds {self.dim}-d vectors, not {dim}-d; embed with its "
                "backbone or use another collection"
            )
        try:
            about = json.loads(info.get("description") or "{}")
        except ValueError:
            about = {}
        stored = (info.get("properties") or {}).get("supersub.fingerprint") or about.get("fingerprint")
        if fingerprint is not None and stored is not None and stored != fingerprint:
            raise BackboneMismatchError(
                f"collection {self.collection!r} was built with backbone {stored}, not {fingerprint}; "
                "embed queries with the memory's backbone"
            )
        self.fingerprint = stored or fingerprint
        self._client.load_collection(self.collection)
        for row in self._iterate("", ["label", "superclass", "source", "id"]):
            self._tally[(row["label"], row["superclass"], row["source"])] += 1
            self._next_id = max(self._next_id, int(row["id"]) + 1)

    def _iterate(self, expr: str, fields: list[str], batch: int = 4096,
                 expected: int | None = None) -> Iterator[dict[str, Any]]:
        """Every row matching ``expr``; one query when ``expected`` rows fit Milvus's result window."""
        if expected is not None and expected < QUERY_WINDOW:
            rows = self._client.query(self.collection, filter=expr or "id >= 0", output_fields=fields,
                                      limit=QUERY_WINDOW, consistency_level=self._read_level()) if expected else []
            if len(rows) < QUERY_WINDOW:  # a full window means another writer added more: iterate
                yield from rows
                return
        it = self._client.query_iterator(self.collection, batch_size=batch, filter=expr or "id >= 0",
                                         output_fields=fields, consistency_level=self._read_level())
        try:
            while True:
                page = it.next()
                if not page:
                    return
                yield from page
        finally:
            it.close()

    def _read_level(self) -> str:
        """The consistency of the next read: ``Strong`` after this client deleted or upserted, else the setting.

        Milvus 2.3 does not return the timestamp of a delete (an upsert is a
        delete and an insert), and a ``Session`` read sees the collection as of
        this client's last known write, so it can still see the old rows.
        Reads stay ``Strong`` until this client's next insert, whose
        timestamp is later than the delete's.
        """
        return "Strong" if self._after_delete else self.consistency

    def _search_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.ef_search is not None:
            params["ef"] = int(self.ef_search)
        if self.nprobe is not None:
            params["nprobe"] = int(self.nprobe)
        return {"metric_type": "IP", "params": params}

    def _filter(self, superclass: list[str] | None, steer: Steer | None) -> str:
        clauses = []
        if superclass is not None:
            clauses.append(_in("superclass", superclass))
        if steer is not None:
            if len(steer.exclude_ids):
                clauses.append(_in("id", as_id_set(steer.exclude_ids), negate=True))
            for field, values in (("label", steer.exclude_labels), ("source", steer.exclude_sources),
                                  ("superclass", steer.exclude_superclasses)):
                if values:
                    clauses.append(_in(field, values, negate=True))
        return _and(*clauses)

    def _hits(self, X: Any, k: int | None, superclass: Any, steer: Steer | None,
              fields: tuple[str, ...] = ("label", "source", "weight")) -> tuple[np.ndarray, ...]:
        """Neighbours with metadata: sims (n, k), ids (n, k) and one (n, k) object array per field."""
        k = check_k(self.k if k is None else k)
        if k > QUERY_WINDOW:
            raise InputError(f"k = {k} is over Milvus's limit of {QUERY_WINDOW} neighbours per query; ask for fewer")
        Q = as_embeddings(X, self.dim, "X")
        norms = np.linalg.norm(Q, axis=1, keepdims=True)
        Q = Q / np.where(norms > 0, norms, 1.0)
        n = len(Q)
        sims = np.full((n, k), -np.inf, dtype=np.float32)
        ids = np.full((n, k), -1, dtype=np.int64)
        meta = {f: np.empty((n, k), dtype=object) for f in fields}
        if self.dim is None or len(self) == 0:
            raise InputError("the memory is empty; add entries before searching")
        if superclass is not None:
            wanted = {superclass} if isinstance(superclass, str) else {str(v) for v in superclass}
            unknown = sorted(wanted - set(self.superclasses_.tolist()))
            if unknown:
                raise UnknownEntryError(
                    f"unknown superclass {unknown[0]!r}; present: {', '.join(self.superclasses_)}"
                )
        if superclass is None or isinstance(superclass, (str, set, frozenset, tuple)):
            groups = [(np.arange(n), _values(superclass) if not isinstance(superclass, (set, frozenset))
                       else sorted(superclass))]
        else:
            per_query = np.asarray([str(s) for s in superclass], dtype=object)
            if len(per_query) != n:
                raise InputError(f"got {len(per_query)} superclasses for {n} queries; give one per query")
            groups = [(np.flatnonzero(per_query == s), [s]) for s in dict.fromkeys(per_query.tolist())]
        for rows, sup in groups:
            expr = self._filter(sup, steer)
            for start in range(0, len(rows), QUERY_BATCH):
                chunk = rows[start:start + QUERY_BATCH]
                result = self._client.search(
                    self.collection, data=[q for q in Q[chunk]], limit=k, filter=expr,
                    output_fields=list(fields), search_params=self._search_params(),
                    consistency_level=self._read_level(),
                )
                for q, hits in zip(chunk, result):
                    for j, hit in enumerate(list(hits)[:k]):
                        ids[q, j] = int(hit["id"])
                        sims[q, j] = float(hit["distance"])
                        entity = hit["entity"]
                        for f in fields:
                            meta[f][q, j] = entity.get(f)
        return (sims, ids, *meta.values())

    def _new_ids(self, n: int) -> np.ndarray:
        # Time-based, increasing across restarts: unique for one writer per collection.
        start = max(self._next_id, time.time_ns() // 1000 * 1024)
        self._next_id = start + n
        return np.arange(start, start + n, dtype=np.int64)

    # ------------------------------------------------------------ properties
    def __len__(self) -> int:
        return int(sum(self._tally.values()))

    @property
    def n_entries(self) -> int:
        """Number of entries."""
        return len(self)

    def _present(self, position: int) -> np.ndarray:
        return np.array(sorted({key[position] for key, c in self._tally.items() if c > 0}), dtype=str)

    @property
    def classes_(self) -> np.ndarray:
        """Sorted labels present, shape (n_classes,), str."""
        return self._present(0)

    @property
    def superclasses_(self) -> np.ndarray:
        return self._present(1)

    @property
    def sources_(self) -> np.ndarray:
        return self._present(2)

    def counts(self, by: str = "label") -> dict[str, int]:
        """Entries per label, source or superclass."""
        position = {"label": 0, "superclass": 1, "source": 2}.get(by)
        if position is None:
            raise InputError(f"by must be 'label', 'source' or 'superclass', got {by!r}")
        out: Counter[str] = Counter()
        for key, c in self._tally.items():
            if c > 0:
                out[key[position]] += c
        return dict(sorted(out.items()))

    def __repr__(self) -> str:
        return (f"MilvusMemory({self.uri!r}, {self.collection!r}, {len(self)} entries, dim={self.dim}, "
                f"index={self.index!r}, k={self.k}, voting={self.voting!r})")

    # ------------------------------------------------------------------ edits
    def add(self, X: Any, labels: Any, *, ids: Any = None, superclass: Any = "", source: Any = "default",
            refs: Any = None, weight: float = 1.0) -> np.ndarray:
        """Add embeddings with their metadata; see :meth:`memory.VisualMemory.add`.

        Everything is validated before the first row is written.
        """
        with self._lock:
            rows = prepare_rows(X, labels, dim=self.dim, ids=ids, superclass=superclass, source=source,
                                refs=refs, weight=weight)
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
            res = self._client.query(self.collection, filter=_in("id", chunk), output_fields=["id"],
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
        want = [None if v is None else set(_values(v) or []) for v in (label, superclass, source)]
        return int(sum(c for key, c in self._tally.items()
                       if all(w is None or k in w for k, w in zip(key, want))))

    def _matching(self, ids: Any, label: Any, source: Any, superclass: Any,
                  fields: list[str]) -> list[dict[str, Any]]:
        """Rows (id plus ``fields``) matching every criterion, in one pass over Milvus."""
        clauses = []
        for field, value, present in (("label", label, self.classes_), ("source", source, self.sources_),
                                      ("superclass", superclass, self.superclasses_)):
            vals = _values(value)
            if vals is None:
                continue
            unknown = [v for v in vals if v not in set(present.tolist())]
            if unknown:
                raise UnknownEntryError(f"unknown {field} {unknown[0]!r}; see counts(by={field!r})")
            clauses.append(_in(field, vals))
        if ids is None:
            if not clauses:
                raise InputError("give ids, label, source and/or superclass to select")
            if self.dim is None:
                return []
            return list(self._iterate(_and(*clauses), ["id", *fields],
                                      expected=self._expected(label, source, superclass)))
        wanted = np.unique(as_ids(ids))
        rows: list[dict[str, Any]] = []
        seen: set[int] = set()
        for start in range(0, len(wanted), ID_BATCH):
            chunk = wanted[start:start + ID_BATCH]
            for r in self._client.query(self.collection, filter=_and(_in("id", chunk), *clauses),
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
            for r in self._client.query(self.collection, filter=_in("id", chunk), output_fields=list(FIELDS),
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
            for r in self._client.query(self.collection, filter=_in("id", chunk), output_fields=["vector"],
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
                rows = self._client.query(self.collection, filter=_in("id", chunk),
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

    def drop(self) -> None:
        """Delete the whole collection from Milvus."""
        with self._lock:
            if self._client.has_collection(self.collection):
                self._client.drop_collection(self.collection)
            self._tally.clear()
            self.dim = None

    def close(self) -> None:
        """Close the connection."""
        self._client.close()

    # ------------------------------------------------------------------ reads
    def search(self, X: Any, k: int | None = None, *, superclass: Any = None,
               steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Nearest entries by cosine similarity; see :meth:`memory.VisualMemory.search`.

        Returns
        -------
        sims : ndarray of shape (n, k), float32 (``-inf`` past the last hit)
        ids : ndarray of shape (n, k), int64 (``-1`` past the last hit)
        """
        sims, ids = self._hits(X, k, superclass, steer, fields=())[:2]
        return sims, ids

    def neighbours(self, X: Any, k: int | None = None, *, superclass: Any = None,
                   steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest entries with each one's vote multiplier; see :meth:`memory.VisualMemory.neighbours`."""
        sims, ids, labels, sources, weights = self._hits(X, k, superclass, steer)
        valid = ids >= 0
        cols = {"id": ids, "label": labels, "source": sources}
        mult = vote_weights(sims, valid, np.where(valid, weights, 0.0).astype(np.float32), "plurality",
                            self.temperature, steer, lambda key: (cols[key], None))
        return sims, ids, mult

    def _scores(self, X: Any, k: int | None, voting: str | None, temperature: float | None, superclass: Any,
                steer: Steer | None, fields: tuple[str, ...] = ("label", "source", "weight"),
                classes: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        sims, ids, *meta = self._hits(X, k, superclass, steer, fields)
        cols = dict(zip(fields, meta))
        valid = ids >= 0

        def column(key: str) -> tuple[np.ndarray, None]:
            return (ids if key == "id" else cols[key]), None

        w = vote_weights(sims, valid, np.where(valid, cols["weight"], 0.0).astype(np.float32),
                         voting or self.voting, temperature or self.temperature, steer, column)
        classes = self.classes_ if classes is None else classes
        index = {c: i for i, c in enumerate(classes)}
        labels, inverse = np.unique(np.where(valid, cols["label"], "").astype(str), return_inverse=True)
        codes = np.array([index.get(v, -1) for v in labels], dtype=np.int64)[inverse.reshape(ids.shape)]
        codes = np.where(valid, codes, -1)
        scores = class_scores(w, codes, len(classes))
        return scores, sims, ids, w, cols

    def predict_proba(self, X: Any, k: int | None = None, *, voting: str | None = None,
                      temperature: float | None = None, superclass: Any = None,
                      steer: Steer | None = None, classes: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities, shape (n, n_classes); columns follow :attr:`classes_` (or ``classes``)."""
        return probabilities(self._scores(X, k, voting, temperature, superclass, steer, classes=classes)[0])

    def predict(self, X: Any, k: int | None = None, *, voting: str | None = None,
                temperature: float | None = None, superclass: Any = None, steer: Steer | None = None,
                classes: np.ndarray | None = None) -> np.ndarray:
        """Predicted labels, shape (n,), object (``None`` where no neighbour voted)."""
        classes = self.classes_ if classes is None else classes
        return decisions(self._scores(X, k, voting, temperature, superclass, steer, classes=classes)[0], classes)

    def score(self, X: Any, y: Any, k: int | None = None, **kwargs: Any) -> float:
        """Top-1 accuracy on ``(X, y)``."""
        pred = self.predict(X, k, **kwargs)
        return float(np.mean(pred == np.asarray(y, dtype=object)))

    def explain(self, X: Any, k: int | None = None, *, voting: str | None = None,
                temperature: float | None = None, superclass: Any = None,
                steer: Steer | None = None, classes: np.ndarray | None = None) -> list[Explanation]:
        """The neighbours behind each prediction, with their weights."""
        fields = ("label", "source", "weight", "superclass", "ref")
        classes = self.classes_ if classes is None else classes
        scores, sims, ids, w, cols = self._scores(X, k, voting, temperature, superclass, steer, fields, classes)
        meta = {int(ids[q, j]): {"label": cols["label"][q, j], "source": cols["source"][q, j],
                                 "superclass": cols["superclass"][q, j], "ref": cols["ref"][q, j] or None}
                for q, j in zip(*np.nonzero(ids >= 0))}
        return build_explanations(scores, sims, ids, w, classes, meta)

    def shard(self, superclass: str) -> MilvusShard:
        """A view of one superclass (one partition), with the memory API."""
        return MilvusShard(self, str(superclass))

    # ---------------------------------------------------------- persistence
    def flush(self) -> None:
        """Make every insert and delete durable on the server."""
        if self.dim is not None:
            self._client.flush(self.collection)

    def wait_indexed(self, timeout: float = 600.0) -> float:
        """Flush, then wait until Milvus has indexed every row; returns the seconds waited.

        Rows not yet indexed are still searched (exhaustively), so this only
        matters for timing an approximate index.
        """
        start = time.perf_counter()
        self.flush()
        while time.perf_counter() - start < timeout:
            info = self._client.describe_index(self.collection, "vector") or {}
            if int(info.get("pending_index_rows", 0)) == 0 and \
                    int(info.get("indexed_rows", 0)) >= int(info.get("total_rows", 0)):
                return time.perf_counter() - start
            time.sleep(0.5)
        raise TimeoutError(f"Milvus did not finish indexing {self.collection!r} within {timeout:.0f} s")

    def save(self, path: Any) -> Path:
        """Flush, and write ``path/milvus.json``: how to reconnect (the data stays in Milvus)."""
        self.flush()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        spec = {"backend": "milvus", "uri": self.uri, "collection": self.collection,
                "settings": {"k": self.k, "voting": self.voting, "temperature": self.temperature,
                             "index": self.index, "ef_search": self.ef_search, "nprobe": self.nprobe,
                             "consistency": self.consistency, "fingerprint": self.fingerprint}}
        atomic_write(path / "milvus.json", json.dumps(spec, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: Any, **kwargs: Any) -> MilvusMemory:
        """Reconnect to the collection a :meth:`save` describes."""
        from .._backend import load_memory

        memory = load_memory(path, **kwargs)
        if not isinstance(memory, cls):
            raise MemoryFormatError(f"{path} holds an embedded memory, not a Milvus connection")
        return memory


class MilvusShard:
    """One superclass of a :class:`MilvusMemory`: what a routed classifier's specialist reads.

    Every read and edit is limited to the superclass's partition; class
    probabilities have one column per class of the superclass.
    """

    def __init__(self, store: MilvusMemory, superclass: str) -> None:
        self.store, self.superclass = store, superclass

    @property
    def dim(self) -> int | None:
        return self.store.dim

    @property
    def k(self) -> int:
        return self.store.k

    @property
    def fingerprint(self) -> str | None:
        return self.store.fingerprint

    def _keys(self) -> list[tuple[str, str, str]]:
        return [key for key, c in self.store._tally.items() if c > 0 and key[1] == self.superclass]

    def __len__(self) -> int:
        return int(sum(self.store._tally[key] for key in self._keys()))

    @property
    def classes_(self) -> np.ndarray:
        return np.array(sorted({key[0] for key in self._keys()}), dtype=str)

    @property
    def sources_(self) -> np.ndarray:
        return np.array(sorted({key[2] for key in self._keys()}), dtype=str)

    @property
    def ids_(self) -> np.ndarray:
        return self.select() if len(self) else np.empty(0, dtype=np.int64)

    def __repr__(self) -> str:
        return f"MilvusShard({self.superclass!r} of {self.store!r})"

    def _own(self, superclass: Any) -> str:
        """This shard's superclass; any other one is unknown here, as in an embedded shard."""
        if superclass is None or superclass == "":
            return self.superclass
        wanted = {superclass} if isinstance(superclass, str) else {str(v) for v in superclass}
        if wanted != {self.superclass}:
            raise UnknownEntryError(f"unknown superclass {superclass!r}; this shard holds {self.superclass!r}")
        return self.superclass

    def _check_ids(self, ids: Any) -> np.ndarray:
        """``ids`` as an array; raises for ids that are not in this shard."""
        wanted = as_ids(ids)
        if wanted.size:
            inside = set(self.store.select(np.unique(wanted), superclass=self.superclass).tolist()) \
                if len(self) else set()
            missing = [int(i) for i in wanted if int(i) not in inside]
            if missing:
                raise UnknownEntryError(
                    f"unknown id {missing[0]}; it is not (or no longer) in the shard of {self.superclass!r}"
                )
        return wanted

    def _check_ready(self) -> None:
        if not len(self):
            raise InputError(f"the shard of {self.superclass!r} is empty; add entries before searching")

    def add(self, X: Any, labels: Any, *, ids: Any = None, superclass: Any = None, source: Any = "default",
            refs: Any = None, weight: float = 1.0) -> np.ndarray:
        if superclass not in (None, "", self.superclass):
            raise InputError(f"this shard holds superclass {self.superclass!r}, not {superclass!r}")
        return self.store.add(X, labels, ids=ids, superclass=self.superclass, source=source, refs=refs,
                              weight=weight)

    def select(self, ids: Any = None, *, label: Any = None, source: Any = None,
               superclass: Any = None) -> np.ndarray:
        own = self._own(superclass)
        if ids is not None:
            self._check_ids(ids)
        if not len(self):
            return np.empty(0, dtype=np.int64)
        return self.store.select(ids, label=label, source=source, superclass=own)

    def get(self, ids: Any) -> list[dict[str, Any]]:
        return self.store.get(self._check_ids(ids))

    def vectors(self, ids: Any) -> np.ndarray:
        return self.store.vectors(self._check_ids(ids))

    def weights(self, ids: Any) -> np.ndarray:
        return self.store.weights(self._check_ids(ids))

    def remove(self, ids: Any = None, *, label: Any = None, source: Any = None,
               superclass: Any = None) -> np.ndarray:
        own = self._own(superclass)
        if ids is not None:
            self._check_ids(ids)
        if not len(self):
            return np.empty(0, dtype=np.int64)
        return self.store.remove(ids, label=label, source=source, superclass=own)

    def set_weight(self, weight: float, ids: Any = None, *, label: Any = None, source: Any = None,
                   superclass: Any = None) -> np.ndarray:
        own = self._own(superclass)
        if ids is not None:
            self._check_ids(ids)
        return self.store.set_weight(weight, ids, label=label, source=source, superclass=own)

    def search(self, X: Any, k: int | None = None, *, superclass: Any = None,
               steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray]:
        own = self._own(superclass)
        self._check_ready()
        return self.store.search(X, k, superclass=own, steer=steer)

    def neighbours(self, X: Any, k: int | None = None, *, superclass: Any = None,
                   steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        own = self._own(superclass)
        self._check_ready()
        return self.store.neighbours(X, k, superclass=own, steer=steer)

    def predict_proba(self, X: Any, k: int | None = None, **kwargs: Any) -> np.ndarray:
        own = self._own(kwargs.pop("superclass", None))
        self._check_ready()
        return self.store.predict_proba(X, k, superclass=own, classes=self.classes_, **kwargs)

    def predict(self, X: Any, k: int | None = None, **kwargs: Any) -> np.ndarray:
        own = self._own(kwargs.pop("superclass", None))
        self._check_ready()
        return self.store.predict(X, k, superclass=own, classes=self.classes_, **kwargs)

    def explain(self, X: Any, k: int | None = None, **kwargs: Any) -> list[Explanation]:
        own = self._own(kwargs.pop("superclass", None))
        self._check_ready()
        return self.store.explain(X, k, superclass=own, classes=self.classes_, **kwargs)

    def save(self, path: Any) -> Path:
        return self.store.save(path)
