import json

import pytest

from hierarchy import (
    ClassTree,
    TreeFormatError,
    cut_balanced,
    load_tree,
    save_tree,
    shipped_path,
    shipped_tree,
)


def test_round_trip(tiny_tree, tmp_path):
    tree = tiny_tree.with_superclasses(cut_balanced(tiny_tree, 10))
    path = save_tree(tree, tmp_path / "t.json")
    back = load_tree(path)
    assert back == tree
    assert back.classes == tree.classes
    assert back.superclasses == tree.superclasses
    assert back.lca_height(tree.classes[0], tree.classes[5]) == tree.lca_height(
        tree.classes[0], tree.classes[5]
    )
    assert not list(tmp_path.glob(".t.json.*"))  # no temp files left


@pytest.mark.parametrize("dataset, wnids", [("tiny-imagenet-200", "tiny_wnids"), ("imagenet-1k", "imagenet_wnids")])
def test_shipped_files_equal_builder_output(dataset, wnids, wordnet, request):
    ids = request.getfixturevalue(wnids)
    assert shipped_path(dataset, "wnids.txt").read_text().split() == ids
    built = ClassTree.from_wnids(ids, wordnet=wordnet)
    built = built.with_superclasses(cut_balanced(built, 10))
    assert shipped_tree(dataset) == built


def test_truncated_file(tiny_tree, tmp_path):
    path = save_tree(tiny_tree, tmp_path / "t.json")
    path.write_text(path.read_text()[:500])
    with pytest.raises(TreeFormatError, match="truncated"):
        load_tree(path)


def test_wrong_version_and_format(tiny_tree, tmp_path):
    path = save_tree(tiny_tree, tmp_path / "t.json")
    data = json.loads(path.read_text())
    data["version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(TreeFormatError, match="version 99"):
        load_tree(path)
    path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(TreeFormatError, match="not a supersub tree"):
        load_tree(path)


def test_cyclic_file(tmp_path):
    data = {
        "format": "supersub-tree", "version": 1, "source": "mapping", "root": "r",
        "classes": ["a"],
        "nodes": {"r": {"name": "r", "label": "r", "parent": "a"},
                  "a": {"name": "a", "label": "a", "parent": "r"}},
    }
    p = tmp_path / "cyc.json"
    p.write_text(json.dumps(data))
    with pytest.raises(TreeFormatError, match="not a rooted tree: cycle"):
        load_tree(p)


def test_missing_file(tmp_path):
    with pytest.raises(TreeFormatError, match="does not exist; build one"):
        load_tree(tmp_path / "none.json")
