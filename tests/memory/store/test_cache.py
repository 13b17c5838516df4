import numpy as np
import pytest

from memory import CacheModel, InputError, VisualMemory, fit_cache


def test_p_cache_formula(make_clustered):
    X, y = make_clustered(300, 8, 3, seed=0)
    Q, _ = make_clustered(5, 8, 3, seed=0, sample_seed=1)
    mem = VisualMemory(progress=False)
    mem.add(X, y)
    classes = ["class00", "class01", "class02"]
    model = CacheModel(mem, classes, theta=7.0, lam=0.3, k=300)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    ref = np.stack([np.exp(7.0 * Qn @ Xn[y == c].T).sum(1) for c in classes], 1)
    ref /= ref.sum(1, keepdims=True)
    np.testing.assert_allclose(model.p_cache(Q), ref, rtol=1e-4)
    p_model = np.full((5, 3), 1 / 3)
    np.testing.assert_allclose(model.predict_proba(Q, p_model), 0.7 * p_model + 0.3 * ref, rtol=1e-4)


def test_fit_cache_helps_a_weak_model(make_clustered):
    """Tuned on a validation split, scored on a disjoint test split."""
    X, y = make_clustered(600, 16, 4, seed=1, spread=0.8)
    V, vy = make_clustered(300, 16, 4, seed=1, spread=0.8, sample_seed=2)
    T, ty = make_clustered(300, 16, 4, seed=1, spread=0.8, sample_seed=3)
    mem = VisualMemory(progress=False)
    mem.add(X, y)
    classes = sorted(set(y))
    rng = np.random.default_rng(0)
    p_val = rng.dirichlet(np.ones(4), size=len(V))  # an uninformative classifier
    p_test = rng.dirichlet(np.ones(4), size=len(T))
    model, table = fit_cache(mem, V, p_val, vy, classes)
    assert model.lam > 0.5
    assert len(table["nll"]) == 7 * 11
    best = int(np.argmin(table["nll"]))  # the chosen pair is the grid's lowest validation NLL
    assert (model.theta, model.lam) == (table["theta"][best], table["lam"][best])
    acc = np.mean(model.predict(T, p_test) == ty)
    assert acc > np.mean(np.array(classes)[p_test.argmax(1)] == ty) + 0.3


def test_cache_bad_input(make_clustered):
    X, y = make_clustered(50, 4, 2)
    mem = VisualMemory(progress=False)
    mem.add(X, y)
    with pytest.raises(InputError, match="lam must be in"):
        CacheModel(mem, ["class00", "class01"], lam=2)
    with pytest.raises(InputError, match="p_model must have shape"):
        CacheModel(mem, ["class00", "class01"]).predict_proba(X[:3], np.ones((3, 5)))
