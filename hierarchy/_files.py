"""Writing files so that a crash never leaves half of one, and checking them on the way back.

Every file supersub writes (trees, memories, classifiers, caches, reports,
predictions, downloads) goes through :func:`atomic_file` or
:func:`atomic_write`: the bytes go to a temporary file beside the target,
are flushed to disk, and the temporary file is renamed over the target, so a
reader sees the old file or the new one and never a mix.  :func:`sha256_file`
and :func:`check_format` are the one checksum and the one format/version
check that the loaders share.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_file", "atomic_write", "check_format", "fsync_dir", "sha256_file"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename inside it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[IO[bytes]]:
    """A binary file handle whose contents replace ``path`` only when the block ends without error.

    Parameters
    ----------
    path : path-like
        The target; its parent directories are created.
    mode : int, optional
        Permission bits of the result; by default those of a new file
        (``0o666`` less the process umask), not the temporary file's ``0o600``.

    Yields
    ------
    file object
        Open for binary writing.  On an exception inside the block the
        temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, (0o666 & ~_umask()) if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None) -> str:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically; returns its hex sha256."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_file(path, mode=mode) as fh:
        fh.write(raw)
    return hashlib.sha256(raw).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_format(meta: Any, fmt: str, version: int, *, what: str, noun: str, error: type[Exception],
                 rebuild: str = "rebuild it") -> None:
    """Raise ``error`` unless ``meta`` is a mapping that declares format ``fmt`` at ``version``.

    Parameters
    ----------
    meta : object
        The parsed ``meta.json`` or manifest.
    fmt, version : str, int
        What this supersub writes and reads.
    what : str
        The file or directory, for the message.
    noun : str
        What it should be ("supersub tree", "supersub memory"...).
    error : type
        The exception to raise.
    rebuild : str
        What to do about an older or foreign file.
    """
    if not isinstance(meta, Mapping) or meta.get("format") != fmt:
        found = meta.get("format") if isinstance(meta, Mapping) else type(meta).__name__
        raise error(f"{what} is not a {noun} (format {found!r}, expected {fmt!r}); {rebuild}")
    found_version = meta.get("version")
    if found_version != version:
        newer = isinstance(found_version, int) and found_version > version
        hint = "upgrade supersub to read it" if newer else rebuild
        raise error(f"{what} has {noun} format version {found_version!r}; this supersub reads "
                    f"version {version}: {hint}")
