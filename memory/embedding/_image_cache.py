"""Embeddings of single images, keyed by the image's bytes and the backbone fingerprint.

Whatever list an image arrives in (a whole split, a subset, a class held out,
the same file through the API), its embedding is computed once per backbone:
the key is the sha256 of the file's bytes, so a renamed or copied file hits the
cache and an edited one misses it.  Entries are stored in chunks, one per
batch of new images, each written atomically and checked by its checksum when
read; a chunk that fails the check is ignored (its images are embedded again).

Layout::

    cache_root()/images/<fingerprint hash>/<chunk>/
        entries.npy    structured array: key (16-byte digest), vector (dim float32)
        meta.json      format, version, fingerprint, count, the array's sha256
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hierarchy import open_regular

from .._errors import BackboneMismatchError, ImageError, MemoryFormatError
from ._array_dir import read_array_dir, write_array_dir
from ._embed import cache_root

__all__ = ["ImageCache", "image_digests"]

log = logging.getLogger(__name__)
FORMAT = "supersub-image-embeddings"
FORMAT_VERSION = 1


def image_digests(paths: Sequence[str | os.PathLike[str]]) -> np.ndarray:
    """The first 16 bytes of each file's sha256, shape (n,), dtype ``V16``."""
    out = np.empty(len(paths), dtype="V16")
    for i, p in enumerate(paths):
        h = hashlib.sha256()
        with open_regular(p, what="image", error=ImageError) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        out[i] = np.void(h.digest()[:16])
    return out


class ImageCache:
    """The per-image embeddings of one backbone fingerprint.

    Parameters
    ----------
    fingerprint : str
    dim : int
        Embedding dimension.
    root : path, optional
        Defaults to ``cache_root()/images``.
    """

    def __init__(self, fingerprint: str, dim: int, root: str | os.PathLike[str] | None = None) -> None:
        self.fingerprint, self.dim = fingerprint, int(dim)
        base = Path(root) if root else cache_root() / "images"
        self.dir = base / hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        self._index: dict[bytes, tuple[int, int]] | None = None
        self._chunks: list[np.ndarray] = []

    def _load(self) -> dict[bytes, tuple[int, int]]:
        if self._index is None:
            self._index, self._chunks = {}, []
            for chunk in sorted(self.dir.glob("chunk-*")) if self.dir.is_dir() else []:
                try:
                    entries, meta = read_array_dir(chunk, "entries.npy", fmt=FORMAT, version=FORMAT_VERSION,
                                                   noun="image embeddings", rebuild="it is ignored",
                                                   fingerprint=self.fingerprint)
                    if entries.dtype.names != ("key", "vector") or entries["vector"].shape[1:] != (self.dim,):
                        raise MemoryFormatError(f"{chunk} holds entries of another shape")
                except (MemoryFormatError, BackboneMismatchError, ValueError) as exc:
                    log.warning("ignoring image-cache chunk: %s", exc)
                    continue
                c = len(self._chunks)
                self._chunks.append(entries)
                for row, key in enumerate(entries["key"].tolist()):
                    self._index[bytes(key)] = (c, row)
        return self._index

    def __len__(self) -> int:
        return len(self._load())

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which ``keys`` are cached, and their vectors.

        Returns
        -------
        found : ndarray of shape (n,), bool
        X : ndarray of shape (found.sum(), dim), float32
        """
        index = self._load()
        where = [index.get(bytes(k)) for k in keys.tolist()]
        found = np.array([w is not None for w in where], dtype=bool)
        hits = np.array([w for w in where if w is not None], dtype=np.int64).reshape(-1, 2)  # (chunk, row)
        X = np.empty((len(hits), self.dim), dtype=np.float32)
        for c in np.unique(hits[:, 0]):  # one gather per chunk
            sel = hits[:, 0] == c
            X[sel] = self._chunks[c]["vector"][hits[sel, 1]]
        return found, X

    def add(self, keys: np.ndarray, X: np.ndarray) -> None:
        """Store the embeddings ``X`` (n, dim) of the images with digests ``keys`` (n,) as a new chunk."""
        index = self._load()
        new = np.array([bytes(k) not in index for k in keys.tolist()], dtype=bool)
        new &= ~_repeats(keys)
        if not new.any():
            return
        entries = np.empty(int(new.sum()), dtype=[("key", "V16"), ("vector", "<f4", (self.dim,))])
        entries["key"], entries["vector"] = keys[new], X[new]
        name = "chunk-" + hashlib.sha256(entries["key"].tobytes()).hexdigest()[:16]
        write_array_dir(self.dir / name, "entries.npy", entries,
                        {"format": FORMAT, "version": FORMAT_VERSION, "fingerprint": self.fingerprint,
                         "n": len(entries), "dim": self.dim})
        c = len(self._chunks)
        self._chunks.append(entries)
        for row, key in enumerate(entries["key"].tolist()):
            index[bytes(key)] = (c, row)


def _repeats(keys: np.ndarray) -> np.ndarray:
    """True where a key already appeared earlier in ``keys``."""
    seen: set[bytes] = set()
    out = np.zeros(len(keys), dtype=bool)
    for i, k in enumerate(keys.tolist()):
        b = bytes(k)
        out[i] = b in seen
        seen.add(b)
    return out
