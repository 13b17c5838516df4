"""The contract both model kinds share: saving, loading, ``repr`` and the fitted-state checks.

:class:`router.TwoStageClassifier` (memory level, over embeddings) and
:class:`router.NetworkTwoStage` (network level, over images) are separate
scikit-learn estimators.  Each says where its fitted state lives and how it is
saved and read; this base turns that into one behaviour for both:

* ``check_fitted()`` raises :class:`router.NotFittedError` naming the class,
  and scikit-learn's ``check_is_fitted`` agrees with it;
* ``save(path, wait=...)`` refuses an unfitted model and writes atomically;
* ``load(path)`` reads this kind; a saved model of the other kind is
  refused with a pointer to :func:`router.load_model`, which reads either;
* ``repr`` shows the parameters that choose the model's shape, then, once
  fitted, its size;
* decisions along the tree: ``predict(X, decision="crm")`` picks the class
  of least expected LCA height, and ``predict_hedged(X, accuracy=α)`` answers
  with nodes of the tree under the calibration in ``calibration_`` (see
  :func:`router.calibrate`); an edit of the memory marks that calibration stale.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from hierarchy import crm_decisions
from memory import InputError

from ._errors import NotFittedError
from ._calibration import Calibration
from ._hedging import HedgedAnswers, hedge

log = logging.getLogger("supersub")

F = TypeVar("F", bound=Callable[..., Any])

#: The ways ``predict`` turns probabilities into a class.
DECISIONS = ("argmax", "crm")

__all__ = ["DECISIONS", "RoutedModel", "edits_memory"]


def edits_memory(method: F) -> F:
    """Mark a model method as a memory edit: once it succeeds, the model's calibration is stale."""

    @functools.wraps(method)
    def edit(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = method(self, *args, **kwargs)
        self._calibration_stale()
        return out

    return edit  # type: ignore[return-value]


class RoutedModel(ClassifierMixin, BaseEstimator):
    """Base of both routed model kinds (not used directly).

    Subclasses set ``_fitted_attr`` (an attribute that exists exactly when
    the model is fitted or loaded) and ``_shape_params`` (the parameters its
    ``repr`` shows), and implement ``_save_to`` and ``_load_from``.
    """

    _fitted_attr: ClassVar[str]
    _shape_params: ClassVar[tuple[str, ...]]
    #: Whether ``X`` is images (the network level) rather than feature vectors.
    takes_images: ClassVar[bool] = False

    # -------------------------------------------------------- fitted state
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, self._fitted_attr)

    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless :meth:`fit` (or a load) has run."""
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"this {type(self).__name__} is not fitted; call fit(X, y) first, "
                                 f"or load a saved model with {type(self).__name__}.load(path)")

    # --------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str], *, wait: float = 0.0) -> Path:
        """Save the model to the directory ``path`` atomically; a crash leaves the previous save loadable.

        Parameters
        ----------
        path : path-like
        wait : float, default 0
            Seconds to wait for another writer's lock.

        Raises
        ------
        NotFittedError
            The model is not fitted.
        ConcurrentWriteError
            Another writer holds the lock, or committed to ``path`` after this
            model was loaded from it (saving would drop that edit).
        """
        self.check_fitted()
        return self._save_to(Path(path), wait)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, fingerprint: str | None = None) -> Any:
        """Load a model of this kind saved by :meth:`save` (:func:`router.load_model` reads either kind).

        Raises
        ------
        MemoryFormatError
            ``path`` holds the other kind of model, or no valid model.
        BackboneMismatchError
            ``fingerprint`` differs from the one the model was built with.
        """
        return cls._load_from(Path(path), fingerprint)

    def _save_to(self, path: Path, wait: float) -> Path:
        raise NotImplementedError

    @classmethod
    def _load_from(cls, path: Path, fingerprint: str | None) -> RoutedModel:
        raise NotImplementedError

    # ------------------------------------------------------ tree decisions
    def class_names(self) -> list[str]:
        """The model's classes as class ids of its tree, in ``predict_proba``'s column order."""
        return [str(c) for c in self.class_ids_]  # type: ignore[attr-defined]

    def decide(self, proba: np.ndarray, decision: str = "argmax") -> np.ndarray:
        """Column of the chosen class for each row of ``proba`` (n, n_classes): its argmax, or CRM's choice.

        CRM minimises the expected LCA height under the probabilities, so it
        uses the calibrated ones when the model has a calibration that is not
        stale (argmax is the same either way: the calibration keeps the order).
        """
        if decision not in DECISIONS:
            raise InputError(f"unknown decision {decision!r}; choose one of {', '.join(DECISIONS)}")
        if decision == "argmax":
            return np.asarray(proba).argmax(1)
        cal = self._fresh_calibration()
        if cal is not None:
            proba = cal.scale(proba)
        heights = self.tree.lca_height_matrix(self.class_names())  # type: ignore[attr-defined]
        return crm_decisions(proba, heights)

    def predict_from_proba(self, proba: np.ndarray, decision: str = "argmax") -> np.ndarray:
        """Predicted classes, shape (n,), from probabilities ``predict_proba`` gave (n, n_classes).

        One pass of ``predict_proba`` can then serve several decisions.
        """
        return self.classes_[self.decide(proba, decision)]  # type: ignore[attr-defined]

    def _fresh_calibration(self) -> Calibration | None:
        """The calibration, if there is one that still describes the model."""
        cal = self._marked_calibration()
        return None if cal is None or cal.stale or list(cal.classes) != self.class_names() else cal

    def _marked_calibration(self) -> Calibration | None:
        """The calibration, marked stale if the memory's size changed since it was made."""
        cal: Calibration | None = getattr(self, "calibration_", None)
        entries = getattr(self, "n_entries", None)
        if cal is not None and cal.entries is not None and entries is not None and entries != cal.entries:
            cal.stale = True
        return cal

    def _calibration_stale(self) -> None:
        """Called by every memory edit: the calibration no longer describes the model."""
        cal = getattr(self, "calibration_", None)
        if cal is not None:
            cal.stale = True

    def check_calibration(self, *, strict: bool = False) -> Calibration:
        """The model's calibration; a stale one warns, or is refused under ``strict``.

        Raises
        ------
        InputError
            The model was never calibrated, or (``strict``) its memory was
            edited after the calibration.
        """
        self.check_fitted()
        cal = self._marked_calibration()
        if cal is None:
            raise InputError(f"this {type(self).__name__} is not calibrated: run router.calibrate(model, X, y) "
                             "or 'supersub calibrate --model M --data DIR' on labelled images it was not trained on")
        if cal.stale:
            message = ("the calibration is stale: the memory was edited after it, so its accuracy promise no "
                       "longer holds; recalibrate ('supersub calibrate' or router.calibrate)")
            if strict:
                raise InputError(message)
            log.warning(message)
        return cal

    def predict_hedged(self, X: Any, accuracy: float = 0.9, *, rule: str = "darts", delta: float = 0.1,
                       strict: bool = False, **kwargs: Any) -> HedgedAnswers:
        """Answer each query with the most informative node of the tree that keeps ``accuracy``.

        Parameters
        ----------
        X
            Queries, as for :meth:`predict_proba`.
        accuracy : float, default 0.9
            The promised share of answers whose node holds the true class.
        rule : {"darts", "threshold"}, default "darts"
        delta : float, default 0.1
            The promise holds with probability ``1 − delta`` over the calibration draw.
        strict : bool, default False
            Refuse, rather than warn, when the calibration is stale.
        **kwargs
            Passed to :meth:`predict_proba` (routing, m, steer, ...).

        Returns
        -------
        HedgedAnswers
            Node ids, labels, depth, mass, information gain and path per query.
        """
        cal = self.check_calibration(strict=strict)  # before the queries run
        return self._hedge(self.predict_proba(X, **kwargs), cal, accuracy, rule, delta)  # type: ignore[attr-defined]

    def hedged_from_proba(self, proba: np.ndarray, accuracy: float = 0.9, *, rule: str = "darts",
                          delta: float = 0.1, strict: bool = False) -> HedgedAnswers:
        """:meth:`predict_hedged` from probabilities ``predict_proba`` gave, shape (n, n_classes).

        One pass of ``predict_proba`` can then serve several accuracies and decisions.
        """
        return self._hedge(proba, self.check_calibration(strict=strict), accuracy, rule, delta)

    def _hedge(self, proba: np.ndarray, cal: Calibration, accuracy: float, rule: str, delta: float) -> HedgedAnswers:
        if list(cal.classes) != self.class_names():
            raise InputError("the model's classes changed after its calibration; recalibrate it")
        return hedge(proba, self.tree, cal, accuracy, rule=rule, delta=delta)  # type: ignore[attr-defined]

    # ---------------------------------------------------------------- repr
    def _fitted_summary(self) -> str:
        return f"{len(self.classes_)} classes, {self.n_entries} entries"  # type: ignore[attr-defined]

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        shape = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shape_params)
        fitted = f", {self._fitted_summary()}" if self.__sklearn_is_fitted__() else ""
        return f"{type(self).__name__}({shape}{fitted})"
