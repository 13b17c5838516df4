"""Atomic snapshot directories: the writer lock, commits, and checksums that chain from ``CURRENT``.

A saved memory or classifier is a directory::

    DIR/.lock                      the writers' lock file (``fcntl.flock``)
    DIR/CURRENT                    two lines: the live snapshot's name, and the
                                   sha256 of that snapshot's ``manifest.json``
    DIR/snapshots/<name>/          a complete snapshot; its ``manifest.json``
                                   lists every other file with its sha256

So every byte a load reads is covered by a checksum that chains from
``CURRENT``: ``CURRENT`` → ``manifest.json`` → each file (and, for a
classifier, each shard's ``CURRENT`` → its manifest → its files).

**Writers.**  One writer at a time holds ``DIR/.lock``.  A save writes a new
snapshot into ``snapshots/.tmp-*``, flushes it, renames it, and only then
replaces ``CURRENT`` atomically, so a crash at any moment leaves the previous
snapshot loadable.  A save also refuses (:class:`ConcurrentWriteError`) when
``CURRENT`` no longer names the snapshot the object was loaded from: another
writer committed in between, and saving would silently drop that writer's
edit.  To edit without that race, hold the lock from load to save
(:func:`memory.edit_memory`, :func:`router.edit_classifier`).

**No links.**  Every path a load reads or an edit writes lies inside the
directory itself: ``CURRENT``, ``.lock``, ``snapshots/`` and everything in a
snapshot must be plain files and directories, never symbolic links, and a
snapshot holds exactly the files its manifest lists (:mod:`._verify`).  So a directory whose ``snapshots/`` links to another
model's is refused before anything is read, written or deleted.

**Stale files.**  A writer killed mid-save leaves a ``.tmp-*`` directory.
Whoever next takes the lock (a save, or a load that finds the lock free)
removes them, so at rest a directory holds at most the live snapshot, the one
before it (for readers that read ``CURRENT`` just before a swap) and no
temporary ones.

Why one module: the lock and the commit are one protocol; each step relies on
what the others guarantee, and reading them together is how the crash-safety
argument above is checked.  What a load checks about the files (no links,
exactly the listed files) is in :mod:`._verify`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import weakref
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from hierarchy import atomic_write, fsync_dir, read_bytes, sha256_file

from .._errors import ConcurrentWriteError, MemoryFormatError
from ._streamed import streamed_digest, tracking
from ._verify import check_no_links

__all__ = [
    "Snapshot",
    "begin_snapshot",
    "locked_edit",
    "commit_snapshot",
    "open_snapshot",
    "origin_of",
    "remove_stale",
    "snapshot_writer",
    "write_bytes",
    "writer_lock",
]

#: Snapshot names this library writes: ``<UTC time>-<pid>-<nanoseconds>``.
_NAME = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9]+-[0-9]{9}\Z")
_HEX = re.compile(r"[0-9a-f]{64}\Z")
#: Largest manifest read: 64 MiB (a model's manifest lists a few hundred files).
MAX_MANIFEST_BYTES = 64 << 20
T = TypeVar("T")

# Locks this process holds, per (directory, thread): a save inside an edit
# block re-enters the lock its own thread already holds.
_held: dict[tuple[str, int], int] = {}
_held_guard = threading.Lock()


def write_bytes(path: Path, data: bytes) -> str:
    """Write ``data`` to ``path``, fsync it, and return its hex sha256."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return hashlib.sha256(data).hexdigest()


def _key(root: Path) -> tuple[str, int]:
    return os.path.realpath(root), threading.get_ident()


def remove_stale(root: Path) -> int:
    """Remove temporary snapshots and ``CURRENT`` files left by killed writers.

    Call only while holding the writer lock.  Returns how many were removed.
    """
    removed = 0
    check_no_links(root)
    snaps = root / "snapshots"
    if snaps.is_dir():
        for tmp in snaps.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
            removed += 1
    for stray in _stray_current(root):
        stray.unlink(missing_ok=True)
        removed += 1
    return removed


def _stray_current(root: Path) -> list[Path]:
    """Temporary ``CURRENT`` files of killed writers (``atomic_write``'s, and older releases')."""
    return [*root.glob(".CURRENT.*.tmp"), *root.glob(".CURRENT-*")]


