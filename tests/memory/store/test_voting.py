import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from memory import InputError, VisualMemory, get_voting


@pytest.mark.parametrize("voting, weights", [("plurality", "uniform"), ("distance", "distance")])
@pytest.mark.parametrize("k", [1, 5, 15])
def test_matches_sklearn_cosine_brute(voting, weights, k, make_clustered):
    clustered = make_clustered
    X, y = clustered(1500, 32, 12, seed=3, spread=1.2)
    Q, _ = clustered(400, 32, 12, seed=3, spread=1.2, sample_seed=4)
    mem = VisualMemory(k=k, voting=voting, progress=False)
    mem.add(X, y)
    ref = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute", weights=weights)
    ref.fit(X, y)
    np.testing.assert_array_equal(mem.classes_, ref.classes_)
    np.testing.assert_array_equal(mem.predict(Q).astype(str), ref.predict(Q))
    np.testing.assert_allclose(mem.predict_proba(Q), ref.predict_proba(Q), atol=1e-5)


def test_plurality_ties_go_to_first_class():
    X = np.array([[1, 0], [0, 1]], dtype=np.float32)
    mem = VisualMemory(k=2, voting="plurality", progress=False)
    mem.add(X, ["zebra", "apple"])
    # One vote each: the tie goes to the class that sorts first.
    assert mem.predict(np.array([[1, 1]], dtype=np.float32)).tolist() == ["apple"]


def test_rank_and_softmax_weights():
    sims = np.array([[0.9, 0.5, 0.1]], dtype=np.float32)
    np.testing.assert_allclose(get_voting("rank")(sims, 0.07), [[1 / 2, 1 / 3, 1 / 4]])
    w = get_voting("softmax")(sims, 0.07)
    np.testing.assert_allclose(w / w.sum(), np.exp(sims / 0.07) / np.exp(sims / 0.07).sum(), rtol=1e-6)


@pytest.mark.parametrize("voting", ["rank", "softmax"])
def test_rule_scores_match_reference(voting, make_clustered):
    clustered = make_clustered
    X, y = clustered(500, 16, 5, seed=5, spread=1.5)
    Q, _ = clustered(50, 16, 5, seed=5, spread=1.5, sample_seed=6)
    mem = VisualMemory(k=7, voting=voting, progress=False)
    mem.add(X, y)
    sims, ids = mem.search(Q)
    p = mem.predict_proba(Q)
    classes = list(mem.classes_)
    for q in range(len(Q)):
        ref = np.zeros(len(classes))
        for r, (s, i) in enumerate(zip(sims[q], ids[q])):
            w = 1 / (r + 2) if voting == "rank" else np.exp(s / 0.07)
            ref[classes.index(y[i])] += w
        np.testing.assert_allclose(p[q], ref / ref.sum(), rtol=1e-5, atol=1e-9)


def test_unknown_rule():
    with pytest.raises(InputError, match="unknown voting rule 'majority'; available: distance"):
        VisualMemory(voting="majority")
