import json

import numpy as np
import pytest

from hierarchy import (
    ClassTree,
    HierarchyError,
    SuperclassMap,
    cut_at_depth,
    cut_balanced,
    cut_from_mapping,
    cut_from_synsets,
    cut_induced,
    make_cut,
)


def assert_partition(cut: SuperclassMap, classes) -> None:
    assert sorted(cut.assignment) == sorted(classes)
    assert sum(cut.sizes().values()) == len(classes)
    seen = [c for s in cut.superclasses for c in cut.members(s)]
    assert sorted(seen) == sorted(classes)  # each class exactly once


def test_balanced_10_on_tiny_imagenet(tiny_tree):
    cut = cut_balanced(tiny_tree, 10)
    assert len(cut) == 10
    assert_partition(cut, tiny_tree.classes)
    sizes = list(cut.sizes().values())
    assert (min(sizes), max(sizes)) == (13, 27)  # docs/hierarchy.md's figures: ratio 2.08
    assert cut.method == "balanced:10"


def test_balanced_on_imagenet(wordnet, imagenet_wnids):
    tree = ClassTree.from_wnids(imagenet_wnids, wordnet=wordnet)
    cut = cut_balanced(tree, 10)
    assert_partition(cut, tree.classes)
    sizes = list(cut.sizes().values())
    assert len(sizes) == 10 and (min(sizes), max(sizes)) == (56, 141)  # ratio 2.52


@pytest.mark.parametrize("n", [1, 2, 5, 25])
def test_balanced_any_n(tiny_tree, n):
    cut = cut_balanced(tiny_tree, n)
    assert len(cut) == n
    assert_partition(cut, tiny_tree.classes)


def test_balanced_remainder_superclass_excludes_carved_subtrees(tiny_tree):
    cut = cut_balanced(tiny_tree, 10)
    for s in cut.superclasses:
        under = set(tiny_tree.classes_under(s))
        members = cut.members(s)
        assert set(members) <= under
        # named by what the members share: their lowest common ancestor, "(other)" when other
        # superclasses claim classes below it
        shared = tiny_tree.lca(*members)
        assert cut.names[s].split(" [")[0] == tiny_tree.label(shared) + (
            " (other)" if set(tiny_tree.classes_under(shared)) != set(members) else "")


def test_a_remainder_that_is_one_subtree_takes_that_subtree_as_its_superclass():
    """A hand-written hierarchy: the balanced cut names its two parents, not the root and a class."""
    tree = ClassTree.from_parents({"red_round": "warm", "green_box": "cool", "blue_wedge": "cool",
                                   "warm": "root", "cool": "root"})
    cut = cut_balanced(tree, 2)
    assert cut.superclasses == ("warm", "cool") and cut.names == {"warm": "warm", "cool": "cool"}
    assert cut.assignment == {"red_round": "warm", "green_box": "cool", "blue_wedge": "cool"}
    deeper = ClassTree.from_parents({"a1": "A", "a2": "A", "b1": "B", "c1": "root", "A": "root", "B": "root"})
    cut = cut_balanced(deeper, 2)  # the root keeps B's class and its own: a true remainder
    assert cut.superclasses == ("root", "A") and cut.names["root"] == "root (other)"


def test_no_remainder_is_exactly_the_classes_of_one_node(tiny_tree):
    cut = cut_balanced(tiny_tree, 10)
    for s in cut.superclasses:
        if set(tiny_tree.classes_under(s)) != set(cut.members(s)):  # a remainder: no node holds exactly these
            node = tiny_tree.lca(*cut.members(s))
            assert set(tiny_tree.classes_under(node)) != set(cut.members(s))


@pytest.mark.parametrize("bad", [0, -1, 201, 2.5])
def test_balanced_bad_n(tiny_tree, bad):
    with pytest.raises(HierarchyError, match="n must be an integer between 1 and"):
        cut_balanced(tiny_tree, bad)


@pytest.mark.parametrize("depth", [1, 3, 6, 30])
def test_depth_cut(tiny_tree, depth):
    cut = cut_at_depth(tiny_tree, depth)
    assert_partition(cut, tiny_tree.classes)
    for s in cut.superclasses:
        assert tiny_tree.depth(s) == depth or s in tiny_tree.classes


def test_depth_cut_bad(tiny_tree):
    with pytest.raises(HierarchyError, match="depth must be"):
        cut_at_depth(tiny_tree, 0)


