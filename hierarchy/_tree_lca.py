"""Lowest common ancestors of a class tree, and the LCA heights that measure mistake severity.

:class:`AncestorQueries` is mixed into :class:`hierarchy.ClassTree`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._errors import HierarchyError

__all__ = ["AncestorQueries"]


class AncestorQueries:
    """The LCA queries of :class:`hierarchy.ClassTree`."""

    def lca(self, *nodes: str) -> str:
        """Lowest common ancestor of one or more nodes.

        Each further node walks up only until it meets the first node's path,
        so the cost is the first path plus those walks, not a full path per node.
        """
        if not nodes:
            raise HierarchyError("lca needs at least one node")
        common = self.path_to_root(nodes[0])
        position = {n: i for i, n in enumerate(common)}
        parents = self.parents
        lowest = 0
        for other in nodes[1:]:
            node: str | None = self.check(other)
            while node not in position:
                node = parents[node]  # type: ignore[index]
            lowest = max(lowest, position[node])  # type: ignore[index]
        return common[lowest]

    def lca_height(self, a: str, b: str) -> int:
        """Mistake severity: the height of the lowest common ancestor of ``a`` and ``b``.

        Height counts edges down to the deepest leaf below the node, so it is
        0 when ``a == b`` for a class and symmetric in its arguments.
        """
        return self.height(self.lca(a, b))

    def lca_matrix(self, classes: Sequence[str] | None = None) -> np.ndarray:
        """Lowest common ancestors of all pairs of classes.

        Parameters
        ----------
        classes : sequence of str, optional
            Defaults to :attr:`classes`.

        Returns
        -------
        ndarray of shape (n, n), object
            Node ids; symmetric, each class on the diagonal.
        """
        nodes, lca = self._lca_indices(classes)
        return np.asarray(nodes, dtype=object)[lca]

    def _lca_indices(self, classes: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
        """The graph's nodes and, for each pair of classes, the index of their LCA among them."""
        classes = list(self.classes if classes is None else classes)
        for c in classes:
            self.check(c)
        paths = [self.path_to_root(c)[::-1] for c in classes]  # root first
        nodes = list(self.graph)
        index = {n: i for i, n in enumerate(nodes)}
        longest = max(len(p) for p in paths)
        padded = np.full((len(classes), longest), -1, dtype=np.int64)
        member = np.zeros((len(classes), len(nodes)), dtype=np.float32)
        for i, p in enumerate(paths):
            ids = [index[n] for n in p]
            padded[i, : len(ids)] = ids
            member[i, ids] = 1.0
        # Common ancestors of two nodes form the chain from the root to their
        # LCA, so their count locates the LCA on either path.
        shared = np.rint(member @ member.T).astype(np.int64)
        return nodes, np.take_along_axis(padded, shared - 1, axis=1)

    def lca_height_matrix(self, classes: Sequence[str] | None = None) -> np.ndarray:
        """LCA heights between all pairs of classes.

        Parameters
        ----------
        classes : sequence of str, optional
            Defaults to :attr:`classes`.

        Returns
        -------
        ndarray of shape (n, n), int32
            Symmetric, zero on the diagonal.
        """
        nodes, lca = self._lca_indices(classes)
        return np.array([self._heights[n] for n in nodes], dtype=np.int32)[lca]
