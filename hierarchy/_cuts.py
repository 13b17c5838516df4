"""Ways to cut a class tree into superclasses.

Every function returns a :class:`SuperclassMap` in which each class of the
tree lies in exactly one superclass.

Why one module: the cut strategies share their node-selection, balancing and
naming helpers.  The confusion-driven cuts, which need embeddings, are in
:mod:`._confusion`; k-means in :mod:`._kmeans`; the text form of every cut
(``--cut balanced:10``) in :mod:`._cut_spec`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from ._errors import HierarchyError, UnknownClassError
from ._mapping import read_mapping
from ._superclasses import SuperclassMap
from ._tree import ClassTree

__all__ = [
    "cut_at_depth",
    "cut_balanced",
    "cut_from_mapping",
    "cut_from_synsets",
    "cut_induced",
]


def _preorder(tree: ClassTree) -> list[str]:
    return list(nx.dfs_preorder_nodes(tree.graph, tree.root))


def _from_nodes(tree: ClassTree, nodes: Sequence[str], method: str) -> SuperclassMap:
    order = {n: i for i, n in enumerate(_preorder(tree))}
    nodes = sorted(nodes, key=order.__getitem__)
    groups = {n: tree.classes_under(n) for n in nodes}
    return SuperclassMap.from_groups(groups, _unique_names(tree, nodes), method)


def _unique_names(tree: ClassTree, nodes: Sequence[str]) -> dict[str, str]:
    labels = [tree.label(n) for n in nodes]
    return {
        n: (lab if labels.count(lab) == 1 else f"{lab} ({tree.name(n)})")
        for n, lab in zip(nodes, labels)
    }


def cut_at_depth(tree: ClassTree, depth: int) -> SuperclassMap:
    """Superclasses are the nodes at ``depth`` edges below the root.

    A class shallower than ``depth`` is its own superclass.

    Parameters
    ----------
    tree : ClassTree
    depth : int
        At least 1.
    """
    if not isinstance(depth, (int, np.integer)) or depth < 1:
        raise HierarchyError(f"depth must be an integer >= 1, got {depth!r}")
    nodes = {tree.path_to_root(c)[::-1][min(depth, tree.depth(c))] for c in tree.classes}
    return _from_nodes(tree, list(nodes), f"depth:{depth}")


def cut_balanced(tree: ClassTree, n: int, *, max_rounds: int = 200) -> SuperclassMap:
    """Cut the tree into ``n`` superclasses whose sizes are as even as possible.

    A superclass is a tree node together with all classes below it that no
    deeper chosen node claims, the "remainder" model: choosing ``artifact``
    and ``instrumentality`` gives the superclasses ``instrumentality`` and
    ``artifact (other)``.  A pure subtree cut is the special case with
    nothing carved out.  Remainders are needed because raw WordNet hangs
    single classes high up, where no subtree cut can balance them.

    The search minimises the ratio of largest to smallest superclass, then
    the largest size: it grows the set of chosen nodes greedily from the
    root, then swaps one chosen node for another while that improves the
    ratio (best improvement first; ties go to the node first in preorder,
    so the result is deterministic).  It is a local search, so the result
    is a local optimum; with ``n=10`` the sizes are 13..27 on
    Tiny-ImageNet-200 (ratio 2.08) and 56..141 on ImageNet-1k (2.52).

    Complexity: with ``V`` tree nodes, each step scores adding every node
    at once in ``O(V + n log n)`` numpy work, from preorder intervals and
    prefix sums (adding a node moves classes only between it and its
    nearest chosen ancestor).  Growth takes ``n - 1`` steps and each swap
    round ``n`` steps, so a cut costs ``O((n + rounds * n) * V)``
    whatever the tree's shape: a 10,000-class comb, 20,000 nodes deep,
    cuts in well under a second.

    Parameters
    ----------
    tree : ClassTree
    n : int
        Number of superclasses, between 1 and the number of classes.
    max_rounds : int, default 200
        Upper bound on improving swaps.

    Raises
    ------
    HierarchyError
        If ``n`` is out of range.
    """
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= len(tree.classes):
        raise HierarchyError(
            f"n must be an integer between 1 and the number of classes "
            f"({len(tree.classes)}), got {n!r}"
        )
    n = int(n)
    euler = _Euler(tree)
    chosen = np.zeros(euler.size, dtype=bool)
    chosen[0] = True  # the root
    not_root = np.ones(euler.size, dtype=bool)
    not_root[0] = False
    for _ in range(n - 1):  # greedy growth: add the node that helps most
        i, key = euler.best_addition(chosen, not_root)
        if i < 0:
            raise HierarchyError(f"cannot cut this tree into {n} non-empty superclasses")
        chosen[i] = True
    current = euler.score(chosen)
    everywhere = np.ones(euler.size, dtype=bool)
    for _ in range(max_rounds):  # best-improvement swaps
        best_swap, best_key = None, current
        for out in np.flatnonzero(chosen):
            chosen[out] = False
            allowed = everywhere.copy()
            allowed[out] = False
            i, key = euler.best_addition(chosen, allowed)
            chosen[out] = True
            if i >= 0 and key < best_key:
                best_swap, best_key = (out, i), key
        if best_swap is None:
            break
        chosen[best_swap[0]], chosen[best_swap[1]] = False, True
        current = best_key
    picked = [euler.nodes[i] for i in np.flatnonzero(chosen)]
    return _remainder_cut(tree, picked, f"balanced:{n}", euler)


class _Euler:
    """A tree in preorder: each subtree is the interval ``[i, end[i])``, so set sums are prefix sums.

    Attributes
    ----------
    nodes : list of str, length V
        Preorder; the root is 0.
    end : ndarray of shape (V,), int64
        One past the last node of each subtree.
    parent : ndarray of shape (V,), int64
        -1 for the root.
    depth : ndarray of shape (V,), int64
    count : ndarray of shape (V,), int64
        Classes in each subtree, the node itself included.
    class_pos : ndarray of shape (C,), int64
        Each class's preorder index, in ``tree.classes`` order.
    """

    def __init__(self, tree: ClassTree) -> None:
        self.nodes = _preorder(tree)
        self.size = len(self.nodes)
        index = {v: i for i, v in enumerate(self.nodes)}
        parents = tree.parents
        self.parent = np.array([-1 if parents[v] is None else index[parents[v]] for v in self.nodes], dtype=np.int64)
        span = np.ones(self.size, dtype=np.int64)
        depth = np.zeros(self.size, dtype=np.int64)
        for i in range(self.size - 1, 0, -1):  # children follow their parent in preorder
            span[self.parent[i]] += span[i]
        for i in range(1, self.size):
            depth[i] = depth[self.parent[i]] + 1
        self.end = np.arange(self.size) + span
        self.depth = depth
        self.class_pos = np.array([index[c] for c in tree.classes], dtype=np.int64)
        is_class = np.zeros(self.size, dtype=np.int64)
        is_class[self.class_pos] = 1
        prefix = np.concatenate([[0], np.cumsum(is_class)])
        self.count = prefix[self.end] - prefix[np.arange(self.size)]

    def owner(self, chosen: np.ndarray) -> np.ndarray:
        """Each node's deepest chosen ancestor, itself included; -1 where none is chosen."""
        out = np.full(self.size, -1, dtype=np.int64)
        picked = np.flatnonzero(chosen)
        for s in picked[np.argsort(self.depth[picked], kind="stable")]:  # deeper ones overwrite
            out[s:self.end[s]] = s
        return out

    def score(self, chosen: np.ndarray) -> tuple[float, int]:
        """(largest / smallest superclass, largest); ``(inf, 0)`` if a class is unowned or a superclass empty."""
        owners = self.owner(chosen)[self.class_pos]
        if (owners < 0).any():
            return (np.inf, 0)
        sizes = np.bincount(owners, minlength=self.size)[chosen]
        if sizes.min() == 0:
            return (np.inf, 0)
        return (float(sizes.max() / sizes.min()), int(sizes.max()))

    def best_addition(self, chosen: np.ndarray, allowed: np.ndarray) -> tuple[int, tuple[float, int]]:
        """The node whose addition to ``chosen`` scores best, and that score; ``-1`` if none is valid.

        Adding ``x`` gives it the classes below it that no chosen node
        below it claims, ``count[x] - B[x]``, taken from its nearest chosen
        ancestor ``A[x]`` (or from the unowned classes).  ``B[x]`` sums
        ``count[u]`` over the chosen ``u`` below ``x`` with no chosen node
        between: a prefix sum over ``x``'s interval of ``+count[u]`` at
        each chosen ``u`` and ``-count[u]`` at its chosen ancestor.
        Ties go to the first node in preorder.
        """
        owner = self.owner(chosen)
        picked = np.flatnonzero(chosen)
        class_owner = owner[self.class_pos]
        unowned = int((class_owner < 0).sum())
        sizes = np.bincount(class_owner[class_owner >= 0], minlength=self.size)
        weight = np.zeros(self.size, dtype=np.int64)
        weight[picked] += self.count[picked]
        up = np.where(self.parent[picked] >= 0, owner[np.maximum(self.parent[picked], 0)], -1)
        np.subtract.at(weight, up[up >= 0], self.count[picked][up >= 0])
        prefix = np.concatenate([[0], np.cumsum(weight)])
        below = prefix[self.end] - prefix[np.arange(self.size)]
        gain = self.count - below  # what x would own
        above = owner  # for x not chosen, its nearest chosen ancestor
        held = sizes[picked]
        if picked.size and held.min() == 0:
            return -1, (np.inf, 0)
        order = np.argsort(held, kind="stable")
        lo1, lo2 = (held[order[0]], held[order[1]]) if picked.size > 1 else (held[order[0]], np.inf) \
            if picked.size else (np.inf, np.inf)
        hi1, hi2 = (held[order[-1]], held[order[-2]]) if picked.size > 1 else (held[order[-1]], -np.inf) \
            if picked.size else (-np.inf, -np.inf)
        lo_node = picked[order[0]] if picked.size else -2
        hi_node = picked[order[-1]] if picked.size else -2
        rest_min = np.where(above == lo_node, lo2, lo1).astype(np.float64)
        rest_max = np.where(above == hi_node, hi2, hi1).astype(np.float64)
        left = np.where(above >= 0, sizes[np.maximum(above, 0)] - gain, np.inf).astype(np.float64)
        new_min = np.minimum(np.minimum(rest_min, left), gain)
        new_max = np.maximum(np.maximum(rest_max, np.where(above >= 0, left, -np.inf)), gain)
        valid = allowed & ~chosen & (gain > 0) & (left > 0)
        valid &= np.where(above >= 0, unowned == 0, unowned - gain == 0)
        if not valid.any():
            return -1, (np.inf, 0)
        ratio = np.where(valid, new_max / np.where(valid, new_min, 1.0), np.inf)
        best = ratio.min()
        tied = np.flatnonzero(ratio == best)
        top = new_max[tied].min()
        i = int(tied[new_max[tied] == top][0])
        return i, (float(best), int(top))


