"""The per-superclass memory shards of a routed classifier, on any memory backend.

A :class:`ShardSet` is the one place that knows where the shards live.  With
the embedded backend each superclass has its own :class:`memory.VisualMemory`;
with Milvus one collection holds every shard (the superclass is its partition
key) and each shard is a :class:`memory.MilvusShard` view of it.  Either way
the classifier, its routers and its edits see a list of objects that follow the
:class:`memory.MemoryBackend` protocol, in the cut's order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hierarchy import UnknownClassError
from memory import InputError, MemoryBackend, VisualMemory, load_memory, open_memory, parse_backend

__all__ = ["ShardSet"]


class ShardSet:
    """Superclass ids and their memory shards, kept in step.

    Parameters
    ----------
    dim : int
        Embedding dimension of every shard.
    settings : dict
        kNN settings of new shards: ``k``, ``voting``, ``temperature``, ``fingerprint``.
    store : MemoryBackend, optional
        The shared memory that holds every shard (Milvus); ``None`` when each
        shard is a memory of its own.

    Attributes
    ----------
    superclasses : list of str
    shards : list of MemoryBackend
        ``shards[i]`` holds the entries of ``superclasses[i]``.  Routers keep a
        reference to this very list, so a shard inserted later is seen by them.
    """

    def __init__(self, dim: int, settings: dict[str, Any], store: MemoryBackend | None = None) -> None:
        self.dim = int(dim)
        self.settings = dict(settings)
        self.store = store
        self.superclasses: list[str] = []
        self.shards: list[Any] = []

    @classmethod
    def create(cls, backend: str | None, dim: int, **settings: Any) -> ShardSet:
        """An empty set on ``backend`` (``None``/``"faiss"`` embedded, or a Milvus URI).

        A Milvus collection must be empty: fitting builds a new memory.
        """
        kind, _ = parse_backend(backend)
        store = None
        if kind != "faiss":
            store = open_memory(backend, dim=dim, **settings)
            if len(store):
                raise InputError(
                    f"Milvus collection {store.collection!r} at {store.uri} already holds {len(store)} entries; "
                    "fit builds a new memory: name another collection in the URI (milvus://HOST:PORT/NAME) "
                    "or drop this one first"
                )
        return cls(dim, settings, store)

    # ------------------------------------------------------------- access
    @property
    def live(self) -> bool:
        """Whether the shards live in a server that other clients may change (Milvus)."""
        return self.store is not None

    def __len__(self) -> int:
        return len(self.shards)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(zip(self.superclasses, self.shards))

    @property
    def n_entries(self) -> int:
        """Entries in every shard."""
        return sum(len(s) for s in self.shards)

    def of(self, superclass: str) -> Any:
        """The shard of ``superclass``; raises :class:`UnknownClassError` for one without a shard."""
        if superclass not in self.superclasses:
            raise UnknownClassError(f"unknown superclass {superclass!r}; known: {', '.join(self.superclasses)}")
        return self.shards[self.superclasses.index(superclass)]

    # --------------------------------------------------------------- edits
    def new_shard(self, superclass: str) -> Any:
        """A new, empty shard for ``superclass`` (not yet in the set)."""
        if self.store is not None:
            return self.store.shard(superclass)  # type: ignore[attr-defined]
        s = self.settings
        return VisualMemory(self.dim, k=s["k"], voting=s["voting"], temperature=s["temperature"],
                            fingerprint=s.get("fingerprint"), progress=False)

    def append(self, superclass: str, shard: Any) -> None:
        self.superclasses.append(superclass)
        self.shards.append(shard)

    def insert(self, at: int, superclass: str, shard: Any) -> None:
        self.superclasses.insert(at, superclass)
        self.shards.insert(at, shard)

    def restore(self, superclasses: Sequence[str], shards: Sequence[Any]) -> None:
        """Put back an earlier state (in place, so routers holding the lists see it)."""
        self.superclasses[:], self.shards[:] = list(superclasses), list(shards)

    def drop(self) -> None:
        """Delete a Milvus collection holding the shards (nothing to do for embedded shards)."""
        if self.store is not None:
            self.store.drop()  # type: ignore[attr-defined]

    # --------------------------------------------------------------- files
    def save(self, directory: Path) -> None:
        """Write the shards under ``directory``: ``shards/<i>/`` each, or ``store/`` for Milvus."""
        if self.store is not None:
            self.store.save(directory / "store")
        else:
            for i, shard in enumerate(self.shards):
                shard.save(directory / "shards" / str(i))

    @classmethod
    def load(cls, directory: Path, superclasses: Sequence[str], dim: int, settings: dict[str, Any],
             *, milvus: bool) -> ShardSet:
        """Read the shards :meth:`save` wrote (``milvus``: a ``store/`` reconnection file)."""
        fingerprint = settings.get("fingerprint")
        if milvus:
            store = load_memory(directory / "store", fingerprint=fingerprint)
            out = cls(dim, settings, store)
            for s in superclasses:
                out.append(s, store.shard(s))
            return out
        out = cls(dim, settings)
        for i, s in enumerate(superclasses):
            out.append(s, VisualMemory.load(directory / "shards" / str(i), dim=dim, fingerprint=fingerprint))
        return out
