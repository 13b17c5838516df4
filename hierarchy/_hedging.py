"""Decisions along the tree: answers as specific as the probabilities allow, and better mistakes.

A model gives class probabilities ``p`` over its classes.  A node's **mass** is
the sum of the probabilities of the classes under it.  An answer is a node; it
is correct when the true class lies under it.  Its **information gain** is
``log2(K) - log2(K_v)`` for ``K`` classes, ``K_v`` of them under the node,
normalised here to ``[0, 1]``: 1 for a class, 0 for the root.

* :meth:`TreeNodes.darts` answers ``argmax_v (r_v + λ) · p_v`` (DARTS, Deng et
  al., CVPR 2012): ``λ = 0`` is the most informative, a large ``λ`` the safest.
* :meth:`TreeNodes.deepest_above` answers the deepest node whose mass is at
  least ``τ``, the plain baseline.
* :func:`crm_decisions` picks the class of least expected LCA height (CRM,
  Karthik et al., ICLR 2021).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._errors import HierarchyError, UnknownClassError

if TYPE_CHECKING:
    from ._tree import ClassTree

__all__ = ["TreeNodes", "crm_decisions", "soft_labels"]


class TreeNodes:
    """The nodes of ``tree`` that hold at least one of ``classes``, as arrays over those classes.

    Nodes with the same classes below them (a chain of single children) are
    one answer; the deepest of them names it, except that the answer holding
    every class is the tree's root ("I don't know").  Rows are ordered root first.

    Parameters
    ----------
    tree : ClassTree
    classes : sequence of str
        The model's classes, in its column order; each must be a class of ``tree``.

    Attributes
    ----------
    nodes : tuple of str
        Node ids, root first; ``nodes[0]`` is the root.
    members : ndarray of shape (n_nodes, n_classes), bool
        Which classes lie under each node.
    size : ndarray of shape (n_nodes,), int
        Classes under each node.
    gain : ndarray of shape (n_nodes,), float
        Normalised information gain, 0 at the root and 1 at a class.
    depth : ndarray of shape (n_nodes,), int
        Depth in ``tree``.
    class_node : ndarray of shape (n_classes,), int
        The row of each class's own node.
    """

    def __init__(self, tree: ClassTree, classes: Sequence[str]) -> None:
        classes = [str(c) for c in classes]
        unknown = [c for c in classes if c not in tree.class_index]
        if unknown:
            raise UnknownClassError(f"{len(unknown)} classes are not classes of the tree, e.g. {unknown[0]!r}")
        if len(classes) < 2:
            raise HierarchyError("hedging needs at least two classes")
        self.tree, self.classes = tree, tuple(classes)
        col = {c: i for i, c in enumerate(classes)}
        below: dict[str, frozenset[int]] = {}
        for node in reversed(self._top_down(tree)):  # children before parents
            kids = tree.children(node)
            own = {col[node]} if node in col else set()
            below[node] = frozenset(own.union(*(below[k] for k in kids)))
        everything = frozenset(range(len(classes)))
        chosen: dict[frozenset[int], str] = {everything: tree.root}  # "I don't know" is the root itself
        for node in self._top_down(tree):  # a deeper node with the same classes replaces its ancestor
            if below[node] and below[node] != everything:
                chosen[below[node]] = node
        order = sorted(chosen.items(), key=lambda kv: (tree.depth(kv[1]), -len(kv[0]), kv[1]))
        self.nodes: tuple[str, ...] = tuple(n for _, n in order)
        K = len(classes)
        self.members = np.zeros((len(order), K), dtype=bool)
        for i, (cols, _) in enumerate(order):
            self.members[i, sorted(cols)] = True
        self.size = self.members.sum(1)
        self.gain = (np.log2(K) - np.log2(self.size)) / np.log2(K)
        self.depth = np.array([tree.depth(n) for n in self.nodes], dtype=np.int64)
        index = {n: i for i, n in enumerate(self.nodes)}
        self.class_node = np.array([index[c] for c in classes], dtype=np.int64)
        if self.size[0] != K:
            raise HierarchyError("the tree's root does not hold every class")  # pragma: no cover - a tree has one root

    @staticmethod
    def _top_down(tree: ClassTree) -> list[str]:
        out, stack = [], [tree.root]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(tree.children(node)))
        return out

    def masses(self, proba: np.ndarray) -> np.ndarray:
        """Each node's probability mass, shape (n_queries, n_nodes), from ``proba`` (n_queries, n_classes)."""
        proba = self._check(proba)
        return proba @ self.members.T.astype(proba.dtype)

    def darts(self, mass: np.ndarray, lam: float) -> np.ndarray:
        """Row of the node maximising ``(gain + λ) · mass`` for each query, shape (n_queries,).

        ``mass`` comes from :meth:`masses`.  Ties go to the deeper, more informative node.
        """
        return self._argmax_deepest((self.gain[None, :] + float(lam)) * mass)

    def deepest_above(self, mass: np.ndarray, tau: float) -> np.ndarray:
        """Row of the most informative node whose mass is at least ``tau``, shape (n_queries,).

        ``mass`` comes from :meth:`masses`; the root always qualifies.
        """
        ok = mass >= float(tau) - 1e-12
        ok[:, 0] = True
        return self._argmax_deepest(np.where(ok, self.gain[None, :] + 1.0 + 1e-9 * mass, 0.0))

    def _argmax_deepest(self, score: np.ndarray) -> np.ndarray:
        best = score.max(1, keepdims=True)
        tied = score >= best - 1e-12 * np.maximum(1.0, np.abs(best))
        return np.where(tied, self.gain[None, :] + 1e-6 * np.arange(len(self.nodes))[None, :], -np.inf).argmax(1)

    def correct(self, rows: np.ndarray, true: Sequence[str]) -> np.ndarray:
        """Whether each answer holds the true class, shape (n_queries,).

        ``true`` may name classes of the tree that the model lacks (novel
        classes): an answer is correct when the class lies under it in the tree.
        """
        rows = np.asarray(rows, dtype=np.int64)
        col = {c: i for i, c in enumerate(self.classes)}
        out = np.empty(len(rows), dtype=bool)
        for q, (r, t) in enumerate(zip(rows, true)):
            t = str(t)
            if t in col:
                out[q] = bool(self.members[r, col[t]])
            else:
                node = self.nodes[r]
                out[q] = node in self.tree.path_to_root(self.tree.check_class(t))
        return out

    def _check(self, proba: np.ndarray) -> np.ndarray:
        proba = np.asarray(proba, dtype=np.float64)
        if proba.ndim != 2 or proba.shape[1] != len(self.classes):
            raise HierarchyError(f"probabilities must have shape (n, {len(self.classes)}), got {proba.shape}")
        if not np.isfinite(proba).all():
            raise HierarchyError("probabilities contain NaN or infinite values")
        return proba


