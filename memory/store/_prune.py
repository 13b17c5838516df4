"""Pruning: harmful entries, redundant near-duplicates, sub-centroid compression."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from .._errors import InputError
from ._explain import PruneReport
from .._validation import as_strings, check_k

if TYPE_CHECKING:
    from ._visual_memory import VisualMemory

__all__ = ["compress", "harm_counts", "prune_harmful", "prune_redundant"]


def harm_counts(
    memory: VisualMemory, X: Any, y: Any, k: int | None = None, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How often each entry takes part in right and wrong decisions.

    An entry takes part in a decision when it is among a query's k
    neighbours and votes for the label the memory predicts.

    Parameters
    ----------
    X : array-like of shape (n, dim)
        Held-out queries (not the data used for scoring later).
    y : sequence of str, length n
        Their true labels.

    Returns
    -------
    ids, right, wrong : ndarray of shape (n_entries,)
        Every entry's id and its counts.
    """
    scores, _, rows, w = memory.votes(X, k, voting=kwargs.get("voting"), temperature=kwargs.get("temperature"),
                                      superclass=kwargs.get("superclass"), steer=kwargs.get("steer"))
    truth = as_strings(y, scores.shape[0], "y")
    classes = memory.classes_
    pred = scores.argmax(axis=1)
    index = {c: i for i, c in enumerate(classes)}
    true_idx = np.array([index.get(t, -1) for t in truth])
    valid = rows >= 0
    codes = memory.table_.class_index(rows)
    voted_pred = valid & (codes == pred[:, None]) & (w > 0)
    correct = (pred == true_idx)[:, None]
    right = np.bincount(rows[voted_pred & correct], minlength=len(memory))
    wrong = np.bincount(rows[voted_pred & ~correct], minlength=len(memory))
    return memory.ids_, right, wrong


def _vectors(memory: VisualMemory) -> np.ndarray:
    """The memory's vectors in row order, (n, dim); refuses an empty memory."""
    if memory.index_ is None or len(memory) == 0:
        raise InputError("the memory is empty; add entries before pruning")
    return memory.index_.vectors()


def prune_harmful(
    memory: VisualMemory, X: Any, y: Any, k: int | None = None, *, margin: int = 0, **kwargs: Any
) -> PruneReport:
    """Remove entries with more wrong than right decisions (by more than ``margin``)."""
    ids, right, wrong = harm_counts(memory, X, y, k, **kwargs)
    doomed = ids[wrong > right + margin]
    removed = memory.remove(doomed) if doomed.size else doomed
    return PruneReport(
        "harmful", removed,
        details={"queries": int(np.asarray(X).shape[0]), "k": k or memory.k, "margin": margin,
                 "entries_in_wrong_decisions": int((wrong > 0).sum())},
    )


def prune_redundant(memory: VisualMemory, threshold: float = 0.98) -> PruneReport:
    """Remove near-duplicates within each class.

    Entries are visited in id order; an entry is dropped when its cosine
    similarity to an earlier kept entry of the same label is at least
    ``threshold``.
    """
    if not -1.0 <= threshold <= 1.0:
        raise InputError(f"threshold is a cosine similarity in [-1, 1], got {threshold!r}")
    table, vecs = memory.table_, _vectors(memory)
    doomed: list[np.ndarray] = []
    for code in np.unique(table.codes["label"]):
        rows = np.flatnonzero(table.codes["label"] == code)
        rows = rows[np.argsort(table.ids[rows], kind="stable")]
        x = vecs[rows]
        drop = np.zeros(len(rows), dtype=bool)
        for begin in range(0, len(rows), 2048):
            sims = x[begin : begin + 2048] @ x.T  # (block, n)
            for i in range(begin, min(begin + 2048, len(rows))):
                if not drop[i]:  # a kept entry drops its later duplicates
                    drop[i + 1 :] |= sims[i - begin, i + 1 :] >= threshold
        doomed.append(table.ids[rows[drop]])
    ids = np.concatenate(doomed) if doomed else np.empty(0, dtype=np.int64)
    removed = memory.remove(ids) if ids.size else ids
    return PruneReport("redundant", removed, details={"threshold": threshold})


def compress(memory: VisualMemory, m: int = 4, *, snap: bool = False, seed: int = 0) -> PruneReport:
    """Replace each class by ``m`` sub-centroids (Deep Nearest Centroids).

    Each class with more than ``m`` entries is clustered by spherical
    k-means.  With ``snap=False`` its entries are replaced by the ``m``
    normalised centroids (source ``"centroids"``, the class's most common
    superclass).  With ``snap=True`` each centroid is snapped to its nearest
    real entry, which is kept with its metadata, so every centroid stays a
    viewable training image.
    """
    m = check_k(m, "m")
    table, vecs = memory.table_, _vectors(memory)
    removed: list[np.ndarray] = []
    added: list[np.ndarray] = []
    new_batches: list[tuple[np.ndarray, str, str]] = []
    for code in np.unique(table.codes["label"]):
        rows = np.flatnonzero(table.codes["label"] == code)
        if len(rows) <= m:
            continue
        rows = rows[np.argsort(table.ids[rows], kind="stable")]
        x = np.ascontiguousarray(vecs[rows])
        km = faiss.Kmeans(x.shape[1], m, niter=25, seed=seed, spherical=True, verbose=False,
                          min_points_per_centroid=1)
        km.train(x)
        centroids = km.centroids / np.linalg.norm(km.centroids, axis=1, keepdims=True)
        if snap:
            keep = set()
            sims = centroids @ x.T
            for c in range(m):  # greedy unique assignment, best centroid first
                for j in np.argsort(-sims[c], kind="stable"):
                    if j not in keep:
                        keep.add(int(j))
                        break
            drop = np.array([j for j in range(len(rows)) if j not in keep], dtype=np.int64)
            removed.append(table.ids[rows[drop]])
        else:
            label = table.vocabs["label"].values[code]
            supers, counts = np.unique(table.codes["superclass"][rows], return_counts=True)
            superclass = table.vocabs["superclass"].values[int(supers[np.argmax(counts)])]
            new_batches.append((centroids.astype(np.float32), label, superclass))
            removed.append(table.ids[rows])
    ids = np.concatenate(removed) if removed else np.empty(0, dtype=np.int64)
    if ids.size:
        memory.remove(ids)
    for cents, label, superclass in new_batches:
        added.append(memory.add(cents, label, superclass=superclass or "", source="centroids"))
    return PruneReport(
        "compress-snap" if snap else "compress",
        ids,
        np.concatenate(added) if added else np.empty(0, dtype=np.int64),
        {"m": m, "seed": seed},
    )