def _remainder_cut(tree: ClassTree, picked: Sequence[str], method: str,
                   euler: _Euler | None = None) -> SuperclassMap:
    """Each class goes to its deepest ancestor (or itself) among ``picked``."""
    euler = euler or _Euler(tree)
    index = {v: i for i, v in enumerate(euler.nodes)}
    chosen = np.zeros(euler.size, dtype=bool)
    chosen[[index[v] for v in picked]] = True
    owners = euler.owner(chosen)[euler.class_pos]
    found: dict[str, list[str]] = {}
    for c, o in zip(tree.classes, owners.tolist()):
        found.setdefault(euler.nodes[o], []).append(c)
    # A remainder that is exactly one subtree is that subtree: it takes the subtree's node as
    # its id (the root keeping only the classes under "cool" is the superclass "cool").
    groups = {_exact_node(tree, v, members): members for v, members in found.items()}
    ids = sorted(groups, key=index.__getitem__)
    # Name each group by what its members share: the most specific common ancestor of the
    # members (not the chosen node, which may sit far above them), marked "(other)" when
    # other superclasses claim some classes below that ancestor.  A group of one class is
    # named by its node when that is not the class itself.
    named = {v: tree.lca(*groups[v]) if len(groups[v]) > 1 or v in tree.class_index else v for v in ids}
    names = _unique_names(tree, [named[v] for v in ids])
    out = {}
    for v in ids:
        label = names[named[v]]
        out[v] = f"{label} (other)" if len(groups[v]) < len(tree.classes_under(named[v])) else label
    seen: dict[str, int] = {}
    for v in ids:  # two groups can share an ancestor: tell them apart by their chosen node
        seen[out[v]] = seen.get(out[v], 0) + 1
    for v in ids:
        if seen[out[v]] > 1:
            out[v] = f"{out[v]} [{tree.label(v)}]"
    return SuperclassMap.from_groups({v: groups[v] for v in ids}, out, method)


