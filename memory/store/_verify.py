"""What a load checks about a saved directory's files: no links, only regular files, exactly the listed ones.

Every path a load reads or an edit writes must lie inside the saved directory:
:func:`check_no_links` refuses a linked ``CURRENT``, ``.lock`` or
``snapshots/``; :func:`snapshot_entries` lists a snapshot's regular files and
refuses anything else; :func:`verify_files` checks them against the manifest.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from hierarchy import file_kind, sha256_file

from .._errors import MemoryFormatError

__all__ = ["check_no_links", "snapshot_entries", "verify_files"]


def check_no_links(root: Path) -> None:
    """Refuse a saved directory whose ``CURRENT``, ``.lock`` or ``snapshots/`` is a symbolic link.

    Raises
    ------
    MemoryFormatError
        Naming the link: loading or editing through it would read, write or
        delete another directory's files.
    """
    for name in ("CURRENT", ".lock", "snapshots"):
        if (root / name).is_symlink():
            raise MemoryFormatError(
                f"{root / name} is a symbolic link; a saved model's files must lie inside its own folder, "
                "so it is not read or edited through links: replace the link with a copy "
                "(cp -r --dereference) or rebuild"
            )
    snaps = root / "snapshots"
    if snaps.is_dir():
        with os.scandir(snaps) as entries:
            for entry in entries:
                if entry.is_symlink():
                    raise MemoryFormatError(
                        f"{snaps / entry.name} is a symbolic link; a saved model's files must lie inside its "
                        "own folder: remove the link or restore the model from a backup"
                    )


def snapshot_entries(snap: Path) -> list[str]:
    """Every regular file below ``snap``, as sorted relative POSIX paths.

    Raises
    ------
    MemoryFormatError
        An entry is a symbolic link, FIFO, device or socket.
    """
    out = []
    for dirpath, dirnames, filenames in os.walk(snap, followlinks=False):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise MemoryFormatError(
                    f"{path} is {file_kind(mode)}; a snapshot holds only the regular files its manifest "
                    "lists: restore the model from a backup or rebuild"
                )
            out.append(path.relative_to(snap).as_posix())
    return sorted(out)


def _safe_relative(name: str) -> bool:
    p = Path(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name


def verify_files(snap: Path, files: Mapping[str, str], *, what: str = "file",
                 nested: Callable[[str], bool] | None = None) -> None:
    """Check that ``snap`` holds exactly the listed files, each with the listed sha256.

    Parameters
    ----------
    snap : Path
        The snapshot directory.
    files : mapping of str to str
        Relative path to hex sha256, from the manifest.
    what : str
        What the snapshot saves, for messages.
    nested : callable, optional
        ``nested(relative_path)``: files that a nested snapshot's own manifest
        covers (a classifier's shards); they are neither required nor checked here.

    Raises
    ------
    MemoryFormatError
        Naming the first file that is missing, outside the snapshot, a link
        or other non-regular file, not listed in the manifest (a file added
        after the save), or whose checksum differs.
    """
    if not isinstance(files, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise MemoryFormatError(f"{snap / 'manifest.json'} has a malformed file list")
    present = set(snapshot_entries(snap))
    for rel in sorted(present - set(files)):
        if rel == "manifest.json" or rel.rsplit("/", 1)[-1] == ".lock" or (nested is not None and nested(rel)):
            continue
        raise MemoryFormatError(
            f"{snap / rel} is not listed in {snap / 'manifest.json'} (a file added after the save); remove it "
            f"or restore the {what} from a backup"
        )
    for name, digest in files.items():
        f = snap / name
        if not _safe_relative(name) or (name not in present and f.is_symlink()):
            raise MemoryFormatError(f"{snap / 'manifest.json'} lists {name!r}, which is not a file of the snapshot")
        if name not in present or sha256_file(f) != digest:
            raise MemoryFormatError(
                f"{f} is missing or corrupt (checksum mismatch); restore it from a backup or rebuild the {what}"
            )
