import networkx as nx
import numpy as np
import pytest

from hierarchy import ClassTree, HierarchyError, UnknownClassError

TENCH_PATH = [
    "tench.n.01", "cyprinid.n.01", "cypriniform_fish.n.01", "soft-finned_fish.n.01",
    "teleost_fish.n.01", "bony_fish.n.01", "fish.n.01", "aquatic_vertebrate.n.01",
    "vertebrate.n.01", "chordate.n.01", "animal.n.01", "organism.n.01", "living_thing.n.01",
    "whole.n.02", "object.n.01", "physical_entity.n.01", "entity.n.01",
]


def test_tench_path_to_root(wordnet, imagenet_wnids):
    tree = ClassTree.from_wnids(imagenet_wnids, wordnet=wordnet)
    path = tree.path_to_root("n01440764")
    assert [tree.name(n) for n in path] == TENCH_PATH
    assert path[-1] == tree.root == "n00001740"
    assert tree.depth("n01440764") == len(TENCH_PATH) - 1


def test_imagenet_1k_builds(wordnet, imagenet_wnids):
    tree = ClassTree.from_wnids(imagenet_wnids, wordnet=wordnet)
    assert len(tree.classes) == 1000
    assert nx.is_arborescence(tree.graph)
    assert {n for n in tree.graph if tree.graph.out_degree(n) == 0} == set(imagenet_wnids)


def test_tiny_tree_is_a_tree_with_classes_as_leaves(tiny_tree, tiny_wnids):
    assert tiny_tree.classes == tuple(tiny_wnids)
    assert nx.is_arborescence(tiny_tree.graph)
    for c in tiny_wnids:
        assert tiny_tree.height(c) == 0
        assert tiny_tree.children(c) == []


def test_parent_choice_is_deterministic_and_keeps_food_together(wordnet, tiny_wnids):
    a = ClassTree.from_wnids(tiny_wnids, wordnet=wordnet)
    b = ClassTree.from_wnids(list(reversed(tiny_wnids)), wordnet=wordnet)
    assert set(a.graph.edges) == set(b.graph.edges)
    espresso = "n07920052"  # has a path through abstraction.n.06 and one through matter
    names = [a.name(n) for n in a.path_to_root(espresso)]
    assert "matter.n.03" in names and "abstraction.n.06" not in names


def test_multiple_hypernym_classes_get_one_parent(wordnet, tiny_wnids, tiny_tree):
    multi = [w for w in tiny_wnids if len(wordnet.synset(tiny_tree.name(w)).hypernym_paths()) > 1]
    assert len(multi) == 54
    for w in multi:
        assert tiny_tree.graph.in_degree(w) == 1


def test_lca_height_symmetric_zero_diagonal(tiny_tree):
    m = tiny_tree.lca_height_matrix()
    assert m.shape == (200, 200)
    np.testing.assert_array_equal(m, m.T)
    assert np.all(np.diag(m) == 0)
    assert np.all(m[~np.eye(200, dtype=bool)] > 0)
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, 200, size=(50, 2)):
        a, b = tiny_tree.classes[i], tiny_tree.classes[j]
        assert m[i, j] == tiny_tree.lca_height(a, b) == tiny_tree.lca_height(b, a)


def test_lca_examples(tiny_tree):
    labels = {tiny_tree.label(c): c for c in tiny_tree.classes}
    cat_lca = tiny_tree.lca(labels["tabby"], labels["Persian cat"])
    assert tiny_tree.name(cat_lca) == "domestic_cat.n.01"
    assert tiny_tree.lca(labels["tabby"], labels["school bus"]) in tiny_tree.path_to_root(cat_lca)
    assert tiny_tree.lca_height(labels["tabby"], labels["Persian cat"]) < tiny_tree.lca_height(
        labels["tabby"], labels["school bus"]
    )


def test_collapse_removes_single_child_chains(tiny_tree):
    c = tiny_tree.collapse()
    assert c.collapsed and c.classes == tiny_tree.classes
    inner = [n for n in c.graph if n != c.root and c.graph.out_degree(n) > 0]
    assert all(c.graph.out_degree(n) >= 2 for n in inner)
    assert c.graph.number_of_nodes() < tiny_tree.graph.number_of_nodes()
    # Collapsing keeps every LCA's leaf set, so the tree's topology over classes stays.
    for a, b in [(0, 1), (3, 150), (20, 21)]:
        x, y = tiny_tree.classes[a], tiny_tree.classes[b]
        assert set(c.classes_under(c.lca(x, y))) == set(tiny_tree.classes_under(tiny_tree.lca(x, y)))