def _exact_node(tree: ClassTree, chosen: str, members: Sequence[str]) -> str:
    """``chosen``, or, when its members are exactly the classes under one node below it, that node.

    The node is the highest such one that is not a class; ``chosen`` is kept
    when it holds nothing but ``members`` already.
    """
    group = set(members)
    if set(tree.classes_under(chosen)) == group:
        return chosen
    node = tree.lca(*members)
    if set(tree.classes_under(node)) != group:
        return chosen
    while True:
        up = tree.parent(node)
        if up is None or up == chosen or set(tree.classes_under(up)) != group:
            break
        node = up
    return chosen if node in tree.class_index else node


def cut_from_mapping(
    tree: ClassTree, mapping: Mapping[str, str] | str | os.PathLike[str]
) -> SuperclassMap:
    """Superclasses from an explicit class-to-superclass mapping.

    Parameters
    ----------
    tree : ClassTree
    mapping : mapping or path
        Class to superclass, or a JSON/CSV file read by
        :func:`hierarchy.read_mapping`.  Every class of the tree must appear.
    """
    if isinstance(mapping, (str, os.PathLike)):
        method = f"file:{Path(mapping).name}"
        mapping = read_mapping(mapping)
    else:
        method = "mapping"
    missing = [c for c in tree.classes if c not in mapping]
    if missing:
        raise HierarchyError(
            f"the mapping gives no superclass for {len(missing)} classes, e.g. {missing[:5]}; "
            "add a line for each"
        )
    assignment = {c: mapping[c] for c in tree.classes}
    names = {s: s for s in dict.fromkeys(assignment.values())}
    return SuperclassMap(assignment, names, method)


