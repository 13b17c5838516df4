"""The visual memory on Milvus: Milvus Lite on a local file, or a Milvus server or cluster.

One collection holds the whole memory: ``id`` (int64 primary key), the
L2-normalised ``vector``, and scalar fields ``label``, ``superclass`` (the
partition key, so one superclass is one partition), ``source``, ``ref`` and
``weight``.  Searches rank by inner product (cosine on the normalised
vectors) and vote on the client exactly as :class:`~memory.VisualMemory`
does.  Reads use ``Session`` consistency by default (a client always sees
its own inserts and deletes); ``Strong`` makes every reader see every
client's deletes at once.

This module holds the connection, the collection's schema and the
persistence; the reads are in :mod:`._query`, the edits in :mod:`._edits` and
the per-superclass view in :mod:`._shard`.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import atomic_write, parse_json

from .._backend import DEFAULT_COLLECTION
from .._errors import BackboneMismatchError, InputError, MemoryFormatError
from .._validation import check_k, check_knn
from ._client import FIELDS, INDEXES, MAX_REF, MAX_TEXT, QUERY_WINDOW, milvus_client
from ._edits import MilvusEditMixin
from ._query import MilvusQueryMixin
from ._shard import MilvusShard

__all__ = ["MilvusMemory"]


class MilvusMemory(MilvusQueryMixin, MilvusEditMixin):
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
            about = parse_json(info.get("description") or "{}", origin="the collection's description",
                               error=ValueError)
        except ValueError:
            about = {}
        if not isinstance(about, dict):
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

    def _new_ids(self, n: int) -> np.ndarray:
        # Time-based, increasing across restarts: unique for one writer per collection.
        start = max(self._next_id, time.time_ns() // 1000 * 1024)
        self._next_id = start + n
        return np.arange(start, start + n, dtype=np.int64)

    def __reduce__(self) -> Any:
        raise TypeError(
            "a MilvusMemory is a connection to a server and cannot be pickled; save() it and reconnect "
            "with memory.load_memory(path) (or pickle a classifier built on the embedded backend)"
        )

    def tally(self) -> dict[tuple[str, str, str], int]:
        """Entries per (label, superclass, source), as this client last saw them (a copy)."""
        with self._lock:
            return {key: c for key, c in self._tally.items() if c > 0}

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
