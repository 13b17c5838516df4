"""Reading what users hand us: bounded regular files, JSON with a depth limit, text normalised once.

The rules every reader in supersub follows:

* **Only regular files.**  A FIFO, a device, a socket or a directory given
  where a file belongs is refused before it is read, so nothing blocks on a
  pipe or reads ``/dev/zero`` forever (:func:`open_regular`).
* **A size limit** on every JSON and CSV file, checked before the bytes are
  parsed (:func:`read_bytes`); each reader states its limit.
* **A depth limit** on JSON: :data:`MAX_JSON_DEPTH` levels of arrays and
  objects, checked on the raw text before it is parsed (:func:`parse_json`).
* **Text is normalised once, at the boundary.**  A UTF-8 byte-order mark is
  dropped, and names (classes, labels, sources) are put in Unicode NFC, so a
  name typed as a composed ``é`` and one typed as ``e`` plus a combining
  accent are the same name (:func:`normalize_name`).  WordNet ids are ASCII
  only (:data:`WNID`): a part-of-speech letter and eight ASCII digits.
"""

from __future__ import annotations

import json
import os
import re
import stat
import unicodedata
from typing import IO, Any

import numpy as np

from ._errors import SupersubError

__all__ = [
    "MAX_JSON_DEPTH",
    "WNID",
    "file_kind",
    "json_depth",
    "normalize_name",
    "open_regular",
    "parse_json",
    "read_bytes",
    "read_json",
    "read_text",
]

#: Most levels of nested arrays and objects a JSON file may have (supersub writes at most 5).
MAX_JSON_DEPTH = 64
#: An ImageNet-style WordNet id: part-of-speech letter and 8 ASCII digits (``n01440764``).
WNID = re.compile(r"[nvasr][0-9]{8}\Z", re.ASCII)
_BOM = "\ufeff"
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words ("a FIFO", "a directory"...)."""
    for test, words in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return words
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], *, what: str = "file",
                 error: type[Exception] = SupersubError) -> IO[bytes]:
    """Open ``path`` for binary reading if, and only if, it is a regular file.

    The file is opened without blocking and checked with ``fstat`` on the
    open descriptor, so a FIFO never blocks the open and a file swapped for
    a device after a check is still refused.

    Raises
    ------
    FileNotFoundError
        Nothing exists at ``path``.
    error
        ``path`` is a directory, FIFO, device or socket (named in the message).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a directory, not a file; give the path of a file") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{what} {path} is {file_kind(mode)}, not a regular file; only regular files "
                        "are read: give the path of an ordinary file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike[str], *, limit: int, what: str = "file",
               error: type[Exception] = SupersubError) -> bytes:
    """The bytes of the regular file ``path``, refused if longer than ``limit`` bytes."""
    with open_regular(path, what=what, error=error) as fh:
        size = os.fstat(fh.fileno()).st_size
        data = fh.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        raise error(f"{what} {path} is {max(size, len(data)):,} bytes, over the limit of {limit:,} for a "
                    f"{what}; is it the right file?")
    return data


def read_text(path: str | os.PathLike[str], *, limit: int, what: str = "file",
              error: type[Exception] = SupersubError) -> str:
    """The UTF-8 text of ``path`` (a leading byte-order mark dropped), at most ``limit`` bytes."""
    data = read_bytes(path, limit=limit, what=what, error=error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text ({exc}); save it as UTF-8") from None


def json_depth(raw: str | bytes) -> int:
    """How deeply arrays and objects nest in the JSON text ``raw`` (strings are skipped)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    codes = np.frombuffer(_STRING.sub(b'""', data), dtype=np.uint8)
    step = (codes == ord("[")).astype(np.int32) + (codes == ord("{"))
    step -= (codes == ord("]")).astype(np.int32) + (codes == ord("}"))
    return int(np.cumsum(step).max(initial=0))


def parse_json(raw: str | bytes, *, origin: str, error: type[Exception] = SupersubError,
               max_depth: int = MAX_JSON_DEPTH, **kwargs: Any) -> Any:
    """Parse JSON text whose nesting is at most ``max_depth`` levels.

    A leading byte-order mark is dropped.  ``kwargs`` go to :func:`json.loads`.

    Raises
    ------
    error
        Invalid JSON, text that is not UTF-8, or nesting deeper than ``max_depth``.
    """
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise error(f"{origin} is not UTF-8 text ({exc})") from None
    raw = raw.removeprefix(_BOM)
    depth = json_depth(raw)
    if depth > max_depth:
        raise error(f"{origin} nests arrays and objects {depth} levels deep, over the limit of {max_depth}; "
                    "it is not a file supersub wrote or reads")
    try:
        return json.loads(raw, **kwargs)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise error(f"{origin} nests too deeply to read") from None
    except ValueError as exc:
        if isinstance(exc, SupersubError):
            raise
        raise error(f"{origin} is not valid JSON ({exc}); is it truncated?") from None


def read_json(path: str | os.PathLike[str], *, limit: int = 16 << 20, what: str = "JSON file",
              error: type[Exception] = SupersubError, **kwargs: Any) -> Any:
    """:func:`read_text` then :func:`parse_json`: a bounded, regular, UTF-8 JSON file."""
    return parse_json(read_text(path, limit=limit, what=what, error=error), origin=str(path), error=error, **kwargs)


def normalize_name(name: str) -> str:
    """A name as supersub stores it: Unicode NFC, without a byte-order mark."""
    return unicodedata.normalize("NFC", name.replace(_BOM, ""))
