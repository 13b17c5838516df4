"""From images to a saved model and back, for either model kind: build, load, save, edit, evaluate."""

from ._models import class_of, edit_classifier, load_classifier, load_model, save_classifier
from ._outputs import EvaluationOutputs, evaluation_outputs
from ._pipeline import (
    DEFAULT_EMBEDDING,
    Queries,
    QueryEncoder,
    build_memory_model,
    embedder_for,
    evaluate,
    evaluate_with_flat,
    flat_from,
    match_classes,
    memory_summary,
    typical_similarity,
    write_evaluation,
    write_predictions,
)

__all__ = [
    "DEFAULT_EMBEDDING",
    "EvaluationOutputs",
    "Queries",
    "QueryEncoder",
    "build_memory_model",
    "class_of",
    "edit_classifier",
    "embedder_for",
    "evaluate",
    "evaluate_with_flat",
    "evaluation_outputs",
    "flat_from",
    "load_classifier",
    "load_model",
    "match_classes",
    "memory_summary",
    "save_classifier",
    "typical_similarity",
    "write_evaluation",
    "write_predictions",
]
