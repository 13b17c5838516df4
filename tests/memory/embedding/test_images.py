"""Image decoding: pixel limit, EXIF orientation, 16-bit and alpha modes, and the fingerprint."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memory import DECODE_VERSION, Backbone, Embedder, ImageError, InputError, open_image

ROOT = Path(__file__).resolve().parents[3]


def photo(seed: int = 0) -> Image.Image:
    """A smooth 64x64 colour picture with structure (so a wrong decode shows)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    a, b, c = rng.uniform(0.5, 3.0, size=3)
    rgb = np.stack([np.sin(a * xx * 3) * 0.5 + 0.5, yy ** b, (xx * yy) ** (1 / c)], -1)
    rgb[10:30, 20:50] = [0.9, 0.2, 0.1]
    return Image.fromarray((rgb * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """A 20000 x 20000 PNG: tiny on disk, 400 million pixels when decoded."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    Image.new("1", (20000, 20000)).save(path)
    assert path.stat().st_size < 1_000_000
    return path


def test_decompression_bomb_is_refused_before_decoding(bomb):
    with pytest.raises(ImageError, match=r"bomb.png .*400,000,000 pixels, over the limit of 64,000,000"):
        open_image(bomb)
    assert isinstance(ImageError("x"), InputError)


@pytest.mark.subprocess
def test_pixel_limit_is_configurable(tmp_path):
    path = tmp_path / "p.png"
    photo().save(path)
    with pytest.raises(ImageError, match="over the limit of 1,000"):
        open_image(path, max_pixels=1000)
    assert open_image(path).size == (64, 64)
    env = dict(os.environ, SUPERSUB_MAX_IMAGE_PIXELS="4000", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", "import sys; from memory import open_image, MAX_IMAGE_PIXELS; "
                          "print(MAX_IMAGE_PIXELS); open_image(sys.argv[1])", str(path)],
                         capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "4000" and "over the limit of 4,000" in out.stderr


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    grey8 = np.asarray(photo().convert("L"))
    Image.fromarray(grey8).save(tmp_path / "g8.png")
    Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "g16.png")  # the same picture in 16 bits
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    a, b = np.asarray(open_image(tmp_path / "g8.png")), np.asarray(open_image(tmp_path / "g16.png"))
    np.testing.assert_array_equal(a, b)
    assert b.mean() < 250  # the old decode clipped everything above 255 to white


@pytest.mark.parametrize("mode", ["I", "F", "LA", "RGBA", "P", "CMYK", "1"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    im = photo()
    if mode == "I":
        im = Image.fromarray(np.asarray(im.convert("L")).astype(np.int32) * 257)
    elif mode == "F":
        im = Image.fromarray(np.asarray(im.convert("L")).astype(np.float32) / 255.0)
    else:
        im = im.convert(mode)
    out = open_image(_save(im, tmp_path / "x"))
    assert out.mode == "RGB" and out.size == (64, 64)
    if mode in ("I", "F"):
        np.testing.assert_allclose(np.asarray(out)[..., 0], np.asarray(photo().convert("L")), atol=1)


def _save(im, stem: Path) -> Path:
    path = stem.with_suffix(".tiff" if im.mode in ("I", "F", "CMYK") else ".png")
    im.save(path)
    return path


def test_transparent_pixels_show_on_white(tmp_path):
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)  # black, fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert np.asarray(open_image(tmp_path / "t.png")).min() == 255


@pytest.mark.parametrize("orientation, stored", [(6, Image.Transpose.ROTATE_90), (3, Image.Transpose.ROTATE_180),
                                                 (8, Image.Transpose.ROTATE_270), (2, Image.Transpose.FLIP_LEFT_RIGHT)])
def test_exif_orientation_is_applied(tmp_path, orientation, stored):
    shown = photo()
    exif = Image.Exif()
    exif[0x0112] = orientation
    shown.transpose(stored).save(tmp_path / "o.png", exif=exif)
    np.testing.assert_array_equal(np.asarray(open_image(tmp_path / "o.png")), np.asarray(shown))


def test_corrupt_and_truncated_files(tmp_path):
    photo().save(tmp_path / "ok.jpg")
    raw = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(raw[: len(raw) // 3])
    (tmp_path / "text.jpg").write_text("not an image")
    for name in ("cut.jpg", "text.jpg"):
        with pytest.raises(ImageError, match=f"cannot read image .*{name}"):
            open_image(tmp_path / name)


def test_embeddings_of_decoded_variants_agree(tmp_path, lite0_64):
    """The 16-bit copy and the EXIF-rotated copy embed as the 8-bit original does."""
    emb = Embedder(lite0_64, progress=False)
    grey8 = np.asarray(photo(3).convert("L"))
    Image.fromarray(grey8).save(tmp_path / "g8.png")
    Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    photo(3).save(tmp_path / "c.png")
    photo(3).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "c_rot.png", exif=exif)
    X = emb.embed_images([tmp_path / n for n in ("g8.png", "g16.png", "c.png", "c_rot.png")])
    assert float(X[0] @ X[1]) > 0.9999 and float(X[2] @ X[3]) > 0.9999
    # What the old decode gave: a white 16-bit picture and a rotated photo, both far off.
    white = emb.embed_images([Image.fromarray(np.full((64, 64), 255, np.uint8))])[0]
    rotated = emb.embed_images([photo(3).transpose(Image.Transpose.ROTATE_90)])[0]
    assert float(X[0] @ white) < 0.99 and float(X[2] @ rotated) < 0.99


def test_decode_rules_are_part_of_the_fingerprint(lite0_64):
    assert lite0_64.preprocess.decode == DECODE_VERSION
    other = Backbone(lite0_64.spec, lite0_64.model, dataclasses.replace(lite0_64.preprocess, decode="rgb8-v1"),
                     lite0_64.weights_sha256, lite0_64.weights_origin)
    assert other.fingerprint != lite0_64.fingerprint
