"""Exceptions raised by :mod:`hierarchy`, and the root of every supersub error.

Every error that supersub raises on purpose (bad input, a bad file, a
missing resource) derives from :class:`SupersubError`, so a caller can catch
that one class; :mod:`memory` and :mod:`router` define theirs in their own
``_errors.py`` under it.  Each also derives from the built-in exception a
caller would expect (``ValueError``, ``KeyError``, ``RuntimeError``,
``ImportError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "HierarchyError",
    "MappingFileError",
    "SupersubError",
    "TreeFormatError",
    "UnknownClassError",
    "WordNetNotFoundError",
]


class SupersubError(Exception):
    """The root of every error supersub raises on purpose."""


class HierarchyError(SupersubError, ValueError):
    """Invalid input to a tree or superclass operation."""


class UnknownClassError(HierarchyError):
    """A class, wnid, synset or superclass that the tree does not know."""


class MappingFileError(HierarchyError):
    """A class-to-superclass mapping file that cannot be used as it is."""


class TreeFormatError(HierarchyError):
    """A serialised tree that is missing, truncated or of another format."""


class WordNetNotFoundError(SupersubError, RuntimeError):
    """No usable WordNet 3.0 installation was found."""
