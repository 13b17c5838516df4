"""Hedged answers: one node of the class tree per query, as specific as a promised accuracy allows.

**The guarantee.**  For a target accuracy ``α`` and a confidence ``1 − δ``, the
rule's parameter is chosen by Learn-then-Test with fixed-sequence testing
(Angelopoulos et al., 2021): the grid is walked from the safest parameter
(answers near the root) to the most informative, each tested for
``H0: error rate > 1 − α`` with the exact binomial p-value
``P(Binomial(n, 1 − α) ≤ errors)``, and the walk stops at the first parameter
that is not rejected at level ``δ``; the last rejected one is used.  Then, with
probability at least ``1 − δ`` over the draw of the ``n`` calibration queries,
the probability that a new query from the same distribution is answered
correctly (its true class lies under the answer) is at least ``α``.  It
assumes calibration and test queries are exchangeable, and it holds for the
model as calibrated: an edit of its memory voids it until it is recalibrated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hierarchy import ClassTree, TreeNodes
from memory import InputError

from ._calibration import Calibration, rule_rows

__all__ = ["CURVE", "HedgedAnswers", "hedge", "hedged_curve", "hedged_metrics"]


@dataclass(frozen=True)
class HedgedAnswers:
    """One node of the class tree per query.

    Attributes
    ----------
    nodes : ndarray of shape (n,), object
        Node ids: a class, a superclass, any ancestor, or the root.
    labels : ndarray of shape (n,), object
        Their readable labels.
    depth : ndarray of shape (n,), int
        Their depth in the tree (0 for the root).
    mass : ndarray of shape (n,), float
        The calibrated probability that the true class lies under the node.
    gain : ndarray of shape (n,), float
        Normalised information gain: 1 for a class, 0 for the root.
    is_class : ndarray of shape (n,), bool
        Whether the answer names a class.
    paths : list of list of (str, float)
        For each query, (node, mass) from the root down to the answer.
    accuracy, delta : float
        The promise: accuracy ``accuracy`` with confidence ``1 − delta``.
    rule : str
    parameter : float
        The rule's parameter chosen on the calibration queries.
    """

    nodes: np.ndarray
    labels: np.ndarray
    depth: np.ndarray
    mass: np.ndarray
    gain: np.ndarray
    is_class: np.ndarray
    paths: list[list[tuple[str, float]]]
    accuracy: float
    delta: float
    rule: str
    parameter: float

    def __len__(self) -> int:
        return len(self.nodes)


def hedge(proba: np.ndarray, tree: ClassTree, calibration: Calibration, accuracy: float, *,
          rule: str = "darts", delta: float = 0.1) -> HedgedAnswers:
    """Answer each query with the most informative node that keeps the promised accuracy.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
        Uncalibrated probabilities over ``calibration.classes``.
    tree : ClassTree
    calibration : Calibration
    accuracy : float
        Promised accuracy ``α`` in (0, 1).
    rule : {"darts", "threshold"}, default "darts"
    delta : float, default 0.1
        The promise holds with probability ``1 − delta`` over the calibration draw.
    """
    value = calibration.parameter(accuracy, rule=rule, delta=delta)
    nodes = TreeNodes(tree, calibration.classes)
    mass = nodes.masses(calibration.scale(proba))
    rows = rule_rows(nodes, mass, rule, value)
    ids = np.array(nodes.nodes, dtype=object)[rows]
    index = {n: i for i, n in enumerate(nodes.nodes)}
    paths = []
    for q, node in enumerate(ids):
        chain = [n for n in reversed(tree.path_to_root(node)) if n in index]
        paths.append([(n, float(mass[q, index[n]])) for n in chain])
    return HedgedAnswers(
        nodes=ids, labels=np.array([tree.label(n) for n in ids], dtype=object), depth=nodes.depth[rows],
        mass=mass[np.arange(len(rows)), rows], gain=nodes.gain[rows], is_class=nodes.size[rows] == 1,
        paths=paths, accuracy=float(accuracy), delta=float(delta), rule=rule, parameter=float(value))


def hedged_metrics(answers: HedgedAnswers, tree: ClassTree, y: Any) -> dict[str, Any]:
    """How hedged answers fared against the true classes ``y`` (which may include classes the model lacks).

    Returns
    -------
    dict
        ``accuracy`` (promised), ``delta``, ``rule``, ``parameter``,
        ``achieved`` (share of answers holding the true class), ``class_level``
        (share answered with a class), ``root`` (share answered "I don't
        know"), ``inner`` (the rest: a superclass or another inner node),
        ``mean_gain`` and ``mean_depth``.
    """
    y = [str(v) for v in np.asarray(y, dtype=object)]
    right = np.array([node in tree.path_to_root(tree.check_class(t)) for node, t in zip(answers.nodes, y)])
    return {"accuracy": answers.accuracy, "delta": answers.delta, "rule": answers.rule,
            "parameter": answers.parameter, "n": len(answers),
            "achieved": float(right.mean()) if len(right) else 0.0,
            "class_level": float(answers.is_class.mean()), "root": float(np.mean(answers.nodes == tree.root)),
            "inner": float(np.mean(~answers.is_class & (answers.nodes != tree.root))),
            "mean_gain": float(answers.gain.mean()), "mean_depth": float(answers.depth.mean())}


#: The promised accuracies of an accuracy–specificity curve.
CURVE = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def hedged_curve(model: Any, X: Any, y: Any, *, rule: str = "darts", delta: float = 0.1,
                 proba: np.ndarray | None = None, **kwargs: Any) -> dict[str, Any]:
    """:func:`hedged_metrics` of ``model``'s answers at each accuracy of :data:`CURVE` it can promise.

    ``kwargs`` go to ``predict_proba``; levels the calibration is too small for are left out.
    ``proba``, what ``predict_proba`` gave for ``X`` (n, n_classes), saves running the model again.
    """
    cal = model.check_calibration()
    proba = model.predict_proba(X, **kwargs) if proba is None else np.asarray(proba)
    if len(proba) != len(y):
        raise InputError(f"{len(proba)} rows of probabilities but {len(y)} labels")
    points = []
    for alpha in CURVE:
        try:
            points.append(hedged_metrics(hedge(proba, model.tree, cal, alpha, rule=rule, delta=delta), model.tree, y))
        except InputError:
            continue
    return {"rule": rule, "delta": delta, "points": points}
