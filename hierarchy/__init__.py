"""Class trees from WordNet, superclass cuts and hierarchical distances.

Also the error root (:class:`SupersubError`) and the file helpers that the
other packages share: :func:`atomic_write`, :func:`atomic_file`,
:func:`sha256_file`, :func:`check_format`.

>>> from hierarchy import shipped_tree
>>> tree = shipped_tree("tiny-imagenet-200")
>>> len(tree.classes), len(tree.superclasses)
(200, 10)
"""

from ._confusion import cut_confusion, read_confusion
from ._cuts import (
    cut_at_depth,
    cut_balanced,
    cut_from_mapping,
    cut_from_synsets,
    cut_induced,
    make_cut,
)
from ._errors import (
    HierarchyError,
    MappingFileError,
    SupersubError,
    TreeFormatError,
    UnknownClassError,
    WordNetNotFoundError,
)
from ._files import atomic_file, atomic_write, check_format, fsync_dir, sha256_file
from ._io import load_tree, save_tree, shipped_path, shipped_tree
from ._mapping import read_mapping
from ._superclasses import SuperclassMap
from ._tree import PARENT_RULES, ClassTree
from ._wordnet import load_wordnet, synset_from_wnid, wnid_of

__all__ = [
    "ClassTree",
    "HierarchyError",
    "MappingFileError",
    "PARENT_RULES",
    "SuperclassMap",
    "SupersubError",
    "TreeFormatError",
    "UnknownClassError",
    "WordNetNotFoundError",
    "atomic_file",
    "atomic_write",
    "check_format",
    "cut_at_depth",
    "cut_balanced",
    "cut_confusion",
    "cut_from_mapping",
    "cut_from_synsets",
    "cut_induced",
    "fsync_dir",
    "load_tree",
    "load_wordnet",
    "make_cut",
    "read_confusion",
    "read_mapping",
    "save_tree",
    "sha256_file",
    "shipped_path",
    "shipped_tree",
    "synset_from_wnid",
    "wnid_of",
]