def test_synset_cut_breeds_style(tiny_tree):
    cut = cut_from_synsets(
        tiny_tree,
        ["animal.n.01", "dog.n.01", "artifact.n.01", "food.n.01"],
        remainder="other",
    )
    assert_partition(cut, tiny_tree.classes)
    labels = {tiny_tree.label(c): c for c in tiny_tree.classes}
    assert cut.names[cut.of(labels["golden retriever"])] == "dog"  # deepest listed wins
    assert cut.names[cut.of(labels["tabby"])] == "animal"
    assert cut.names[cut.of(labels["espresso"])] == "food"


def test_synset_cut_orphans_are_an_error(tiny_tree):
    with pytest.raises(HierarchyError, match="lie under none of the given synsets"):
        cut_from_synsets(tiny_tree, ["dog.n.01"])


def test_synset_cut_unknown_synset(tiny_tree):
    with pytest.raises(HierarchyError, match="unknown synset 'nosuchthing.n.01'"):
        cut_from_synsets(tiny_tree, ["nosuchthing.n.01"], remainder="other")


def test_mapping_cut(tiny_tree, tmp_path):
    mapping = {c: ("even" if i % 2 == 0 else "odd") for i, c in enumerate(tiny_tree.classes)}
    p = tmp_path / "m.json"
    p.write_text(json.dumps(mapping))
    cut = cut_from_mapping(tiny_tree, p)
    assert_partition(cut, tiny_tree.classes)
    assert cut.sizes() == {"even": 100, "odd": 100}
    del mapping[tiny_tree.classes[7]]
    with pytest.raises(HierarchyError, match="no superclass for 1 classes"):
        cut_from_mapping(tiny_tree, mapping)


def test_induced_cut_recovers_planted_groups(tiny_tree):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 64)) * 5
    truth = rng.integers(0, 4, size=200)
    means = centres[truth] + rng.normal(size=(200, 64)) * 0.3
    cut = cut_induced(tiny_tree, means, 4, seed=0)
    assert_partition(cut, tiny_tree.classes)
    found = np.array(cut.index(tiny_tree.classes))
    # Same partition up to relabelling.
    pairs_same_truth = truth[:, None] == truth[None, :]
    pairs_same_found = found[:, None] == found[None, :]
    np.testing.assert_array_equal(pairs_same_truth, pairs_same_found)
    for s in cut.superclasses:  # named by the members' lowest common ancestor
        assert cut.names[s].split(" #")[0] == tiny_tree.label(tiny_tree.lca(*cut.members(s)))


def test_induced_cut_is_deterministic(tiny_tree):
    means = np.random.default_rng(1).normal(size=(200, 16))
    a = cut_induced(tiny_tree, means, 10, seed=3)
    b = cut_induced(tiny_tree, means, 10, seed=3)
    assert a == b and len(a) == 10


def test_induced_cut_bad_input(tiny_tree):
    with pytest.raises(HierarchyError, match="shape \\(200, dim\\)"):
        cut_induced(tiny_tree, np.zeros((199, 4)), 10)
    bad = np.zeros((200, 4))
    bad[3, 1] = np.nan
    with pytest.raises(HierarchyError, match="NaN"):
        cut_induced(tiny_tree, bad, 10)


def test_make_cut_specs(tiny_tree, tmp_path):
    assert len(make_cut(tiny_tree, "balanced:5")) == 5
    assert make_cut(tiny_tree, "depth:2").method == "depth:2"
    np.save(tmp_path / "means.npy", np.random.default_rng(0).normal(size=(200, 8)))
    assert len(make_cut(tiny_tree, f"induced:3:{tmp_path / 'means.npy'}")) == 3
    with pytest.raises(HierarchyError, match="unknown cut 'bogus:3'"):
        make_cut(tiny_tree, "bogus:3")
    with pytest.raises(HierarchyError, match="bad cut spec 'balanced:x'"):
        make_cut(tiny_tree, "balanced:x")


def test_superclass_map_rejects_double_membership():
    with pytest.raises(HierarchyError, match="'a' is in superclasses 's' and 't'"):
        SuperclassMap.from_groups({"s": ["a", "b"], "t": ["a"]})


