"""Image datasets in their official layouts: Tiny-ImageNet-200 and wnid-named folders.

Where the files come from (a folder, an archive extracted once, a download)
is :mod:`._archives`.  Loaders return an :class:`ImageDataset`: image paths, integer targets, the
class wnids, and a reference string per sample (its path relative to the
dataset root) that memories store as the entry's image reference.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import file_kind, normalize_name, parse_json, read_text

from ._archives import ENV_VAR, TINY_IMAGENET_URL, download, resolve_tiny_imagenet
from .._errors import DataError, ImageError

__all__ = [
    "IMAGE_SUFFIXES",
    "TINY_IMAGENET_URL",
    "ImageDataset",
    "download",
    "image_folder",
    "resolve_tiny_imagenet",
    "tiny_imagenet",
]

log = logging.getLogger(__name__)

#: File suffixes read as images when a folder is scanned.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


@dataclass
class ImageDataset:
    """Images with labels, in a fixed order.

    Attributes
    ----------
    name, split : str
    root : Path
        Directory the references are relative to.
    refs : list of str, length n
        Sample paths relative to ``root``.
    targets : ndarray of shape (n,), int64
        Index into ``classes``.
    classes : list of str
        Class wnids.
    """

    name: str
    split: str
    root: Path
    refs: list[str]
    targets: np.ndarray
    classes: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.refs)

    def __repr__(self) -> str:
        return f"ImageDataset({self.name}/{self.split}, {len(self)} images, {len(self.classes)} classes)"

    @property
    def paths(self) -> list[Path]:
        """Absolute image paths."""
        return [self.root / r for r in self.refs]

    @property
    def source(self) -> str:
        """The source name its entries get in a memory: ``"<name>/<split>"``, or ``name`` when they are equal."""
        return self.name if self.name == self.split else f"{self.name}/{self.split}"

    @property
    def labels(self) -> np.ndarray:
        """Class wnid per sample, shape (n,), str."""
        return np.asarray(self.classes)[self.targets]

    def __getitem__(self, i: int) -> tuple[Any, int]:
        from ._images import open_image

        return open_image(self.root / self.refs[i]), int(self.targets[i])

    def without_unreadable(self) -> tuple[ImageDataset, list[tuple[str, str]]]:
        """This dataset less the images that do not decode, and ``(ref, reason)`` for each one left out.

        Every image is decoded once under the rules of :func:`memory.open_image`
        (regular files only, the pixel limit), so this costs one decoding pass.
        """
        from ._images import open_image

        keep: list[int] = []
        skipped: list[tuple[str, str]] = []
        for i, ref in enumerate(self.refs):
            try:
                open_image(self.root / ref)
                keep.append(i)
            except (ImageError, OSError) as exc:
                skipped.append((ref, str(exc)))
        if not skipped:
            return self, []
        kept = ImageDataset(self.name, self.split, self.root, [self.refs[i] for i in keep], self.targets[keep],
                            list(self.classes), dict(self.info, skipped_unreadable=len(skipped)))
        return kept, skipped

    def key(self) -> str:
        """A hash of the sample list and labels, identifying this exact set of images."""
        h = hashlib.sha256(f"{self.name}/{self.split}\n".encode())
        for ref, t in zip(self.refs, self.targets.tolist()):
            h.update(f"{ref}\t{self.classes[t]}\n".encode())
        return h.hexdigest()

    def subset(
        self,
        per_class: int | None = None,
        *,
        classes: Sequence[str] | None = None,
        seed: int | None = None,
        skip: int = 0,
    ) -> ImageDataset:
        """A smaller dataset: some classes, and at most ``per_class`` samples of each.

        Without ``seed`` the first samples of each class are kept (in file
        order); with it, a seeded random choice.  ``skip`` first leaves out the
        first ``skip`` samples of each class (in file order), so that
        ``subset(n, skip=k)`` and ``subset(k)`` never share a sample.
        """
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
            raise DataError(f"skip must be a non-negative integer, got {skip!r}")
        keep_classes = list(self.classes) if classes is None else list(classes)
        unknown = [c for c in keep_classes if c not in self.classes]
        if unknown:
            raise DataError(f"unknown class {unknown[0]!r} for {self.name}")
        index = {c: i for i, c in enumerate(self.classes)}
        rng = np.random.default_rng(seed) if seed is not None else None
        chosen: list[int] = []
        for c in keep_classes:
            rows = np.flatnonzero(self.targets == index[c])[skip:]
            if per_class is not None and len(rows) > per_class:
                rows = np.sort(rng.choice(rows, per_class, replace=False)) if rng else rows[:per_class]
            chosen.extend(rows.tolist())
        chosen.sort()
        new_index = {c: i for i, c in enumerate(keep_classes)}
        return ImageDataset(
            self.name, self.split, self.root, [self.refs[i] for i in chosen],
            np.array([new_index[self.classes[self.targets[i]]] for i in chosen], dtype=np.int64),
            keep_classes, dict(self.info, subset={"per_class": per_class, "seed": seed, "skip": skip}),
        )


def tiny_imagenet(
    split: str = "train",
    source: str | os.PathLike[str] | None = None,
    *,
    download_if_missing: bool = True,
    cache: str | os.PathLike[str] | None = None,
) -> ImageDataset:
    """Tiny-ImageNet-200: 200 wnid classes, 500 train and 50 val images each, 64x64.

    Parameters
    ----------
    split : {"train", "val"}
        The official test split has no labels and is not offered.
    source, download_if_missing, cache
        As in :func:`resolve_tiny_imagenet`.
    """
    if split not in ("train", "val"):
        raise DataError(f"split must be 'train' or 'val' (test has no labels), got {split!r}")
    root = resolve_tiny_imagenet(source, download_if_missing=download_if_missing, cache=cache)
    classes = [ln.strip() for ln in read_text(root / "wnids.txt", limit=16 << 20, what="wnids file",
                                               error=DataError).splitlines() if ln.strip()]
    index = {c: i for i, c in enumerate(classes)}
    refs: list[str] = []
    targets: list[int] = []
    if split == "train":
        for c in classes:
            folder = root / "train" / c / "images"
            if not folder.is_dir():
                raise DataError(f"{folder} is missing: the train split is incomplete")
            names = _image_files(folder)
            refs.extend(f"train/{c}/images/{n}" for n in names)
            targets.extend([index[c]] * len(names))
    else:
        ann = root / "val" / "val_annotations.txt"
        if not ann.is_file():
            raise DataError(f"{ann} is missing: the val split is incomplete")
        text = read_text(ann, limit=256 << 20, what="annotation file", error=DataError)
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) < 2 or parts[1] not in index:
                raise DataError(f"{ann}:{lineno}: expected 'file<TAB>wnid', got {line[:60]!r}")
            refs.append(f"val/images/{parts[0]}")
            targets.append(index[parts[1]])
    return ImageDataset("tiny-imagenet-200", split, root, refs, np.asarray(targets, dtype=np.int64),
                        classes, {"source": str(source or os.environ.get(ENV_VAR) or TINY_IMAGENET_URL)})


def _image_files(folder: Path) -> list[str]:
    """The image files below ``folder`` (by suffix), as paths relative to it, in ``sorted(folder.rglob("*"))``'s
    order; anything but a regular file there is refused.

    Walks as ``rglob`` does (into real folders, not linked ones), with the file
    types the directory listing gives: only links are looked up one by one.
    """
    out: list[str] = []

    def check(path: str, mode: int) -> bool:
        if stat.S_ISDIR(mode):
            return False
        if not stat.S_ISREG(mode):
            raise DataError(f"image {path} is {file_kind(mode)}, not a regular file; only regular files are "
                            "read as images: remove it from the data folder")
        return True

    def walk(directory: str) -> None:
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except PermissionError:
            return
        for e in entries:
            try:
                real_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                real_dir = False
            if real_dir:
                walk(e.path)
            if os.path.splitext(e.name)[1].lower() not in IMAGE_SUFFIXES:
                continue
            try:
                if e.is_symlink():
                    keep = check(e.path, os.stat(e.path).st_mode)
                else:
                    keep = e.is_file(follow_symlinks=False) or check(e.path, e.stat(follow_symlinks=False).st_mode)
            except OSError as exc:
                raise DataError(f"image {e.path} cannot be read ({exc}); remove it or fix the link") from None
            if keep:
                out.append(e.path[start:])

    top = str(folder)
    start = len(os.path.join(top, ""))
    walk(top)
    out.sort(key=lambda p: p.split(os.sep))  # Path's order: part by part
    return [p.replace(os.sep, "/") for p in out]


def _read_folder_mapping(path: Path) -> dict[str, str]:
    try:
        text = read_text(path, limit=64 << 20, what="mapping file", error=DataError)
    except FileNotFoundError:
        raise DataError(f"mapping file {path} does not exist") from None
    if path.suffix.lower() == ".json":
        data = parse_json(text, origin=str(path), error=DataError)
        if not isinstance(data, dict):
            raise DataError(f"{path}: expected an object mapping folder name to label")
        return {normalize_name(str(k)): normalize_name(str(v)) for k, v in data.items()}
    out = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = [p.strip() for p in re.split(r"[,\t]", line) if p.strip()]
        if not parts or parts[0].startswith("#") or (lineno == 1 and parts[:2] in (["folder", "wnid"],
                                                                                 ["folder", "label"])):
            continue
        if len(parts) != 2:
            raise DataError(f"{path}:{lineno}: expected 'folder,label'")
        out[normalize_name(parts[0])] = normalize_name(parts[1])
    return out


def image_folder(
    root: str | os.PathLike[str],
    *,
    mapping: str | os.PathLike[str] | None = None,
    name: str | None = None,
    split: str = "all",
) -> ImageDataset:
    """An ImageFolder-style dataset: ``root/<class>/**/<image>``.

    Each class folder's name is its label (a wnid such as ``n01440764``, a
    WordNet synset name such as ``car.n.01``, or any name a mapping-file tree
    holds), or ``mapping`` (CSV ``folder,label`` rows, or a JSON object) maps
    folder names to labels.  Whether the labels are classes of a tree is
    checked where the two meet (``supersub build``, :func:`router.match_classes`).
    """
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"image folder {base} does not exist")
    folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{base} has no class folders")
    names = _read_folder_mapping(Path(mapping)) if mapping else {f.name: normalize_name(f.name) for f in folders}
    classes: list[str] = []
    refs: list[str] = []
    targets: list[int] = []
    for folder in folders:
        wnid = names.get(normalize_name(folder.name))
        if wnid is None:
            raise DataError(f"class folder {folder.name!r} is not in the mapping file {mapping}; add a "
                            f"'{folder.name},LABEL' row")
        if wnid in classes:
            raise DataError(f"two class folders map to label {wnid!r} (names are compared in Unicode NFC); "
                            "give each class one folder")
        files = _image_files(folder)
        if not files:
            continue
        classes.append(wnid)
        refs.extend(f"{folder.name}/{f}" for f in files)
        targets.extend([len(classes) - 1] * len(files))
    if not refs:
        raise DataError(f"{base} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return ImageDataset(name or base.name, split, base, refs, np.asarray(targets, dtype=np.int64),
                        classes, {"source": str(base)})
