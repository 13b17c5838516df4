"""Exceptions raised by :mod:`router`, under :class:`hierarchy.SupersubError`."""

from __future__ import annotations

from hierarchy import SupersubError

__all__ = ["CLIError"]


class CLIError(SupersubError):
    """A command-line usage error, reported without a traceback."""