def test_unknown_wnid_is_named(wordnet):
    with pytest.raises(UnknownClassError, match="n09999999"):
        ClassTree.from_wnids(["n01440764", "n09999999"], wordnet=wordnet)


def test_duplicate_class_is_named(wordnet):
    with pytest.raises(HierarchyError, match="duplicate class 'n01440764'"):
        ClassTree.from_wnids(["n01440764", "n01443537", "n01440764"], wordnet=wordnet)


def test_empty_list(wordnet):
    with pytest.raises(HierarchyError, match="empty"):
        ClassTree.from_wnids([], wordnet=wordnet)


def test_class_that_is_ancestor_of_another(wordnet):
    dog, poodle = "n02084071", "n02113799"
    with pytest.raises(HierarchyError, match="classes must be leaves"):
        ClassTree.from_wnids([dog, poodle], wordnet=wordnet)


def test_from_synsets_names_classes(wordnet):
    tree = ClassTree.from_synsets(
        {"fish": "tench.n.01", "bird": "n01530575", "car": wordnet.synset("sports_car.n.01")},
        wordnet=wordnet,
    )
    assert tree.classes == ("fish", "bird", "car")
    assert tree.name("bird") == "brambling.n.01"
    assert tree.lca_height("fish", "bird") < tree.lca_height("fish", "car")
    with pytest.raises(HierarchyError, match="both map to tench.n.01"):
        ClassTree.from_synsets({"a": "tench.n.01", "b": "n01440764"}, wordnet=wordnet)
    with pytest.raises(UnknownClassError, match="unknown synset 'nosuch.n.01'"):
        ClassTree.from_synsets({"a": "nosuch.n.01"}, wordnet=wordnet)


def test_from_parents_and_unknown_node():
    tree = ClassTree.from_parents({"cat": "animal", "dog": "animal", "car": "vehicle"})
    assert tree.classes == ("cat", "dog", "car")
    assert tree.root == "root" and tree.source == "mapping"
    assert tree.lca("cat", "dog") == "animal"
    assert tree.lca_height("cat", "car") == 2
    with pytest.raises(UnknownClassError, match="unknown node 'cta'.*close matches: cat"):
        tree.path_to_root("cta")


def test_with_class_grafts_a_new_wnid(wordnet):
    from hierarchy import shipped_tree

    tree = shipped_tree("tiny-imagenet-200")
    tench = "n01440764"
    grown = tree.with_class(tench, wordnet=wordnet)
    assert tench in grown.classes and len(grown.classes) == 201
    assert grown.superclasses.names[grown.superclass_of(tench)] == "vertebrate (other)"
    assert grown.name(grown.parent(tench)) == "cyprinid.n.01"
    goldfish = "n01443537"  # shares the cyprinid branch with tench
    assert grown.lca_height(tench, goldfish) == 1
    assert tree.classes == grown.classes[:200]  # the original is untouched
    moved = grown.with_class(tench, superclass="n02075296")  # carnivore
    assert moved.superclass_of(tench) == "n02075296"
    with pytest.raises(UnknownClassError, match="unknown superclass 'nope'"):
        grown.with_class(tench, superclass="nope")
    with pytest.raises(HierarchyError, match="inner node"):
        grown.with_class(grown.parent(tench))


# ------------------------------------------------------------- the one-parent rule
SEVERITY = {"golden retriever": "n02099601", "lion": "n02129165", "goldfish": "n01443537", "tabby": "n02123045"}


@pytest.mark.parametrize("dataset", ["tiny-imagenet-200", "imagenet-1k"])
def test_mistake_severity_follows_taxonomy(dataset):
    from hierarchy import shipped_tree

    t, s = shipped_tree(dataset), SEVERITY
    assert t.lca_height(s["golden retriever"], s["lion"]) < t.lca_height(s["golden retriever"], s["goldfish"])
    assert t.lca_height(s["tabby"], s["lion"]) < t.lca_height(s["tabby"], s["goldfish"])


