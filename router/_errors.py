"""Exceptions raised by :mod:`router`, under :class:`hierarchy.SupersubError`."""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFitted

from hierarchy import SupersubError
from memory import InputError

__all__ = ["CLIError", "NotFittedError"]


class CLIError(SupersubError):
    """A command-line usage error, reported without a traceback."""


class NotFittedError(InputError, _SklearnNotFitted):
    """A classifier was used before ``fit`` (or a load); scikit-learn's ``NotFittedError`` too."""
