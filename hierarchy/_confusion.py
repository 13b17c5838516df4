"""Superclasses from a classifier's confusion: classes it mixes up go together.

As in HD-CNN (Yan et al. 2015), the coarse categories come from spectral
clustering of the symmetrised confusion matrix of a flat classifier on
held-out data, so that a specialist sees the classes the generalist
confuses, and the router's decisions are the ones the generalist already
gets right.  Optionally a class also joins every other superclass that
takes at least a fraction ``overlap`` of its held-out predictions.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np

from ._errors import HierarchyError
from ._kmeans import kmeans
from ._superclasses import SuperclassMap
from ._text import read_text
from ._tree import ClassTree

__all__ = ["cut_confusion", "cut_from_confusion_spec", "read_confusion"]


def read_confusion(path: str | os.PathLike[str], n_classes: int) -> np.ndarray:
    """Read a confusion matrix from ``.npy`` (or ``.csv`` without header), shape (n_classes, n_classes).

    A CSV file is UTF-8 (a byte-order mark is dropped) of at most 64 bytes a cell.
    """
    p = Path(path)
    if not p.is_file():
        raise HierarchyError(f"confusion matrix file {str(path)!r} does not exist")
    try:
        if p.suffix.lower() == ".npy":
            m = np.load(p, allow_pickle=False)
        else:
            text = read_text(p, limit=64 * n_classes * n_classes + (1 << 20), what="confusion matrix file",
                             error=HierarchyError)
            m = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)
    except (ValueError, OSError, EOFError) as exc:
        raise HierarchyError(f"cannot read confusion matrix {p}: {exc}") from exc
    return _check(m, n_classes)


def _check(m: np.ndarray, n_classes: int) -> np.ndarray:
    m = np.asarray(m)
    if m.dtype.kind not in "iuf":
        raise HierarchyError(f"confusion matrix must be numeric, got {m.dtype}")
    if m.shape != (n_classes, n_classes):
        raise HierarchyError(
            f"confusion matrix must have shape ({n_classes}, {n_classes}), rows = true class and columns "
            f"= predicted class in tree class order, got {m.shape}"
        )
    m = m.astype(np.float64)
    if not np.all(np.isfinite(m)) or (m < 0).any():
        raise HierarchyError("confusion matrix must hold finite, non-negative counts or probabilities")
    if (m.sum(1) == 0).any():
        raise HierarchyError(f"confusion matrix row {int(np.flatnonzero(m.sum(1) == 0)[0])} is all zero: "
                             "every class needs held-out predictions")
    return m


def _spectral(affinity: np.ndarray, n: int, seed: int) -> np.ndarray:
    d = affinity.sum(1)
    inv = 1.0 / np.sqrt(np.maximum(d, 1e-12))
    lap = inv[:, None] * affinity * inv[None, :]
    _, vecs = np.linalg.eigh(lap)
    emb = vecs[:, -n:]
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return kmeans(emb, n, seed)


def _rebalance(labels: np.ndarray, affinity: np.ndarray, n: int, cap: int) -> np.ndarray:
    """Move the least attached classes out of groups larger than ``cap``, to the best group with room."""
    labels = labels.copy()
    while True:
        sizes = np.bincount(labels, minlength=n)
        big = np.flatnonzero(sizes > cap)
        if not len(big):
            return labels
        g = int(big[0])
        members = np.flatnonzero(labels == g)
        pull = np.stack([affinity[members][:, labels == h].sum(1) for h in range(n)], axis=1)
        room = sizes < cap
        # the member that loses least by moving to a group with room
        loss = pull[:, g][:, None] - np.where(room[None, :], pull, -np.inf)
        i, h = np.unravel_index(np.argmin(loss), loss.shape)
        labels[members[i]] = h


def cut_confusion(
    tree: ClassTree, confusion: np.ndarray, n: int, *, overlap: float = 0.0, max_ratio: float = 1.5,
    seed: int = 0,
) -> SuperclassMap:
    """Superclasses that group the classes a flat classifier confuses.

    Parameters
    ----------
    tree : ClassTree
    confusion : ndarray of shape (n_classes, n_classes)
        Rows are true classes, columns predicted classes, both in
        ``tree.classes`` order; counts or summed probabilities on held-out data.
    n : int
        Number of superclasses, at least 2.
    overlap : float, default 0.0
        A class also joins another superclass when at least this fraction of
        its held-out predictions fall on that superclass's classes (0 = no
        overlap, a partition).
    max_ratio : float, default 1.5
        No superclass has more than ``max_ratio * n_classes / n`` classes.
    seed : int, default 0

    Returns
    -------
    SuperclassMap
        Named by each group's lowest common ancestor; ``overlap`` filled when asked.
    """
    classes = list(tree.classes)
    m = _check(confusion, len(classes))
    if not isinstance(n, (int, np.integer)) or not 2 <= n <= len(classes):
        raise HierarchyError(f"n must be between 2 and {len(classes)}, got {n!r}")
    if not 0.0 <= overlap < 1.0:
        raise HierarchyError(f"overlap must be a fraction in [0, 1), got {overlap!r}")
    if max_ratio < 1.0:
        raise HierarchyError(f"max_ratio must be >= 1, got {max_ratio!r}")
    rates = m / m.sum(1, keepdims=True)
    affinity = (rates + rates.T) / 2
    np.fill_diagonal(affinity, 0.0)
    affinity += 1e-6 * max(float(affinity.mean()), 1e-12)  # keeps the graph connected
    labels = _spectral(affinity, int(n), seed)
    labels = _rebalance(labels, affinity, int(n), max(1, math.ceil(max_ratio * len(classes) / n)))
    first = {lab: i for i, lab in reversed(list(enumerate(labels)))}
    order = sorted(set(labels.tolist()), key=first.__getitem__)
    ids = {lab: f"confusion{r:02d}" for r, lab in enumerate(order)}
    groups: dict[str, list[str]] = {}
    for cls, lab in zip(classes, labels):
        groups.setdefault(ids[lab], []).append(cls)
    raw = {g: tree.label(tree.lca(*members)) for g, members in groups.items()}
    names = {}
    for g in groups:
        same = [h for h in groups if raw[h] == raw[g]]
        names[g] = raw[g] if len(same) == 1 else f"{raw[g]} #{same.index(g) + 1}"
    extra: dict[str, list[str]] = {}
    if overlap > 0:
        col = {c: i for i, c in enumerate(classes)}
        for g, members in groups.items():
            into = rates[:, [col[c] for c in members]].sum(1)
            extra[g] = [c for c, v in zip(classes, into) if v >= overlap and c not in set(members)]
    method = f"confusion:{n}" + (f":{overlap:g}" if overlap > 0 else "")
    cut = SuperclassMap.from_groups(groups, names, method)
    return SuperclassMap(cut.assignment, cut.names, method, extra)


def cut_from_confusion_spec(tree: ClassTree, arg: str) -> SuperclassMap:
    """The cut that ``make_cut`` spells ``confusion:N:FILE[:OVERLAP]``; ``arg`` is what follows ``confusion:``."""
    count, _, rest = arg.partition(":")
    path, overlap = rest, 0.0
    head, sep, last = rest.rpartition(":")
    if sep and head:
        try:
            path, overlap = head, float(last)
        except ValueError:
            pass
    if not path:
        raise HierarchyError("confusion cut needs a matrix file: confusion:N:FILE[:OVERLAP]")
    return cut_confusion(tree, read_confusion(path, len(tree.classes)), int(count), overlap=overlap)
