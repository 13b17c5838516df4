"""The memory backend interface, and opening a memory by URI.

Two backends implement :class:`MemoryBackend`: the embedded
:class:`~memory.VisualMemory` (faiss and SQLite, the default) and
:class:`~memory.MilvusMemory` (Milvus Lite on a local file, or a Milvus
server or cluster).  The router and the reports use only this interface.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import numpy as np

from hierarchy import read_json

from ._errors import InputError, MemoryFormatError
from .store import Explanation, Steer

__all__ = ["DEFAULT_COLLECTION", "MemoryBackend", "drop_memory", "load_any", "load_memory", "open_memory",
           "parse_backend"]

#: The Milvus collection a URI without one names.
DEFAULT_COLLECTION = "supersub"


@runtime_checkable
class MemoryBackend(Protocol):
    """What every memory backend provides.

    Ids are unique non-negative int64.  Vectors are L2-normalised on the way
    in and compared by cosine similarity.  ``superclass`` restricts a search
    to one superclass (a shard), a set of them, or one per query; an unknown
    superclass or id raises :class:`UnknownEntryError`.  Searching an empty
    memory raises :class:`InputError`.  A neighbour's vote is the voting
    rule's weight times its stored weight (``set_weight``) times any
    steering weight; ``neighbours`` returns the last two multiplied, so
    routers count votes across shards the way each shard does.
    """

    dim: int | None
    k: int
    voting: str
    temperature: float
    fingerprint: str | None

    def __len__(self) -> int: ...

    @property
    def classes_(self) -> np.ndarray: ...

    @property
    def superclasses_(self) -> np.ndarray: ...

    @property
    def sources_(self) -> np.ndarray: ...

    def counts(self, by: str = "label") -> dict[str, int]: ...

    def add(self, X: Any, labels: Any, *, ids: Any = None, superclass: Any = "", source: Any = "default",
            refs: Any = None, weight: float = 1.0) -> np.ndarray: ...

    def select(self, ids: Any = None, *, label: Any = None, source: Any = None,
               superclass: Any = None) -> np.ndarray: ...

    def get(self, ids: Any) -> list[dict[str, Any]]: ...

    def vectors(self, ids: Any) -> np.ndarray: ...

    def weights(self, ids: Any) -> np.ndarray: ...

    def remove(self, ids: Any = None, *, label: Any = None, source: Any = None,
               superclass: Any = None) -> np.ndarray: ...

    def set_weight(self, weight: float, ids: Any = None, *, label: Any = None, source: Any = None,
                   superclass: Any = None) -> np.ndarray: ...

    def search(self, X: Any, k: int | None = None, *, superclass: Any = None,
               steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def neighbours(self, X: Any, k: int | None = None, *, superclass: Any = None,
                   steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def predict_proba(self, X: Any, k: int | None = None, **kwargs: Any) -> np.ndarray: ...

    def predict(self, X: Any, k: int | None = None, **kwargs: Any) -> np.ndarray: ...

    def explain(self, X: Any, k: int | None = None, **kwargs: Any) -> list[Explanation]: ...

    def save(self, path: Any) -> Any: ...


def parse_backend(uri: str | None) -> tuple[str, dict[str, str]]:
    """Split a backend URI into its kind and connection settings.

    ``None``, ``"faiss"``
        The embedded faiss memory.
    ``milvus://HOST:PORT[/COLLECTION]``, ``http(s)://HOST:PORT[/COLLECTION]``
        A Milvus server or cluster.
    ``milvus-lite:PATH.db[#COLLECTION]``, ``PATH.db[#COLLECTION]``
        Milvus Lite on a local file.

    Returns
    -------
    kind : {"faiss", "milvus"}
    settings : dict
        ``uri`` (what the Milvus client connects to) and ``collection`` for Milvus.
    """
    if uri is None or uri in ("", "faiss"):
        return "faiss", {}
    if not isinstance(uri, str):
        raise InputError(f"a backend is a URI string, got {type(uri).__name__}")
    collection = ""
    if uri.startswith("milvus-lite:"):
        uri = uri[len("milvus-lite:"):]
    parts = urlsplit(uri)
    if parts.scheme in ("milvus", "http", "https", "tcp"):
        if not parts.hostname or not parts.port:
            raise InputError(f"backend {uri!r} needs a host and a port, e.g. milvus://127.0.0.1:19530")
        scheme = "https" if parts.scheme == "https" else "http"
        collection = parts.path.strip("/")
        return "milvus", {"uri": f"{scheme}://{parts.hostname}:{parts.port}", "collection": collection}
    path, _, collection = uri.partition("#")
    if path.endswith(".db"):
        return "milvus", {"uri": str(Path(path).expanduser().resolve()), "collection": collection}
    raise InputError(
        f"unknown backend {uri!r}; use 'faiss', 'milvus://HOST:PORT[/COLLECTION]' for a Milvus server "
        "or cluster, or 'PATH.db' for Milvus Lite"
    )


def open_memory(backend: str | None = None, *, dim: int | None = None, collection: str | None = None,
                **kwargs: Any) -> Any:
    """Open a memory on a backend.

    Parameters
    ----------
    backend : str, optional
        A URI (see :func:`parse_backend`), or a directory written by a
        memory's ``save``.  ``None`` gives a new embedded faiss memory.
    dim : int, optional
    collection : str, optional
        Milvus collection name (overrides the URI's).
    **kwargs
        Passed to the memory's constructor (``k``, ``voting``, ...).
    """
    if backend is not None and Path(str(backend)).is_dir():
        return load_memory(backend)
    kind, settings = parse_backend(backend)
    if kind == "faiss":
        from .store import VisualMemory

        return VisualMemory(dim, **kwargs)
    from .milvus import MilvusMemory

    name = collection or settings["collection"] or DEFAULT_COLLECTION
    return MilvusMemory(settings["uri"], name, dim=dim, **kwargs)


def drop_memory(backend: str) -> bool:
    """Delete the Milvus collection a URI names, without reading it; returns whether it existed."""
    kind, settings = parse_backend(backend)
    if kind != "milvus":
        raise InputError(f"{backend!r} is not a Milvus URI; an embedded memory is a directory to delete")
    from .milvus import milvus_client

    client = milvus_client(settings["uri"])
    name = settings["collection"] or DEFAULT_COLLECTION
    try:
        existed = bool(client.has_collection(name))
        if existed:
            client.drop_collection(name)
        return existed
    finally:
        client.close()


def load_memory(path: Any, **kwargs: Any) -> Any:
    """Load a saved memory of any backend: the one entry point.

    ``path`` is what a memory's ``save`` wrote: an embedded (faiss) snapshot
    directory, or a Milvus connection file (``milvus.json``, the data stays
    in Milvus).  ``kwargs`` are checks for an embedded memory (``dim``,
    ``fingerprint``) or settings for a Milvus one (``k``, ``ef_search``...).
    ``VisualMemory.load`` and ``MilvusMemory.load`` do the same and also
    check the kind.

    Returns
    -------
    VisualMemory or MilvusMemory
    """
    path = Path(path)
    link = path / "milvus.json"
    if link.is_file():
        from .milvus import MilvusMemory

        try:
            spec = read_json(link, limit=1 << 20, what="Milvus connection file", error=MemoryFormatError)
            settings = dict(spec.get("settings", {}))
            if "ef" in settings:  # written before the name was ef_search
                settings["ef_search"] = settings.pop("ef")
            return MilvusMemory(spec["uri"], spec["collection"], create=False, **{**settings, **kwargs})
        except MemoryFormatError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MemoryFormatError(f"{link} is not a Milvus connection file: {exc}") from exc
    from .store import load_snapshot

    return load_snapshot(path, **kwargs)


def load_any(path: Any, **kwargs: Any) -> Any:
    """Deprecated name of :func:`load_memory`."""
    warnings.warn("memory.load_any is deprecated; use memory.load_memory", DeprecationWarning, stacklevel=2)
    return load_memory(path, **kwargs)
