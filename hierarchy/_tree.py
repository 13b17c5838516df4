"""The class tree: a rooted networkx tree whose leaves are the classes.

The core is here: the graph and its checks, building from a mapping, and the
queries every other part uses (parents, depths, heights, classes under a
node).  Building from WordNet is in :mod:`._tree_wordnet`, edits (collapse,
grafting a class) in :mod:`._tree_edits`, LCA queries in :mod:`._tree_lca`;
each is a mixin of :class:`ClassTree`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import networkx as nx

from ._errors import HierarchyError, UnknownClassError
from ._tree_edits import TreeEdits
from ._tree_lca import AncestorQueries
from ._tree_wordnet import PARENT_RULES, WordNetBuilders, check_unique
from ._wordnet import load_wordnet, wnid_of

if TYPE_CHECKING:
    from ._superclasses import SuperclassMap

__all__ = ["PARENT_RULES", "ClassTree"]

#: wnid of ``entity.n.01``, the root of the WordNet noun hierarchy.
ENTITY = "n00001740"


def _unknown(node: str, known: Iterable[str], what: str = "class") -> UnknownClassError:
    close = difflib.get_close_matches(node, list(known), n=3)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    return UnknownClassError(f"unknown {what} {node!r}: it is not in this tree{hint}")


class ClassTree(WordNetBuilders, TreeEdits, AncestorQueries):
    """A rooted tree over classes, usually cut from WordNet.

    Nodes are string ids (wnids for WordNet trees), edges point from parent to
    child, and the classes are exactly the leaves.  Each node carries a ``name``
    (the synset name, e.g. ``tench.n.01``) and a ``label`` (a readable lemma).

    Build one with :meth:`from_wnids`, :meth:`from_synsets` or
    :meth:`from_parents`, or read one with :func:`hierarchy.load_tree`.

    Parameters
    ----------
    graph : networkx.DiGraph
        Parent-to-child edges.  Must be a rooted tree (an arborescence).
    classes : sequence of str
        The class ids, in the order used for class indices.  Must be the
        leaves of ``graph``.
    source : str
        Where the structure came from: ``"wordnet"`` or ``"mapping"``.
    collapsed : bool
        Whether single-child chains were removed.
    superclasses : SuperclassMap, optional
        A superclass cut of the classes.
    uncollapsed : networkx.DiGraph, optional
        For a collapsed tree, the graph before collapsing, so that
        :meth:`with_class` grafts new classes as on the uncollapsed tree.
    """

    def __init__(
        self,
        graph: nx.DiGraph,
        classes: Sequence[str],
        *,
        source: str = "wordnet",
        collapsed: bool = False,
        superclasses: SuperclassMap | None = None,
        uncollapsed: nx.DiGraph | None = None,
    ) -> None:
        classes = list(classes)
        check_unique(classes, "classes")
        if graph.number_of_nodes() == 0 or not nx.is_arborescence(graph):
            cycle = _find_cycle(graph)
            detail = f": cycle {' -> '.join(cycle)}" if cycle else ""
            raise HierarchyError(f"the class graph is not a rooted tree{detail}")
        missing = [c for c in classes if c not in graph]
        if missing:
            raise HierarchyError(f"classes not in the graph: {missing[:5]}")
        leaves = {n for n in graph if graph.out_degree(n) == 0}
        inner = [c for c in classes if c not in leaves]
        if inner:
            below = next(iter(graph.successors(inner[0])))
            raise HierarchyError(
                f"class {inner[0]!r} is an ancestor of another node ({below!r}); "
                "classes must be leaves: drop one of them or list them under distinct ids"
            )
        extra = leaves.difference(classes)
        if extra:
            raise HierarchyError(f"leaves that are not classes: {sorted(extra)[:5]}")
        self.graph = graph
        self.classes: tuple[str, ...] = tuple(classes)
        self.source = source
        self.collapsed = collapsed
        self.root: str = next(n for n in graph if graph.in_degree(n) == 0)
        self.superclasses = superclasses
        if superclasses is not None:
            superclasses.validate(self.classes)
        self.uncollapsed = uncollapsed if collapsed else None

    # ------------------------------------------------------------------ build
    @classmethod
    def from_parents(cls, parents: Mapping[str, str], *, root: str | None = None) -> ClassTree:
        """Build a tree from child-to-parent edges, for label sets outside WordNet.

        Parameters
        ----------
        parents : mapping of str to str
            Each key's parent.  Keys that are nobody's parent are the classes,
            in the mapping's order.  Nodes without a parent hang under a
            common root.
        root : str, optional
            The id of the root added when the mapping has several top nodes.
            By default ``"root"``, or ``"root-1"``, ``"root-2"``... when a
            class or superclass already has that name.

        Notes
        -----
        Names are put in Unicode NFC (:func:`hierarchy.normalize_name`); two
        keys that differ only in their Unicode form are refused.

        See Also
        --------
        hierarchy.read_mapping : reads and validates such a mapping from a file.
        """
        from ._mapping import check_parents
        from ._text import normalize_name

        normal = {normalize_name(str(k)): normalize_name(str(v)) if isinstance(v, str) else v
                  for k, v in parents.items()}
        if len(normal) != len(parents):
            seen: dict[str, str] = {}
            for k in parents:
                if normalize_name(str(k)) in seen:
                    raise HierarchyError(f"{seen[normalize_name(str(k))]!r} and {k!r} are one name in different "
                                         "Unicode forms; list each class once")
                seen[normalize_name(str(k))] = k
        parents = normal
        check_parents(parents)
        graph = nx.DiGraph()
        for child, par in parents.items():
            graph.add_node(child, name=child, label=child)
            graph.add_node(par, name=par, label=par)
            graph.add_edge(par, child)
        tops = [n for n in graph if graph.in_degree(n) == 0]
        if len(tops) > 1:
            if root is None:
                root = next(r for r in ("root", *(f"root-{i}" for i in range(1, len(graph) + 2))) if r not in graph)
            elif root in graph:
                raise HierarchyError(f"root id {root!r} is already a class or superclass; pass another root=")
            graph.add_node(root, name=root, label=root)
            for t in tops:
                graph.add_edge(root, t)
        is_parent = set(parents.values())
        classes = [c for c in parents if c not in is_parent]
        return cls(graph, classes, source="mapping")

    # ---------------------------------------------------------------- queries
    def __contains__(self, node: object) -> bool:
        return node in self.graph

    def __len__(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        sc = f", {len(self.superclasses)} superclasses" if self.superclasses else ""
        return (
            f"ClassTree({len(self.classes)} classes, {self.graph.number_of_nodes()} nodes, "
            f"height {self.height(self.root)}{sc})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClassTree):
            return NotImplemented
        from ._io import tree_to_dict

        return tree_to_dict(self) == tree_to_dict(other)

    __hash__ = None  # type: ignore[assignment]

    def check(self, node: str, what: str = "node") -> str:
        """Return ``node`` if it is in the tree, else raise :class:`UnknownClassError`."""
        if node not in self.graph:
            raise _unknown(node, self.graph, what)
        return node

    def check_class(self, cls: str) -> str:
        """Return ``cls`` if it is a class of this tree, else raise."""
        if cls not in self.class_index:
            raise _unknown(cls, self.classes, "class")
        return cls

    def resolve_classes(self, names: Sequence[str], *, wordnet: Any | None = None) -> list[str]:
        """The class of this tree that each of ``names`` denotes.

        A name is a class id of the tree (a wnid, or any label of a
        mapping-file tree) or a WordNet synset name (``car.n.01``) whose wnid
        is a class of the tree.

        Raises
        ------
        UnknownClassError
            Some names denote no class of the tree; the message lists them and
            names the fix.
        """
        out: list[str] = []
        unknown: list[str] = []
        for name in names:
            name = str(name)
            if name in self.class_index:
                out.append(name)
                continue
            wnid = None
            if name.count(".") >= 2 and name.rsplit(".", 2)[1] in ("n", "v", "a", "s", "r"):
                from nltk.corpus.reader.wordnet import WordNetError

                try:
                    wnid = wnid_of((wordnet or load_wordnet()).synset(name))
                except (WordNetError, LookupError, ValueError):  # no such synset
                    wnid = None
            if wnid is not None and wnid in self.class_index:
                out.append(wnid)
            else:
                unknown.append(name)
        if unknown:
            listed = ", ".join(repr(u) for u in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise UnknownClassError(
                f"{len(unknown)} of {len(names)} classes are not classes of the tree: {listed}; build the tree "
                "from these names ('supersub tree build --mapping FILE' with 'class,superclass' rows), or map "
                "the folders to the tree's classes ('--mapping FILE' with 'folder,label' rows)"
            )
        return out

    @cached_property
    def class_index(self) -> dict[str, int]:
        """Class id to its position in :attr:`classes`."""
        return {c: i for i, c in enumerate(self.classes)}

    def name(self, node: str) -> str:
        """The synset name (or mapping name) of a node."""
        return str(self.graph.nodes[self.check(node)]["name"])

    def label(self, node: str) -> str:
        """A short readable label for a node."""
        return str(self.graph.nodes[self.check(node)]["label"])

    def parent(self, node: str) -> str | None:
        """The parent of ``node``; ``None`` for the root."""
        preds = list(self.graph.predecessors(self.check(node)))
        return preds[0] if preds else None

    def children(self, node: str) -> list[str]:
        """The children of ``node``, in insertion order."""
        return list(self.graph.successors(self.check(node)))

    def path_to_root(self, node: str) -> list[str]:
        """The nodes from ``node`` up to the root, both included."""
        path = [self.check(node)]
        parents = self.parents
        while parents[path[-1]] is not None:
            path.append(parents[path[-1]])  # type: ignore[arg-type]
        return path

    def depth(self, node: str) -> int:
        """Edges between the root and ``node``."""
        return self._depths[self.check(node)]

    def height(self, node: str) -> int:
        """Edges on the longest path from ``node`` down to a leaf (0 for a class)."""
        return self._heights[self.check(node)]

    def classes_under(self, node: str) -> list[str]:
        """The classes below ``node`` (the node itself if it is a class), in class order."""
        below = nx.descendants(self.graph, self.check(node)) | {node}
        return [c for c in self.classes if c in below]

    def superclass_of(self, cls: str) -> str:
        """The superclass id of a class under :attr:`superclasses`."""
        if self.superclasses is None:
            raise HierarchyError("this tree has no superclass cut; add one with with_superclasses")
        return self.superclasses.of(self.check_class(cls))

    # --------------------------------------------------------------- helpers
    @property
    def parents(self) -> Mapping[str, str | None]:
        """Each node's parent (``None`` for the root), a read-only mapping."""
        return MappingProxyType(self._parent_of)

    @cached_property
    def _parent_of(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {self.root: None}
        for u, v in self.graph.edges:
            out[v] = u
        return out

    @cached_property
    def _depths(self) -> dict[str, int]:
        depths = {self.root: 0}
        for u, v in nx.bfs_edges(self.graph, self.root):
            depths[v] = depths[u] + 1
        return depths

    @cached_property
    def _heights(self) -> dict[str, int]:
        heights: dict[str, int] = {}
        for node in reversed(list(nx.topological_sort(self.graph))):
            kids = self.graph.successors(node)
            heights[node] = max((heights[k] + 1 for k in kids), default=0)
        return heights


def _find_cycle(graph: nx.DiGraph) -> list[str]:
    try:
        edges = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return []
    return [u for u, _ in edges] + [edges[0][0]]
