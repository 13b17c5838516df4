"""Building a class tree from WordNet: each class's hypernym chain, one parent per synset.

:class:`WordNetBuilders` is mixed into :class:`hierarchy.ClassTree`; its
class methods are ``ClassTree.from_wnids`` and ``ClassTree.from_synsets``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from ._errors import HierarchyError, UnknownClassError
from ._wordnet import load_wordnet, synset_from_wnid, wnid_of

if TYPE_CHECKING:
    from ._tree import ClassTree

__all__ = ["PARENT_RULES", "Ancestry", "WordNetBuilders", "check_unique", "synset_label"]


def check_unique(items: Sequence[str], what: str) -> None:
    """Refuse an empty list, a non-string or empty id, or an id listed twice."""
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


class WordNetBuilders:
    """The WordNet builders of :class:`hierarchy.ClassTree`."""

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
        check_unique(wnids, "wnids")
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
        check_unique(names, "class names")
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
            ancestry = Ancestry(list(leaves.values()))

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
            graph.add_node(node, name=syn.name(), label=synset_label(syn))
            while parent[node_syn] is not None:
                up = parent[node_syn]
                up_id = leaf_of_synset.get(up, wnid_of(up))
                new = up_id not in graph
                graph.add_node(up_id, name=up.name(), label=synset_label(up))
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


#: How a synset with several hypernyms picks its one parent (see ``ClassTree.from_wnids``).
PARENT_RULES = ("specificity", "coverage", "deepest")


class Ancestry:
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


def synset_label(synset: Any) -> str:
    return str(synset.lemma_names()[0]).replace("_", " ")
