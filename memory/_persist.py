"""Saving and loading memories: a directory of plain formats with a manifest.

Layout::

    DIR/
      CURRENT                  name of the live snapshot, replaced atomically
      snapshots/<name>/
        manifest.json          format, version, dim, metric, fingerprint, counts, file hashes
        index.faiss            exact vectors (faiss IndexFlatIP), row order = ids.npy
        ids.npy                entry ids in row order (int64)
        metadata.sqlite        id, label, superclass, source, ref, weight
        ann.faiss, ann_ids.npy approximate index and its ids/tombstones, if one is built

A save writes a complete new snapshot, flushes it to disk, and only then
points ``CURRENT`` at it, so a crash at any moment leaves the previous
snapshot loadable.  Old snapshots are removed after the switch.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from ._errors import BackboneMismatchError, ConcurrentWriteError, MemoryFormatError

if TYPE_CHECKING:
    from ._visual_memory import VisualMemory

__all__ = ["FORMAT", "FORMAT_VERSION", "load_memory", "save_memory"]

FORMAT = "supersub-memory"
FORMAT_VERSION = 1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_bytes(path: Path, data: bytes) -> str:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Hold the exclusive writer lock of ``root`` (an ``fcntl`` lock on ``root/.lock``).

    Raises
    ------
    ConcurrentWriteError
        If another writer (process or open handle) holds it.  Readers never
        need the lock: they read the snapshot named by ``CURRENT``.
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise ConcurrentWriteError(
                f"{root} is being written by {holder}; wait for that save to finish "
                "(two writers on one memory would lose updates)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def begin_snapshot(root: Path) -> tuple[Path, str]:
    """Create ``root/snapshots/.tmp-*`` to fill; returns it and the snapshot's final name."""
    if root.exists() and not root.is_dir():
        raise MemoryFormatError(f"{root} exists and is not a directory")
    snaps = root / "snapshots"
    snaps.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**9:09d}"
    return Path(tempfile.mkdtemp(prefix=".tmp-", dir=snaps)), name


def commit_snapshot(root: Path, tmp: Path, name: str) -> None:
    """Make a filled snapshot live: flush it, rename it, then swap ``CURRENT`` atomically.

    Until the final ``os.replace`` of ``CURRENT``, the previous snapshot stays
    live.  Afterwards the snapshot before it is kept too, for readers that
    read ``CURRENT`` just before the swap; older ones and stray temporary
    files are removed.
    """
    snaps = root / "snapshots"
    previous = (root / "CURRENT").read_text().strip() if (root / "CURRENT").is_file() else None
    _fsync_dir(tmp)
    os.replace(tmp, snaps / name)
    _fsync_dir(snaps)
    fd, cur_tmp = tempfile.mkstemp(prefix=".CURRENT-", dir=root)
    with os.fdopen(fd, "w") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(cur_tmp, root / "CURRENT")
    _fsync_dir(root)
    for old in snaps.iterdir():
        if old.name not in (name, previous):
            shutil.rmtree(old, ignore_errors=True)
    for stray in root.glob(".CURRENT-*"):
        stray.unlink(missing_ok=True)


def current_snapshot(root: Path, what: str = "memory") -> Path:
    """The live snapshot directory of a saved ``what``."""
    if not root.is_dir():
        raise MemoryFormatError(f"{what} directory {root} does not exist")
    current = root / "CURRENT"
    if not current.is_file():
        raise MemoryFormatError(f"{root} is not a saved {what} (no CURRENT file); save one first")
    return root / "snapshots" / current.read_text().strip()


def save_memory(memory: VisualMemory, path: str | os.PathLike[str]) -> Path:
    """Write ``memory`` to the directory ``path`` atomically.

    Returns
    -------
    Path
        The directory.
    """
    root = Path(path)
    with writer_lock(root):
        _save_locked(memory, root)
    return root


