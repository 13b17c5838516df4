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
  fitted, its size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from sklearn.base import BaseEstimator, ClassifierMixin

from ._errors import NotFittedError

__all__ = ["RoutedModel"]


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

    # ---------------------------------------------------------------- repr
    def _fitted_summary(self) -> str:
        return f"{len(self.classes_)} classes, {self.n_entries} entries"  # type: ignore[attr-defined]

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        shape = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shape_params)
        fitted = f", {self._fitted_summary()}" if self.__sklearn_is_fitted__() else ""
        return f"{type(self).__name__}({shape}{fitted})"
