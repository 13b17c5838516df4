from benchmarks.accuracy_bench import RULES, run
from benchmarks.tables import accuracy_table


def test_accuracy_table_fast_subset(split):
    out = run(split, epochs=2, ks=(1, 10), ms=(1, 4))
    rows = out["rows"]
    for rule in RULES:
        for k in (1, 10):
            assert f"flat kNN, {rule}, k={k}" in rows
    # with one neighbour every voting rule is the same decision
    assert len({rows[f"flat kNN, {r}, k=1"]["top1"] for r in RULES}) == 1
    for label in ("kNN router", "centroid router"):
        hard, oracle = rows[f"routed kNN, {label}, hard"], rows[f"routed kNN, {label}, oracle"]
        assert oracle["superclass_accuracy"] == 1.0
        assert oracle["top1"] >= hard["top1"]
    n_classes = len(split.classes)
    assert rows["sub-centroids, m=1 per class, nearest"]["entries"] == n_classes
    assert rows["sub-centroids, m=4 per class, nearest"]["entries"] == 4 * n_classes
    assert 0.0 <= rows["linear probe + cache model"]["lam"] <= 1.0
    # the flat memory makes mistakes on this data, and they carry a WordNet severity
    assert 0 < rows["flat kNN, softmax, k=10"]["top1"] < 1
    assert rows["flat kNN, softmax, k=10"]["mean_lca_height"] > 0
    assert "| linear probe + cache model" in accuracy_table(out)
