import numpy as np

from benchmarks.continual_bench import run, summarise, task_order
from benchmarks.tables import continual_table


def test_task_order_is_seeded_and_partitions_the_classes():
    classes = [f"c{i:03d}" for i in range(40)]
    a, b, c = task_order(classes, 4, 0), task_order(classes, 4, 0), task_order(classes, 4, 1)
    assert a == b and a != c
    assert sorted(x for t in a for x in t) == classes and all(len(t) == 10 for t in a)


def test_summarise_matches_hand_computed_metrics():
    A = np.array([[0.9, 0, 0], [0.7, 0.8, 0], [0.6, 0.8, 0.5]])
    row = summarise(A)
    assert row["final_average_accuracy"] == round((0.6 + 0.8 + 0.5) / 3, 4)
    assert row["average_incremental_accuracy"] == round((0.9 + 0.75 + (0.6 + 0.8 + 0.5) / 3) / 3, 4)
    assert row["forgetting"] == round(((0.9 - 0.6) + (0.8 - 0.8)) / 2, 4)


def test_continual_fast_subset(split):
    out = run(split, n_tasks=5, epochs=2)
    mem = out["systems"]["memory updates (kNN, k=10)"]
    A = np.array(mem["task_incremental"]["matrix"])
    # memory updates never forget: a task's accuracy is fixed from the step it was learnt
    assert mem["task_incremental"]["forgetting"] == 0.0
    for j in range(5):
        assert np.all(A[j:, j] == A[j, j])
    assert out["memory_equals_batch_build"]
    tuned = out["systems"]["sequential fine-tuning, linear head"]
    assert tuned["class_incremental"]["forgetting"] > 0.1
    assert mem["class_incremental"]["final_average_accuracy"] > tuned["class_incremental"]["final_average_accuracy"]
    assert "| sequential fine-tuning, linear head | class-incremental |" in continual_table(out)
