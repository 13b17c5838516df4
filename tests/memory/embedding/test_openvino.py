"""The OpenVINO runtime and the bf16 numeric path: agreement with fp32, choice, fingerprints, caches."""

import dataclasses
import os

import numpy as np
import pytest

from memory import EMBED_PRECISION_ENV, Embedder, InputError, embed_dataset, get_backbone, tiny_imagenet
from memory.embedding import OpenVinoFeatures, openvino_available, openvino_has_bf16

pytestmark = pytest.mark.skipif(not openvino_available(), reason="OpenVINO is not installed")
native_bf16 = pytest.mark.skipif(not openvino_has_bf16(), reason="this CPU runs no bf16 natively")


@pytest.fixture(scope="module")
def tiny_val_images():
    """256 real Tiny-ImageNet val images spread over the classes."""
    if not os.environ.get("SUPERSUB_DATA"):
        pytest.skip("set SUPERSUB_DATA to Tiny-ImageNet")
    val = tiny_imagenet("val")
    return [val.paths[i] for i in np.linspace(0, len(val) - 1, 256).astype(int)]


@pytest.fixture
def auto_precision(monkeypatch):
    monkeypatch.delenv(EMBED_PRECISION_ENV, raising=False)


@native_bf16
@pytest.mark.data
@pytest.mark.parametrize("size", [64, 128])
def test_bf16_agrees_with_fp32_on_real_images(tiny_val_images, size, auto_precision):
    bb = get_backbone("lite0", size=size)
    emb = Embedder(bb, progress=False)
    assert (emb.runtime, emb.precision) == ("openvino", "bf16")
    fp32 = Embedder(bb, precision="fp32", progress=False)
    cos = (emb.embed_images(tiny_val_images) * fp32.embed_images(tiny_val_images)).sum(1)
    assert cos.mean() >= 0.999  # the bound the default path is chosen by
    assert cos.min() >= 0.99
    # bf16 is not fp32: the test would pass trivially if the split or the hint were ignored
    assert cos.mean() < 0.99999


def test_openvino_fp32_equals_onnx(lite0_64, tiny_layout):
    emb = Embedder(lite0_64, runtime="openvino", precision="fp32", progress=False)
    assert (emb.runtime, emb.numeric_path, emb.fingerprint) == ("openvino", "fp32", lite0_64.fingerprint)
    x = emb.preprocess(sorted((tiny_layout["folder"] / "val" / "images").glob("*.JPEG")))
    assert np.abs(emb.embed_tensors(x) - emb.embed_tensors(x, runtime="onnx")).max() <= 1e-4


@native_bf16
def test_auto_is_bf16_and_the_environment_forces_fp32(lite0_64, monkeypatch, auto_precision):
    emb = Embedder(lite0_64, progress=False)
    assert (emb.runtime, emb.precision, emb.numeric_path) == ("openvino", "bf16", "bf16>blocks.2")
    assert emb.fingerprint == f"{lite0_64.fingerprint}+bf16>blocks.2"
    monkeypatch.setenv(EMBED_PRECISION_ENV, "fp32")
    emb = Embedder(lite0_64, progress=False)
    assert (emb.runtime, emb.precision, emb.fingerprint) == ("onnx", "fp32", lite0_64.fingerprint)
    monkeypatch.setenv(EMBED_PRECISION_ENV, "fp16")
    with pytest.raises(InputError, match=f"{EMBED_PRECISION_ENV}='fp16' is not a precision; use fp32 or bf16"):
        Embedder(lite0_64, progress=False)


def test_backbones_without_a_measured_plan_stay_fp32(lite0_64, auto_precision):
    bb = get_backbone("lite0", size=64)
    bb.spec = dataclasses.replace(bb.spec, bf16_from=None)
    emb = Embedder(bb, progress=False)
    assert (emb.precision, emb.runtime) == ("fp32", "onnx")
    with pytest.raises(InputError, match="has no measured bf16 plan"):
        Embedder(bb, precision="bf16", progress=False)


def test_bad_precision_and_runtime_combinations(lite0_64):
    with pytest.raises(InputError, match="precision must be one of"):
        Embedder(lite0_64, precision="fp16")
    with pytest.raises(InputError, match="runs on OpenVINO, not runtime='torch'"):
        Embedder(lite0_64, runtime="torch", precision="bf16")
    with pytest.raises(InputError, match="runs on OpenVINO, not runtime='onnx'"):
        Embedder(lite0_64, runtime="onnx", precision="bf16")


def test_a_plan_that_names_no_layer_is_refused(lite0_64):
    emb = Embedder(lite0_64, precision="fp32", progress=False)
    with pytest.raises(InputError, match="no convolution named /nowhere/"):
        OpenVinoFeatures(emb.onnx_path(), precision="bf16", bf16_from="/nowhere/", threads=1)


@native_bf16
def test_caches_never_mix_numeric_paths(lite0_64, tiny_layout, tmp_path, auto_precision):
    ds = tiny_imagenet("train", tiny_layout["folder"])
    bf16 = Embedder(lite0_64, progress=False)
    fp32 = Embedder(lite0_64, precision="fp32", progress=False)
    a = embed_dataset(ds, bf16, cache=tmp_path)
    b = embed_dataset(ds, fp32, cache=tmp_path)
    assert (a.numeric, b.numeric) == ("bf16>blocks.2", "fp32")
    assert a.fingerprint == b.fingerprint == lite0_64.fingerprint  # one embedding space
    np.testing.assert_allclose(b.X, fp32.embed_images(ds.paths), atol=1e-5)  # not the bf16 rows
    np.testing.assert_allclose(a.X, bf16.embed_images(ds.paths), atol=1e-5)
    assert not np.allclose(a.X, b.X, atol=1e-5)
    again = embed_dataset(ds, bf16, cache=tmp_path)  # each path finds its own cache
    np.testing.assert_array_equal(again.X, a.X)
    assert len({p.parent for p in tmp_path.rglob("meta.json")}) >= 2


def test_pixels_normalised_in_the_graph_give_what_normalised_input_gives(lite0_64, tiny_layout, auto_precision):
    images = sorted((tiny_layout["folder"] / "val" / "images").glob("*.JPEG"))
    emb = Embedder(lite0_64, runtime="openvino", precision="fp32", progress=False)
    pixels = emb.preprocess_pixels(images)
    assert pixels.dtype == np.uint8 and pixels.shape == (len(images), 64, 64, 3)
    np.testing.assert_array_equal(lite0_64.preprocess.normalise(pixels), emb.preprocess(images))  # bit for bit
    want = emb.embed_tensors(emb.preprocess(images))
    assert np.abs(emb.embed_pixels(pixels) - want).max() <= 1e-5  # a float32 rounding of the input apart
    assert np.abs(emb.embed_images(images) - want).max() <= 1e-5  # the default load takes this path
    onnx = Embedder(lite0_64, runtime="onnx", progress=False)  # elsewhere the pixels are normalised first
    np.testing.assert_array_equal(onnx.embed_pixels(pixels), onnx.embed_tensors(emb.preprocess(images)))
    if openvino_has_bf16():
        bf16 = Embedder(lite0_64, runtime="openvino", precision="bf16", progress=False)
        cos = (bf16.embed_pixels(pixels) * bf16.embed_tensors(emb.preprocess(images))).sum(1)
        assert cos.min() >= 0.999
    for bad in (pixels.astype(np.float32), pixels[:, :32], pixels[..., :2]):
        with pytest.raises(InputError, match="expected 8-bit images of shape"):
            emb.embed_pixels(bad)
