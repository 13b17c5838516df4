"""The confusion-driven cut: spectral clustering of a classifier's confusion, with optional overlap."""

import json

import numpy as np
import pytest

from hierarchy import HierarchyError, SuperclassMap, cut_confusion, load_tree, make_cut, save_tree, shipped_tree


@pytest.fixture(scope="module")
def tree():
    return shipped_tree("tiny-imagenet-200")


def planted(tree, n_groups=10, seed=0, leak=0.0):
    """A confusion matrix whose classes are confused only within planted groups of 20."""
    rng = np.random.default_rng(seed)
    n = len(tree.classes)
    perm = rng.permutation(n)
    group = np.empty(n, dtype=int)
    group[perm] = np.arange(n) % n_groups
    conf = np.zeros((n, n))
    for i in range(n):
        mates = np.flatnonzero(group == group[i])
        conf[i, i] = 10
        conf[i, mates] += rng.integers(0, 3, size=len(mates))
    if leak:
        conf[0, np.flatnonzero(group != group[0])[0]] += leak
    return conf, group


def test_recovers_planted_groups(tree):
    conf, group = planted(tree)
    cut = cut_confusion(tree, conf, 10)
    assert len(cut) == 10 and cut.method == "confusion:10"
    sup = np.array(cut.index(list(tree.classes)))
    # every planted group lands in exactly one superclass, and vice versa
    for g in range(10):
        assert len(set(sup[group == g])) == 1
    assert sorted(cut.sizes().values()) == [20] * 10
    assert not cut.overlap


def test_sizes_are_capped(tree):
    conf, group = planted(tree, n_groups=4)  # four groups of 50 into 10 superclasses
    cut = cut_confusion(tree, conf, 10, max_ratio=1.5)
    assert max(cut.sizes().values()) <= 30
    assert sum(cut.sizes().values()) == 200


def test_overlap_adds_confused_classes(tree):
    conf, group = planted(tree, leak=40.0)  # class 0 sends 40 of its ~70 predictions elsewhere
    cls0 = tree.classes[0]
    other = tree.classes[int(np.flatnonzero(group != group[0])[0])]
    cut = cut_confusion(tree, conf, 10, overlap=0.3)
    home = cut.of(cls0)
    target = cut.of(other)
    assert cls0 in cut.overlap[target]
    assert cls0 in cut.extended(target) and cls0 not in cut.members(target)
    assert cut.extended(home) == cut.members(home) + list(cut.overlap.get(home, ()))
    assert sum(len(v) for v in cut.overlap.values()) == 1  # nothing else crosses 30%
    assert cut.method == "confusion:10:0.3"


def test_overlap_survives_the_tree_file(tree, tmp_path):
    conf, _ = planted(tree, leak=40.0)
    cut = cut_confusion(tree, conf, 10, overlap=0.3)
    path = save_tree(tree.with_superclasses(cut), tmp_path / "tree.json")
    back = load_tree(path).superclasses
    assert back.overlap == cut.overlap and back.assignment == cut.assignment
    data = json.loads(path.read_text())
    data["superclasses"]["overlap"] = {next(iter(cut.names)): "n01443537"}
    path.write_text(json.dumps(data))
    with pytest.raises(HierarchyError, match="list"):
        load_tree(path)


def test_make_cut_spec_reads_npy_and_csv(tree, tmp_path):
    conf, _ = planted(tree, leak=40.0)
    np.save(tmp_path / "c.npy", conf)
    np.savetxt(tmp_path / "c.csv", conf, delimiter=",")
    a = make_cut(tree, f"confusion:10:{tmp_path / 'c.npy'}")
    b = make_cut(tree, f"confusion:10:{tmp_path / 'c.csv'}:0.3")
    assert a.assignment == b.assignment
    assert not a.overlap and b.overlap


@pytest.mark.parametrize("bad, message", [
    (lambda c: c[:5], "shape"),
    (lambda c: np.where(np.eye(len(c)) > 0, np.nan, c), "finite"),
    (lambda c: -c, "non-negative"),
    (lambda c: np.vstack([np.zeros((1, len(c))), c[1:]]), "row 0 is all zero"),
])
def test_bad_matrices_are_refused(tree, bad, message):
    conf, _ = planted(tree)
    with pytest.raises(HierarchyError, match=message):
        cut_confusion(tree, bad(conf), 10)


def test_bad_spec_and_options(tree, tmp_path):
    conf, _ = planted(tree)
    with pytest.raises(HierarchyError, match="does not exist"):
        make_cut(tree, f"confusion:10:{tmp_path / 'missing.npy'}")
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    with pytest.raises(HierarchyError, match="cannot read"):
        make_cut(tree, f"confusion:10:{tmp_path / 'bad.npy'}")
    with pytest.raises(HierarchyError, match="overlap"):
        cut_confusion(tree, conf, 10, overlap=1.5)
    with pytest.raises(HierarchyError, match="between 2"):
        cut_confusion(tree, conf, 1)


def test_overlap_validation():
    with pytest.raises(HierarchyError, match="already its member"):
        SuperclassMap({"a": "s", "b": "t"}, {"s": "S", "t": "T"}, overlap={"s": ["a"]})
    with pytest.raises(HierarchyError, match="not a class"):
        SuperclassMap({"a": "s", "b": "t"}, {"s": "S", "t": "T"}, overlap={"s": ["zzz"]})
    ok = SuperclassMap({"a": "s", "b": "t"}, {"s": "S", "t": "T"}, overlap={"s": ["b"]})
    assert ok.extended("s") == ["a", "b"] and ok.members("s") == ["a"]
    assert SuperclassMap.from_dict(ok.to_dict()) == ok
