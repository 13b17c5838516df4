"""Decoding images safely: a pixel limit, EXIF orientation, and every mode to 8-bit RGB.

Every image the library reads (datasets, the embedder, the report gallery)
goes through :func:`open_image`, so one set of rules applies everywhere:

* **Pixel limit.**  An image whose header declares more than
  :data:`MAX_IMAGE_PIXELS` pixels (default 64 million; set
  ``SUPERSUB_MAX_IMAGE_PIXELS`` or pass ``max_pixels``) is refused before its
  pixels are decoded, with :class:`ImageError`.  This stops decompression
  bombs (a small file that decodes to gigabytes).
* **Orientation.**  The EXIF orientation tag is applied, so a photo is seen
  the way a viewer shows it.
* **Modes.**  16- and 32-bit greyscale (``I;16``, ``I``) is scaled to 8 bits
  by its bit depth (65535 → 255), not clipped; floating-point greyscale
  (``F``) is taken as 0..1 when its values lie there; palette and alpha
  images are composited over white; CMYK, YCbCr, LAB and 1-bit images are
  converted by Pillow.

:data:`DECODE_VERSION` names these rules.  It is part of every backbone
fingerprint, so embeddings decoded under other rules are never mixed with
these.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path
from typing import IO, Any

import numpy as np

from hierarchy import open_regular

from .._errors import ImageError, InputError

__all__ = ["DECODE_VERSION", "MAX_IMAGE_PIXELS", "open_image", "to_rgb"]

#: Names the decoding rules; part of each backbone fingerprint.
DECODE_VERSION = "rgb8-exif-v2"


def _default_limit() -> int:
    raw = os.environ.get("SUPERSUB_MAX_IMAGE_PIXELS", "64000000")
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"SUPERSUB_MAX_IMAGE_PIXELS must be an integer, got {raw!r}") from None
    if value <= 0:
        raise InputError(f"SUPERSUB_MAX_IMAGE_PIXELS must be positive, got {value}")
    return value


#: Largest image (width × height) decoded by default.
MAX_IMAGE_PIXELS = _default_limit()


def _scale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    if mode.startswith("I;16") or (mode == "I" and arr.size and arr.max() <= 65535 and arr.min() >= 0
                                   and arr.max() > 255):
        return np.clip(np.round(arr.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
    if mode == "F" and arr.size and arr.min() >= 0.0 and arr.max() <= 1.0:
        return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    if mode == "I" and arr.size and arr.max() > 65535:  # 32-bit data: its own range
        lo, hi = float(arr.min()), float(arr.max())
        return np.round((arr - lo) * (255.0 / max(hi - lo, 1.0))).astype(np.uint8)
    return np.clip(np.round(arr), 0, 255).astype(np.uint8)


def to_rgb(image: Any) -> Any:
    """An 8-bit RGB copy of a decoded PIL image, with EXIF orientation applied.

    Parameters
    ----------
    image : PIL.Image.Image

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``.
    """
    from PIL import Image, ImageOps

    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a malformed EXIF block: keep the stored orientation
        pass
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "F") or mode.startswith("I;16"):
        grey = _scale_to_uint8(np.asarray(image), mode)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def open_image(source: str | os.PathLike[str] | bytes | IO[bytes], *, max_pixels: int | None = None) -> Any:
    """Decode an image file (or its bytes) to 8-bit RGB under the rules of this module.

    Parameters
    ----------
    source : path-like, bytes or binary file
    max_pixels : int, optional
        Refuse images with more pixels; defaults to :data:`MAX_IMAGE_PIXELS`.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``, fully loaded (the file is closed).

    Raises
    ------
    ImageError
        The file is not a decodable image, is truncated, or is over the pixel limit.
    FileNotFoundError
        The path does not exist.

    Only regular files are read: a FIFO, device or directory is refused
    (:class:`ImageError`) without being read.
    """
    from PIL import Image, UnidentifiedImageError

    limit = MAX_IMAGE_PIXELS if max_pixels is None else int(max_pixels)
    name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(getattr(source, "name", source))
    opened_here = None
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        source = opened_here = open_regular(source, what="image", error=ImageError)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as opened:
                w, h = opened.size
                if w * h > limit:
                    raise ImageError(
                        f"image {name} is {w}x{h} = {w * h:,} pixels, over the limit of {limit:,}; "
                        "shrink it, or raise the limit with SUPERSUB_MAX_IMAGE_PIXELS if you trust the file"
                    )
                opened.load()
                return to_rgb(opened.copy() if opened.mode == "RGB" else opened)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard fired while reading the header; say it in this module's terms.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"has {int(found.group(1)):,} pixels" if found else "is too large to decode safely"
        raise ImageError(
            f"image {name} {size}, over the limit of {limit:,}; shrink it, or raise the limit with "
            "SUPERSUB_MAX_IMAGE_PIXELS if you trust the file"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"cannot read image {name}: {exc}; is the file corrupt or not an image?") from exc
    finally:
        if opened_here is not None:
            opened_here.close()
