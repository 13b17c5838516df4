"""The explorer's mistakes view: one ``supersub evaluate`` output, browsed level by level."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import ClassTree, read_json
from memory import InputError

from ..report import Predictions, compare, level_metrics, load_predictions, superclass_confusion

__all__ = ["Mistakes"]


class Mistakes:
    """Routed and flat predictions of an evaluation directory, against a class tree.

    Parameters
    ----------
    directory : path-like
        Written by ``supersub evaluate -o``: ``predictions.csv`` (systems
        ``flat``, ``routed`` and ``oracle``) and ``metrics.json``, which
        records the folder the query images are relative to.
    tree : ClassTree
        With a superclass cut (the model's tree).

    Raises
    ------
    InputError
        The directory lacks those files, or they are not an evaluation's.
    """

    def __init__(self, directory: str | os.PathLike[str], tree: ClassTree) -> None:
        self.directory = Path(directory)
        csv = self.directory / "predictions.csv"
        if not csv.is_file():
            raise InputError(f"{self.directory} holds no predictions.csv; give the directory written by "
                             "'supersub evaluate --model MODEL -o DIR'")
        self.systems = load_predictions(csv)
        for name in ("flat", "routed"):
            if name not in self.systems:
                raise InputError(f"{csv} has no {name!r} system; write it with 'supersub evaluate -o'")
        metrics: dict[str, Any] = {}
        try:
            metrics = read_json(self.directory / "metrics.json", what="metrics file", error=InputError)
        except (OSError, InputError):
            pass
        root = metrics.get("data_root") if isinstance(metrics, dict) else None
        self.root = Path(root) if isinstance(root, str) else None
        self.tree = tree
        cut = tree.superclasses
        assert cut is not None
        self.superclass_ids = list(cut.superclasses)
        self.superclass_names = [cut.names[s] for s in self.superclass_ids]

    @property
    def routed(self) -> Predictions:
        return self.systems["routed"]

    def _sup(self, labels: np.ndarray) -> np.ndarray:
        assignment = self.tree.superclasses.assignment  # type: ignore[union-attr]
        return np.array([assignment.get(c, "") for c in labels], dtype=object)

    def summary(self) -> dict[str, Any]:
        """Accuracy by level and the error split of flat and routed, side by side, and what routing changes."""
        out: dict[str, Any] = {name: level_metrics(self.systems[name], self.tree) for name in ("flat", "routed")}
        if "oracle" in self.systems:
            out["oracle"] = {"class_accuracy": float(np.mean(~self.systems["oracle"].wrong))}
        diff = compare(self.systems["flat"], self.routed)
        out["compare"] = {k: v for k, v in diff.items() if not k.endswith("_index")}
        return out

    def error_matrix(self) -> np.ndarray:
        """Routed errors by (true superclass, predicted superclass), shape (S, S); the diagonal is within-superclass."""
        p = self.routed
        return superclass_confusion(Predictions(p.true[p.wrong], p.pred[p.wrong]), self.tree)[0]

    def cell(self, i: int, j: int, top: int = 20) -> list[dict[str, Any]]:
        """The most confused (true, predicted) class pairs among the routed errors of one matrix cell."""
        n = len(self.superclass_ids)
        if not (0 <= i < n and 0 <= j < n):
            raise InputError(f"cell ({i}, {j}) is outside the {n} x {n} superclass matrix")
        p = self.routed
        sel = p.wrong & (self._sup(p.true) == self.superclass_ids[i]) & (self._sup(p.pred) == self.superclass_ids[j])
        pairs: dict[tuple[str, str], int] = {}
        for a, b in zip(p.true[sel].tolist(), p.pred[sel].tolist()):
            pairs[(a, b)] = pairs.get((a, b), 0) + 1
        ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return [{"true": a, "pred": b, "count": c} for (a, b), c in ranked]

    def examples(self, true: str, pred: str, limit: int = 12) -> list[dict[str, Any]]:
        """Routed mistakes of ``true`` taken for ``pred``: their refs, routes and scores, most confident first."""
        p = self.routed
        sel = np.flatnonzero(p.wrong & (p.true == true) & (p.pred == pred))
        if p.score is not None:
            sel = sel[np.argsort(-p.score[sel], kind="stable")]
        out = []
        for i in sel[:limit]:
            out.append({"row": int(i), "ref": None if p.ref is None else str(p.ref[i]),
                        "route": None if p.route is None else str(p.route[i]),
                        "score": None if p.score is None else float(p.score[i])})
        return out
