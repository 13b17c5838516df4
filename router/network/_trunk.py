"""A backbone split into a frozen trunk and a trainable tail, and a cache of trunk activations.

The trunk (stem and early stages) runs once per image; its activations are
cached on disk in float16, so that fine-tuning the tail (the last stage or
stages, the feature head and a classifier) never decodes an image again.

>>> from memory import get_backbone
>>> from router import split_backbone
>>> split = split_backbone(get_backbone("lite0", size=128))   # doctest: +SKIP
>>> split.at, split.trunk_shape                                # doctest: +SKIP
('blocks.6', (192, 4, 4))
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memory import Backbone, BackboneMismatchError, Embedder, ImageDataset, InputError, MemoryFormatError, cache_root
from memory.embedding import fill_batches, read_array_dir, write_array_dir

from .._random import seeded
from ._graphs import NetworkPath, choose_path, graph_runner

__all__ = ["DEFAULT_SPLITS", "BackboneSplit", "Tail", "TrunkActivations", "load_trunk_activations",
           "run_trunk_on_images", "split_backbone", "trunk_activations", "trunk_cache_dir"]

log = logging.getLogger(__name__)

#: Where the tail starts, per registered backbone: the last stage of EfficientNet-Lite.
DEFAULT_SPLITS = {"lite0": "blocks.6", "lite1": "blocks.6", "lite2": "blocks.6"}
PRECISIONS = ("bf16", "fp32")
FORMAT = "supersub-trunk-activations"
FORMAT_VERSION = 1


class Tail(torch.nn.Module):
    """The trainable end of a backbone: stages after the split, feature head, pooling, classifier.

    Parameters
    ----------
    stages : torch.nn.Module
        The backbone's stages after the split point.
    head : torch.nn.Module
        The feature head (for EfficientNet: ``conv_head`` then ``bn2``).
    dim : int
        Width of the pooled features.
    n_classes : int, optional
        Adds a linear classifier with this many outputs.
    """

    def __init__(self, stages: Any, head: Any, dim: int, n_classes: int | None = None) -> None:
        super().__init__()
        self.stages = stages
        self.head = head
        self.dim = int(dim)
        self.classifier = torch.nn.Linear(dim, n_classes) if n_classes else None

    def features(self, a: Any) -> Any:
        """Pooled features of trunk activations: (n, C, H, W) -> (n, dim), not normalised."""
        return self.head(self.stages(a)).mean((2, 3))

    def forward(self, a: Any) -> Any:
        """Class logits, shape (n, n_classes)."""
        if self.classifier is None:
            raise InputError("this tail has no classifier; pass n_classes when making it")
        return self.classifier(self.features(a))

    def n_params(self) -> int:
        """Number of parameters (stages, head and classifier)."""
        return sum(p.numel() for p in self.parameters())


def _check_splittable(backbone: Backbone) -> None:
    m = backbone.model
    if backbone.spec.library != "timm" or not all(hasattr(m, a) for a in
                                                  ("conv_stem", "bn1", "blocks", "conv_head", "bn2")):
        raise InputError(
            f"{backbone.name} cannot be split into trunk and tail: only EfficientNet/MobileNet-style "
            "timm models (conv_stem, blocks, conv_head) are supported, e.g. lite0, lite1, lite2"
        )


class _TrunkGraph(torch.nn.Module):
    """The trunk under the backbone's own module names, so that its bf16 plan finds its layers."""

    def __init__(self, m: Any, stage: int, inner: int) -> None:
        super().__init__()
        self.conv_stem, self.bn1 = m.conv_stem, m.bn1
        rest = [torch.nn.Sequential(*m.blocks[stage][:inner])] if inner else []
        self.blocks = torch.nn.Sequential(*m.blocks[:stage], *rest)

    def forward(self, x: Any) -> Any:
        return self.blocks(self.bn1(self.conv_stem(x)))


