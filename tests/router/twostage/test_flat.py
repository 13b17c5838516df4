"""The flat baseline is a scikit-learn classifier: the estimator checks, equality with
KNeighborsClassifier (integer and string labels, ties included), pickling and the tools
built on the contract (clone, pipelines, grid search, cross-validation)."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from router import FlatClassifier


@pytest.mark.parametrize("est", [FlatClassifier("knn"), FlatClassifier("knn", voting="plurality", k=3),
                                 pytest.param(FlatClassifier("head", lr=1e-2), marks=pytest.mark.slow)],
                         ids=["knn-softmax", "knn-plurality", "head"])  # a head trains in each of ~50 checks: slow
def test_every_scikit_learn_estimator_check_passes(est):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks' own SkipTestWarning for array-API input
        results = check_estimator(est, on_fail=None)
    failed = [f"{r['check_name']}: {r['exception']}" for r in results if r["status"] == "failed"]
    assert len(results) >= 50 and not failed, failed


def grid(n, dim, n_classes, seed):
    """Integer features on a small grid: many exact ties between distances."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-2, 3, size=(n, dim)).astype(np.float32)
    X[~X.any(axis=1), 0] = 1  # sklearn and faiss agree on zero rows, but keep directions defined
    return X, rng.integers(0, n_classes, size=n)


@pytest.mark.parametrize("labels", ["int", "str"])
@pytest.mark.parametrize("voting, weights", [("plurality", "uniform"), ("distance", "distance")])
def test_equals_kneighbors_classifier_with_ties(labels, voting, weights):
    """Equal on every query, class ties included, except where several training points share the
    k-th neighbour's distance: which of them counts is each library's choice (documented)."""
    X, y = grid(600, 6, 11, seed=0)
    Q = np.random.default_rng(1).normal(size=(1000, 6)).astype(np.float32)
    Q[:300] = np.rint(Q[:300])  # queries on the grid too: exact duplicates of training points
    Q[~Q.any(axis=1), 0] = 1
    if labels == "str":
        y = np.array([f"c{v}" for v in y])
    k = 5
    ours = FlatClassifier("knn", k=k, voting=voting).fit(X, y)
    ref = KNeighborsClassifier(k, metric="cosine", algorithm="brute", weights=weights).fit(X, y)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    assert ours.classes_.dtype.kind == np.asarray(y).dtype.kind  # labels keep their type
    dist, _ = ref.kneighbors(Q, k + 1)
    clear = ~np.isclose(dist[:, k - 1], dist[:, k], rtol=0, atol=1e-6)  # no tie across the k-th place
    p_ref, p_ours = ref.predict_proba(Q), ours.predict_proba(Q)
    top = np.sort(p_ref, axis=1)[:, -2:]
    if voting == "plurality":
        assert (clear & (top[:, 0] == top[:, 1])).sum() > 100  # many class ties among the compared queries
    assert clear.sum() > 700
    np.testing.assert_array_equal(ours.predict(Q)[clear], ref.predict(Q)[clear])
    np.testing.assert_allclose(p_ours[clear], p_ref[clear], atol=1e-5)


def test_integer_labels_sort_as_numbers():
    X, y = grid(300, 4, 12, seed=2)
    clf = FlatClassifier("knn", k=3).fit(X, y)
    assert clf.classes_.tolist() == list(range(12)) and clf.predict(X[:5]).dtype.kind == "i"


def test_pickle_round_trip_predicts_the_same(tmp_path):
    X, y = grid(400, 8, 5, seed=3)
    Q = np.random.default_rng(4).normal(size=(50, 8)).astype(np.float32)
    for clf in (FlatClassifier("knn", k=4).fit(X, y), FlatClassifier("head", epochs=2).fit(X, y)):
        back = pickle.loads(pickle.dumps(clf))
        np.testing.assert_array_equal(back.predict_proba(Q), clf.predict_proba(Q))


def test_the_contract_tools_work():
    X, y = make_blobs(300, n_features=6, centers=3, cluster_std=3.0, random_state=0)
    scores = cross_val_score(make_pipeline(StandardScaler(), FlatClassifier("knn", voting="plurality", k=5)),
                             X, y, cv=3)
    reference = cross_val_score(make_pipeline(StandardScaler(), KNeighborsClassifier(
        5, metric="cosine", algorithm="brute")), X, y, cv=3)
    np.testing.assert_array_equal(scores, reference)  # finite, and the same folds give the same scores
    search = GridSearchCV(FlatClassifier("knn", voting="plurality"), {"k": [1, 5, 15]}, cv=3).fit(X, y)
    assert search.best_params_["k"] in (1, 5, 15)
    twin = clone(FlatClassifier("knn", k=7, voting="rank"))
    assert twin.get_params()["k"] == 7 and twin.set_params(k=3).k == 3
    with pytest.raises(NotFittedError):
        FlatClassifier().predict(X)
    with pytest.raises(ValueError, match="0 feature"):
        FlatClassifier("head").fit(np.empty((5, 0)), np.arange(5))
    with pytest.raises(ValueError, match="Unknown label type"):
        FlatClassifier().fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(TypeError):
        FlatClassifier().fit(X, y).predict_proba(X, k=1)  # no keyword is silently ignored
