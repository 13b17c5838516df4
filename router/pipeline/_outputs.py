"""What an evaluation needs from a model, computed once: routed, oracle-routed and flat probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memory import InputError

__all__ = ["EvaluationOutputs", "evaluation_outputs"]


@dataclass(frozen=True)
class EvaluationOutputs:
    """One pass of a routed classifier and its flat baseline over labelled queries.

    :func:`router.evaluate_with_flat`, :func:`router.write_evaluation` and the
    hedged figures (:meth:`hedged_from_proba`, :func:`router.hedged_curve`) all
    read these, so an evaluation runs each model once however many figures it
    writes.

    Attributes
    ----------
    proba : ndarray of shape (n, n_classes)
        ``clf.predict_proba`` with the routing asked for; columns in
        ``clf.classes_`` order.
    route : ndarray of shape (n,)
        ``clf.predict_superclass``: the stage-1 superclass of each query.
    oracle : ndarray of shape (n, n_classes)
        ``predict_proba`` routed to each query's true superclass.
    flat : ndarray of shape (n, n_flat_classes), or None
        The flat baseline's ``predict_proba``, in ``flat.classes_`` order
        (None when no baseline was given).
    """

    proba: np.ndarray
    route: np.ndarray
    oracle: np.ndarray
    flat: np.ndarray | None

    @property
    def n(self) -> int:
        """The number of queries."""
        return len(self.proba)

    def check(self, n: int) -> None:
        """Refuse outputs of another number of queries than ``n``."""
        if self.n != n:
            raise InputError(f"these evaluation outputs are of {self.n} queries, not of the {n} given; "
                             "compute them on the same queries (router.pipeline.evaluation_outputs)")


def evaluation_outputs(clf: Any, X: Any, y: Sequence[str], flat: Any = None, *, routing: str | None = None,
                       m: int | None = None) -> EvaluationOutputs:
    """Run ``clf`` (routed as asked, and oracle-routed) and ``flat`` once over labelled queries ``X``.

    Parameters
    ----------
    clf : TwoStageClassifier or NetworkTwoStage
    X : ndarray of shape (n, d), or what a network model takes
    y : sequence of str, length n
        True classes (the oracle routes by them).
    flat : classifier, optional
        The flat baseline (:func:`router.flat_from`).
    routing, m
        As for ``clf.predict_proba``.
    """
    y = np.asarray(y, dtype=object)
    proba = np.asarray(clf.predict_proba(X, routing=routing, m=m))
    if len(proba) != len(y):
        raise InputError(f"{len(proba)} queries but {len(y)} labels")
    return EvaluationOutputs(proba=proba, route=np.asarray(clf.predict_superclass(X)),
                             oracle=np.asarray(clf.predict_proba(X, routing="oracle", y_true=y)),
                             flat=None if flat is None else np.asarray(flat.predict_proba(X)))
