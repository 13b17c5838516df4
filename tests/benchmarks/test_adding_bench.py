import numpy as np

from benchmarks.adding_bench import add_throughput, late_superclasses
from benchmarks.tables import adding_table


def test_late_superclasses_equal_a_build_from_the_start(split):
    row = late_superclasses(split)
    assert row["late_classes"] > 0 and row["placed_correctly"]
    assert row["routed_equals_build_from_start"]
    assert row["routed_full_accuracy"]["added_late"] == row["routed_full_accuracy"]["built_from_start"]
    # new competitors can only take old-class queries away
    assert row["old_class_accuracy_after"]["flat"] <= row["old_class_accuracy_before"]["flat"]


def test_throughput_is_measured_for_single_and_batched_adds(split):
    """Which is faster is the benchmark's finding, not a test's: here only that both were measured."""
    out = add_throughput(split, n=300)
    for name in ("flat memory", "routed classifier"):
        row = out[name]
        assert row["batched_vs_single"] > 0 and np.isfinite(row["batched_vs_single"])


def test_adding_table_renders(split):
    out = {"data": split.description, "late": late_superclasses(split), "throughput": add_throughput(split, n=50)}
    assert "| routed classifier |" in adding_table(out)
