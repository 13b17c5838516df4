import numpy as np
import pytest
import torch

from memory import BackboneMismatchError, InputError, get_backbone


@pytest.fixture(scope="module")
def lite0():
    return get_backbone("lite0")


def test_pretrained_lite0_sees_a_daisy(lite0):
    from sklearn.datasets import load_sample_images
    from PIL import Image
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    data = load_sample_images()
    flower = next(im for im, f in zip(data.images, data.filenames) if f.endswith("flower.jpg"))
    x = lite0.preprocess.transform()(Image.fromarray(flower))[None]
    with torch.inference_mode():
        top5 = lite0.logits(x)[0].topk(5).indices.tolist()
    assert "daisy" in [_IMAGENET_CATEGORIES[i] for i in top5]


def test_lite0_facts(lite0):
    assert lite0.dim == 1280
    assert lite0.preprocess.size == 224 and lite0.preprocess.mean == (0.5, 0.5, 0.5)
    assert sum(p.numel() for p in lite0.model.parameters()) == 4_652_008
    assert lite0.fingerprint.startswith("lite0@224/crop0.875:57934424:")


def test_fingerprint_tracks_preprocessing(lite0):
    a = get_backbone("lite0", size=128)
    b = get_backbone("lite0", size=128, crop_pct=1.0)
    assert len({lite0.fingerprint, a.fingerprint, b.fingerprint}) == 3
    assert a.fingerprint == get_backbone("lite0", size=128).fingerprint


def test_unknown_backbone_lists_close_names():
    with pytest.raises(InputError, match="unknown backbone 'lite9' \\(did you mean .*lite0"):
        get_backbone("lite9")


def test_timm_model_with_local_weights(tmp_path):
    import timm

    ref = timm.create_model("resnet18", pretrained=False)
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    bb = get_backbone("timm:resnet18", weights=tmp_path / "r18.pth", size=64)
    assert bb.dim == 512 and bb.weights_sha256 is not None
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        np.testing.assert_allclose(bb.features(x).numpy(), ref.eval().forward_head(
            ref.forward_features(x), pre_logits=True).numpy(), atol=1e-5)


def test_torchvision_model_random_weights():
    bb = get_backbone("torchvision:resnet18", size=64)
    assert bb.dim == 512 and bb.fingerprint.startswith("torchvision:resnet18@64")


def test_mismatched_weights_are_refused(tmp_path, lite0):
    torch.save(lite0.model.state_dict(), tmp_path / "lite0.pth")
    with pytest.raises(BackboneMismatchError, match="another model"):
        get_backbone("timm:tf_efficientnet_lite2", weights=tmp_path / "lite0.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneMismatchError, match="junk.pth is not a file of plain tensors"):
        get_backbone("lite0", weights=tmp_path / "junk.pth")


@pytest.mark.parametrize("kw, match", [({"size": 8}, "size must be"), ({"crop_pct": 1.5}, "crop_pct")])
def test_bad_options(kw, match):
    with pytest.raises(InputError, match=match):
        get_backbone("lite0", **kw)


@pytest.mark.parametrize("size, crop", [(160, 0.875), (64, 1.0), (224, 0.9)])
def test_batch_preprocessing_is_the_transform_bit_for_bit(tiny_layout, size, crop):
    from PIL import Image

    from memory import open_image, tiny_imagenet

    pre = get_backbone("lite0", size=size, crop_pct=crop).preprocess
    images = [open_image(p) for p in tiny_imagenet("val", tiny_layout["folder"]).paths]
    images += [Image.new("L", (30, 50), 7), Image.new("RGBA", (300, 120), (1, 2, 3, 4))]  # grey, wide, alpha
    ref = np.stack([pre.transform()(im).numpy() for im in images])
    out = pre.batch(images)
    assert out.dtype == np.float32 and out.shape == (len(images), 3, size, size)
    assert np.array_equal(out, ref)
