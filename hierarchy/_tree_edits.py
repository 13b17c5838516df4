"""Edits of a class tree that return a new tree: collapsing chains, grafting a class, setting the cut.

:class:`TreeEdits` is mixed into :class:`hierarchy.ClassTree`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import networkx as nx

from ._errors import HierarchyError, UnknownClassError
from ._tree_wordnet import synset_label
from ._wordnet import load_wordnet, synset_from_wnid, wnid_of

if TYPE_CHECKING:
    from ._superclasses import SuperclassMap
    from ._tree import ClassTree

__all__ = ["TreeEdits"]


class TreeEdits:
    """The edits of :class:`hierarchy.ClassTree`; each returns a new tree."""

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
        return type(self)(
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
            full = type(self)(self.uncollapsed, self.classes, source=self.source,
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
                    g.add_node(wnid_of(down), name=down.name(), label=synset_label(down))
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
            grown = type(self)(g, classes, source=self.source)
            return grown.collapse() if self.collapsed else grown
        if superclass is None:
            path = type(self)(g, classes, source=self.source).path_to_root(cls)
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
        grown = type(self)(
            g, classes, source=self.source, collapsed=False,
            superclasses=SuperclassMap(assignment, smap.names, smap.method, smap.overlap),
        )
        return grown.collapse() if self.collapsed else grown  # no single-child chain comes back

    def with_superclasses(self, superclasses: SuperclassMap | None) -> ClassTree:
        """Return a copy of this tree that carries a superclass cut."""
        return type(self)(
            self.graph,
            self.classes,
            source=self.source,
            collapsed=self.collapsed,
            superclasses=superclasses,
            uncollapsed=self.uncollapsed,
        )
