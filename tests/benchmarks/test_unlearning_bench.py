import pytest

from benchmarks.unlearning_bench import run
from benchmarks.tables import unlearning_table


def test_unlearning_fast_subset(split):
    out = run(split)
    for request in ("class", "source"):
        row = out[request]
        assert row["forgotten_ids_returned_in_top50"] == 0
        assert row["identical_to_rebuild"] is True
    assert out["class"]["forgotten"] == 20
    assert out["class"]["after"]["forget_set"] == 0.0
    assert out["source"]["forgotten"] == round(0.1 * len(split.X))
    # the forget set was in memory (near-perfect) and afterwards looks like unseen images
    assert out["source"]["before"]["forget_set"] > out["source"]["after"]["forget_set"]
    assert out["source"]["after"]["forget_set"] == pytest.approx(out["source"]["unseen"]["dev"], abs=0.1)
    assert out["routed_source"]["identical_to_rebuild"] is True
    assert out["routed_source"]["forgotten"] == out["source"]["forgotten"]
    assert "| source `batch-17` (10% of train) |" in unlearning_table(out)
