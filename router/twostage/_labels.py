"""Checking the class labels users pass: one string per row, and known to the tree."""

from __future__ import annotations

from typing import Any

import numpy as np

from hierarchy import UnknownClassError, normalize_name
from memory import InputError, as_strings

__all__ = ["check_labels", "decode_labels", "fit_labels", "label_ids"]


def check_labels(y: Any, n: int, known: set[str] | None, what: str = "label") -> np.ndarray:
    """``y`` as an object array of ``n`` strings; with ``known``, every value must be in it.

    Raises
    ------
    UnknownClassError
        A label outside ``known``; the message names the first one and the fix.
    """
    out = np.asarray(as_strings(y, n, "y"), dtype=object)
    if known is not None:
        bad = [v for v in dict.fromkeys(out.tolist()) if v not in known]
        if bad:
            raise UnknownClassError(
                f"unknown {what} {bad[0]!r}: it is not a class of the tree; "
                "add it as a new class ('supersub memory add --label', or add_class in Python) or rebuild the tree"
            )
    return out


def fit_labels(y: Any, n: int, known: set[str]) -> tuple[np.ndarray, np.ndarray, str]:
    """Validate training labels the way scikit-learn does, and name them by the tree's class ids.

    Parameters
    ----------
    y : array-like of shape (n,)
        Class ids of the tree (str), or integers whose decimal form is one
        (a mapping-file tree with classes ``"0"``, ``"1"``...).  A column
        vector of shape (n, 1) is flattened with a ``DataConversionWarning``.
    n : int
        Rows of ``X``.
    known : set of str
        The tree's class ids.

    Returns
    -------
    ids : ndarray of shape (n,), object
        Each row's class id.
    class_ids : ndarray of shape (n_classes,), object
        The class ids in the order ``np.unique(y)`` sorts the labels
        (integers as numbers: 2 before 10).
    kind : {"str", "int"}
        The type predictions come back as.

    Raises
    ------
    InputError
        ``y`` missing, of the wrong length, continuous, or neither strings
        nor integers.
    UnknownClassError
        A label that is not a class of the tree.
    """
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import column_or_1d

    if y is None:
        raise InputError("this classifier requires y to be passed, but the target y is None; "
                         "give the class of each row")
    if isinstance(y, (list, tuple)) and len({isinstance(v, str) for v in y}) > 1:
        raise InputError("Mix of label input types (string and number) in y; give labels of one type")
    try:
        arr = column_or_1d(y, warn=True)
    except ValueError as exc:
        raise InputError(f"y must be one label per row: {exc}") from exc
    if len(arr) != n:
        raise InputError(f"got {len(arr)} labels for {n} embeddings; give one per row")
    try:
        check_classification_targets(arr)
    except ValueError as exc:
        raise InputError(f"{exc}; give class labels (strings or integers), not a continuous target") from exc
    values = arr.tolist()
    if arr.dtype.kind in "iu" or all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        kind, arr = "int", arr.astype(np.int64)
    elif all(isinstance(v, str) for v in values):
        kind, arr = "str", np.array([normalize_name(v) for v in values], dtype=object)
    else:
        raise InputError(f"labels must be the tree's class ids (strings) or integers whose decimal form is "
                         f"one, got dtype {arr.dtype}; convert them, for example [str(v) for v in y]")
    ids = check_labels(arr, n, known)
    return ids, np.array([str(v) for v in np.unique(arr)], dtype=object), kind


def decode_labels(ids: np.ndarray, kind: str) -> np.ndarray:
    """Class ids as the labels a classifier was fitted on: ``int`` for ``kind="int"``, else ``str``."""
    if kind == "int":
        return np.array([int(c) for c in ids], dtype=np.int64)
    return np.array(ids, dtype=object)


def label_ids(label: Any) -> Any:
    """A label, or a sequence of labels, as class ids (their ``str`` form); ``None`` stays ``None``."""
    if label is None:
        return label
    if isinstance(label, str) or np.isscalar(label):
        return normalize_name(str(label))
    return [normalize_name(str(v)) for v in label]