def cut_from_synsets(
    tree: ClassTree,
    synsets: Sequence[str],
    *,
    remainder: str | None = None,
    wordnet: Any | None = None,
) -> SuperclassMap:
    """Superclasses from a given list of ancestor nodes (BREEDS style).

    Each class goes to the listed node that is its ancestor; when several
    are, the deepest (most specific, by WordNet ``max_depth``) wins, and of
    equally deep ones the one on the path the tree keeps.  For WordNet trees
    every hypernym path of the class counts, not only the one the tree keeps.
    Every listed synset becomes a superclass, or the call fails: a tie that
    the tree's path does not decide, and a synset whose classes all go to
    deeper listed synsets, raise :class:`HierarchyError` naming the synsets
    and the classes they share.

    Parameters
    ----------
    tree : ClassTree
    synsets : sequence of str
        Synset names (``"dog.n.01"``) or node ids (wnids).
    remainder : str, optional
        Name of a superclass collecting classes under none of ``synsets``.
        Without it such classes are an error.
    wordnet : WordNetCorpusReader, optional
        Used for WordNet trees; defaults to :func:`hierarchy.load_wordnet`.
    """
    if len(synsets) == 0:
        raise HierarchyError("give at least one superclass synset")
    if len(set(synsets)) != len(synsets):
        dup = next(s for s in synsets if list(synsets).count(s) > 1)
        raise HierarchyError(f"superclass synset {dup!r} is listed twice")
    if tree.source == "wordnet":
        from ._wordnet import load_wordnet, synset_from_wnid, wnid_of

        wn = wordnet if wordnet is not None else load_wordnet()
        targets: dict[str, Any] = {}
        for s in synsets:
            try:
                syn = wn.synset(s) if "." in s else synset_from_wnid(s, wn)
            except UnknownClassError:
                raise
            except Exception as exc:
                raise UnknownClassError(
                    f"unknown synset {s!r}; give a name like 'dog.n.01' or a wnid"
                ) from exc
            targets[wnid_of(syn)] = syn
        depth = {w: syn.max_depth() for w, syn in targets.items()}
        names = {w: syn.lemma_names()[0].replace("_", " ") for w, syn in targets.items()}

        def ancestors(c: str) -> set[str]:
            syn = wn.synset(tree.name(c))
            ups = syn.closure(lambda x: x.hypernyms() + x.instance_hypernyms())
            return {wnid_of(u) for u in ups} | {wnid_of(syn)}
    else:
        for s in synsets:
            tree.check(s, "superclass node")
        targets = {s: s for s in synsets}
        depth = {s: tree.depth(s) for s in synsets}
        names = {s: tree.label(s) for s in synsets}

        def ancestors(c: str) -> set[str]:
            return set(tree.path_to_root(c))

    full = tree.uncollapsed  # a collapsed tree's path lost its one-child nodes; the kept path had them

    def kept_path(c: str) -> set[str]:
        if full is None:
            return set(tree.path_to_root(c))
        out, node = {c}, c
        while True:
            up = next(iter(full.predecessors(node)), None)
            if up is None:
                return out
            out.add(up)
            node = up

    assignment: dict[str, str] = {}
    orphans: list[str] = []
    ties: dict[tuple[str, ...], list[str]] = {}
    under: dict[str, list[str]] = {t: [] for t in targets}  # every class below each target
    for c in tree.classes:
        hits = [t for t in targets if t in ancestors(c)]
        for t in hits:
            under[t].append(c)
        if not hits:
            if remainder is not None:
                assignment[c] = remainder
            else:
                orphans.append(c)
            continue
        deepest = max(depth[t] for t in hits)
        tied = [t for t in hits if depth[t] == deepest]
        if len(tied) > 1:  # equally deep: the one on the path the tree keeps, if exactly one is
            on_path = [t for t in tied if t in kept_path(c)]
            tied = on_path if len(on_path) == 1 else tied
        if len(tied) > 1:
            ties.setdefault(tuple(sorted(tied)), []).append(c)
            continue
        assignment[c] = tied[0]
    if orphans:
        raise HierarchyError(
            f"{len(orphans)} classes lie under none of the given synsets, e.g. "
            f"{[f'{c} ({tree.label(c)})' for c in orphans[:5]]}; add synsets or pass a remainder"
        )
    if ties:
        group, shared = next(iter(ties.items()))
        raise HierarchyError(
            f"synsets {', '.join(names[t] + ' (' + t + ')' for t in group)} are equally deep above "
            f"{len(shared)} classes (depth {depth[group[0]]} from the root), and the path the tree keeps for "
            f"those classes runs through none of them, so nothing decides between them: "
            f"{[tree.label(c) for c in shared[:5]]}; drop one of them or add a deeper synset that decides"
        )
    empty = [t for t in targets if t not in set(assignment.values())]
    if empty:
        t = empty[0]
        if not under[t]:
            raise HierarchyError(f"synset {names[t]} ({t}) is above none of the classes; drop it")
        takers = sorted({names[assignment[c]] for c in under[t]})
        raise HierarchyError(
            f"synset {names[t]} ({t}) would get no class: all {len(under[t])} classes below it, e.g. "
            f"{[tree.label(c) for c in under[t][:5]]}, go to the deeper {', '.join(takers)}; drop it or "
            "them"
        )
    used = dict.fromkeys(assignment.values())
    out_names = {t: names.get(t, t) for t in targets if t in used}
    if remainder is not None and remainder in used:
        out_names[remainder] = remainder
    return SuperclassMap(assignment, out_names, "synsets:" + ",".join(synsets))


