from benchmarks.pruning_bench import run
from benchmarks.tables import pruning_table


def test_pruning_fast_subset(split):
    fractions = (0.0, 0.5, 0.9)
    out = run(split, fractions=fractions)
    total = out["entries"]
    curves = out["curves"]
    assert set(curves) == {"harmful", "redundant", "sub-centroid", "random"}
    unpruned = curves["random"][0]["top1"]
    for method, points in curves.items():
        assert len(points) == len(fractions)
        assert points[0]["entries"] == total and points[0]["top1"] == unpruned
    for f, point in zip(fractions, curves["random"]):
        assert point["entries"] == total - round(f * total)
    n_classes = len(split.classes)
    assert curves["sub-centroid"][2]["entries"] == n_classes * curves["sub-centroid"][2]["m"]
    # bisection lands near the target fraction
    assert abs(curves["redundant"][1]["fraction"] - 0.5) < 0.1
    assert out["harmful_rule"]["entries"] == total - out["harmful_rule"]["removed"]
    assert "| 90% |" in pruning_table(out)
