"""A backbone split into trunk and tail, and the float16 trunk cache, on real images."""

import json

import numpy as np
import pytest
import torch

from memory import BackboneMismatchError, InputError, get_backbone, image_folder, tiny_imagenet
from router import choose_path, split_backbone, trunk_activations
from router.network import load_trunk_activations, trunk_cache_dir


@pytest.fixture(scope="module")
def split(lite0_64):
    return split_backbone(lite0_64)


@pytest.fixture(scope="module")
def images(tiny_layout):
    return tiny_imagenet("train", tiny_layout["folder"])


def test_trunk_plus_tail_equals_the_backbone(split, images, lite0_64):
    from memory import Embedder

    x = torch.from_numpy(Embedder(lite0_64, runtime="torch", progress=False).preprocess(images.paths[:8]))
    with torch.inference_mode():
        whole = lite0_64.features(x)
        parts = split.tail().eval().features(split.run_trunk(x, precision="fp32"))
    assert split.at == "blocks.6" and split.trunk_shape == (192, 2, 2)
    assert float((whole - parts).abs().max()) <= 1e-4
    # a deeper split point gives the same function
    deeper = split_backbone(lite0_64, "blocks.5.2")
    with torch.inference_mode():
        other = deeper.tail().eval().features(deeper.run_trunk(x, precision="fp32"))
    assert float((whole - other).abs().max()) <= 1e-4
    # bf16 autocast stays close to fp32
    with torch.inference_mode():
        fast = split.tail().eval().features(split.run_trunk(x))
    assert float(torch.nn.functional.cosine_similarity(whole, fast).min()) >= 0.995


@pytest.mark.parametrize("at, message", [("blocks.0", "stages blocks.1"), ("blocks.9", "stages blocks.1"),
                                         ("conv_head", "must name a stage"), ("blocks.6.4", "blocks 0 to 0")])
def test_bad_split_points(lite0_64, at, message):
    with pytest.raises(InputError, match=message):
        split_backbone(lite0_64, at)


def test_unsplittable_backbone():
    bb = get_backbone("torchvision:resnet18", size=32)
    with pytest.raises(InputError, match="cannot be split"):
        split_backbone(bb)


def test_cache_is_keyed_checked_and_recomputed(split, images, tmp_path, lite0_64):
    first = trunk_activations(images, split, cache=tmp_path, progress=False)
    assert first.acts.dtype == np.float16 and first.acts.shape == (18, 192, 2, 2)
    assert list(first.labels) == list(images.labels)
    where = trunk_cache_dir(images, split, cache=tmp_path)
    stamp = (where / "acts.npy").stat().st_mtime_ns
    again = trunk_activations(images, split, cache=tmp_path, progress=False)
    assert (where / "acts.npy").stat().st_mtime_ns == stamp  # a hit: nothing rewritten
    assert np.array_equal(again.acts, first.acts)
    # another fingerprint is refused by the loader, and gets its own cache entry
    with pytest.raises(BackboneMismatchError, match="recompute"):
        load_trunk_activations(where, fingerprint="lite0@224/crop0.875:xx:yy|trunk<blocks.6|bf16")
    other = split_backbone(get_backbone("lite0", size=64, crop_pct=0.875))
    assert trunk_cache_dir(images, other, cache=tmp_path) != where
    assert trunk_cache_dir(images, split, "fp32", cache=tmp_path) != where
    path = choose_path("auto", "bf16")  # the default: OpenVINO, bf16 where the CPU runs it natively
    if path.name != "bf16":  # eager bf16 autocast is another numeric path, with its own entry
        assert trunk_cache_dir(images, split, cache=tmp_path, runtime="torch") != where
    # a cache entry whose meta claims another fingerprint is recomputed, not used
    meta = json.loads((where / "meta.json").read_text())
    meta["fingerprint"] = "something else"
    (where / "meta.json").write_text(json.dumps(meta))
    fresh = trunk_activations(images, split, cache=tmp_path, progress=False)
    assert fresh.fingerprint == f"{split.fingerprint}|{path.name}"
    assert json.loads((where / "meta.json").read_text())["fingerprint"] == fresh.fingerprint
    # a corrupt array is detected by its checksum and recomputed
    raw = bytearray((where / "acts.npy").read_bytes())
    raw[-1] ^= 0xFF
    (where / "acts.npy").write_bytes(bytes(raw))
    with pytest.raises(Exception, match="checksum"):
        load_trunk_activations(where)
    assert np.array_equal(trunk_activations(images, split, cache=tmp_path, progress=False).acts, first.acts)


def test_folder_dataset_works_too(split, tiny_layout, tmp_path):
    ds = image_folder(tiny_layout["folder"] / "train")
    ta = trunk_activations(ds, split, cache=tmp_path, progress=False)
    assert len(ta) == len(ds)
