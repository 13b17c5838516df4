import numpy as np
import pytest

from hierarchy import ClassTree, UnknownClassError, cut_at_depth
from memory import InputError
from router import (
    Predictions,
    compare,
    confused_pairs,
    level_metrics,
    load_predictions,
    per_class_accuracy,
    superclass_confusion,
)


@pytest.fixture(scope="module")
def small_tree():
    """root -> animal -> {cat -> {tabby, persian}, dog -> {beagle}}; root -> vehicle -> {car, bus}."""
    parents = {"tabby": "cat", "persian": "cat", "beagle": "dog", "cat": "animal", "dog": "animal",
               "car": "vehicle", "bus": "vehicle"}
    tree = ClassTree.from_parents(parents)
    return tree.with_superclasses(cut_at_depth(tree, 1))


def test_level_metrics_by_hand(small_tree):
    p = Predictions(
        true=np.array(["tabby", "tabby", "persian", "beagle", "car", "bus"], dtype=object),
        pred=np.array(["tabby", "persian", "beagle", "car", "car", "car"], dtype=object),
        route=np.array(["animal", "animal", "animal", "vehicle", "vehicle", "animal"], dtype=object),
    )
    m = level_metrics(p, small_tree)
    assert m["class_accuracy"] == pytest.approx(2 / 6)
    assert m["superclass_accuracy"] == pytest.approx(5 / 6)  # beagle -> car crosses
    assert (m["errors"], m["within_errors"], m["across_errors"]) == (4, 3, 1)
    assert m["within_rate"] == pytest.approx(0.75) and m["across_rate"] == pytest.approx(0.25)
    # LCA heights: tabby/persian -> cat (1); persian/beagle -> animal (2); beagle/car -> root (3); bus/car -> vehicle (1)
    assert m["lca_histogram"] == {1: 2, 2: 1, 3: 1}
    assert m["mean_lca_height"] == pytest.approx((1 + 2 + 3 + 1) / 4)
    assert m["hierarchical_distance_at_k"][1] == pytest.approx((0 + 1 + 2 + 3 + 0 + 1) / 6)
    assert m["routing_accuracy"] == pytest.approx(4 / 6)  # beagle and bus misrouted
    assert m["routing_errors"] == 2 and m["specialist_errors"] == 2
    assert m["specialist_accuracy"] == pytest.approx(2 / 4)


def test_confusion_pairs_per_class_and_compare(small_tree):
    true = np.array(["tabby", "tabby", "tabby", "persian", "car"], dtype=object)
    a = Predictions(true, np.array(["persian", "persian", "tabby", "tabby", "bus"], dtype=object))
    b = Predictions(true, np.array(["tabby", "persian", "tabby", "persian", "car"], dtype=object))
    matrix, names = superclass_confusion(a, small_tree)
    assert names == ["animal", "vehicle"] and matrix.tolist() == [[4, 0], [0, 1]]
    pairs = confused_pairs(a, small_tree)
    assert pairs["animal"][0] == ("tabby", "persian", 2)
    assert per_class_accuracy(a)["tabby"] == (pytest.approx(1 / 3), 3)
    c = compare(a, b)
    assert (c["fixed"], c["introduced"], c["both_wrong"], c["both_right"]) == (3, 0, 1, 1)
    with pytest.raises(InputError, match="same queries"):
        compare(a, Predictions(true[:4], true[:4]))


def test_predictions_file_and_errors(tmp_path, small_tree):
    f = tmp_path / "p.csv"
    f.write_text("system,ref,true,pred,route,score,pred2\n"
                 "flat,a.jpg,tabby,persian,,0.9,tabby\nrouted,a.jpg,tabby,tabby,animal,0.8,persian\n")
    systems = load_predictions(f)
    assert set(systems) == {"flat", "routed"}
    assert systems["flat"].route is None and systems["routed"].route.tolist() == ["animal"]
    m = level_metrics(systems["flat"], small_tree)
    assert m["hierarchical_distance_at_k"] == {1: 1.0, 2: 0.5}
    bad = tmp_path / "bad.csv"
    bad.write_text("truth,guess\nx,y\n")
    with pytest.raises(InputError, match="lacks the column"):
        load_predictions(bad)
    unknown = tmp_path / "u.csv"
    unknown.write_text("true,pred\ntabby,zebra\n")
    with pytest.raises(UnknownClassError, match="'zebra'"):
        level_metrics(load_predictions(unknown)["system"], small_tree)
