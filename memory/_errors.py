"""Exceptions raised by :mod:`memory`."""

from __future__ import annotations

__all__ = [
    "BackboneMismatchError",
    "ConcurrentWriteError",
    "InputError",
    "MemoryFormatError",
    "UnknownEntryError",
]


class InputError(ValueError):
    """Embeddings, labels or ids that cannot be used as given."""


class UnknownEntryError(InputError, KeyError):
    """An id, label, source or superclass that the memory does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MemoryFormatError(ValueError):
    """A saved memory that is missing, corrupt or of another format version."""


class BackboneMismatchError(ValueError):
    """Embeddings or a saved memory from another backbone or dimension."""


class ConcurrentWriteError(RuntimeError):
    """Another writer holds the lock of a saved memory or classifier."""