@pytest.mark.parametrize("dataset", ["tiny-imagenet-200", "imagenet-1k"])
def test_no_dog_or_cat_outside_placental(dataset, wordnet):
    from hierarchy import shipped_tree, synset_from_wnid, wnid_of

    t = shipped_tree(dataset)
    dog, cat, placental = "n02084071", "n02121808", "n01886756"
    pets = [c for c in t.classes if {dog, cat} & {wnid_of(u) for u in synset_from_wnid(c, wordnet).closure(
        lambda x: x.hypernyms() + x.instance_hypernyms())}]  # found through WordNet, not the tree
    assert len(pets) == (9 if dataset == "tiny-imagenet-200" else 123)
    assert all(placental in t.path_to_root(c) for c in pets)


@pytest.mark.parametrize("dataset", ["tiny-imagenet-200", "imagenet-1k"])
def test_every_shipped_edge_is_a_wordnet_is_a_edge(dataset, wordnet):
    """Checked against WordNet itself rather than the builder that wrote the file."""
    from hierarchy import shipped_tree, synset_from_wnid

    t = shipped_tree(dataset)
    for parent, child in t.graph.edges:
        up = synset_from_wnid(parent, wordnet)
        below = synset_from_wnid(child, wordnet)
        assert up in below.hypernyms() + below.instance_hypernyms(), (parent, child)


def test_parent_rules_differ_where_roles_compete(wordnet, tiny_wnids):
    by_rule = {rule: ClassTree.from_wnids(tiny_wnids, wordnet=wordnet, parent_rule=rule)
               for rule in ("specificity", "coverage", "deepest")}
    dog = "n02099601"  # golden retriever
    assert "n02083346" in by_rule["specificity"].path_to_root(dog)  # canine
    assert "n01317541" in by_rule["coverage"].path_to_root(dog)  # domestic animal
    espresso = "n07920052"
    assert "n00020827" in by_rule["specificity"].path_to_root(espresso)  # matter, not abstraction
    with pytest.raises(HierarchyError, match="unknown parent_rule 'taxonomy'; available: specificity"):
        ClassTree.from_wnids(tiny_wnids, wordnet=wordnet, parent_rule="taxonomy")


# ------------------------------------------------------------------- collapse
def test_collapse_keeps_a_valid_cut(wordnet):
    from hierarchy import shipped_tree

    full = shipped_tree("tiny-imagenet-200")
    small = full.collapse()
    assert small.collapsed and len(small.graph) < len(full.graph)
    for s, name in small.superclasses.names.items():
        assert s in small.graph and small.label(s)  # every superclass is still a node
        assert small.superclasses.members(s) == full.superclasses.members(s)
    assert not [n for n in small.graph if small.graph.out_degree(n) == 1 and n != small.root
                and n not in small.superclasses.names]


def test_with_class_after_collapse_places_as_before(wordnet, tiny_wnids, imagenet_wnids, tmp_path):
    from hierarchy import load_tree, save_tree, shipped_tree

    full = shipped_tree("tiny-imagenet-200")
    small = load_tree(save_tree(full.collapse(), tmp_path / "small.json"))  # survives a round trip
    new = [w for w in imagenet_wnids if w not in set(tiny_wnids)][::8]  # 100 classes Tiny lacks
    for w in new:
        a, b = full.with_class(w, wordnet=wordnet), small.with_class(w, wordnet=wordnet)
        assert a.superclass_of(w) == b.superclass_of(w), w
        assert b.collapsed and not [n for n in b.graph if b.graph.out_degree(n) == 1 and n != b.root
                                    and n not in b.superclasses.names]
    tench = small.with_class("n01440764", wordnet=wordnet)
    assert tench.superclasses.names[tench.superclass_of("n01440764")] == "vertebrate (other)"


def test_a_tree_pickles_after_its_caches_are_filled(tiny_tree):
    import pickle

    leaf = tiny_tree.classes[0]
    path = tiny_tree.path_to_root(leaf)  # fills the cached parents and depths
    back = pickle.loads(pickle.dumps(tiny_tree))
    assert back.path_to_root(leaf) == path and back.parents[leaf] == tiny_tree.parents[leaf]
    with pytest.raises(TypeError):
        tiny_tree.parents[leaf] = "elsewhere"  # read-only
