"""How well each one-parent rule keeps WordNet's taxonomy, on the shipped class lists.

    python benchmarks/trees_bench.py            # writes benchmarks/results/trees.json

For every pair of classes, the most specific common ancestor WordNet offers
(the deepest common hypernym over all paths, depth = ``max_depth``) is
compared with the lowest common ancestor the tree keeps:

* ``mean_shortfall``: the mean depth lost, over all pairs (0 is perfect);
* ``pairs_exact``: the share of pairs whose tree LCA is as specific as WordNet allows;
* ``classes_off_deepest_path``: classes whose tree depth is below their deepest WordNet path;
* the severity pairs (LCA height in the tree): golden retriever against lion and goldfish,
  tabby against lion and goldfish;
* dogs and cats outside ``placental``;
* the balanced:10 cut: names and sizes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import write_result  # noqa: E402

PAIRS = {"golden retriever": "n02099601", "lion": "n02129165", "goldfish": "n01443537", "tabby": "n02123045"}
PLACENTAL, DOG, CAT = "n01886756", "n02084071", "n02121808"  # placental, dog, domestic cat


def best_common_depth(tree: Any, wn: Any) -> np.ndarray:
    """(n, n) WordNet depth of the deepest common hypernym of each pair, over all paths."""
    from hierarchy import synset_from_wnid

    syns = [synset_from_wnid(c, wn) for c in tree.classes]
    ups = [set(s.closure(lambda x: x.hypernyms() + x.instance_hypernyms())) | {s} for s in syns]
    nodes = sorted(set().union(*ups), key=lambda x: -x.max_depth())
    member = np.zeros((len(syns), len(nodes)), dtype=bool)
    index = {n: i for i, n in enumerate(nodes)}
    for i, anc in enumerate(ups):
        member[i, [index[n] for n in anc]] = True
    depth = np.array([n.max_depth() for n in nodes])
    best = np.full((len(syns), len(syns)), -1, dtype=np.int64)
    for j in np.argsort(-depth, kind="stable"):  # deepest first: the first hit of a pair is its best
        rows = np.flatnonzero(member[:, j])
        block = best[np.ix_(rows, rows)]
        best[np.ix_(rows, rows)] = np.where(block < 0, depth[j], block)
    return best


def evaluate(tree: Any, wn: Any, best: np.ndarray) -> dict[str, Any]:
    from hierarchy import cut_balanced
    from hierarchy import synset_from_wnid

    depth_of = {n: synset_from_wnid(n, wn).max_depth() for n in tree.graph}
    lca = tree.lca_matrix()
    kept = np.vectorize(depth_of.__getitem__)(lca)
    upper = np.triu_indices(len(tree.classes), 1)
    short = (best - kept)[upper]
    off = sum(tree.depth(c) < synset_from_wnid(c, wn).max_depth() for c in tree.classes)
    heights = {f"{a} / {b}": tree.lca_height(PAIRS[a], PAIRS[b])
               for a, b in (("golden retriever", "lion"), ("golden retriever", "goldfish"),
                            ("tabby", "lion"), ("tabby", "goldfish")) if PAIRS[a] in tree and PAIRS[b] in tree}
    pets = [c for c in tree.classes if any(n in (DOG, CAT) for n in _wordnet_ancestors(c, wn))]
    outside = [c for c in pets if PLACENTAL not in tree.path_to_root(c)]
    cut = cut_balanced(tree, 10)
    sizes = cut.sizes()
    return {
        "mean_shortfall": round(float(short.mean()), 4), "pairs_exact": round(float((short == 0).mean()), 4),
        "classes_off_deepest_path": int(off), "severity": heights,
        "dogs_and_cats": len(pets), "dogs_and_cats_outside_placental": len(outside),
        "balanced_10": [{"name": cut.names[s], "size": sizes[s]} for s in cut.superclasses],
    }


def _wordnet_ancestors(wnid: str, wn: Any) -> set[str]:
    from hierarchy import synset_from_wnid, wnid_of

    syn = synset_from_wnid(wnid, wn)
    return {wnid_of(u) for u in syn.closure(lambda x: x.hypernyms() + x.instance_hypernyms())}


def run(datasets: tuple[str, ...] = ("tiny-imagenet-200", "imagenet-1k")) -> dict[str, Any]:
    import hierarchy
    from hierarchy import PARENT_RULES, ClassTree

    wn = hierarchy.load_wordnet()
    out: dict[str, Any] = {}
    for ds in datasets:
        wnids = hierarchy.shipped_path(ds, "wnids.txt").read_text().split()
        rows = {}
        best = None
        for rule in PARENT_RULES:
            tree = ClassTree.from_wnids(wnids, wordnet=wn, parent_rule=rule)
            best = best_common_depth(tree, wn) if best is None else best
            rows[rule] = evaluate(tree, wn, best)
            print(ds, rule, {k: v for k, v in rows[rule].items() if k != "balanced_10"}, flush=True)
        out[ds] = rows
    return out


def main() -> None:
    print("wrote", write_result("trees", {"rules": run()}))


if __name__ == "__main__":
    main()
