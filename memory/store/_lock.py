"""The decorator that runs a memory's method under the memory's re-entrant lock."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

__all__ = ["locked"]

F = TypeVar("F", bound=Callable[..., Any])


def locked(method: F) -> F:
    """Run ``method`` holding ``self.lock``: edits and reads never interleave."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
