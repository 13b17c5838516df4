"""faiss settings that supersub changes, only for the length of its own searches.

faiss 1.15 multiplies queries by the database with BLAS only for large query
batches (``distance_compute_blas_threshold``, 128,000 by default); below
that its scalar kernel runs 3-5x slower on small CPUs, which is where routed
shards live (a few queries each).  :func:`blas_for_small_batches` lowers the
threshold inside a ``with`` block and restores the caller's value after, so
importing :mod:`memory` changes nothing in faiss for the rest of a process.

``SUPERSUB_FAISS_BLAS_THRESHOLD`` sets the threshold used in the block; ``0``
keeps faiss's own setting.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import faiss

__all__ = ["BLAS_THRESHOLD", "blas_for_small_batches"]

#: Query batches at least this large use BLAS inside :func:`blas_for_small_batches`.
BLAS_THRESHOLD = int(os.environ.get("SUPERSUB_FAISS_BLAS_THRESHOLD", "20"))

_lock = threading.Lock()
_depth = 0
_saved = 0


@contextlib.contextmanager
def blas_for_small_batches() -> Iterator[None]:
    """Lower faiss's BLAS threshold to :data:`BLAS_THRESHOLD` inside the block, then restore it.

    Re-entrant and safe across threads: the first block in saves the
    process's setting and the last one out restores it.
    """
    global _depth, _saved
    if BLAS_THRESHOLD <= 0:
        yield
        return
    with _lock:
        if _depth == 0:
            _saved = faiss.cvar.distance_compute_blas_threshold
            faiss.cvar.distance_compute_blas_threshold = min(_saved, BLAS_THRESHOLD)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                faiss.cvar.distance_compute_blas_threshold = _saved
