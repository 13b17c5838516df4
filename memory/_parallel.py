"""Row-wise work on large arrays, split across the cores this process may use.

numpy's element-wise loops let go of the GIL, so threads that each take a
contiguous block of rows run at once.  Below :data:`MIN_ROWS_PER_PART` rows a
part, starting threads costs more than it saves, and the work runs here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["MIN_ROWS_PER_PART", "in_parts", "usable_cores"]

MIN_ROWS_PER_PART = 8192


def usable_cores() -> int:
    """The CPU cores this process may run on: the default thread count of every runtime."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def in_parts(fn: Callable[[int, int], object], start: int, stop: int, *, parts: int | None = None) -> None:
    """Call ``fn(a, b)`` on contiguous blocks that cover rows ``start:stop``, one thread per block.

    The blocks are disjoint, so ``fn`` may write its rows of a shared output.
    The first error a block raises is raised here, after every block ends.

    Parameters
    ----------
    fn : callable
        ``fn(a, b)`` handles rows ``a:b``.
    start, stop : int
        The rows to cover.
    parts : int, optional
        Blocks to use (default: the usable cores, at most one per
        :data:`MIN_ROWS_PER_PART` rows).
    """
    n = stop - start
    if parts is None:
        parts = min(usable_cores(), n // MIN_ROWS_PER_PART)
    if parts <= 1:
        fn(start, stop)
        return
    bounds = [start + n * i // parts for i in range(parts + 1)]
    with ThreadPoolExecutor(parts - 1) as pool:
        futures = [pool.submit(fn, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
        try:
            fn(bounds[0], bounds[1])
        finally:
            errors = [f.exception() for f in futures]
    for err in errors:
        if err is not None:
            raise err
