"""Class trees from WordNet, superclass cuts and hierarchical distances.

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
    TreeFormatError,
    UnknownClassError,
    WordNetNotFoundError,
)
from ._io import load_tree, save_tree, shipped_path, shipped_tree
from ._mapping import read_mapping
from ._superclasses import SuperclassMap
from ._tree import PARENT_RULES, ClassTree
from ._wordnet import load_wordnet, synset_from_wnid, wnid_of

__all__ = [
    "ClassTree",
    "PARENT_RULES",
    "HierarchyError",
    "MappingFileError",
    "SuperclassMap",
    "TreeFormatError",
    "UnknownClassError",
    "WordNetNotFoundError",
    "cut_at_depth",
    "cut_balanced",
    "cut_confusion",
    "cut_from_mapping",
    "cut_from_synsets",
    "cut_induced",
    "load_tree",
    "load_wordnet",
    "make_cut",
    "read_confusion",
    "read_mapping",
    "save_tree",
    "shipped_path",
    "shipped_tree",
    "synset_from_wnid",
    "wnid_of",
]
