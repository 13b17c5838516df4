"""The editable visual memory: embeddings with metadata, kNN voting and edits.

>>> import numpy as np
>>> from memory import VisualMemory
>>> mem = VisualMemory(k=1)
>>> ids = mem.add(np.eye(3, dtype="float32"), ["cat", "dog", "car"], source="demo")
>>> mem.predict(np.array([[0.9, 0.1, 0.0]], dtype="float32")).tolist()
['cat']
"""

from ._cache import CacheModel, fit_cache
from ._errors import BackboneMismatchError, InputError, MemoryFormatError, UnknownEntryError
from ._explain import Explanation, Neighbour, PruneReport, Steer
from ._persist import load_memory, save_memory
from ._prune import compress, harm_counts, prune_harmful, prune_redundant
from ._visual_memory import VisualMemory
from ._voting import VOTING_RULES, class_scores, get_voting, register_voting

__all__ = [
    "VOTING_RULES",
    "BackboneMismatchError",
    "CacheModel",
    "Explanation",
    "InputError",
    "MemoryFormatError",
    "Neighbour",
    "PruneReport",
    "Steer",
    "UnknownEntryError",
    "VisualMemory",
    "class_scores",
    "compress",
    "fit_cache",
    "get_voting",
    "harm_counts",
    "load_memory",
    "prune_harmful",
    "prune_redundant",
    "register_voting",
    "save_memory",
]
