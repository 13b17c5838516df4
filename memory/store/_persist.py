"""Saving and loading memories: a directory of plain formats with a manifest.

Layout::

    DIR/
      CURRENT                  the live snapshot's name and its manifest's sha256, replaced atomically
      snapshots/<name>/
        manifest.json          format, version, dim, metric, fingerprint, counts, file hashes
        index.faiss            exact vectors (faiss IndexFlatIP), row order = ids.npy
        ids.npy                entry ids in row order (int64)
        metadata.sqlite        id, label, superclass, source, ref, weight
        ann.faiss, ann_ids.npy approximate index and its ids/tombstones, if one is built

A save writes a complete new snapshot, flushes it to disk, and only then
points ``CURRENT`` at it, so a crash at any moment leaves the previous
snapshot loadable.  Old snapshots are removed after the switch.  Every file
is covered by a checksum chained from ``CURRENT`` (see :mod:`memory._snapshot`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from hierarchy import check_format, parse_json

from .._errors import BackboneMismatchError, InputError, MemoryFormatError
from ._index import VectorIndex
from ._snapshot import locked_edit, open_snapshot, set_origin, snapshot_writer, writer_lock
from ._verify import verify_files
from ._table import EntryTable

if TYPE_CHECKING:
    from ._visual_memory import VisualMemory

__all__ = ["FORMAT", "FORMAT_VERSION", "edit_memory", "load_snapshot", "save_memory"]

FORMAT = "supersub-memory"
FORMAT_VERSION = 2


def save_memory(memory: VisualMemory, path: str | os.PathLike[str], *, wait: float = 0.0) -> Path:
    """Write ``memory`` to the directory ``path`` atomically.

    Parameters
    ----------
    memory : VisualMemory
    path : path-like
    wait : float, default 0
        Seconds to wait for another writer's lock.

    Returns
    -------
    Path
        The directory.

    Raises
    ------
    ConcurrentWriteError
        Another writer holds the lock, or committed to ``path`` after
        ``memory`` was loaded from it (saving would drop that edit).
    """
    root = Path(path)
    with writer_lock(root, wait=wait), memory.lock:
        _save_locked(memory, root)
    return root


def _save_locked(memory: VisualMemory, root: Path) -> None:
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
        "next_id": memory.table_.next_id,
        "params": {
            "k": memory.k, "voting": memory.voting, "temperature": memory.temperature,
            "nprobe": memory.nprobe, "ef_search": memory.ef_search,
            "rebuild_fraction": memory.rebuild_fraction,
        },
    }
    with snapshot_writer(memory, root, manifest) as tmp, ThreadPoolExecutor(1) as pool:
        # The metadata is written on a thread while the vectors stream out (SQLite and the
        # file writes let go of the GIL).  Leaving the pool waits for that thread, also when
        # the vectors fail, so the snapshot is hashed, or removed, only once it is done.
        metadata = pool.submit(memory.table_.write_sqlite, tmp / "metadata.sqlite")
        index = memory.index_
        if index is None:
            (tmp / "index.faiss").write_bytes(b"")
        else:  # straight to the files: no copy of the vectors in memory on the way
            index.write_files(tmp / "index.faiss", tmp / "ann.faiss", tmp / "ann_ids.npy")
        np.save(tmp / "ids.npy", memory.table_.ids, allow_pickle=False)
        metadata.result()  # its error, if any


def read_manifest(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Path]:
    """The verified manifest of the live snapshot and the snapshot's directory."""
    snap = open_snapshot(path, "memory")
    return _parse_manifest(snap.manifest, snap.path), snap.path


def _parse_manifest(raw: bytes, snap: Path) -> dict[str, Any]:
    manifest = parse_json(raw, origin=str(snap / "manifest.json"), error=MemoryFormatError)
    check_format(manifest, FORMAT, FORMAT_VERSION, what=str(snap.parent.parent), noun="supersub memory",
                 error=MemoryFormatError, rebuild="rebuild the memory or use a matching release")
    dim, counts, next_id = manifest.get("dim"), manifest.get("counts"), manifest.get("next_id")
    ok = (
        (dim is None or (type(dim) is int and dim > 0))
        and isinstance(counts, dict) and all(type(counts.get(k)) is int and counts[k] >= 0
                                             for k in ("entries", "classes", "sources", "superclasses"))
        and type(next_id) is int and next_id >= 0
        and isinstance(manifest.get("params", {}), dict)
        and isinstance(manifest.get("index", "Flat"), str)
        and isinstance(manifest.get("fingerprint"), (str, type(None)))
    )
    if not ok:
        raise MemoryFormatError(f"{snap / 'manifest.json'} has malformed fields (dim, counts, next_id or params)")
    return manifest  # type: ignore[no-any-return]


@contextlib.contextmanager
def edit_memory(
    path: str | os.PathLike[str],
    *,
    wait: float = 60.0,
    dim: int | None = None,
    fingerprint: str | None = None,
) -> Iterator[VisualMemory]:
    """Load, edit and save a saved memory while holding its writer lock throughout.

    Another writer waits (up to ``wait`` seconds) instead of overwriting the
    edit.  The memory is saved when the block ends normally; if the block
    raises, nothing is saved.

    Examples
    --------
    >>> with edit_memory("mem/") as mem:            # doctest: +SKIP
    ...     mem.remove(source="web")
    """
    with locked_edit(Path(path), lambda root: load_snapshot(root, dim=dim, fingerprint=fingerprint),
                     save_memory, wait) as mem:
        yield mem


