"""The Milvus side of the memory: a :class:`MilvusMemory` (and its per-superclass shards)
kept in a Milvus collection, and a local Milvus server for tests and single machines.

Both are also exported by :mod:`memory`; ``pymilvus`` and the ``milvus`` wheel are
optional (``pip install 'supersub[milvus]'``) and imported only when used.
"""

from ._client import milvus_client
from ._memory import MilvusMemory
from ._shard import MilvusShard
from ._server import LocalMilvusServer

__all__ = ["LocalMilvusServer", "MilvusMemory", "MilvusShard", "milvus_client"]
