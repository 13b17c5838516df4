import numpy as np
import pytest

from memory import (
    BackboneMismatchError,
    Embedder,
    MemoryFormatError,
    embed_dataset,
    get_backbone,
    load_embeddings,
    save_embeddings,
    tiny_imagenet,
)
from memory.embedding import cache_dir_for


def test_cache_hit_miss_and_fingerprint_change(tiny_layout, lite0_64, tmp_path, monkeypatch):
    ds = tiny_imagenet("val", tiny_layout["folder"])
    emb = Embedder(lite0_64, progress=False)
    first = embed_dataset(ds, emb, cache=tmp_path)
    assert first.X.shape == (6, 1280) and list(first.labels) == list(ds.labels)
    assert first.refs == ds.refs and first.fingerprint == lite0_64.fingerprint

    def fail(*a, **k):
        raise AssertionError("should have come from the cache")

    monkeypatch.setattr(emb, "embed_images", fail)
    np.testing.assert_array_equal(embed_dataset(ds, emb, cache=tmp_path).X, first.X)
    monkeypatch.undo()

    # Another fingerprint (other resolution) is a different embedding space: recomputed.
    other = Embedder(get_backbone("lite0", size=96, crop_pct=1.0), progress=False)
    calls = []
    real = other.embed_images
    monkeypatch.setattr(other, "embed_images", lambda *a, **k: calls.append(1) or real(*a, **k))
    second = embed_dataset(ds, other, cache=tmp_path)
    assert calls and second.fingerprint != first.fingerprint
    with pytest.raises(BackboneMismatchError, match="re-embed"):
        load_embeddings(cache_dir_for(ds, emb.fingerprint, tmp_path), fingerprint=second.fingerprint)


def test_corrupt_cache_is_recomputed(tiny_layout, lite0_64, tmp_path):
    ds = tiny_imagenet("val", tiny_layout["folder"])
    emb = Embedder(lite0_64, progress=False)
    first = embed_dataset(ds, emb, cache=tmp_path)
    where = cache_dir_for(ds, emb.fingerprint, tmp_path)
    raw = bytearray((where / "embeddings.npy").read_bytes())
    raw[-10] ^= 0xFF
    (where / "embeddings.npy").write_bytes(bytes(raw))
    with pytest.raises(MemoryFormatError, match="corrupt"):
        load_embeddings(where)
    again = embed_dataset(ds, emb, cache=tmp_path)
    np.testing.assert_array_equal(again.X, first.X)
    load_embeddings(where)  # the cache was rewritten and verifies again


def test_save_load_round_trip(tiny_layout, lite0_64, tmp_path):
    ds = tiny_imagenet("train", tiny_layout["folder"]).subset(2)
    es = embed_dataset(ds, Embedder(lite0_64, progress=False), use_cache=False)
    save_embeddings(es, tmp_path / "e")
    back = load_embeddings(tmp_path / "e", fingerprint=es.fingerprint)
    np.testing.assert_array_equal(back.X, es.X)
    assert back.refs == es.refs and back.dataset_key == ds.key()
    means = back.class_means(tiny_layout["wnids"])
    assert means.shape == (3, 1280)


def test_each_image_is_embedded_once_whatever_list_it_comes_in(tiny_layout, lite0_64, tmp_path, monkeypatch):
    """A subset, a class held out, or the same files copied elsewhere hit the per-image cache."""
    import shutil

    from memory import image_folder

    full = tiny_imagenet("train", tiny_layout["folder"])
    emb = Embedder(lite0_64, progress=False)
    embedded = []
    real = emb.embed_images
    monkeypatch.setattr(emb, "embed_images", lambda images, **k: embedded.append(len(images)) or real(images, **k))
    whole = embed_dataset(full, emb, cache=tmp_path)
    assert embedded == [len(full)]
    part = embed_dataset(full.subset(2), emb, cache=tmp_path)  # another sample list: no dataset-level hit
    held_out = embed_dataset(full.subset(None, classes=full.classes[1:]), emb, cache=tmp_path)
    copy = tmp_path / "copy" / full.classes[0]
    copy.mkdir(parents=True)
    for p in [q for q in full.paths if q.parent.parent.name == full.classes[0]][:3]:
        shutil.copy(p, copy / f"renamed-{p.name}")
    copied = embed_dataset(image_folder(tmp_path / "copy"), emb, cache=tmp_path)
    assert embedded == [len(full)]  # nothing was embedded again
    row = {r: i for i, r in enumerate(whole.refs)}
    for es in (part, held_out):
        np.testing.assert_array_equal(es.X, whole.X[[row[r] for r in es.refs]])
    assert len(copied) == 3 and all((np.abs(whole.X - x).max(axis=1) == 0).any() for x in copied.X)
    (copy / "renamed-new.jpg").write_bytes((tiny_layout["folder"] / "val" / "images" / "val_0.JPEG").read_bytes())
    embed_dataset(image_folder(tmp_path / "copy"), emb, cache=tmp_path)
    assert embedded == [len(full), 1]  # only the new image
