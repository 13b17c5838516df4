"""Exceptions raised by :mod:`memory`, all under :class:`hierarchy.SupersubError`."""

from __future__ import annotations

from hierarchy import SupersubError

__all__ = [
    "BackboneMismatchError",
    "ConcurrentWriteError",
    "DataError",
    "ImageError",
    "InputError",
    "InputTypeError",
    "MemoryFormatError",
    "MilvusServerError",
    "MissingBackendError",
    "UnknownEntryError",
]


class InputError(SupersubError, ValueError):
    """Embeddings, labels or ids that cannot be used as given."""


class InputTypeError(InputError, TypeError):
    """Input holding a value of the wrong type, such as a dict among embedding values."""


class UnknownEntryError(InputError, KeyError):
    """An id, label, source or superclass that the memory does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(InputError):
    """A dataset that is missing, corrupt or not in the expected layout."""


class ImageError(InputError):
    """An image that cannot be decoded safely: corrupt, truncated, or over the pixel limit."""


class MemoryFormatError(SupersubError, ValueError):
    """A saved memory that is missing, corrupt or of another format version."""


class BackboneMismatchError(SupersubError, ValueError):
    """Embeddings or a saved memory from another backbone or dimension."""


class ConcurrentWriteError(SupersubError, RuntimeError):
    """Another writer holds the lock of a saved memory or classifier."""


class MissingBackendError(SupersubError, ImportError):
    """An optional backend's client library is not installed."""


class MilvusServerError(SupersubError, RuntimeError):
    """The local Milvus server could not be started."""
