"""Images to embeddings as a scikit-learn transformer: in a pipeline with the routed classifier."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from hierarchy import ClassTree, cut_balanced
from memory import Embedder, ImageEmbedder, InputError, get_backbone
from router import TwoStageClassifier


@pytest.fixture(scope="module")
def images(draw):
    X = [draw(k, 10 * k + i) for k in range(3) for i in range(6)]
    y = np.array([f"shape{k}" for k in range(3) for _ in range(6)], dtype=object)
    return X, y


def test_transform_equals_the_embedder(images):
    X, _ = images
    emb = ImageEmbedder(size=64).fit()
    expected = Embedder(get_backbone("lite0", size=64), progress=False).embed_images(X)
    np.testing.assert_allclose(emb.transform(X), expected, atol=1e-6)
    assert emb.recipe_ == {"backbone": "lite0", "size": 64, "crop_pct": 0.875}
    assert emb.n_features_out_ == 1280 and emb.fingerprint_.startswith("lite0@64")
    with pytest.raises(InputError, match="a list of image paths"):
        emb.transform("one.jpg")


def test_a_pipeline_from_images_to_routed_predictions(images):
    X, y = images
    tree = ClassTree.from_parents({"shape0": "round", "shape1": "angular", "shape2": "angular"})
    tree = tree.with_superclasses(cut_balanced(tree, 2))
    pipe = make_pipeline(ImageEmbedder(size=64), TwoStageClassifier(tree, k=3))
    pipe.fit(X[::2], y[::2])
    assert (pipe.predict(X[1::2]) == y[1::2]).mean() == 1.0
    back = pickle.loads(pickle.dumps(pipe))  # the embedder rebuilds its backbone on load
    np.testing.assert_array_equal(back.predict_proba(X[1::2]), pipe.predict_proba(X[1::2]))
    assert clone(pipe).get_params()["imageembedder__size"] == 64
