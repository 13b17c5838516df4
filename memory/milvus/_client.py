"""The Milvus client and the filter expressions the Milvus memory sends.

``pymilvus`` is imported only when a client is made; without it the error
names the extra to install.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from .._errors import MissingBackendError

__all__ = ["FIELDS", "ID_BATCH", "INDEXES", "MAX_REF", "MAX_TEXT", "QUERY_BATCH", "QUERY_WINDOW", "all_of",
           "as_values", "in_clause", "milvus_client", "quote"]

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


def quote(value: str) -> str:
    """A string literal of Milvus's filter language."""
    return json.dumps(str(value))


def in_clause(field: str, values: Iterable[Any], negate: bool = False) -> str:
    """``field in [...]`` (or ``not in``) over ``values``."""
    vals = list(values)
    if field == "id":
        body = ", ".join(str(int(v)) for v in vals)
    else:
        body = ", ".join(quote(v) for v in vals)
    return f"{field} {'not in' if negate else 'in'} [{body}]"


def all_of(*clauses: str) -> str:
    """The conjunction of the non-empty ``clauses``."""
    return " and ".join(f"({c})" for c in clauses if c)


def as_values(value: Any) -> list[str] | None:
    """A criterion as a list of strings (one value or a collection); ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or np.isscalar(value):
        return [str(value)]
    return [str(v) for v in value]
