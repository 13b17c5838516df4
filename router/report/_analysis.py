"""Misclassification analysis by level, on any predictions file and any class tree.

A predictions file is CSV (or Parquet, with pandas installed) with the
columns ``true`` and ``pred``, and optionally ``route`` (the stage-1
superclass), ``score`` (the prediction's probability), ``ref`` (an image
reference), ``system`` (to hold several systems in one file) and ``pred2``,
``pred3``, ... (further ranked guesses, for hierarchical distance@k).
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import ClassTree, HierarchyError, UnknownClassError, read_text
from memory import InputError

#: Largest predictions CSV read: 1 GiB.
MAX_PREDICTIONS_BYTES = 1 << 30
#: Longest field of a predictions CSV (csv's own default limit).
MAX_FIELD_CHARS = 131_072

__all__ = [
    "Predictions",
    "compare",
    "confused_pairs",
    "level_metrics",
    "load_predictions",
    "per_class_accuracy",
    "per_superclass_accuracy",
    "superclass_confusion",
]


@dataclass
class Predictions:
    """One system's predictions; arrays of equal length n."""

    true: np.ndarray
    pred: np.ndarray
    route: np.ndarray | None = None
    score: np.ndarray | None = None
    ref: np.ndarray | None = None
    ranked: list[np.ndarray] = field(default_factory=list)  # pred2, pred3, ...

    def __len__(self) -> int:
        return int(len(self.true))

    @property
    def wrong(self) -> np.ndarray:
        return self.pred != self.true


