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
from ._balanced import cut_balanced
from ._cut_spec import make_cut
from ._cuts import (
    cut_at_depth,
    cut_from_mapping,
    cut_from_synsets,
    cut_induced,
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
from ._hedging import TreeNodes, crm_decisions, soft_labels
from ._io import load_tree, save_tree, shipped_path, shipped_tree
from ._mapping import read_mapping
from ._superclasses import SuperclassMap
from ._text import (MAX_JSON_DEPTH, WNID, file_kind, json_depth, normalize_name, open_regular, parse_json, read_bytes,
                    read_json, read_text)
from ._tree import PARENT_RULES, ClassTree
from ._wordnet import load_wordnet, synset_from_wnid, wnid_of

__all__ = [
    "ClassTree",
    "HierarchyError",
    "MAX_JSON_DEPTH",
    "MappingFileError",
    "PARENT_RULES",
    "SuperclassMap",
    "SupersubError",
    "TreeNodes",
    "TreeFormatError",
    "UnknownClassError",
    "WNID",
    "WordNetNotFoundError",
    "atomic_file",
    "atomic_write",
    "check_format",
    "cut_at_depth",
    "cut_balanced",
    "cut_confusion",
    "cut_from_mapping",
    "cut_from_synsets",
    "crm_decisions",
    "cut_induced",
    "file_kind",
    "fsync_dir",
    "json_depth",
    "load_tree",
    "load_wordnet",
    "make_cut",
    "normalize_name",
    "open_regular",
    "parse_json",
    "read_bytes",
    "read_confusion",
    "read_json",
    "read_mapping",
    "read_text",
    "save_tree",
    "sha256_file",
    "shipped_path",
    "shipped_tree",
    "soft_labels",
    "synset_from_wnid",
    "wnid_of",
]
