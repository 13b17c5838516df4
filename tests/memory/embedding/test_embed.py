import numpy as np
import pytest

from memory import Embedder, InputError, get_backbone


@pytest.fixture(scope="module")
def real_images():
    from sklearn.datasets import load_sample_images
    from PIL import Image

    return [Image.fromarray(im) for im in load_sample_images().images]


@pytest.mark.parametrize("size", [64, 128])
def test_fast_path_equals_eager(real_images, tiny_layout, size):
    bb = get_backbone("lite0", size=size)
    emb = Embedder(bb, precision="fp32", progress=False)
    assert emb.runtime == "onnx"
    paths = sorted((tiny_layout["folder"] / "val" / "images").glob("*.JPEG"))
    x = emb.preprocess(real_images + paths)
    assert x.shape == (len(real_images) + len(paths), 3, size, size)
    assert emb.check_fast_path(x) <= 1e-4


def test_deterministic_and_normalised(lite0_64, real_images):
    emb = Embedder(lite0_64, progress=False, threads=1)
    a = emb.embed_images(real_images)
    b = Embedder(lite0_64, progress=False, threads=2).embed_images(real_images)
    np.testing.assert_array_equal(a, emb.embed_images(real_images))
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    assert a.shape == (2, 1280) and a.dtype == np.float32


def test_batching_does_not_change_results(lite0_64, tiny_layout):
    paths = sorted((tiny_layout["folder"] / "train").rglob("*.JPEG"))
    one = Embedder(lite0_64, progress=False, batch_size=len(paths)).embed_images(paths)
    many = Embedder(lite0_64, progress=False, batch_size=4).embed_images(paths)
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_torch_runtime_and_bad_input(lite0_64, tmp_path):
    emb = Embedder(lite0_64, runtime="torch", progress=False)
    assert emb.runtime == "torch"
    with pytest.raises(InputError, match="expected preprocessed images of shape"):
        emb.embed_tensors(np.zeros((1, 3, 32, 32), dtype=np.float32))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(InputError, match="cannot read image .*bad.jpg"):
        emb.embed_images([bad])
    with pytest.raises(InputError, match="does not exist"):
        emb.embed_images([tmp_path / "missing.jpg"])
    with pytest.raises(InputError, match="runtime must be"):
        Embedder(lite0_64, runtime="tensorrt")