def test_tree_rejects_incomplete_cut(tiny_tree):
    partial = SuperclassMap({tiny_tree.classes[0]: "s"}, {"s": "s"})
    with pytest.raises(HierarchyError, match="199 classes have no superclass"):
        tiny_tree.with_superclasses(partial)


def test_synset_cut_ties_return_every_synset_or_fail(wordnet, imagenet_wnids, tiny_tree):
    tree = ClassTree.from_wnids(imagenet_wnids, wordnet=wordnet)
    instruments = ["keyboard_instrument.n.01", "stringed_instrument.n.01", "wind_instrument.n.01"]
    with pytest.raises(HierarchyError, match=r"keyboard instrument \(n03614532\), stringed instrument "
                                             r"\(n04338517\) are equally deep above 2 classes.*grand piano"):
        cut_from_synsets(tree, instruments, remainder="other", wordnet=wordnet)
    # Without the tie every synset asked for comes back, none silently dropped.
    cut = cut_from_synsets(tree, instruments[1:], remainder="other", wordnet=wordnet)
    assert sorted(cut.names.values()) == ["other", "stringed instrument", "wind instrument"]
    # A synset whose classes all go to a deeper one is named, with the classes.
    with pytest.raises(HierarchyError, match=r"synset carnivore \(n02075296\) would get no class: all 13 "
                                             r"classes below it.*go to the deeper bear, dog, feline, lesser panda"):
        cut_from_synsets(tiny_tree, ["carnivore.n.01", "dog.n.01", "feline.n.01", "bear.n.01",
                                     "lesser_panda.n.01"], remainder="rest", wordnet=wordnet)


def test_a_cut_spec_with_one_superclass_is_refused(tmp_path):
    tree = ClassTree.from_parents({"a": "s", "b": "s", "c": "t", "s": "u", "t": "u", "u": "top"})
    with pytest.raises(HierarchyError, match="cut 'depth:1' gives one superclass \\(u\\); routing needs at least two"):
        make_cut(tree, "depth:1")
    assert len(make_cut(tree, "depth:2")) == 2


def _balanced_by_brute_force(tree, n):
    """The balanced cut's local search, scoring every candidate set from scratch (the reference)."""
    import networkx as nx

    nodes = list(nx.dfs_preorder_nodes(tree.graph, tree.root))

    def score(chosen):
        owner = [next((v for v in tree.path_to_root(c) if v in chosen), None) for c in tree.classes]
        if None in owner:
            return (np.inf, 0)
        sizes = [owner.count(v) for v in nodes if v in chosen]
        return (np.inf, 0) if min(sizes) == 0 else (max(sizes) / min(sizes), max(sizes))

    def best(chosen, candidates):
        found, key = None, (np.inf, 0)
        for v in candidates:
            k = score(chosen | {v})
            if k < key:
                found, key = v, k
        return found, key

    chosen = {tree.root}
    for _ in range(n - 1):
        v, _ = best(chosen, [v for v in nodes if v != tree.root and v not in chosen])
        chosen.add(v)
    current = score(chosen)
    for _ in range(200):
        swap, key = None, current
        for out in [v for v in nodes if v in chosen]:
            v, k = best(chosen - {out}, [v for v in nodes if v not in chosen])
            if v is not None and k < key:
                swap, key = (out, v), k
        if swap is None:
            break
        chosen = (chosen - {swap[0]}) | {swap[1]}
        current = key
    return {c: next(v for v in tree.path_to_root(c) if v in chosen) for c in tree.classes}


def test_balanced_cut_equals_the_brute_force_search_on_random_trees():
    """Same sizes, ties broken the same way: the fast scoring changes the cost, not the cut."""
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(25):
        inner = [f"k{j}" for j in range(int(rng.integers(1, 12)))]
        parents = {k: inner[int(rng.integers(0, j))] for j, k in enumerate(inner) if j}
        for i in range(int(rng.integers(3, 25))):
            parents[f"c{i}"] = inner[int(rng.integers(0, len(inner)))]
        tree = ClassTree.from_parents(parents)
        for n in range(2, min(len(tree.classes), 6) + 1):
            cut = cut_balanced(tree, n)
            expected = _balanced_by_brute_force(tree, n)
            groups = {}
            for c, owner in expected.items():
                groups.setdefault(owner, set()).add(c)
            assert sorted(map(sorted, groups.values())) == sorted(sorted(cut.members(s)) for s in cut.superclasses)
            checked += 1
    assert checked > 50

