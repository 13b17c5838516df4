"""Ways to cut a class tree into superclasses.

Every function returns a :class:`SuperclassMap` in which each class of the
tree lies in exactly one superclass.

The balanced cut is in :mod:`._balanced`.  The confusion-driven cuts, which need embeddings, are in
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
    "cut_from_mapping",
    "cut_from_synsets",
    "cut_induced",
    "unique_names",
]


def _preorder(tree: ClassTree) -> list[str]:
    return list(nx.dfs_preorder_nodes(tree.graph, tree.root))


def _from_nodes(tree: ClassTree, nodes: Sequence[str], method: str) -> SuperclassMap:
    order = {n: i for i, n in enumerate(_preorder(tree))}
    nodes = sorted(nodes, key=order.__getitem__)
    groups = {n: tree.classes_under(n) for n in nodes}
    return SuperclassMap.from_groups(groups, unique_names(tree, nodes), method)


def unique_names(tree: ClassTree, nodes: Sequence[str]) -> dict[str, str]:
    """Each node's label, with its name added where two nodes share a label."""
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