def load_snapshot(
    path: str | os.PathLike[str],
    *,
    dim: int | None = None,
    fingerprint: str | None = None,
) -> VisualMemory:
    """Load an embedded memory written by :func:`save_memory` (:func:`memory.load_memory` loads any kind).

    A reader never waits for the writer lock.  If a writer swaps snapshots
    twice while this load reads files, the load starts again from the new
    ``CURRENT`` (up to three times).

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
        Missing, corrupt (checksum mismatch), inconsistent or other-version files.
    BackboneMismatchError
        ``dim`` or ``fingerprint`` differ from the saved ones.
    """
    root = Path(path)
    for attempt in range(3):
        snap = open_snapshot(root, "memory")
        try:
            mem = _load_snapshot(snap.manifest, snap.path, dim=dim, fingerprint=fingerprint)
        except (OSError, MemoryFormatError):
            if attempt == 2 or open_snapshot(root, "memory").name == snap.name:
                raise
            continue
        set_origin(mem, root, snap.name)
        return mem
    raise AssertionError("unreachable")  # pragma: no cover


def _load_snapshot(
    raw: bytes, snap: Path, *, dim: int | None, fingerprint: str | None,
) -> VisualMemory:
    from ._visual_memory import VisualMemory

    path = snap.parent.parent
    manifest = _parse_manifest(raw, snap)
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
    files = manifest.get("files")
    verify_files(snap, files, what="memory")  # type: ignore[arg-type]
    missing = {"index.faiss", "ids.npy", "metadata.sqlite"} - set(files)  # type: ignore[arg-type]
    if missing:
        raise MemoryFormatError(f"{snap / 'manifest.json'} does not list {sorted(missing)[0]}")
    params = {**manifest.get("params", {}), "index": manifest.get("index", "Flat"),
              "fingerprint": manifest.get("fingerprint")}
    try:
        index = None if manifest["dim"] is None else VectorIndex(
            manifest["dim"], params["index"], nprobe=params.get("nprobe"), ef_search=params.get("ef_search"),
            rebuild_fraction=params.get("rebuild_fraction", 0.1))
        VisualMemory(None, **params)  # checks the parameters
    except (TypeError, ValueError) as exc:
        raise MemoryFormatError(f"{snap / 'manifest.json'} has invalid parameters: {exc}") from exc
    try:
        ids = np.load(snap / "ids.npy", allow_pickle=False)
    except ValueError as exc:
        raise MemoryFormatError(f"{snap / 'ids.npy'} cannot be read: {exc}") from exc
    if ids.ndim != 1 or ids.dtype != np.int64:
        raise MemoryFormatError(f"{snap / 'ids.npy'} is not a 1-D int64 array")
    if index is not None:
        try:
            flat = faiss.read_index(str(snap / "index.faiss"))
        except RuntimeError as exc:
            raise MemoryFormatError(f"{snap / 'index.faiss'} cannot be read: {exc}") from exc
        if flat.ntotal != len(ids) or flat.d != manifest["dim"]:
            raise MemoryFormatError(f"{snap} is inconsistent: index and ids disagree")
        ann = ann_ids = None
        if "ann.faiss" in files:  # type: ignore[operator]
            try:
                ann = faiss.read_index(str(snap / "ann.faiss"))
                ann_ids = np.load(snap / "ann_ids.npy", allow_pickle=False)
            except (RuntimeError, ValueError, OSError) as exc:
                raise MemoryFormatError(f"{snap / 'ann.faiss'} cannot be read: {exc}") from exc
        index.restore(flat, ann, ann_ids)
    elif len(ids):
        raise MemoryFormatError(f"{snap} is inconsistent: entries without a dimension")
    try:
        table = EntryTable.read_sqlite(snap / "metadata.sqlite", ids, int(manifest["next_id"]))
    except sqlite3.Error as exc:
        raise MemoryFormatError(
            f"{snap / 'metadata.sqlite'} is not a readable metadata database ({exc}); restore it from a "
            "backup or rebuild the memory"
        ) from exc
    except InputError as exc:
        msg = f"{snap} is inconsistent: {exc}" if "disagree" in str(exc) else f"{snap / 'metadata.sqlite'} is corrupt: {exc}"
        raise MemoryFormatError(msg) from exc
    mem = VisualMemory.from_parts(table, index, **params)
    counts = manifest["counts"]
    actual = {"entries": len(mem), "classes": len(mem.classes_), "sources": len(mem.sources_),
              "superclasses": len(mem.superclasses_)}
    if any(counts[k] != v for k, v in actual.items()) or (len(ids) and table.next_id <= int(ids.max())):
        raise MemoryFormatError(
            f"{snap} is inconsistent: the manifest's counts {counts} differ from the stored {actual}"
        )
    return mem