def load_predictions(path: str | os.PathLike[str]) -> dict[str, Predictions]:
    """Read a predictions file; returns system name to :class:`Predictions`.

    A CSV file is UTF-8 (a byte-order mark is dropped), at most
    :data:`MAX_PREDICTIONS_BYTES`, with fields of at most
    :data:`MAX_FIELD_CHARS` characters; scores must be finite numbers.

    Raises
    ------
    InputError
        Missing file or columns, an empty, oversized or malformed file, a
        field over the limit, or a score that is not a finite number.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"predictions file {p} does not exist or is not a regular file")
    if p.suffix.lower() == ".parquet":
        try:
            import pandas as pd
        except ImportError:
            raise InputError("reading Parquet needs pandas and pyarrow: pip install pandas pyarrow") from None
        rows = pd.read_parquet(p).astype(str).to_dict("records")
    else:
        text = read_text(p, limit=MAX_PREDICTIONS_BYTES, what="predictions file", error=InputError)
        old = csv.field_size_limit(MAX_FIELD_CHARS)
        try:
            rows = list(csv.DictReader(io.StringIO(text, newline="")))
        except csv.Error as exc:
            raise InputError(f"{p} is not a readable predictions CSV ({exc}; fields hold at most "
                             f"{MAX_FIELD_CHARS:,} characters); write it with 'supersub evaluate'") from None
        finally:
            csv.field_size_limit(old)
    if not rows:
        raise InputError(f"{p} has no rows")
    missing = [c for c in ("true", "pred") if c not in rows[0]]
    if missing:
        raise InputError(f"{p} lacks the column(s) {missing}; expected at least 'true,pred'")
    systems: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        systems.setdefault(r.get("system") or "system", []).append(r)
    ranked_cols = sorted((c for c in rows[0] if c.startswith("pred") and c[4:].isascii() and c[4:].isdigit()),
                         key=lambda c: int(c[4:]))
    out = {}
    for name, rs in systems.items():
        def col(c: str) -> np.ndarray | None:
            if c not in rs[0] or all(not r[c] for r in rs):
                return None
            return np.array([r[c] for r in rs], dtype=object)

        score = col("score")
        if score is not None:
            score = _scores(score, p)
        out[name] = Predictions(
            true=np.array([r["true"] for r in rs], dtype=object),
            pred=np.array([r["pred"] for r in rs], dtype=object),
            route=col("route"),
            score=score,
            ref=col("ref"),
            ranked=[np.array([r[c] for r in rs], dtype=object) for c in ranked_cols],
        )
    return out


def _scores(values: np.ndarray, path: Path) -> np.ndarray:
    """The ``score`` column as finite floats, or an error naming the first bad row."""
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values.tolist()):
        try:
            out[i] = float(v)
        except ValueError:
            out[i] = np.nan
        if not np.isfinite(out[i]):
            raise InputError(f"{path}: row {i + 1} has score {v!r}; scores must be finite numbers "
                             "(write the file with 'supersub evaluate')")
    return out


def _sup(tree: ClassTree, labels: np.ndarray) -> np.ndarray:
    if tree.superclasses is None:
        raise HierarchyError("the tree has no superclass cut; build it with --cut")
    assignment = tree.superclasses.assignment
    bad = [c for c in dict.fromkeys(labels.tolist()) if c not in assignment]
    if bad:
        raise UnknownClassError(f"label {bad[0]!r} in the predictions is not a class of the tree")
    return np.array([assignment[c] for c in labels], dtype=object)


def _lca_heights(tree: ClassTree, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    classes = sorted(set(a.tolist()) | set(b.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    m = tree.lca_height_matrix(classes)
    return m[[index[x] for x in a], [index[x] for x in b]]


def level_metrics(p: Predictions, tree: ClassTree) -> dict[str, Any]:
    """Accuracy at each level, the split of errors, and mistake severity.

    Returns
    -------
    dict
        ``class_accuracy``, ``superclass_accuracy`` (of the predicted
        class's superclass), ``routing_accuracy``, ``specialist_accuracy``
        (class accuracy when the route is right) when ``route`` is given;
        ``errors``,
        ``routing_errors`` and ``specialist_errors``; ``within_rate`` and
        ``across_rate`` (errors inside / across superclasses, as shares of
        all errors); ``mean_lca_height`` over mistakes, its ``lca_histogram``
        and ``hierarchical_distance_at_k``.
    """
    true_sup, pred_sup = _sup(tree, p.true), _sup(tree, p.pred)
    wrong = p.wrong
    heights = _lca_heights(tree, p.true, p.pred)
    out: dict[str, Any] = {
        "n": len(p),
        "class_accuracy": float(np.mean(~wrong)),
        "superclass_accuracy": float(np.mean(pred_sup == true_sup)),
        "errors": int(wrong.sum()),
        "within_errors": int((wrong & (pred_sup == true_sup)).sum()),
        "across_errors": int((wrong & (pred_sup != true_sup)).sum()),
    }
    out["within_rate"] = out["within_errors"] / max(out["errors"], 1)
    out["across_rate"] = out["across_errors"] / max(out["errors"], 1)
    out["mean_lca_height"] = float(heights[wrong].mean()) if wrong.any() else 0.0
    out["lca_histogram"] = {int(h): int(c) for h, c in sorted(Counter(heights[wrong].tolist()).items())}
    guesses = [p.pred, *p.ranked]
    out["hierarchical_distance_at_k"] = {
        k: float(np.mean([_lca_heights(tree, p.true, g).mean() for g in guesses[:k]]))
        for k in range(1, len(guesses) + 1)
    }
    if p.route is not None:
        routed_ok = p.route == true_sup
        out["routing_accuracy"] = float(np.mean(routed_ok))
        out["specialist_accuracy"] = float(np.mean(~wrong[routed_ok])) if routed_ok.any() else 0.0
        out["routing_errors"] = int((wrong & ~routed_ok).sum())
        out["specialist_errors"] = int((wrong & routed_ok).sum())
    return out


def superclass_confusion(p: Predictions, tree: ClassTree) -> tuple[np.ndarray, list[str]]:
    """Counts of (true superclass, predicted superclass), shape (S, S), and the superclass names."""
    sc = tree.superclasses
    assert sc is not None
    ids = list(sc.superclasses)
    index = {s: i for i, s in enumerate(ids)}
    m = np.zeros((len(ids), len(ids)), dtype=np.int64)
    np.add.at(m, ([index[s] for s in _sup(tree, p.true)], [index[s] for s in _sup(tree, p.pred)]), 1)
    return m, [sc.names[s] for s in ids]


def confused_pairs(p: Predictions, tree: ClassTree, top: int = 5) -> dict[str, list[tuple[str, str, int]]]:
    """Per superclass, the most frequent (true, predicted) class pairs inside it."""
    true_sup, pred_sup = _sup(tree, p.true), _sup(tree, p.pred)
    inside = p.wrong & (true_sup == pred_sup)
    out: dict[str, list[tuple[str, str, int]]] = {}
    names = tree.superclasses.names  # type: ignore[union-attr]
    for s in tree.superclasses.superclasses:  # type: ignore[union-attr]
        sel = inside & (true_sup == s)
        counts = Counter(zip(p.true[sel].tolist(), p.pred[sel].tolist()))
        out[names[s]] = [(a, b, n) for (a, b), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    return out


def per_class_accuracy(p: Predictions) -> dict[str, tuple[float, int]]:
    """Class to (accuracy, number of queries)."""
    out = {}
    for c in sorted(set(p.true.tolist())):
        sel = p.true == c
        out[c] = (float(np.mean(p.pred[sel] == c)), int(sel.sum()))
    return out


def per_superclass_accuracy(p: Predictions, tree: ClassTree) -> dict[str, dict[str, float]]:
    """Superclass name to class accuracy, superclass accuracy and routing accuracy of its queries."""
    true_sup, pred_sup = _sup(tree, p.true), _sup(tree, p.pred)
    names = tree.superclasses.names  # type: ignore[union-attr]
    out = {}
    for s in tree.superclasses.superclasses:  # type: ignore[union-attr]
        sel = true_sup == s
        if not sel.any():
            continue
        row = {"n": int(sel.sum()), "class_accuracy": float(np.mean(~p.wrong[sel])),
               "superclass_accuracy": float(np.mean(pred_sup[sel] == s))}
        if p.route is not None:
            row["routing_accuracy"] = float(np.mean(p.route[sel] == s))
        out[names[s]] = row
    return out


def compare(a: Predictions, b: Predictions) -> dict[str, Any]:
    """Which errors system ``b`` fixes and which it introduces, relative to ``a``.

    The two must hold the same queries in the same order (same ``true``).
    """
    if len(a) != len(b) or not np.array_equal(a.true, b.true):
        raise InputError("the two systems must be evaluated on the same queries, in the same order")
    fixed = a.wrong & ~b.wrong
    introduced = ~a.wrong & b.wrong
    return {
        "both_right": int((~a.wrong & ~b.wrong).sum()),
        "both_wrong": int((a.wrong & b.wrong).sum()),
        "fixed": int(fixed.sum()),
        "introduced": int(introduced.sum()),
        "fixed_index": np.flatnonzero(fixed),
        "introduced_index": np.flatnonzero(introduced),
    }
