import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_tree_cut():
    from hierarchy import shipped_tree

    return shipped_tree("tiny-imagenet-200")


@pytest.fixture(scope="session")
def synthetic(tiny_tree_cut):
    """Embeddings for 40 Tiny-ImageNet classes: class centres near their superclass centre."""
    tree = tiny_tree_cut
    rng = np.random.default_rng(0)
    classes = [c for i, c in enumerate(tree.classes) if i % 5 == 0]
    supers = sorted({tree.superclass_of(c) for c in classes})
    dim = 32
    sup_centre = {s: rng.normal(size=dim) * 3 for s in supers}
    centre = {c: sup_centre[tree.superclass_of(c)] + rng.normal(size=dim) for c in classes}

    def sample(n_per, noise, seed):
        r = np.random.default_rng(seed)
        X = np.concatenate([centre[c] + noise * r.normal(size=(n_per, dim)) for c in classes])
        y = np.repeat(classes, n_per)
        return X.astype(np.float32), y

    X, y = sample(30, 0.8, 1)
    Q, qy = sample(10, 0.8, 2)
    return {"X": X, "y": y, "Q": Q, "qy": qy, "classes": classes, "tree": tree}
