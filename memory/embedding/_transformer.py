"""Images to embeddings as a scikit-learn transformer, so a backbone can open a pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._errors import InputError
from ._backbones import get_backbone
from ._embed import Embedder

__all__ = ["ImageEmbedder"]


class ImageEmbedder(TransformerMixin, BaseEstimator):
    """Image paths or PIL images in, L2-normalised embeddings out.

    ``make_pipeline(ImageEmbedder(size=128), TwoStageClassifier(tree))`` fits
    and predicts on images.  Nothing is learned: :meth:`fit` builds the
    backbone (loading its weights) and records its fingerprint.

    Parameters
    ----------
    backbone : str, default "lite0"
        A name :func:`memory.get_backbone` knows.
    size : int, optional
        Input resolution (the backbone's default when omitted).
    crop_pct : float, optional
        Centre-crop fraction before resizing.
    runtime : {"auto", "onnx", "openvino", "torch"}, default "auto"
    precision : {"auto", "fp32", "bf16"}, default "auto"
        The embedder's numeric path (see :class:`memory.Embedder`).
    batch_size : int, default 64
    progress : bool, default False

    Attributes
    ----------
    fingerprint_ : str
        Identifies backbone, weights and preprocessing; what memories check.
    recipe_ : dict
        ``{"backbone", "size", "crop_pct"}``, the ``embedding`` recipe a
        classifier saves so the command line can embed its queries.
    n_features_out_ : int
    """

    def __init__(self, backbone: str = "lite0", *, size: int | None = None, crop_pct: float | None = None,
                 runtime: str = "auto", precision: str = "auto", batch_size: int = 64,
                 progress: bool = False) -> None:
        self.backbone = backbone
        self.size = size
        self.crop_pct = crop_pct
        self.runtime = runtime
        self.precision = precision
        self.batch_size = batch_size
        self.progress = progress

    def fit(self, X: Any = None, y: Any = None) -> ImageEmbedder:
        """Build the backbone; ``X`` and ``y`` are ignored (nothing is learned)."""
        bb = get_backbone(self.backbone, size=self.size, crop_pct=self.crop_pct)
        self.embedder_ = Embedder(bb, runtime=self.runtime, precision=self.precision,
                                  batch_size=self.batch_size, progress=self.progress)
        self.fingerprint_ = bb.fingerprint
        self.recipe_ = {"backbone": self.backbone, "size": bb.preprocess.size, "crop_pct": bb.preprocess.crop_pct}
        self.n_features_out_ = bb.dim
        return self

    def transform(self, X: Sequence[Any]) -> np.ndarray:
        """Embeddings of the images, shape (n, dim), float32, rows L2-normalised."""
        check_is_fitted(self)
        if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
            raise InputError("give a list of image paths or PIL images, not a single one")
        if len(X) == 0:
            raise InputError("no images given")
        return self.embedder_.embed_images(list(X))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns the live __dict__
        state.pop("embedder_", None)  # rebuilt from the parameters on load (it holds a runtime session)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = {"precision": "auto", **state}  # pickled before the parameter existed
        super().__setstate__(state)
        if "fingerprint_" in state:
            self.fit()
            if self.fingerprint_ != state["fingerprint_"]:
                raise InputError(f"the backbone now gives {self.fingerprint_}, not the pickled "
                                 f"{state['fingerprint_']}; were its weights changed?")
