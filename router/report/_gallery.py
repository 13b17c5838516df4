"""The neighbour gallery of a misclassification report: confident mistakes and what outvoted the truth.

Only decoded pixels reach the report: every image is opened with the
pixel limit, re-encoded as a PNG thumbnail, and read only from inside the
data folder.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from memory import InputError, open_image

from ._analysis import Predictions
from ..pipeline import QueryEncoder
from ._report import GalleryItem, GalleryNeighbour

__all__ = ["inside_root", "mistake_gallery", "png_bytes", "training_root"]

log = logging.getLogger("supersub")


def mistake_gallery(clf: Any, p: Predictions, root: Path, n: int, *,
                    memory_root: Path | None = None) -> list[GalleryItem]:
    """The ``n`` most confident mistakes of ``p``, each with the neighbours that outvoted the truth.

    Parameters
    ----------
    clf : TwoStageClassifier or NetworkTwoStage
        The model that made the predictions; its explanations give the neighbours.
    p : Predictions
        With ``score`` and ``ref`` (image paths relative to ``root``).
    root : Path
        The folder the queries' references are relative to.  A reference
        outside it (absolute, ``..``, a link out) is left out with a warning,
        never read.
    n : int
        How many mistakes to show.
    memory_root : Path, optional
        The folder the memory's references are relative to (the training
        data); ``root`` when not given.  The same rule applies.
    """
    wrong = np.flatnonzero(p.wrong)
    if p.score is None or p.ref is None or not len(wrong):
        return []
    order = wrong[np.argsort(-p.score[wrong], kind="stable")]
    inside: list[tuple[int, Path]] = []
    skipped = 0
    for i in order:
        if len(inside) == n:
            break
        path = inside_root(root, p.ref[i])
        if path is None:
            skipped += 1
        else:
            inside.append((int(i), path))
    if skipped:
        log.warning("gallery: %d references point outside %s and were left out", skipped, root)
    if not inside:
        return []
    enc = QueryEncoder(clf, progress=False)
    shown = [(i, path, image) for i, path in inside if (image := _thumbnail(path)) is not None]
    if not shown:
        return []
    X = enc.images([image for _, _, image in shown])
    items = []
    for (i, path, image), e in zip(shown, clf.explain(X)):
        outvoters = [nb for nb in e.neighbours if nb.label != p.true[i]][:5]
        items.append(GalleryItem(
            image=png_bytes(image), true=str(p.true[i]), pred=str(p.pred[i]), score=float(p.score[i]),
            ref=str(p.ref[i]),
            neighbours=[GalleryNeighbour(_neighbour_image(memory_root or root, nb.ref), nb.label, nb.source,
                                         nb.weight, nb.similarity) for nb in outvoters],
        ))
    return items


def training_root(clf: Any) -> str | None:
    """Where a model's training images are (its entries' refs are relative to it), if it recorded that.

    A memory-level model records it in ``data``, a network-level one in ``data_``.
    """
    for record in (getattr(clf, "data_", None), getattr(clf, "data", None)):
        if isinstance(record, dict) and isinstance(record.get("root"), str):
            return record["root"]
    return None


def inside_root(root: Path, ref: object) -> Path | None:
    """``root / ref`` if it names a file inside ``root`` (no absolute paths, no ``..``, no links out)."""
    text = str(ref)
    if not text or Path(text).is_absolute() or ".." in Path(text).parts:
        return None
    path = (root / text).resolve()
    try:
        path.relative_to(root.resolve())
    except ValueError:
        return None
    return path if path.is_file() else None


def _thumbnail(path: Path) -> object | None:
    """The decoded RGB image (pixel-limited), or None if it cannot be decoded."""
    try:
        return open_image(path)
    except (InputError, OSError) as exc:
        log.warning("gallery: %s", exc)
        return None


def png_bytes(image: object, side: int = 256) -> bytes:
    """Re-encode decoded pixels as PNG, at most ``side`` pixels a side: only pixels reach the report."""
    small = image.copy()  # type: ignore[attr-defined]
    small.thumbnail((side, side))
    buf = io.BytesIO()
    small.save(buf, format="PNG")
    return buf.getvalue()


def _neighbour_image(root: Path, ref: str | None) -> bytes | None:
    path = inside_root(root, ref) if ref else None
    image = _thumbnail(path) if path is not None else None
    return png_bytes(image) if image is not None else None
