"""Misclassification analysis and reports: level metrics, confusions, the HTML report and its gallery."""

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
from ._gallery import inside_root, mistake_gallery, png_bytes, training_root
from ._report import SECTIONS, GalleryItem, GalleryNeighbour, write_report

__all__ = [
    "GalleryItem",
    "GalleryNeighbour",
    "Predictions",
    "SECTIONS",
    "compare",
    "confused_pairs",
    "inside_root",
    "level_metrics",
    "load_predictions",
    "mistake_gallery",
    "per_class_accuracy",
    "per_superclass_accuracy",
    "png_bytes",
    "superclass_confusion",
    "training_root",
    "write_report",
]
