"""Images for the explorer: uploads decoded under limits, and files served only from inside a root.

Only decoded pixels leave the server: every image is opened with the pixel
limit and re-encoded as a PNG thumbnail, so a hostile file never reaches the
browser as it was sent.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from memory import ImageError, InputError, open_image

from ..report import inside_root, png_bytes

__all__ = ["MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS", "decode_upload", "inside", "thumbnail_of"]

#: Largest upload body accepted, in bytes (all files of one request together).
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
#: Largest image accepted, in pixels (width times height), checked before decoding.
MAX_UPLOAD_PIXELS = 24_000_000


def decode_upload(data: bytes, name: str = "upload") -> Any:
    """Decode uploaded bytes to an RGB image under the pixel limit.

    Raises
    ------
    InputError
        Empty, not an image, truncated, or over :data:`MAX_UPLOAD_PIXELS`.
    """
    if not data:
        raise InputError(f"{name} is empty; choose an image file")
    try:
        return open_image(data, max_pixels=MAX_UPLOAD_PIXELS)
    except ImageError as exc:
        raise InputError(f"{name} is not a usable image: {exc}") from None


def inside(root: Path | None, ref: str) -> Path | None:
    """``root / ref`` if that names a file inside ``root``: no absolute path, no ``..``, no link out."""
    if root is None or "\x00" in ref:
        return None
    return inside_root(root, ref)


@lru_cache(maxsize=2048)
def thumbnail_of(path: Path, mtime_ns: int) -> bytes | None:
    """A file's PNG thumbnail, cached by path and modification time; None if it does not decode."""
    try:
        return png_bytes(open_image(path, max_pixels=MAX_UPLOAD_PIXELS))
    except (ImageError, InputError, OSError):
        return None
