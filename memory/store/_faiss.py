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

__all__ = ["BLAS_THRESHOLD", "blas_for_small_batches", "faiss_threads"]

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


@contextlib.contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run faiss's OpenMP loops on ``n`` threads inside the block, for the calling thread only.

    faiss and torch each bring their own OpenMP runtime.  After a parallel
    loop, each runtime's idle threads spin for a while before they sleep; on
    a small CPU, a torch product right after a faiss loop (or the reverse)
    then waits for cores that spin.  A small faiss call between torch calls
    is faster on the calling thread alone: inside a certified bf16 search of
    70 queries against 11,040 rows (1,280-d), the product took 5.8 ms after
    a two-thread faiss re-rank and 2.3 ms after a one-thread one (2 cores).
    ``omp_set_num_threads`` sets the calling thread's own setting, so other
    threads are not affected.
    """
    prev = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(prev)
