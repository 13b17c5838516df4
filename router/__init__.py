"""Two-stage, superclass-routed classification and the ``supersub`` command line.

Stage 1 routes an embedding to a superclass of a :class:`hierarchy.ClassTree`
cut; stage 2 lets that superclass's specialist (a memory shard, or a network
head stored as a shared base plus int8 deltas) pick the class.

At the network level (:class:`NetworkTwoStage`) the backbone is split into a
frozen trunk and a fine-tuned tail: the tail fine-tuned on all classes routes,
and per-superclass int8 deltas of that tail specialise.
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
from ._classifier import TwoStageClassifier
from ._errors import CLIError, NotFittedError
from ._explanations import RoutedExplanation
from ._flat import FlatClassifier
from ._shards import ShardSet
from ._heads import Head, fit_head, head_proba
from ._persist import edit_classifier, load_classifier, save_classifier
from ._pipeline import (
    DEFAULT_EMBEDDING,
    QueryEncoder,
    build_memory_model,
    evaluate,
    evaluate_with_flat,
    flat_from,
    match_classes,
    typical_similarity,
    write_evaluation,
)
from ._report import SECTIONS, GalleryItem, GalleryNeighbour, write_report
from ._routers import CentroidRouter, HeadRouter, MemoryRouter
from ._network import NetworkTwoStage
from ._specialists import DeltaSpecialists, FullSpecialists, quantise_int8
from ._tail_specialists import TailDeltas, TailSpecialists
from ._tails import tail_features, tail_logits, train_tail
from ._trunk import (
    DEFAULT_SPLITS,
    BackboneSplit,
    Tail,
    TrunkActivations,
    load_trunk_activations,
    run_trunk_on_images,
    split_backbone,
    trunk_activations,
)

__all__ = [
    "BackboneSplit",
    "CentroidRouter",
    "DEFAULT_EMBEDDING",
    "DEFAULT_SPLITS",
    "DeltaSpecialists",
    "FlatClassifier",
    "FullSpecialists",
    "GalleryItem",
    "GalleryNeighbour",
    "Head",
    "HeadRouter",
    "MemoryRouter",
    "NotFittedError",
    "CLIError",
    "NetworkTwoStage",
    "Predictions",
    "QueryEncoder",
    "RoutedExplanation",
    "ShardSet",
    "SECTIONS",
    "Tail",
    "TailDeltas",
    "TailSpecialists",
    "TrunkActivations",
    "TwoStageClassifier",
    "build_memory_model",
    "compare",
    "confused_pairs",
    "edit_classifier",
    "evaluate",
    "evaluate_with_flat",
    "flat_from",
    "fit_head",
    "head_proba",
    "level_metrics",
    "match_classes",
    "load_trunk_activations",
    "load_classifier",
    "load_predictions",
    "per_class_accuracy",
    "per_superclass_accuracy",
    "quantise_int8",
    "run_trunk_on_images",
    "save_classifier",
    "split_backbone",
    "superclass_confusion",
    "tail_features",
    "tail_logits",
    "train_tail",
    "trunk_activations",
    "typical_similarity",
    "write_evaluation",
    "write_report",
]