def crm_decisions(proba: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """The class of least expected mistake severity for each query (CRM).

    Parameters
    ----------
    proba : ndarray of shape (n_queries, n_classes)
    heights : ndarray of shape (n_classes, n_classes)
        LCA heights between the classes, in the same order
        (:meth:`ClassTree.lca_height_matrix`).

    Returns
    -------
    ndarray of shape (n_queries,), int
        ``argmin_j Σ_i p_i · H[i, j]``; ties go to the most probable class,
        so a constant ``H`` gives argmax.
    """
    proba = np.asarray(proba, dtype=np.float64)
    heights = np.asarray(heights, dtype=np.float64)
    if proba.ndim != 2 or heights.shape != (proba.shape[1], proba.shape[1]):
        raise HierarchyError(f"heights must have shape ({proba.shape[-1]}, {proba.shape[-1]}), got {heights.shape}")
    risk = proba @ heights
    best = risk.min(1, keepdims=True)
    tied = risk <= best + 1e-12 * np.maximum(1.0, np.abs(best))
    return np.where(tied, proba, -np.inf).argmax(1)


def soft_labels(heights: np.ndarray, beta: float) -> np.ndarray:
    """Hierarchy-aware training targets: for each true class, a distribution favouring near classes.

    Row ``i`` is ``softmax(−β · H[i] / max(H))`` (Bertinetto et al., CVPR 2020,
    "Making better mistakes"): the true class gets the most mass, classes with a
    low common ancestor more than distant ones.  A larger ``β`` is closer to
    one-hot labels.

    Parameters
    ----------
    heights : ndarray of shape (n_classes, n_classes)
        LCA heights (:meth:`ClassTree.lca_height_matrix`), zero on the diagonal.
    beta : float
        Positive.

    Returns
    -------
    ndarray of shape (n_classes, n_classes), float32
        Rows summing to 1.
    """
    H = np.asarray(heights, dtype=np.float64)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise HierarchyError(f"heights must be a square matrix, got shape {H.shape}")
    if not (np.isfinite(beta) and beta > 0):
        raise HierarchyError(f"beta must be a positive number, got {beta!r}")
    z = -float(beta) * H / max(float(H.max()), 1.0)
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(1, keepdims=True)).astype(np.float32)
