"""The claims benchmarks on real Tiny-ImageNet images (a subset), embedded by the real backbone."""

import os

import numpy as np
import pytest

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not os.environ.get("SUPERSUB_DATA"), reason="set SUPERSUB_DATA to Tiny-ImageNet"),
]


@pytest.fixture(scope="module")
def real_split():
    from benchmarks._data import tiny

    return tiny(per_class=25, val_per_class=5, dev_per_class=5, size=64)


def test_real_split_is_tiny_imagenet(real_split):
    assert real_split.X.shape == (200 * 20, 1280) and len(real_split.Q) == 1000
    assert np.allclose(np.linalg.norm(real_split.X, axis=1), 1, atol=1e-5)
    assert "Lite0 @ 64 px" in real_split.description


def test_memory_updates_do_not_forget_on_real_images(real_split):
    from benchmarks.continual_bench import run

    out = run(real_split, n_tasks=10, epochs=2)
    mem = out["systems"]["memory updates (kNN, k=10)"]
    assert mem["task_incremental"]["forgetting"] == 0.0
    assert out["memory_equals_batch_build"]
    # 20-way task-incremental on real images is far above chance (5%)
    assert mem["task_incremental"]["final_average_accuracy"] > 0.3


def test_unlearning_is_exact_on_real_images(real_split):
    from benchmarks.unlearning_bench import run

    out = run(real_split)
    for request in ("class", "source"):
        assert out[request]["forgotten_ids_returned_in_top50"] == 0
        assert out[request]["identical_to_rebuild"] is True
    assert out["routed_source"]["identical_to_rebuild"] is True
