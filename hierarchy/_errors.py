"""Exceptions raised by :mod:`hierarchy`."""

from __future__ import annotations

__all__ = [
    "HierarchyError",
    "MappingFileError",
    "TreeFormatError",
    "UnknownClassError",
    "WordNetNotFoundError",
]


class HierarchyError(ValueError):
    """Invalid input to a tree or superclass operation."""


class UnknownClassError(HierarchyError):
    """A class, wnid, synset or superclass that the tree does not know."""


class MappingFileError(HierarchyError):
    """A class-to-superclass mapping file that cannot be used as it is."""


class TreeFormatError(HierarchyError):
    """A serialised tree that is missing, truncated or of another format."""


class WordNetNotFoundError(RuntimeError):
    """No usable WordNet 3.0 installation was found."""
