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


def test_the_accuracy_promise_holds_on_real_images(real_split):
    """Calibrated on the dev split (held out of the memory), the promise holds on val, for both rules."""
    from hierarchy import TreeNodes
    from router import TwoStageClassifier, calibrate

    s = real_split
    clf = TwoStageClassifier(s.tree, router="memory", k=10).fit(s.X, s.y)
    cal = calibrate(clf, s.dev_X, s.dev_y, routing="soft", m=2)
    assert cal.n == 1000 and cal.top1 < 0.8  # real, imperfect probabilities
    nodes = TreeNodes(clf.tree, clf.class_names())
    for rule in ("darts", "threshold"):
        for alpha in (0.8, 0.9):
            ans = clf.predict_hedged(s.Q, accuracy=alpha, rule=rule, routing="soft", m=2)
            achieved = nodes.correct(np.array([nodes.nodes.index(n) for n in ans.nodes]), s.qy).mean()
            assert achieved >= alpha - 0.02, (rule, alpha, achieved)
            assert ans.gain.mean() > 0.05  # not everything at the root