def cut_induced(
    tree: ClassTree, class_means: np.ndarray, n: int, *, seed: int = 0
) -> SuperclassMap:
    """Superclasses induced from data by clustering class-mean embeddings.

    The classes are grouped by k-means (faiss, the best of 10 restarts) on
    their L2-normalised mean embeddings, so that classes a backbone confuses
    end up together, as in Neural-Backed Decision Trees.  Each group is named
    by the lowest common ancestor of its members in the tree.

    Parameters
    ----------
    tree : ClassTree
    class_means : ndarray of shape (n_classes, dim)
        Row ``i`` belongs to ``tree.classes[i]``.
    n : int
        Number of superclasses.
    seed : int, default 0
    """
    x = np.asarray(class_means, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(tree.classes):
        raise HierarchyError(
            f"class_means must have shape ({len(tree.classes)}, dim), one row per class "
            f"in tree order, got {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise HierarchyError("class_means contains NaN or inf")
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= len(tree.classes):
        raise HierarchyError(f"n must be between 1 and {len(tree.classes)}, got {n!r}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0, 1, norms)
    from ._kmeans import kmeans

    labels = kmeans(x, int(n), seed)
    # Number groups by their first class, so the output is stable.
    first = {lab: i for i, lab in reversed(list(enumerate(labels)))}
    rank = {lab: r for r, lab in enumerate(sorted(first, key=first.__getitem__))}
    groups: dict[str, list[str]] = {}
    for cls, lab in zip(tree.classes, labels):
        groups.setdefault(f"induced{rank[lab]:02d}", []).append(cls)
    lcas = {g: tree.lca(*members) for g, members in groups.items()}
    raw = {g: tree.label(a) for g, a in lcas.items()}
    names: dict[str, str] = {}
    for g in groups:
        same = [h for h in groups if raw[h] == raw[g]]
        names[g] = raw[g] if len(same) == 1 else f"{raw[g]} #{same.index(g) + 1}"
    return SuperclassMap.from_groups(groups, names, f"induced:{n}")