def _save_locked(memory: VisualMemory, root: Path) -> None:
    tmp, name = begin_snapshot(root)
    try:
        files: dict[str, str] = {}
        if memory.dim is not None:
            index_bytes = faiss.serialize_index(memory._flat).tobytes()
        else:
            index_bytes = b""
        files["index.faiss"] = _write_bytes(tmp / "index.faiss", index_bytes)
        with open(tmp / "ids.npy", "wb") as fh:
            np.save(fh, memory._ids, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        files["ids.npy"] = sha256_file(tmp / "ids.npy")
        if memory._ann is not None:  # the approximate index, with its own id list and tombstones
            files["ann.faiss"] = _write_bytes(
                tmp / "ann.faiss", faiss.serialize_index(memory._ann).tobytes()
            )
            ann_ids = np.concatenate([memory._ann_ids, -1 - memory._tomb])  # tombstones < 0
            with open(tmp / "ann_ids.npy", "wb") as fh:
                np.save(fh, ann_ids, allow_pickle=False)
            files["ann_ids.npy"] = sha256_file(tmp / "ann_ids.npy")
        db = sqlite3.connect(tmp / "metadata.sqlite")
        try:
            memory._db.backup(db)
        finally:
            db.close()
        files["metadata.sqlite"] = sha256_file(tmp / "metadata.sqlite")
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "dim": memory.dim,
            "metric": memory.metric,
            "index": memory.index_spec,
            "fingerprint": memory.fingerprint,
            "counts": {
                "entries": len(memory),
                "classes": int(len(memory.classes_)),
                "sources": int(len(memory.sources_)),
                "superclasses": int(len(memory.superclasses_)),
            },
            "next_id": memory._next_id,
            "params": {
                "k": memory.k, "voting": memory.voting, "temperature": memory.temperature,
                "nprobe": memory.nprobe, "ef_search": memory.ef_search,
                "rebuild_fraction": memory.rebuild_fraction,
            },
            "files": files,
        }
        _write_bytes(tmp / "manifest.json", json.dumps(manifest, indent=1).encode())
        commit_snapshot(root, tmp, name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Path]:
    """The manifest of the live snapshot and the snapshot's directory."""
    root = Path(path)
    snap = current_snapshot(root, "memory")
    try:
        manifest = json.loads((snap / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MemoryFormatError(f"{snap / 'manifest.json'} is missing or corrupt: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise MemoryFormatError(f"{root} is not a supersub memory")
    if manifest.get("version") != FORMAT_VERSION:
        raise MemoryFormatError(
            f"{root} has memory format version {manifest.get('version')!r}; this supersub "
            f"reads version {FORMAT_VERSION}: rebuild the memory or use a matching release"
        )
    return manifest, snap


def load_memory(
    path: str | os.PathLike[str],
    *,
    dim: int | None = None,
    fingerprint: str | None = None,
) -> VisualMemory:
    """Load a memory written by :func:`save_memory` (see :func:`_load_once`).

    A reader never takes the writer lock.  If a writer swaps snapshots twice
    while this load reads files, the load starts again from the new
    ``CURRENT`` (up to three times).
    """
    root = Path(path)
    for attempt in range(3):
        before = current_snapshot(root, "memory")
        try:
            return _load_once(root, dim=dim, fingerprint=fingerprint)
        except (OSError, MemoryFormatError):
            if attempt == 2 or current_snapshot(root, "memory") == before:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _load_once(
    path: str | os.PathLike[str],
    *,
    dim: int | None = None,
    fingerprint: str | None = None,
) -> VisualMemory:
    """Load a memory written by :func:`save_memory`.

    Parameters
    ----------
    path : str or path-like
    dim : int, optional
        Expected embedding dimension.
    fingerprint : str, optional
        Expected backbone fingerprint.

    Raises
    ------
    MemoryFormatError
        Missing, corrupt (hash mismatch) or other-version files.
    BackboneMismatchError
        ``dim`` or ``fingerprint`` differ from the saved ones.
    """
    from ._visual_memory import VisualMemory, _Vocab

    manifest, snap = read_manifest(path)
    if dim is not None and manifest["dim"] != dim:
        raise BackboneMismatchError(
            f"{path} holds {manifest['dim']}-d embeddings, expected {dim}-d; "
            "embed with the backbone the memory was built with"
        )
    if fingerprint is not None and manifest.get("fingerprint") != fingerprint:
        raise BackboneMismatchError(
            f"{path} was built with backbone {manifest.get('fingerprint')!r}, not {fingerprint!r}; "
            "rebuild it with this backbone or embed queries with the original one"
        )
    for name, digest in manifest["files"].items():
        f = snap / name
        if not f.is_file() or sha256_file(f) != digest:
            raise MemoryFormatError(
                f"{f} is missing or corrupt (checksum mismatch); restore it from a backup "
                "or rebuild the memory"
            )
    params = manifest.get("params", {})
    mem = VisualMemory(
        manifest["dim"], index=manifest.get("index", "Flat"), fingerprint=manifest.get("fingerprint"),
        **params,
    )
    ids = np.load(snap / "ids.npy", allow_pickle=False)
    if manifest["dim"] is not None:
        data = np.fromfile(snap / "index.faiss", dtype=np.uint8)
        try:
            flat = faiss.deserialize_index(data)
        except RuntimeError as exc:
            raise MemoryFormatError(f"{snap / 'index.faiss'} cannot be read: {exc}") from exc
        if flat.ntotal != len(ids) or flat.d != manifest["dim"]:
            raise MemoryFormatError(f"{snap} is inconsistent: index and ids disagree")
        mem._flat = flat
    if "ann.faiss" in manifest["files"]:
        try:
            ann = faiss.deserialize_index(np.fromfile(snap / "ann.faiss", dtype=np.uint8))
        except RuntimeError as exc:
            raise MemoryFormatError(f"{snap / 'ann.faiss'} cannot be read: {exc}") from exc
        both = np.load(snap / "ann_ids.npy", allow_pickle=False)
        mem._ann = ann  # read_index already returns the concrete, owning type
        mem._ann_ids, mem._tomb = both[both >= 0], -1 - both[both < 0]
        mem._set_search_params()
    src = sqlite3.connect(snap / "metadata.sqlite")
    try:
        src.backup(mem._db)
    finally:
        src.close()
    meta = {r[0]: r[1:] for r in mem._db.execute(
        "SELECT id, label, source, superclass, weight FROM entries"
    )}
    if len(meta) != len(ids) or any(int(i) not in meta for i in ids[:1000]):
        raise MemoryFormatError(f"{snap} is inconsistent: metadata and ids disagree")
    rows = [meta[int(i)] for i in ids.tolist()]
    mem._ids = ids.astype(np.int64)
    mem._labels, mem._sources, mem._supers = _Vocab(), _Vocab(), _Vocab()
    mem._label = mem._labels.encode([r[0] for r in rows])
    mem._source = mem._sources.encode([r[1] for r in rows])
    mem._super = mem._supers.encode([r[2] for r in rows])
    mem._weight = np.array([r[3] for r in rows], dtype=np.float32)
    mem._next_id = int(manifest["next_id"])
    mem._invalidate()
    return mem
