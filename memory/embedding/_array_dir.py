"""Cache directories that hold one array and its ``meta.json``, swapped in atomically.

The embedding cache and the trunk-activation cache are such directories:
:func:`write_array_dir` fills one beside its target and renames it into
place; :func:`read_array_dir` checks its format, backbone fingerprint and
checksum on the way back.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import atomic_write, check_format, read_json, sha256_file

from .._errors import BackboneMismatchError, MemoryFormatError

__all__ = ["read_array_dir", "write_array_dir"]

#: Largest ``meta.json`` read back: it lists every sample's reference and label (about 60 bytes
#: each), so this allows caches of about a million samples.
MAX_INDEX_BYTES = 64 << 20


def write_array_dir(final: Path, name: str, array: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write ``final/name`` (an ``.npy`` array) and ``final/meta.json`` as one atomic swap.

    ``meta`` gains the array's ``sha256``.  The directory is filled beside
    ``final`` and renamed into place, so a reader sees the old or the new
    pair, never a mix; a failure leaves ``final`` as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        with open(tmp / name, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        atomic_write(tmp / "meta.json", json.dumps({**meta, "sha256": sha256_file(tmp / name)}).encode())
        old = final.with_name(f".{final.name}.old")
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_array_dir(directory: Path, name: str, *, fmt: str, version: int, noun: str, rebuild: str,
                   fingerprint: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read what :func:`write_array_dir` wrote: the array ``directory/name`` and its ``meta.json``.

    Checks the format and version, the backbone ``fingerprint`` when given,
    and the array's sha256.  ``noun`` names the contents and ``rebuild`` the
    fix, in the messages.

    Raises
    ------
    MemoryFormatError
        ``meta.json`` is unreadable or of another format, or the array is
        missing or corrupt.
    BackboneMismatchError
        The contents were made by another backbone.
    """
    d = Path(directory)
    try:
        meta = read_json(d / "meta.json", limit=MAX_INDEX_BYTES, what="cache index", error=MemoryFormatError)
    except (OSError, MemoryFormatError) as exc:
        raise MemoryFormatError(f"{d} holds no readable {noun} ({exc})") from exc
    check_format(meta, fmt, version, what=str(d), noun=f"supersub {noun}", error=MemoryFormatError, rebuild=rebuild)
    if fingerprint is not None and meta.get("fingerprint") != fingerprint:
        raise BackboneMismatchError(f"{d} holds {noun} of {meta.get('fingerprint')}, not {fingerprint}; {rebuild}")
    npy = d / name
    if not npy.is_file() or sha256_file(npy) != meta.get("sha256"):
        raise MemoryFormatError(f"{npy} is missing or corrupt (checksum mismatch); {rebuild}")
    return np.load(npy, allow_pickle=False), meta
