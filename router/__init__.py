"""Two-stage, superclass-routed classification and the ``supersub`` command line.

Stage 1 routes an embedding to a superclass of a :class:`hierarchy.ClassTree`
cut; stage 2 lets that superclass's specialist (a memory shard, or a network
head stored as a shared base plus int8 deltas) pick the class.

At the network level (:class:`NetworkTwoStage`) the backbone is split into a
frozen trunk and a fine-tuned tail: the tail fine-tuned on all classes routes,
and per-superclass int8 deltas of that tail specialise.

Names are imported on first use (PEP 562), so ``import router`` and the command line start
without loading torch or scikit-learn until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Where each public name lives.
_SOURCES = {
    "Predictions": "._analysis",
    "compare": "._analysis",
    "confused_pairs": "._analysis",
    "level_metrics": "._analysis",
    "load_predictions": "._analysis",
    "per_class_accuracy": "._analysis",
    "per_superclass_accuracy": "._analysis",
    "superclass_confusion": "._analysis",
    "CHECK_LABELS": "._checks",
    "expected_failed_checks": "._checks",
    "TwoStageClassifier": "._classifier",
    "main": "._cli",
    "CLIError": "._errors",
    "NotFittedError": "._errors",
    "RoutedExplanation": "._explanations",
    "FlatClassifier": "._flat",
    "Head": "._heads",
    "TRAIN_PRECISION_ENV": "._heads",
    "fit_head": "._heads",
    "head_proba": "._heads",
    "training_precision": "._heads",
    "train_module": "._heads",
    "NetworkTwoStage": "._network",
    "edit_classifier": "._persist",
    "load_classifier": "._persist",
    "load_model": "._persist",
    "save_classifier": "._persist",
    "DEFAULT_EMBEDDING": "._pipeline",
    "QueryEncoder": "._pipeline",
    "build_memory_model": "._pipeline",
    "evaluate": "._pipeline",
    "evaluate_with_flat": "._pipeline",
    "flat_from": "._pipeline",
    "match_classes": "._pipeline",
    "typical_similarity": "._pipeline",
    "write_evaluation": "._pipeline",
    "GalleryItem": "._report",
    "GalleryNeighbour": "._report",
    "SECTIONS": "._report",
    "write_report": "._report",
    "CentroidRouter": "._routers",
    "HeadRouter": "._routers",
    "MemoryRouter": "._routers",
    "ShardSet": "._shards",
    "DeltaSpecialists": "._specialists",
    "FullSpecialists": "._specialists",
    "quantise_int8": "._specialists",
    "TailDeltas": "._tail_specialists",
    "TailSpecialists": "._tail_specialists",
    "tail_features": "._tails",
    "tail_logits": "._tails",
    "train_tail": "._tails",
    "BackboneSplit": "._trunk",
    "DEFAULT_SPLITS": "._trunk",
    "Tail": "._trunk",
    "TrunkActivations": "._trunk",
    "load_trunk_activations": "._trunk",
    "run_trunk_on_images": "._trunk",
    "split_backbone": "._trunk",
    "trunk_activations": "._trunk",
}

__all__ = [
    "BackboneSplit",
    "CHECK_LABELS",
    "CLIError",
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
    "NetworkTwoStage",
    "NotFittedError",
    "Predictions",
    "QueryEncoder",
    "RoutedExplanation",
    "SECTIONS",
    "ShardSet",
    "TRAIN_PRECISION_ENV",
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
    "expected_failed_checks",
    "fit_head",
    "flat_from",
    "head_proba",
    "level_metrics",
    "load_classifier",
    "load_model",
    "load_predictions",
    "load_trunk_activations",
    "main",
    "match_classes",
    "per_class_accuracy",
    "per_superclass_accuracy",
    "quantise_int8",
    "run_trunk_on_images",
    "save_classifier",
    "split_backbone",
    "superclass_confusion",
    "tail_features",
    "tail_logits",
    "train_module",
    "train_tail",
    "training_precision",
    "trunk_activations",
    "typical_similarity",
    "write_evaluation",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module 'router' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what static tools see
    from ._analysis import Predictions, compare, confused_pairs, level_metrics, load_predictions, per_class_accuracy, per_superclass_accuracy, superclass_confusion
    from ._checks import CHECK_LABELS, expected_failed_checks
    from ._cli import main
    from ._classifier import TwoStageClassifier
    from ._errors import CLIError, NotFittedError
    from ._explanations import RoutedExplanation
    from ._flat import FlatClassifier
    from ._heads import Head, TRAIN_PRECISION_ENV, fit_head, head_proba, train_module, training_precision
    from ._network import NetworkTwoStage
    from ._persist import edit_classifier, load_classifier, load_model, save_classifier
    from ._pipeline import DEFAULT_EMBEDDING, QueryEncoder, build_memory_model, evaluate, evaluate_with_flat, flat_from, match_classes, typical_similarity, write_evaluation
    from ._report import GalleryItem, GalleryNeighbour, SECTIONS, write_report
    from ._routers import CentroidRouter, HeadRouter, MemoryRouter
    from ._shards import ShardSet
    from ._specialists import DeltaSpecialists, FullSpecialists, quantise_int8
    from ._tail_specialists import TailDeltas, TailSpecialists
    from ._tails import tail_features, tail_logits, train_tail
    from ._trunk import BackboneSplit, DEFAULT_SPLITS, Tail, TrunkActivations, load_trunk_activations, run_trunk_on_images, split_backbone, trunk_activations