@contextlib.contextmanager
def writer_lock(root: str | os.PathLike[str], *, wait: float = 0.0) -> Iterator[None]:
    """Hold the exclusive writer lock of ``root`` (an ``fcntl`` lock on ``root/.lock``).

    Re-entrant within one thread: a save inside an edit block that already
    holds the lock goes ahead.  On taking the lock, stale temporary
    snapshots of killed writers are removed.

    Parameters
    ----------
    root : path-like
        The saved memory's or classifier's directory (created if missing).
    wait : float, default 0
        Seconds to wait for another writer to finish before giving up.

    Raises
    ------
    ConcurrentWriteError
        If another writer (process, thread or open edit) still holds it
        after ``wait`` seconds.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise MemoryFormatError(f"{root} exists and is not a directory")
    root.mkdir(parents=True, exist_ok=True)
    check_no_links(root)
    key = _key(root)
    with _held_guard:
        if key in _held:
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        deadline = time.monotonic() + max(float(wait), 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                    waited = f" (waited {wait:g} s)" if wait else ""
                    raise ConcurrentWriteError(
                        f"{root} is being written by {holder}{waited}; retry when that edit has "
                        "finished (two writers on one directory would lose updates)"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        check_no_links(root)  # again, now that no other writer can change the folder
        remove_stale(root)
        with _held_guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
    finally:
        os.close(fd)  # closing releases the lock


def clean_if_idle(root: Path) -> None:
    """Remove stale temporary snapshots if no writer holds ``root``'s lock now (for loaders)."""
    snaps = root / "snapshots"
    if not (any(snaps.glob(".tmp-*")) if snaps.is_dir() else False) and not _stray_current(root):
        return
    if _key(root) in _held:  # this thread is the writer: its save cleans up
        return
    try:
        check_no_links(root)
        fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except (OSError, MemoryFormatError):  # a read-only copy or links: leave it as it is (the load refuses links)
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a writer is busy: its temporary snapshot is not stale
        remove_stale(root)
    finally:
        os.close(fd)


def begin_snapshot(root: Path) -> tuple[Path, str]:
    """Create ``root/snapshots/.tmp-*`` to fill; returns it and the snapshot's final name."""
    check_no_links(root)
    snaps = root / "snapshots"
    snaps.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{time.monotonic_ns() % 10**9:09d}"
    return Path(tempfile.mkdtemp(prefix=".tmp-", dir=snaps)), name


def _read_current(root: Path, what: str) -> tuple[str, str]:
    current = root / "CURRENT"
    if not root.is_dir():
        raise MemoryFormatError(f"{what} directory {root} does not exist")
    if not current.is_file():
        raise MemoryFormatError(f"{root} is not a saved {what} (no CURRENT file); save one first")
    try:
        lines = read_bytes(current, limit=4096, what="CURRENT file", error=MemoryFormatError).decode("ascii").split()
    except (OSError, UnicodeDecodeError) as exc:
        raise MemoryFormatError(f"{current} cannot be read: {exc}") from exc
    if len(lines) == 1 and _NAME.match(lines[0]):
        raise MemoryFormatError(
            f"{root} was saved by an older supersub (its CURRENT carries no manifest checksum); "
            f"rebuild the {what} with this release"
        )
    if len(lines) != 2 or not _NAME.match(lines[0]) or not _HEX.match(lines[1]):
        raise MemoryFormatError(
            f"{current} is corrupt: it must name a snapshot inside {root / 'snapshots'} and the "
            "checksum of its manifest; restore it from a backup or rebuild"
        )
    return lines[0], lines[1]


def current_name(root: Path) -> str | None:
    """Name of the live snapshot of ``root``, or ``None`` if it has none (or an unreadable one)."""
    try:
        return _read_current(root, "directory")[0]
    except MemoryFormatError:
        return None


class Snapshot:
    """The live snapshot of a saved directory, its manifest checked against ``CURRENT``.

    Attributes
    ----------
    root, path : Path
        The saved directory and the snapshot directory inside it.
    name : str
        The snapshot's name (what :func:`origin_of` records).
    manifest : bytes
        The raw ``manifest.json``, whose sha256 matched ``CURRENT``.
    """

    def __init__(self, root: Path, path: Path, name: str, manifest: bytes) -> None:
        self.root, self.path, self.name, self.manifest = root, path, name, manifest


def open_snapshot(root: str | os.PathLike[str], what: str) -> Snapshot:
    """The live snapshot of a saved ``what`` (``"memory"``, ``"classifier"``), verified.

    Raises
    ------
    MemoryFormatError
        No ``CURRENT``, a ``CURRENT`` that names anything but a snapshot of
        this directory, a missing snapshot, or a manifest whose checksum
        differs from the one ``CURRENT`` records.
    """
    root = Path(root)
    if root.is_dir():
        check_no_links(root)
        clean_if_idle(root)
    name, digest = _read_current(root, what)
    snaps = root / "snapshots"
    snap = snaps / name
    if snap.is_symlink() or not snap.is_dir() or snap.resolve().parent != snaps.resolve():
        raise MemoryFormatError(
            f"{root}: the live snapshot {name!r} is missing or not a directory of {snaps}; "
            "restore it from a backup or rebuild"
        )
    try:
        manifest = read_bytes(snap / "manifest.json", limit=MAX_MANIFEST_BYTES, what="manifest",
                              error=MemoryFormatError)
    except OSError as exc:
        raise MemoryFormatError(f"{snap / 'manifest.json'} is missing: {exc}") from exc
    if hashlib.sha256(manifest).hexdigest() != digest:
        raise MemoryFormatError(
            f"{snap / 'manifest.json'} is corrupt or was edited (its checksum differs from the one "
            f"in {root / 'CURRENT'}); restore it from a backup or rebuild"
        )
    return Snapshot(root, snap, name, manifest)


