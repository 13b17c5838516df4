"""Embedding sets and their on-disk cache.

An :class:`EmbeddingSet` is the embeddings of one dataset split under one
backbone fingerprint, with the labels and image references of its rows.
:func:`embed_dataset` caches it twice: the whole set under
``cache_root()/embeddings``, keyed by the dataset's sample list and the
fingerprint (one read when the same list comes again), and each image under
``cache_root()/images``, keyed by the image's bytes (see
:mod:`._image_cache`), so a subset, a class held out or the same files in
another order are not embedded again.  A cached file whose checksum, sample
list or fingerprint no longer matches is recomputed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._datasets import ImageDataset
from ._embed import Embedder, cache_root
from ._image_cache import ImageCache, image_digests
from .._errors import BackboneMismatchError, MemoryFormatError
from ._array_dir import read_array_dir, write_array_dir

__all__ = ["EmbeddingSet", "cache_dir_for", "embed_dataset", "load_embeddings", "save_embeddings"]

log = logging.getLogger(__name__)
FORMAT = "supersub-embeddings"
FORMAT_VERSION = 1


@dataclass
class EmbeddingSet:
    """Embeddings of a dataset split.

    Attributes
    ----------
    X : ndarray of shape (n, dim), float32
        L2-normalised rows.
    labels : ndarray of shape (n,), str
        Class wnid per row.
    refs : list of str
        Image reference per row (path relative to the dataset root).
    fingerprint : str
        The backbone fingerprint that made ``X`` (the embedding space).
    dataset, split, dataset_key : str
    numeric : str
        The embedder's numeric path, ``"fp32"`` or a bf16 plan
        (:attr:`Embedder.numeric_path`).
    """

    X: np.ndarray
    labels: np.ndarray
    refs: list[str]
    fingerprint: str
    dataset: str
    split: str
    dataset_key: str
    numeric: str = "fp32"

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __repr__(self) -> str:
        return (f"EmbeddingSet({self.dataset}/{self.split}, {len(self)} x {self.X.shape[1]}, "
                f"{self.fingerprint})")

    def class_means(self, classes: list[str]) -> np.ndarray:
        """Mean embedding per class, shape (len(classes), dim), in the given order."""
        out = np.zeros((len(classes), self.X.shape[1]), dtype=np.float64)
        for i, c in enumerate(classes):
            rows = self.labels == c
            if not rows.any():
                raise MemoryFormatError(f"class {c!r} has no embeddings in {self!r}")
            out[i] = self.X[rows].mean(0)
        return out


def save_embeddings(es: EmbeddingSet, directory: str | os.PathLike[str]) -> Path:
    """Write ``embeddings.npy`` and ``meta.json`` to ``directory``, atomically."""
    meta = {
        "format": FORMAT, "version": FORMAT_VERSION, "fingerprint": es.fingerprint,
        "dataset": es.dataset, "split": es.split, "dataset_key": es.dataset_key,
        "n": len(es), "dim": int(es.X.shape[1]), "numeric": es.numeric,
        "labels": [str(v) for v in es.labels], "refs": list(es.refs),
    }
    return write_array_dir(Path(directory), "embeddings.npy", np.ascontiguousarray(es.X, dtype=np.float32), meta)


def load_embeddings(
    directory: str | os.PathLike[str], *, fingerprint: str | None = None
) -> EmbeddingSet:
    """Read an embedding set written by :func:`save_embeddings`, verifying its checksum.

    Raises
    ------
    MemoryFormatError
        Missing, truncated or corrupt files.
    BackboneMismatchError
        ``fingerprint`` is given and differs.
    """
    X, meta = read_array_dir(Path(directory), "embeddings.npy", fmt=FORMAT, version=FORMAT_VERSION,
                             noun="embeddings", rebuild="re-embed the data", fingerprint=fingerprint)
    npy = Path(directory) / "embeddings.npy"
    if X.shape != (meta["n"], meta["dim"]):
        raise MemoryFormatError(f"{npy} has shape {X.shape}, expected {(meta['n'], meta['dim'])}")
    return EmbeddingSet(X, np.asarray(meta["labels"]), list(meta["refs"]), meta["fingerprint"],
                        meta["dataset"], meta["split"], meta["dataset_key"], meta.get("numeric", "fp32"))


def cache_dir_for(dataset: ImageDataset, fingerprint: str, cache: str | os.PathLike[str] | None = None) -> Path:
    """Where the embeddings of ``dataset`` under ``fingerprint`` (an :attr:`Embedder.fingerprint`) are cached."""
    root = Path(cache) if cache else cache_root() / "embeddings"
    fp = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    return root / dataset.name / f"{dataset.split}-{dataset.key()[:16]}-{fp}"


def embed_dataset(
    dataset: ImageDataset,
    embedder: Embedder,
    *,
    cache: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> EmbeddingSet:
    """Embed every image of ``dataset``, reusing the on-disk cache when it is valid.

    Returns
    -------
    EmbeddingSet
    """
    fingerprint = embedder.backbone.fingerprint
    key = dataset.key()
    where = cache_dir_for(dataset, embedder.fingerprint, cache)  # one cache per numeric path
    if use_cache and where.exists():
        try:
            es = load_embeddings(where, fingerprint=fingerprint)
            if es.numeric != embedder.numeric_path:
                log.warning("cached embeddings %s are of the %s path, not %s; recomputing",
                            where, es.numeric, embedder.numeric_path)
            elif es.dataset_key == key:
                log.info("using cached embeddings %s", where)
                return es
            else:
                log.warning("cached embeddings %s are for other samples; recomputing", where)
        except (MemoryFormatError, BackboneMismatchError) as exc:
            log.warning("recomputing embeddings: %s", exc)
    paths = dataset.paths
    if use_cache:  # any image embedded before under this backbone, in whatever list, is reused
        pool = ImageCache(embedder.fingerprint, embedder.backbone.dim,
                          Path(cache) / ".images" if cache else None)
        keys = image_digests(paths)
        found, X_found = pool.lookup(keys)
        X = np.empty((len(paths), embedder.backbone.dim), dtype=np.float32)
        X[found] = X_found
        missing = np.flatnonzero(~found)
        if len(missing):
            log.info("embedding %d of %d images (%d cached)", len(missing), len(paths), int(found.sum()))
            X[missing] = embedder.embed_images([paths[i] for i in missing],
                                               desc=f"embed {dataset.name}/{dataset.split}")
            pool.add(keys[missing], X[missing])
    else:
        X = embedder.embed_images(paths, desc=f"embed {dataset.name}/{dataset.split}")
    es = EmbeddingSet(X, dataset.labels, list(dataset.refs), fingerprint, dataset.name,
                      dataset.split, key, embedder.numeric_path)
    if use_cache:
        save_embeddings(es, where)
    return es

