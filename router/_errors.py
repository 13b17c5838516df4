"""Exceptions raised by :mod:`router`, under :class:`hierarchy.SupersubError`.

:class:`NotFittedError` is also scikit-learn's ``NotFittedError`` and the
library's ``InputError``; it is made on first use, so that the command line
starts without importing scikit-learn.
"""

from __future__ import annotations

import functools
from typing import Any

from hierarchy import SupersubError

__all__ = ["CLIError", "NotFittedError"]


class CLIError(SupersubError):
    """A command-line usage error, reported without a traceback."""


@functools.cache
def _not_fitted_error() -> type:
    from sklearn.exceptions import NotFittedError as SklearnNotFitted

    from memory import InputError

    class NotFittedError(InputError, SklearnNotFitted):
        """A classifier was used before ``fit`` (or a load); scikit-learn's ``NotFittedError`` too."""

    NotFittedError.__module__ = __name__
    return NotFittedError


def __getattr__(name: str) -> Any:
    if name == "NotFittedError":
        return _not_fitted_error()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
