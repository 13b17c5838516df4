"""Two-stage, superclass-routed classification and the ``supersub`` command line.

Stage 1 routes an embedding to a superclass of a :class:`hierarchy.ClassTree`
cut; stage 2 lets that superclass's specialist (a memory shard, or a network
head stored as a shared base plus int8 deltas) pick the class.
"""

from ._classifier import FlatClassifier, RoutedExplanation, TwoStageClassifier
from ._heads import Head, fit_head, head_proba
from ._persist import load_classifier, save_classifier
from ._routers import CentroidRouter, HeadRouter, MemoryRouter
from ._specialists import DeltaSpecialists, FullSpecialists, quantise_int8

__all__ = [
    "CentroidRouter",
    "DeltaSpecialists",
    "FlatClassifier",
    "FullSpecialists",
    "Head",
    "HeadRouter",
    "MemoryRouter",
    "RoutedExplanation",
    "TwoStageClassifier",
    "fit_head",
    "head_proba",
    "load_classifier",
    "quantise_int8",
    "save_classifier",
]
