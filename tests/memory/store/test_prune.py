import numpy as np
import pytest

from memory import InputError, VisualMemory, harm_counts


def test_harmful_removes_mislabelled_entries(make_clustered):
    X, y = make_clustered(800, 16, 4, seed=0, spread=0.5)
    val, vy = make_clustered(400, 16, 4, seed=0, spread=0.5, sample_seed=1)
    y = y.copy()
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(y), 60, replace=False)
    y[flipped] = np.where(y[flipped] == "class00", "class01", "class00")
    mem = VisualMemory(k=5, voting="plurality", progress=False)
    mem.add(X, y)
    ids, right, wrong = harm_counts(mem, val, vy, k=1)
    assert wrong[flipped].sum() > right[flipped].sum()
    before = mem.score(val, vy, k=1)
    report = mem.prune_harmful(val, vy, k=1)
    assert report.mode == "harmful" and report.n_removed > 0
    removed = set(report.removed_ids.tolist())
    # Mostly flipped entries; every removed entry had more wrong than right decisions.
    assert len(removed & set(flipped.tolist())) / len(removed) > 0.8
    assert np.all(wrong[np.isin(ids, report.removed_ids)] > right[np.isin(ids, report.removed_ids)])
    assert mem.score(val, vy, k=1) > before


def test_redundant_drops_near_duplicates_only():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(50, 32)).astype(np.float32)
    dups = base[:20] + 1e-4 * rng.normal(size=(20, 32)).astype(np.float32)
    mem = VisualMemory(progress=False)
    mem.add(base, "a")
    dup_ids = mem.add(dups, "a")
    other = mem.add(base[:5], "b")  # same vectors, other class: not redundant
    report = mem.prune_redundant(0.999)
    np.testing.assert_array_equal(np.sort(report.removed_ids), dup_ids)
    assert len(mem) == 55 and np.isin(other, mem.ids_).all()
    with pytest.raises(InputError, match="threshold"):
        mem.prune_redundant(1.5)


@pytest.mark.parametrize("snap", [False, True])
def test_compress_to_subcentroids(make_clustered, snap):
    X, y = make_clustered(600, 16, 3, seed=2, spread=0.5)
    Q, qy = make_clustered(200, 16, 3, seed=2, spread=0.5, sample_seed=3)
    mem = VisualMemory(k=1, progress=False)
    original = mem.add(X, y)
    report = mem.compress(4, snap=snap)
    assert mem.counts("label") == {"class00": 4, "class01": 4, "class02": 4}
    if snap:  # centroids are real samples, still viewable
        assert np.isin(mem.ids_, original).all() and report.added_ids.size == 0
    else:
        assert mem.counts("source") == {"centroids": 12} and report.added_ids.size == 12
    assert mem.score(Q, qy) > 0.95
