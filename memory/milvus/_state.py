"""What the Milvus memory's parts share: its connection state, declared once for the mixins."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["MilvusState"]


class MilvusState:
    """The attributes and helpers :class:`memory.MilvusMemory` provides to its query and edit mixins."""

    _lock: threading.RLock
    _client: Any
    _tally: Counter[tuple[str, str, str]]
    _after_delete: bool
    _next_id: int
    collection: str
    dim: int | None
    k: int
    voting: str
    temperature: float
    classes_: np.ndarray
    sources_: np.ndarray
    superclasses_: np.ndarray

    def __len__(self) -> int:
        raise NotImplementedError

    def _read_level(self) -> str:
        raise NotImplementedError

    def _search_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _create(self, dim: int) -> None:
        raise NotImplementedError

    def _new_ids(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def _iterate(self, expr: str, fields: list[str], batch: int = 4096,
                 expected: int | None = None) -> Iterator[dict[str, Any]]:
        raise NotImplementedError