class BackboneSplit:
    """A backbone cut at a named stage into a trunk and a tail.

    Use :func:`split_backbone` to make one.

    Attributes
    ----------
    backbone : Backbone
    at : str
        Name of the first module of the tail, e.g. ``"blocks.6"``.
    trunk : torch.nn.Module
        Stem and stages before ``at``, in eval mode (shared with the backbone).
    trunk_shape : tuple of int
        Shape (C, H, W) of one image's trunk activations.
    """

    def __init__(self, backbone: Backbone, at: str) -> None:
        _check_splittable(backbone)
        m = backbone.model
        parts = at.split(".")
        if parts[0] != "blocks" or len(parts) not in (2, 3) or not all(p.isdigit() for p in parts[1:]):
            raise InputError(f"split point must name a stage, 'blocks.N' or 'blocks.N.M', got {at!r}")
        stage = int(parts[1])
        n_stages = len(m.blocks)
        if not 1 <= stage < n_stages:
            raise InputError(f"split point {at!r}: {backbone.name} has stages blocks.1 to blocks.{n_stages - 1}")
        inner = int(parts[2]) if len(parts) == 3 else 0
        if not 0 <= inner < len(m.blocks[stage]):
            raise InputError(f"split point {at!r}: stage {stage} has blocks 0 to {len(m.blocks[stage]) - 1}")
        self.backbone, self.at = backbone, at
        self._stage, self._inner = stage, inner
        early = list(m.blocks[:stage]) + list(m.blocks[stage][:inner])
        self.trunk = torch.nn.Sequential(m.conv_stem, m.bn1, *early).eval()
        self._channels_last = False
        self._runners: dict[NetworkPath, Any] = {}
        size = backbone.preprocess.size
        with torch.inference_mode():
            self.trunk_shape = tuple(int(v) for v in self.trunk(torch.zeros(1, 3, size, size)).shape[1:])

    @property
    def fingerprint(self) -> str:
        """The backbone's fingerprint and the split point: identifies trunk activations."""
        return f"{self.backbone.fingerprint}|trunk<{self.at}"

    def tail(self, n_classes: int | None = None, *, seed: int = 0) -> Tail:
        """A fresh trainable copy of the tail with the backbone's weights (and a new classifier).

        The new classifier's initial weights are drawn with ``seed``, so two
        tails made with one seed are the same.
        """
        m = self.backbone.model
        rest = list(m.blocks[self._stage][self._inner:]) + list(m.blocks[self._stage + 1:])
        stages = copy.deepcopy(torch.nn.Sequential(*rest))
        head = copy.deepcopy(torch.nn.Sequential(m.conv_head, m.bn2))
        with seeded(seed):
            return Tail(stages, head, self.backbone.dim, n_classes)

    def run_trunk(self, x: Any, *, precision: str = "bf16") -> Any:
        """Trunk activations of preprocessed images (n, 3, size, size) -> (n, C, H, W) float32 tensor.

        ``precision="bf16"`` runs under bf16 autocast in channels-last layout
        (about 2x faster on CPUs with AMX or AVX-512 bf16; cosine against
        fp32 about 0.999); ``"fp32"`` is exact.
        """
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        x = torch.as_tensor(x)
        with torch.inference_mode():
            if precision == "fp32":
                return self.trunk(x).float()
            if not self._channels_last:  # once: the layout bf16 kernels run fastest in
                self.trunk.to(memory_format=torch.channels_last)
                self._channels_last = True
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = self.trunk(x.contiguous(memory_format=torch.channels_last))
            return out.float().contiguous()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without compiled graphs (they are compiled again when first used)."""
        return {**self.__dict__, "_runners": {}}

    def trunk_fn(self, path: NetworkPath, *, pixels: bool = False) -> Any:
        """A function from preprocessed images (n, 3, size, size) to trunk activations (n, C, H, W),
        float32 arrays, on ``path`` (see :func:`router.network.choose_path`).

        OpenVINO bf16 keeps the backbone's measured fp32 prefix (its
        ``bf16_from`` layer, when the trunk reaches it) and runs the rest in bf16.
        ``pixels`` (OpenVINO only): the function takes 8-bit images (n, size,
        size, 3) (:meth:`memory.embedding.Preprocess.pixels`) and normalises them in the graph.
        """
        key = (path, pixels)
        if key not in self._runners:
            if path.runtime == "torch":
                if pixels:
                    raise InputError("eager torch takes normalised images; pixels=True is for OpenVINO")
                self._runners[key] = lambda x: self.run_trunk(x, precision=path.precision).numpy()
            else:
                pre = self.backbone.preprocess
                plan = self.backbone.spec.bf16_from or ""
                stage = plan.removeprefix("/blocks/blocks.").split("/")[0]
                bf16_from = plan if stage.isdigit() and int(stage) < self._stage else None
                self._runners[key] = graph_runner(
                    _TrunkGraph(self.backbone.model, self._stage, self._inner), torch.zeros(2, 3, pre.size, pre.size),
                    path, bf16_from=bf16_from, batch_size=64, pixels=(pre.mean, pre.std) if pixels else None)
        return self._runners[key]

    def __repr__(self) -> str:
        return f"BackboneSplit({self.backbone.name} at {self.at}, trunk {self.trunk_shape})"


def split_backbone(backbone: Backbone, at: str | None = None) -> BackboneSplit:
    """Split ``backbone`` into a frozen trunk and a trainable tail.

    Parameters
    ----------
    backbone : Backbone
    at : str, optional
        First module of the tail, ``"blocks.N"`` or ``"blocks.N.M"``;
        defaults to :data:`DEFAULT_SPLITS` for the backbone (``blocks.6``
        for lite0/1/2, the last stage).

    Raises
    ------
    InputError
        A backbone that cannot be split, or a split point it does not have.
    """
    _check_splittable(backbone)
    if at is None:
        if backbone.name not in DEFAULT_SPLITS:
            raise InputError(f"{backbone.name} has no default split point; pass at='blocks.N'")
        at = DEFAULT_SPLITS[backbone.name]
    return BackboneSplit(backbone, at)


@dataclass
class TrunkActivations:
    """Trunk activations of a dataset split, cached in float16.

    Attributes
    ----------
    acts : ndarray of shape (n, C, H, W), float16
    labels : ndarray of shape (n,), str
    refs : list of str
        Image reference per row (path relative to the dataset root).
    fingerprint : str
        :attr:`BackboneSplit.fingerprint` plus the numeric path (:attr:`NetworkPath.name`).
    dataset_key : str
    """

    acts: np.ndarray
    labels: np.ndarray
    refs: list[str]
    fingerprint: str
    dataset_key: str

    def __len__(self) -> int:
        return int(self.acts.shape[0])

    def __repr__(self) -> str:
        return f"TrunkActivations({len(self)} x {self.acts.shape[1:]}, {self.fingerprint})"


def _cache_fingerprint(split: BackboneSplit, path: NetworkPath) -> str:
    return f"{split.fingerprint}|{path.name}"


def _save(ta: TrunkActivations, final: Path) -> None:
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "fingerprint": ta.fingerprint,
            "dataset_key": ta.dataset_key, "shape": list(ta.acts.shape),
            "labels": [str(v) for v in ta.labels], "refs": list(ta.refs)}
    write_array_dir(final, "acts.npy", np.ascontiguousarray(ta.acts, dtype=np.float16), meta)


def load_trunk_activations(directory: str | os.PathLike[str], *, fingerprint: str | None = None) -> TrunkActivations:
    """Read cached trunk activations, verifying format, fingerprint and sha256.

    Raises
    ------
    MemoryFormatError
        Missing, truncated or corrupt files.
    BackboneMismatchError
        ``fingerprint`` is given and differs from the one that made the cache.
    """
    acts, meta = read_array_dir(Path(directory), "acts.npy", fmt=FORMAT, version=FORMAT_VERSION,
                                noun="trunk activations", rebuild="recompute them", fingerprint=fingerprint)
    npy = Path(directory) / "acts.npy"
    if list(acts.shape) != meta["shape"] or acts.dtype != np.float16 or len(meta["labels"]) != len(acts):
        raise MemoryFormatError(f"{npy} has shape {acts.shape} {acts.dtype}, expected {meta['shape']} float16")
    return TrunkActivations(acts, np.asarray(meta["labels"]), list(meta["refs"]), meta["fingerprint"],
                            meta["dataset_key"])


def trunk_cache_dir(dataset: ImageDataset, split: BackboneSplit, precision: str = "bf16",
                    cache: str | os.PathLike[str] | None = None, *, runtime: str = "auto") -> Path:
    """Where the trunk activations of ``dataset`` are cached (on the path ``runtime`` and ``precision`` choose)."""
    root = Path(cache) if cache else cache_root() / "trunk"
    fp = hashlib.sha256(_cache_fingerprint(split, choose_path(runtime, precision)).encode()).hexdigest()[:16]
    return root / dataset.name / f"{dataset.split}-{dataset.key()[:16]}-{fp}"


def trunk_activations(
    dataset: ImageDataset,
    split: BackboneSplit,
    *,
    precision: str = "bf16",
    runtime: str = "auto",
    batch_size: int = 64,
    cache: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> TrunkActivations:
    """Run the trunk over every image of ``dataset`` once, reusing a valid on-disk cache.

    ``runtime`` and ``precision`` choose the path (:func:`router.network.choose_path`;
    by default OpenVINO, in bf16 where the CPU runs it natively).  The cache
    is keyed by the dataset's sample list, the backbone fingerprint, the split
    point and the numeric path; a cache whose checksum or fingerprint does not
    match is recomputed (with a warning), never used.

    Returns
    -------
    TrunkActivations
        ``acts`` of shape (n, C, H, W), float16.
    """
    fingerprint = _cache_fingerprint(split, choose_path(runtime, precision))
    key = dataset.key()
    where = trunk_cache_dir(dataset, split, precision, cache, runtime=runtime)
    if use_cache and where.exists():
        try:
            ta = load_trunk_activations(where, fingerprint=fingerprint)
            if ta.dataset_key == key:
                return ta
            log.warning("cached trunk activations %s are for other samples; recomputing", where)
        except (MemoryFormatError, BackboneMismatchError) as exc:
            log.warning("recomputing trunk activations: %s", exc)
    acts = run_trunk_on_images(split, dataset.paths, precision=precision, runtime=runtime, batch_size=batch_size,
                               progress=progress, desc=f"trunk {dataset.name}/{dataset.split}")
    ta = TrunkActivations(acts, dataset.labels, list(dataset.refs), fingerprint, key)
    if use_cache:
        _save(ta, where)
    return ta


def run_trunk_on_images(split: BackboneSplit, images: Sequence[Any], *, precision: str = "bf16",
                        runtime: str = "auto", batch_size: int = 64, progress: bool = False,
                        desc: str = "trunk") -> np.ndarray:
    """Trunk activations of PIL images or paths, shape (n, C, H, W), float16.

    ``runtime`` and ``precision`` choose the path as for :func:`trunk_activations`.
    Decoding the next batch overlaps the trunk on the current one.
    """
    if len(images) == 0:
        raise InputError("no images given")
    path = choose_path(runtime, precision)
    pixels = path.runtime == "openvino"  # normalised in the graph, off the decoding thread
    run = split.trunk_fn(path, pixels=pixels)
    emb = Embedder(split.backbone, runtime="torch", batch_size=batch_size, progress=False)
    out = np.empty((len(images), *split.trunk_shape), dtype=np.float16)
    batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
    fill_batches(out, batches, emb.preprocess_pixels if pixels else emb.preprocess, run, desc=desc,
                 progress=progress)
    return out
