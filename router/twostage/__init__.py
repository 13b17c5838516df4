"""The memory-level two-stage model, over embeddings.

Stage 1 routes an embedding to a superclass (a memory of all entries, class
centroids, or a head); stage 2 lets that superclass's specialist decide: its
memory shard, or a shared base head with int8 low-rank deltas, or full copies.
:class:`FlatClassifier` is the flat baseline over the same embeddings.
"""

from ._classifier import TwoStageClassifier
from ._flat import FlatClassifier
from ._heads import TRAIN_PRECISION_ENV, Head, fit_head, head_proba, train_module, training_precision
from ._persist import FORMAT, load_twostage, save_twostage
from ._routers import CentroidRouter, HeadRouter, MemoryRouter
from ._shards import ShardSet
from ._specialists import DeltaSpecialists, FullSpecialists

__all__ = [
    "FORMAT",
    "CentroidRouter",
    "DeltaSpecialists",
    "FlatClassifier",
    "FullSpecialists",
    "Head",
    "HeadRouter",
    "MemoryRouter",
    "ShardSet",
    "TRAIN_PRECISION_ENV",
    "TwoStageClassifier",
    "fit_head",
    "head_proba",
    "load_twostage",
    "save_twostage",
    "train_module",
    "training_precision",
]
