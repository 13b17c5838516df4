"""The text form of every superclass cut (the command line's ``--cut``): ``balanced:N``, ``depth:D``..."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._confusion import cut_from_confusion_spec
from ._balanced import cut_balanced
from ._cuts import cut_at_depth, cut_from_mapping, cut_from_synsets, cut_induced
from ._errors import HierarchyError
from ._superclasses import SuperclassMap
from ._tree import ClassTree

__all__ = ["make_cut"]


def make_cut(tree: ClassTree, spec: str, *, wordnet: Any | None = None) -> SuperclassMap:
    """A cut from a text spec (the CLI's ``--cut``): ``balanced:N``, ``depth:D``, ``file:PATH``,
    ``synsets:A,B,...``, ``induced:N:MEANS.npy`` or ``confusion:N:FILE[:OVERLAP]`` (arrays in tree
    class order; see :func:`cut_induced` and :func:`hierarchy.cut_confusion`)."""
    kind, _, arg = spec.partition(":")
    try:
        if kind == "balanced":
            cut = cut_balanced(tree, int(arg))
        elif kind == "depth":
            cut = cut_at_depth(tree, int(arg))
        elif kind == "file":
            cut = cut_from_mapping(tree, arg)
        elif kind == "synsets":
            cut = cut_from_synsets(tree, [s for s in arg.split(",") if s], wordnet=wordnet)
        elif kind == "confusion":
            cut = cut_from_confusion_spec(tree, arg)
        elif kind == "induced":
            count, _, path = arg.partition(":")
            if not path or not Path(path).is_file():
                raise HierarchyError(f"induced cut needs an existing .npy file, got {path!r}")
            cut = cut_induced(tree, np.load(path, allow_pickle=False), int(count))
        else:
            raise HierarchyError(f"unknown cut {spec!r}; use balanced:N, depth:D, file:PATH, synsets:A,B,... "
                                 "induced:N:MEANS.npy or confusion:N:FILE[:OVERLAP]")
    except ValueError as exc:
        if isinstance(exc, HierarchyError):
            raise
        raise HierarchyError(f"bad cut spec {spec!r}: {exc}") from exc
    if len(cut) < 2:
        only = next(iter(cut.names.values()))
        raise HierarchyError(
            f"cut {spec!r} gives one superclass ({only}); routing needs at least two: use a deeper "
            "depth:D, balanced:N with N >= 2, or more synsets"
        )
    return cut
