import numpy as np
import pytest

from memory import VisualMemory


def clustered(n: int, dim: int, n_classes: int, seed: int = 0, spread: float = 0.6,
              sample_seed: int | None = None):
    """Gaussian clusters; ``seed`` fixes the centres, ``sample_seed`` the samples."""
    centres = np.random.default_rng(seed).normal(size=(n_classes, dim))
    rng = np.random.default_rng(seed if sample_seed is None else sample_seed + 1000)
    y = rng.integers(0, n_classes, size=n)
    X = (centres[y] + spread * rng.normal(size=(n, dim))).astype(np.float32)
    return X, np.array([f"class{c:02d}" for c in y])


@pytest.fixture
def data():
    X, y = clustered(1200, 24, 8, seed=0)
    Q, qy = clustered(300, 24, 8, seed=0, sample_seed=1)
    return X, y, Q, qy


@pytest.fixture
def mem(data):
    X, y, _, _ = data
    m = VisualMemory(k=10, progress=False)
    sources = np.where(np.arange(len(X)) % 3 == 0, "web", "lab")
    supers = np.array(["A" if int(l[-2:]) < 4 else "B" for l in y])
    m.add(X, y, source=sources, superclass=supers, refs=[f"img{i}.jpg" for i in range(len(X))])
    return m


def brute_force(X, Q, k):
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    sims = Qn @ Xn.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, 1), order


@pytest.fixture(scope="session")
def make_clustered():
    return clustered


@pytest.fixture(scope="session")
def exact_knn():
    return brute_force
