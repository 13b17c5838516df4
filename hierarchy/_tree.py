"""The class tree: a rooted networkx tree whose leaves are the classes.

Why one module: it holds one class, :class:`ClassTree`, whose builders (WordNet,
mappings), grafting, collapsing and LCA queries share its graph and its cached
parents, depths and heights.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from ._errors import HierarchyError, UnknownClassError
from ._wordnet import load_wordnet, synset_from_wnid, wnid_of

if TYPE_CHECKING:
    from ._superclasses import SuperclassMap

__all__ = ["ClassTree"]

#: wnid of ``entity.n.01``, the root of the WordNet noun hierarchy.
ENTITY = "n00001740"


def _check_unique(items: Sequence[str], what: str) -> None:
    if len(items) == 0:
        raise HierarchyError(f"empty {what}: a tree needs at least one class")
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise HierarchyError(f"{what}[{i}] is {item!r}; class ids must be non-empty strings")
        if item in seen:
            raise HierarchyError(
                f"duplicate class {item!r} in {what} (position {i}); list each class once"
            )
        seen.add(item)


def _unknown(node: str, known: Iterable[str], what: str = "class") -> UnknownClassError:
    close = difflib.get_close_matches(node, list(known), n=3)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    return UnknownClassError(f"unknown {what} {node!r}: it is not in this tree{hint}")


class ClassTree:
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
        _check_unique(classes, "classes")
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
    def from_wnids(
        cls, wnids: Sequence[str], *, collapse: bool = False, wordnet: Any | None = None,
        parent_rule: str = "specificity",
    ) -> ClassTree:
        """Build the WordNet tree over ImageNet-style wnids.

        Parameters
        ----------
        wnids : sequence of str
            Class ids such as ``"n01440764"``; each must be a WordNet 3.0 noun.
        collapse : bool, default False
            Remove inner nodes that have a single child.
        wordnet : WordNetCorpusReader, optional
            Defaults to :func:`hierarchy.load_wordnet`.
        parent_rule : {"specificity", "coverage", "deepest"}, default "specificity"
            How a synset with several hypernyms picks its one parent; see Notes.

        Notes
        -----
        Many synsets have several hypernyms, and so several paths to
        ``entity.n.01`` (54 of Tiny-ImageNet's 200 classes do).  Each synset
        keeps exactly one parent, chosen once per synset, parents before
        children, so that the result is always a tree.

        ``"specificity"`` (the default) keeps the hypernym whose chain to the
        root makes the lowest common ancestors of the classes below the synset
        with every other class as specific as possible: for each candidate
        chain it sums, over all classes, the WordNet depth of the deepest chain
        node that is also one of the class's ancestors (on any path), and keeps
        the largest sum.  Taxonomic chains win over role-like hypernyms
        (``dog`` stays under ``canine -> carnivore -> placental``, not under
        ``domestic animal``, because it then shares ``carnivore`` with the
        cats and lions), and ``substance`` stays under ``matter`` beside the
        other physical things rather than under ``abstraction``.
        ``"coverage"`` keeps the hypernym above the most given classes;
        ``"deepest"`` the one on the longest path to the root.  Ties go to
        coverage, then the deeper chosen chain, then the alphabetically first
        synset name.  The choice depends on the class set: the same synset may
        hang differently in the trees of two datasets.
        """
        wn = wordnet if wordnet is not None else load_wordnet()
        wnids = list(wnids)
        _check_unique(wnids, "wnids")
        synsets = {w: synset_from_wnid(w, wn, noun=True) for w in wnids}
        return cls._from_synset_leaves(synsets, collapse=collapse, parent_rule=parent_rule)

    @classmethod
    def from_synsets(
        cls, mapping: Mapping[str, Any], *, collapse: bool = False, wordnet: Any | None = None,
        parent_rule: str = "specificity",
    ) -> ClassTree:
        """Build the WordNet tree for classes named by the caller.

        Parameters
        ----------
        mapping : mapping of str to synset
            Class name to a synset, given as an nltk ``Synset``, a synset name
            (``"tench.n.01"``) or a wnid.
        collapse, wordnet, parent_rule
            As in :meth:`from_wnids`.
        """
        wn = wordnet if wordnet is not None else load_wordnet()
        names = list(mapping)
        _check_unique(names, "class names")
        synsets: dict[str, Any] = {}
        owner: dict[Any, str] = {}
        for name in names:
            value = mapping[name]
            if isinstance(value, str):
                if "." in value:
                    try:
                        syn = wn.synset(value)
                    except Exception as exc:
                        raise UnknownClassError(
                            f"class {name!r}: unknown synset {value!r}; give a name like "
                            "'tench.n.01' or a wnid like 'n01440764'"
                        ) from exc
                else:
                    syn = synset_from_wnid(value, wn)
            else:
                syn = value
            if syn.pos() != "n":
                raise HierarchyError(f"class {name!r}: {syn.name()} is not a noun synset")
            if syn in owner:
                raise HierarchyError(
                    f"classes {owner[syn]!r} and {name!r} both map to {syn.name()}; "
                    "each class needs its own synset"
                )
            owner[syn] = name
            synsets[name] = syn
        return cls._from_synset_leaves(synsets, collapse=collapse, parent_rule=parent_rule)

    @classmethod
    def _from_synset_leaves(
        cls, leaves: Mapping[str, Any], *, collapse: bool, parent_rule: str = "specificity"
    ) -> ClassTree:
        if parent_rule not in PARENT_RULES:
            raise HierarchyError(
                f"unknown parent_rule {parent_rule!r}; available: {', '.join(PARENT_RULES)}"
            )
        depth: dict[Any, int] = {}
        parent: dict[Any, Any] = {}
        cover: dict[Any, int] = {}
        for syn in leaves.values():
            for up in syn.closure(lambda x: x.hypernyms() + x.instance_hypernyms()):
                cover[up] = cover.get(up, 0) + 1
        if parent_rule == "specificity":
            ancestry = _Ancestry(list(leaves.values()))

        def chain(s: Any) -> list[Any]:
            out = [s]
            while parent[out[-1]] is not None:
                out.append(parent[out[-1]])
            return out

        def key(u: Any) -> tuple[Any, ...]:
            tail = (-cover.get(u, 0), -depth[u], u.name())
            if parent_rule == "coverage":
                return tail
            if parent_rule == "deepest":
                return (-u.max_depth(), *tail)
            return (-ancestry.specificity(chain(u)), *tail)

        def chosen_depth(s: Any) -> int:
            # Iterative to stay clear of the recursion limit on deep chains.
            stack = [s]
            while stack:
                top = stack[-1]
                if top in depth:
                    stack.pop()
                    continue
                ups = top.hypernyms() + top.instance_hypernyms()
                todo = [u for u in ups if u not in depth]
                if todo:
                    stack.extend(todo)
                    continue
                if not ups:
                    depth[top] = 0
                    parent[top] = None
                else:
                    best = min(ups, key=key)
                    parent[top] = best
                    depth[top] = depth[best] + 1
                stack.pop()
            return depth[s]

        graph = nx.DiGraph()
        leaf_of_synset = {syn: name for name, syn in leaves.items()}
        for name, syn in leaves.items():
            chosen_depth(syn)
            node, node_syn = name, syn
            graph.add_node(node, name=syn.name(), label=_label(syn))
            while parent[node_syn] is not None:
                up = parent[node_syn]
                up_id = leaf_of_synset.get(up, wnid_of(up))
                new = up_id not in graph
                graph.add_node(up_id, name=up.name(), label=_label(up))
                graph.add_edge(up_id, node)
                if not new:
                    break
                node, node_syn = up_id, up
        roots = [n for n in graph if graph.in_degree(n) == 0]
        if len(roots) != 1:
            raise HierarchyError(
                f"the classes reach {len(roots)} WordNet roots ({', '.join(sorted(roots))}); "
                "use noun synsets, which all descend from entity.n.01"
            )
        tree = cls(graph, list(leaves), source="wordnet")
        return tree.collapse() if collapse else tree

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

    def collapse(self) -> ClassTree:
        """Return a copy without inner nodes that have exactly one child.

        The root, the classes and the nodes of the superclass cut are always
        kept, so the cut stays valid and :meth:`with_class` places a new class
        in the superclass it would get on the uncollapsed tree.
        """
        g = self.graph.copy()
        keep = set(self.classes) | {self.root}
        if self.superclasses is not None:
            keep |= {s for s in self.superclasses.names if s in g}
        for node in list(nx.topological_sort(self.graph)):
            if node in keep or g.out_degree(node) != 1:
                continue
            (child,) = g.successors(node)
            (par,) = g.predecessors(node)
            g.remove_node(node)
            g.add_edge(par, child)
        return ClassTree(
            g, self.classes, source=self.source, collapsed=True, superclasses=self.superclasses,
            uncollapsed=self.uncollapsed if self.collapsed else self.graph.copy(),
        )

    def with_class(
        self, cls: str, *, superclass: str | None = None, wordnet: Any | None = None
    ) -> ClassTree:
        """Return a copy with one more class, placed in a superclass.

        A new wnid is grafted onto the tree below the deepest tree node on any
        of its WordNet hypernym paths (ties: the alphabetically first path).
        Without ``superclass`` it joins the superclass whose node is its
        deepest ancestor; an existing class may be moved with ``superclass``.

        Raises
        ------
        HierarchyError
            If the class cannot be placed automatically (a cut whose
            superclasses are not tree nodes): pass ``superclass``.
        """
        from ._superclasses import SuperclassMap

        if self.collapsed and self.uncollapsed is not None:
            # Graft on the tree as it was before collapsing, then collapse again: the class
            # lands where it would on the uncollapsed tree, and no single-child chain stays.
            full = ClassTree(self.uncollapsed, self.classes, source=self.source,
                             superclasses=self.superclasses)
            return full.with_class(cls, superclass=superclass, wordnet=wordnet).collapse()
        g = self.graph.copy()
        classes = list(self.classes)
        if cls not in g:
            if self.source == "wordnet":
                wn = wordnet if wordnet is not None else load_wordnet()
                syn = synset_from_wnid(cls, wn, noun=True)
                candidates = []  # (depth of the attach point, names along the path, chain below it)
                for path in syn.hypernym_paths():
                    ids = [wnid_of(p) for p in path]
                    at = max((i for i, w in enumerate(ids) if w in g), default=-1)
                    if at >= 0 and ids[at] not in self.class_index:  # never hang a class below another class
                        candidates.append((-at, [p.name() for p in path], path[at:]))
                if not candidates:
                    raise HierarchyError(f"cannot graft {cls} onto this tree: no shared ancestor")
                chain = min(candidates, key=lambda c: (c[0], c[1]))[2]
                for up, down in zip(chain, chain[1:]):
                    g.add_node(wnid_of(down), name=down.name(), label=_label(down))
                    g.add_edge(wnid_of(up), wnid_of(down))
            else:
                if superclass is None:
                    raise HierarchyError(f"new class {cls!r} is not a WordNet id, so it cannot be placed through "
                                         "WordNet; name its superclass (--superclass on the command line, "
                                         "superclass= in Python)")
                g.add_node(cls, name=cls, label=cls)
                g.add_edge(superclass if superclass in g else self.root, cls)
            classes.append(cls)
        elif cls not in self.class_index:
            raise HierarchyError(f"{cls!r} is an inner node of the tree; classes must be leaves")
        smap = self.superclasses
        if smap is None:
            grown = ClassTree(g, classes, source=self.source)
            return grown.collapse() if self.collapsed else grown
        if superclass is None:
            path = ClassTree(g, classes, source=self.source).path_to_root(cls)
            superclass = next((n for n in path if n in smap.names), None)
            if superclass is None:
                raise HierarchyError(
                    f"cannot place {cls!r} automatically: none of its ancestors is a superclass "
                    f"of the cut {smap.method!r}; pass superclass= (one of {', '.join(smap.names)})"
                )
        elif superclass not in smap.names:
            raise UnknownClassError(
                f"unknown superclass {superclass!r}; known: {', '.join(smap.names)}"
            )
        assignment = dict(smap.assignment)
        assignment[cls] = superclass
        grown = ClassTree(
            g, classes, source=self.source, collapsed=False,
            superclasses=SuperclassMap(assignment, smap.names, smap.method, smap.overlap),
        )
        return grown.collapse() if self.collapsed else grown  # no single-child chain comes back

    def with_superclasses(self, superclasses: SuperclassMap | None) -> ClassTree:
        """Return a copy of this tree that carries a superclass cut."""
        return ClassTree(
            self.graph,
            self.classes,
            source=self.source,
            collapsed=self.collapsed,
            superclasses=superclasses,
            uncollapsed=self.uncollapsed,
        )

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


#: How a synset with several hypernyms picks its one parent (see ``ClassTree.from_wnids``).
PARENT_RULES = ("specificity", "coverage", "deepest")


class _Ancestry:
    """Every WordNet ancestor of each class, to score a candidate parent chain.

    ``specificity(chain)`` sums, over all classes, the WordNet depth
    (``max_depth``) of the deepest node of ``chain`` that is also an
    ancestor of that class (on any of its paths): how specific the lowest
    common ancestors of the classes below a synset would be with the other
    classes if it hung from that chain.
    """

    def __init__(self, leaves: Sequence[Any]) -> None:
        ups = [set(s.closure(lambda x: x.hypernyms() + x.instance_hypernyms())) | {s} for s in leaves]
        nodes = sorted(set().union(*ups), key=lambda x: x.name())
        self.index = {n: i for i, n in enumerate(nodes)}
        self.depth = {n: n.max_depth() for n in nodes}
        self.member = np.zeros((len(leaves), len(nodes)), dtype=bool)
        for i, anc in enumerate(ups):
            self.member[i, [self.index[n] for n in anc]] = True

    def specificity(self, chain: Sequence[Any]) -> int:
        cols = [self.index[n] for n in chain if n in self.index]
        if not cols:
            return 0
        depths = np.array([self.depth[n] for n in chain if n in self.index])
        hit = self.member[:, cols]  # (classes, chain nodes), chain ordered deepest first
        best = np.where(hit, depths[None, :], -1).max(axis=1)
        return int(np.maximum(best, 0).sum())


def _label(synset: Any) -> str:
    return str(synset.lemma_names()[0]).replace("_", " ")


def _find_cycle(graph: nx.DiGraph) -> list[str]:
    try:
        edges = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return []
    return [u for u, _ in edges] + [edges[0][0]]
