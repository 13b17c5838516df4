"""Two-stage, superclass-routed classification and the ``supersub`` command line.

Stage 1 routes an embedding to a superclass of a :class:`hierarchy.ClassTree`
cut; stage 2 lets that superclass's specialist (a memory shard, or a network
head stored as a shared base plus int8 deltas) pick the class.
"""

from ._analysis import (
    Predictions,
    compare,
    confused_pairs,
    level_metrics,
    load_predictions,
    per_class_accuracy,
    per_superclass_accuracy,
    superclass_confusion,
)
from ._classifier import FlatClassifier, RoutedExplanation, TwoStageClassifier
from ._heads import Head, fit_head, head_proba
from ._persist import edit_classifier, load_classifier, save_classifier
from ._report import SECTIONS, GalleryItem, GalleryNeighbour, write_report
from ._routers import CentroidRouter, HeadRouter, MemoryRouter
from ._specialists import DeltaSpecialists, FullSpecialists, quantise_int8

__all__ = [
    "CentroidRouter",
    "DeltaSpecialists",
    "FlatClassifier",
    "FullSpecialists",
    "GalleryItem",
    "GalleryNeighbour",
    "Head",
    "HeadRouter",
    "MemoryRouter",
    "Predictions",
    "RoutedExplanation",
    "SECTIONS",
    "TwoStageClassifier",
    "compare",
    "confused_pairs",
    "edit_classifier",
    "fit_head",
    "head_proba",
    "level_metrics",
    "load_classifier",
    "load_predictions",
    "per_class_accuracy",
    "per_superclass_accuracy",
    "quantise_int8",
    "save_classifier",
    "superclass_confusion",
    "write_report",
]
