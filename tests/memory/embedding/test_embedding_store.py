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
        load_embeddings(cache_dir_for(ds, first.fingerprint, tmp_path), fingerprint=second.fingerprint)


def test_corrupt_cache_is_recomputed(tiny_layout, lite0_64, tmp_path):
    ds = tiny_imagenet("val", tiny_layout["folder"])
    emb = Embedder(lite0_64, progress=False)
    first = embed_dataset(ds, emb, cache=tmp_path)
    where = cache_dir_for(ds, first.fingerprint, tmp_path)
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