def commit_snapshot(root: Path, tmp: Path, name: str, *, expect: str | None = None) -> None:
    """Make a filled snapshot live: flush it, rename it, then swap ``CURRENT`` atomically.

    The caller holds the writer lock.  ``tmp/manifest.json`` must exist; its
    checksum goes into ``CURRENT``.

    Parameters
    ----------
    expect : str, optional
        The snapshot the saved object was loaded from.  If ``CURRENT`` names
        another one, another writer committed since: refuse rather than drop
        its edit.

    Raises
    ------
    ConcurrentWriteError
        ``CURRENT`` moved since the object was loaded.
    """
    check_no_links(root)
    snaps = root / "snapshots"
    previous = current_name(root)
    if expect is not None and previous != expect:
        raise ConcurrentWriteError(
            f"{root} was changed by another writer since it was loaded (snapshot {expect} is no longer "
            f"live, {previous} is); saving would drop that edit: load it again and redo this edit, "
            "or hold the lock from load to save (edit_memory / edit_classifier)"
        )
    digest = sha256_file(tmp / "manifest.json")
    fsync_dir(tmp)
    os.replace(tmp, snaps / name)
    fsync_dir(snaps)
    atomic_write(root / "CURRENT", f"{name}\n{digest}\n")
    for old in snaps.iterdir():
        if old.name not in (name, previous) and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def snapshot_writer(obj: object, root: Path, manifest: dict[str, Any], *,
                    listed: Callable[[str], bool] | None = None) -> Iterator[Path]:
    """Write a new snapshot of ``root`` for ``obj``: the one way every saver commits.

    The caller holds the writer lock and writes its files into the yielded
    directory; it may add keys to ``manifest`` inside the block.  When the
    block ends normally every file is flushed and hashed, ``manifest.json``
    (``manifest`` plus ``"files"``: path → sha256) is written, the snapshot is
    committed (refused if another writer committed since ``obj`` was loaded)
    and ``obj`` is marked as equal to it.  If the block or the commit raises,
    the partial snapshot is removed and ``CURRENT`` is untouched.

    Parameters
    ----------
    listed : callable, optional
        ``listed(relative_path)``: whether a file goes into the file list
        (default all but lock files).  Nested snapshots list their own files.
    """
    tmp, name = begin_snapshot(root)
    try:
        with tracking(tmp):
            yield tmp
            todo = {}
            for f in sorted(tmp.rglob("*")):
                rel = f.relative_to(tmp).as_posix()
                if f.is_file() and f.name != ".lock" and rel != "manifest.json" and (listed is None or listed(rel)):
                    todo[rel] = f
            files = _synced_and_hashed(todo)
        write_bytes(tmp / "manifest.json", json.dumps({**manifest, "files": files}, indent=1).encode())
        commit_snapshot(root, tmp, name, expect=origin_of(obj, root))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    set_origin(obj, root, name)


def _synced_and_hashed(files: dict[str, Path]) -> dict[str, str]:
    """fsync every file and return its sha256 (path -> hex), the syncs beside the hashing.

    Syncing waits on the disk and hashing on the CPU (hashlib lets other
    threads run), so a thread syncs while this one hashes; both finish before
    this returns.  A file streamed in by :func:`write_streamed` and unchanged
    since was synced and hashed then, and is not read again.
    """
    from concurrent.futures import ThreadPoolExecutor

    known = {rel: streamed_digest(f) for rel, f in files.items()}
    rest = {rel: f for rel, f in files.items() if known[rel] is None}

    def sync_all() -> None:
        for f in rest.values():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())

    with ThreadPoolExecutor(1) as pool:
        synced = pool.submit(sync_all)
        hashes = {rel: known[rel] or sha256_file(f) for rel, f in files.items()}
        synced.result()  # an fsync error raises here
    return hashes


@contextlib.contextmanager
def locked_edit(root: Path, load: Callable[[Path], T], save: Callable[[T, Path], object], wait: float) -> Iterator[T]:
    """Hold ``root``'s writer lock while ``load``-ing, yielding for edits, and ``save``-ing on success."""
    with writer_lock(root, wait=wait):
        obj = load(root)
        yield obj
        save(obj, root)


# Which snapshot each live object was loaded from or last saved as, keyed by id()
# and dropped when the object is collected (so a reused id never inherits it).
_origins: dict[int, tuple[str, str]] = {}
_origins_guard = threading.Lock()


def origin_of(obj: object, root: Path) -> str | None:
    """The snapshot of ``root`` that ``obj`` was loaded from or last saved as, if any."""
    with _origins_guard:
        origin = _origins.get(id(obj))
    if origin is not None and origin[0] == os.path.realpath(root):
        return origin[1]
    return None


def set_origin(obj: object, root: Path, name: str) -> None:
    """Record that ``obj`` now equals snapshot ``name`` of ``root``."""
    key = id(obj)
    with _origins_guard:
        fresh = key not in _origins
        _origins[key] = (os.path.realpath(root), name)
    if fresh:
        weakref.finalize(obj, _forget_origin, key)


def _forget_origin(key: int) -> None:
    with _origins_guard:
        _origins.pop(key, None)
