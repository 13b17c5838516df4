from benchmarks.adding_bench import add_throughput, late_superclasses
from benchmarks.tables import adding_table


def test_late_superclasses_equal_a_build_from_the_start(split):
    row = late_superclasses(split)
    assert row["late_classes"] > 0 and row["placed_correctly"]
    assert row["routed_equals_build_from_start"]
    assert row["routed_full_accuracy"]["added_late"] == row["routed_full_accuracy"]["built_from_start"]
    # new competitors can only take old-class queries away
    assert row["old_class_accuracy_after"]["flat"] <= row["old_class_accuracy_before"]["flat"]


def test_batched_adds_beat_single_adds(split):
    out = add_throughput(split, n=300)
    for name in ("flat memory", "routed classifier"):
        assert out[name]["batched_vs_single"] > 1


def test_adding_table_renders(split):
    out = {"data": split.description, "late": late_superclasses(split), "throughput": add_throughput(split, n=50)}
    assert "| routed classifier |" in adding_table(out)
