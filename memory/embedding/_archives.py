"""Where a dataset's files come from: a folder, an archive extracted once into the cache, or a download.

An archive (the official zip, or a tar of the same layout) is extracted once
per content: the extraction is keyed by the archive's sha256, so a copy under
another path or name is not extracted again, and a changed archive is.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from functools import lru_cache
from pathlib import Path

from hierarchy import atomic_file, sha256_file

from ._embed import cache_root
from .._progress import Progress, progress_line
from .._errors import DataError

__all__ = ["ENV_VAR", "TINY_IMAGENET_URL", "download", "resolve_tiny_imagenet"]

log = logging.getLogger(__name__)

#: The official Tiny-ImageNet-200 distribution (Stanford CS231n).
TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
#: Environment variable naming a local copy: folder, zip or tar(.gz/.xz).
ENV_VAR = "SUPERSUB_DATA"


def download(url: str, dest: Path, *, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically (any urllib scheme, file:// included)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, atomic_file(dest) as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with Progress(total, f"download {dest.name}", "byte", enabled=progress, unit_scale=True) as bar:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
    except OSError as exc:
        raise DataError(
            f"cannot download {url}: {exc}; download it by hand and set {ENV_VAR} to the file"
        ) from exc
    return dest


def _find_root(base: Path, marker: str = "wnids.txt") -> Path | None:
    if (base / marker).is_file():
        return base
    for child in sorted(base.iterdir()) if base.is_dir() else []:
        if child.is_dir() and (child / marker).is_file():
            return child
    return None


@lru_cache(maxsize=64)
def _content_tag(path: str, size: int, mtime_ns: int) -> str:
    """The first 16 hex digits of a file's sha256 (memoised on path, size and mtime)."""
    return sha256_file(path)[:16]


def _extract(archive: Path, cache: Path) -> Path:
    """Extract an archive once into the cache; returns the extraction directory.

    The extraction is keyed by the archive's content, so a copy of the same
    archive elsewhere, or under another name, is not extracted again.
    Processes that open one archive at once extract it once: the first holds
    a lock (``.archive-<tag>.lock``) while it extracts, and the others wait
    for it and then read its extraction.
    """
    st = archive.stat()
    tag = _content_tag(str(archive.resolve()), st.st_size, st.st_mtime_ns)
    target = cache / f"archive-{tag}"
    if (target / ".complete").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    fd = os.open(cache / f".archive-{tag}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # closing the descriptor releases it
        if (target / ".complete").is_file():  # another process extracted it while this one waited
            return target
        return _extract_locked(archive, target)
    finally:
        os.close(fd)


def _extract_locked(archive: Path, target: Path) -> Path:
    cache = target.parent
    progress_line(f"extracting {archive} into {target} (once for this archive's content)")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=cache))
    try:
        name = archive.name.lower()
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise DataError(f"{archive} has an unsafe member path {member!r}")
                zf.extractall(tmp)
        elif re.search(r"\.(tar|tar\.gz|tgz|tar\.xz|txz|tar\.bz2)$", name):
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")
        else:
            raise DataError(f"{archive}: unknown archive type; give a folder, a .zip or a .tar(.gz/.xz)")
        (tmp / ".complete").write_text("ok\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        progress_line(f"extracted {archive} in {time.perf_counter() - started:.1f} s")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"cannot extract {archive}: {exc}; the file may be truncated or corrupt") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def resolve_tiny_imagenet(
    source: str | os.PathLike[str] | None = None,
    *,
    download_if_missing: bool = True,
    cache: str | os.PathLike[str] | None = None,
    url: str = TINY_IMAGENET_URL,
) -> Path:
    """The extracted Tiny-ImageNet-200 directory (the one holding ``wnids.txt``).

    Parameters
    ----------
    source : path, optional
        A folder in the official layout (or its parent), the official zip,
        or a tar(.gz/.xz) of the same layout.  Defaults to ``$SUPERSUB_DATA``.
    download_if_missing : bool, default True
        Without a source, download the official zip into the cache.
    cache : path, optional
        Defaults to ``cache_root()/datasets``.
    url : str
        Where to download from.
    """
    cache_dir = Path(cache) if cache else cache_root() / "datasets"
    src = source if source is not None else os.environ.get(ENV_VAR) or None
    if src is None:
        archive = cache_dir / "tiny-imagenet-200.zip"
        if not archive.is_file():
            if not download_if_missing:
                raise DataError(f"no Tiny-ImageNet: set {ENV_VAR} to a folder, zip or tarball")
            log.info("downloading Tiny-ImageNet-200 from %s", url)
            download(url, archive)
        src = archive
    path = Path(src).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist; set {ENV_VAR} to Tiny-ImageNet's folder, zip or tarball")
    base = path if path.is_dir() else _extract(path, cache_dir)
    root = _find_root(base)
    if root is None:
        raise DataError(
            f"{path} is not in Tiny-ImageNet's official layout: no wnids.txt in it or one level down"
        )
    return root.resolve()  # one spelling of the root, however the cache or the source is reached
