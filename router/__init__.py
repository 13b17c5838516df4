"""Two-stage, superclass-routed classification and the ``supersub`` command line.

Stage 1 routes an embedding to a superclass of a :class:`hierarchy.ClassTree`
cut; stage 2 lets that superclass's specialist (a memory shard, or a network
head stored as a shared base plus int8 deltas) pick the class.

At the network level (:class:`NetworkTwoStage`) the backbone is split into a
frozen trunk and a fine-tuned tail: the tail fine-tuned on all classes routes,
and per-superclass int8 deltas of that tail specialise.

The code is split by concern into sub-packages, each importing only those
below it: ``cli`` → ``explore`` → ``report`` → ``pipeline`` → ``twostage`` and
``network`` (siblings) → the shared modules here.  Every public name is
re-exported here and imported on first use (PEP 562), so ``import router``
and the command line start without loading torch or scikit-learn until a
name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Where each public name lives.
_SOURCES = {
    "Predictions": ".report",
    "compare": ".report",
    "confused_pairs": ".report",
    "level_metrics": ".report",
    "load_predictions": ".report",
    "per_class_accuracy": ".report",
    "per_superclass_accuracy": ".report",
    "superclass_confusion": ".report",
    "CHECK_LABELS": "._checks",
    "expected_failed_checks": "._checks",
    "TwoStageClassifier": ".twostage",
    "main": ".cli",
    "CLIError": "._errors",
    "NotFittedError": "._errors",
    "RoutedExplanation": "._explanations",
    "FlatClassifier": ".twostage",
    "Head": ".twostage",
    "TRAIN_PRECISION_ENV": ".twostage",
    "fit_head": ".twostage",
    "head_proba": ".twostage",
    "training_precision": ".twostage",
    "train_module": ".twostage",
    "NetworkTwoStage": ".network",
    "edit_classifier": ".pipeline",
    "load_classifier": ".pipeline",
    "load_model": ".pipeline",
    "save_classifier": ".pipeline",
    "DEFAULT_EMBEDDING": ".pipeline",
    "QueryEncoder": ".pipeline",
    "build_memory_model": ".pipeline",
    "evaluate": ".pipeline",
    "evaluate_with_flat": ".pipeline",
    "EvaluationOutputs": ".pipeline",
    "evaluation_outputs": ".pipeline",
    "flat_from": ".pipeline",
    "match_classes": ".pipeline",
    "typical_similarity": ".pipeline",
    "write_evaluation": ".pipeline",
    "GalleryItem": ".report",
    "GalleryNeighbour": ".report",
    "SECTIONS": ".report",
    "write_report": ".report",
    "CentroidRouter": ".twostage",
    "HeadRouter": ".twostage",
    "MemoryRouter": ".twostage",
    "ShardSet": ".twostage",
    "DeltaSpecialists": ".twostage",
    "FullSpecialists": ".twostage",
    "quantise_int8": "._quantise",
    "DECISIONS": "._base",
    "Calibration": "._calibration",
    "HedgedAnswers": "._hedging",
    "RULES": "._calibration",
    "calibrate": "._calibration",
    "calibrate_proba": "._calibration",
    "ece": "._calibration",
    "hedge": "._hedging",
    "hedged_curve": "._hedging",
    "hedged_metrics": "._hedging",
    "temperature_scale": "._calibration",
    "PairedDifference": "._stats",
    "mcnemar_p": "._stats",
    "paired_difference": "._stats",
    "TailDeltas": ".network",
    "TailSpecialists": ".network",
    "tail_features": ".network",
    "tail_logits": ".network",
    "train_epoch": ".network",
    "rows_forward": ".network",
    "train_tail": ".network",
    "BackboneSplit": ".network",
    "DEFAULT_SPLITS": ".network",
    "Tail": ".network",
    "TrunkActivations": ".network",
    "load_trunk_activations": ".network",
    "run_trunk_on_images": ".network",
    "split_backbone": ".network",
    "trunk_activations": ".network",
    "NetworkPath": ".network",
    "RUNTIMES": ".network",
    "choose_path": ".network",
    "installed_runtimes": ".network",
}

__all__ = [
    "BackboneSplit",
    "CHECK_LABELS",
    "CLIError",
    "Calibration",
    "CentroidRouter",
    "DECISIONS",
    "DEFAULT_EMBEDDING",
    "DEFAULT_SPLITS",
    "DeltaSpecialists",
    "EvaluationOutputs",
    "FlatClassifier",
    "FullSpecialists",
    "GalleryItem",
    "GalleryNeighbour",
    "Head",
    "HeadRouter",
    "HedgedAnswers",
    "MemoryRouter",
    "NetworkPath",
    "NetworkTwoStage",
    "NotFittedError",
    "PairedDifference",
    "Predictions",
    "QueryEncoder",
    "RULES",
    "RUNTIMES",
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
    "calibrate",
    "calibrate_proba",
    "choose_path",
    "compare",
    "confused_pairs",
    "ece",
    "edit_classifier",
    "evaluate",
    "evaluate_with_flat",
    "evaluation_outputs",
    "expected_failed_checks",
    "fit_head",
    "flat_from",
    "head_proba",
    "hedge",
    "hedged_curve",
    "hedged_metrics",
    "installed_runtimes",
    "level_metrics",
    "load_classifier",
    "load_model",
    "load_predictions",
    "load_trunk_activations",
    "main",
    "match_classes",
    "mcnemar_p",
    "paired_difference",
    "per_class_accuracy",
    "per_superclass_accuracy",
    "quantise_int8",
    "rows_forward",
    "run_trunk_on_images",
    "save_classifier",
    "split_backbone",
    "superclass_confusion",
    "tail_features",
    "tail_logits",
    "temperature_scale",
    "train_epoch",
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
    from ._base import DECISIONS
    from ._checks import CHECK_LABELS, expected_failed_checks
    from ._errors import CLIError, NotFittedError
    from ._explanations import RoutedExplanation
    from ._calibration import RULES, Calibration, calibrate, calibrate_proba, ece, temperature_scale
    from ._hedging import HedgedAnswers, hedge, hedged_curve, hedged_metrics
    from ._quantise import quantise_int8
    from ._stats import PairedDifference, mcnemar_p, paired_difference
    from .cli import main
    from .network import (DEFAULT_SPLITS, RUNTIMES, BackboneSplit, NetworkPath, NetworkTwoStage, Tail, TailDeltas,
                          TailSpecialists, TrunkActivations, choose_path, installed_runtimes, load_trunk_activations,
                          rows_forward, run_trunk_on_images, split_backbone, tail_features, tail_logits, train_epoch,
                          train_tail, trunk_activations)
    from .pipeline import (DEFAULT_EMBEDDING, EvaluationOutputs, QueryEncoder, build_memory_model, edit_classifier,
                           evaluate, evaluate_with_flat, evaluation_outputs, flat_from, load_classifier, load_model,
                           match_classes, save_classifier, typical_similarity, write_evaluation)
    from .report import (SECTIONS, GalleryItem, GalleryNeighbour, Predictions, compare, confused_pairs, level_metrics,
                         load_predictions, per_class_accuracy, per_superclass_accuracy, superclass_confusion,
                         write_report)
    from .twostage import (TRAIN_PRECISION_ENV, CentroidRouter, DeltaSpecialists, FlatClassifier, FullSpecialists,
                           Head, HeadRouter, MemoryRouter, ShardSet, TwoStageClassifier, fit_head, head_proba,
                           train_module, training_precision)
