"""The shard set: superclasses and their memory shards in step, on the embedded backend and on Milvus."""

import numpy as np
import pytest

from hierarchy import UnknownClassError
from memory import InputError, MilvusShard, VisualMemory
from router import ShardSet

SETTINGS = {"k": 3, "voting": "plurality", "temperature": 0.07, "fingerprint": "fp"}


def filled(shards: ShardSet) -> ShardSet:
    rng = np.random.default_rng(0)
    for s, labels in (("S1", ["a", "b"]), ("S2", ["c"])):
        shard = shards.new_shard(s)
        shard.add(rng.standard_normal((6, 8)).astype(np.float32), [labels[i % len(labels)] for i in range(6)],
                  superclass=s, source="train")
        shards.append(s, shard)
    return shards


def test_embedded_shards_round_trip(tmp_path):
    shards = filled(ShardSet.create(None, 8, **SETTINGS))
    assert not shards.live and shards.n_entries == 12 and len(shards) == 2
    assert isinstance(shards.of("S2"), VisualMemory) and shards.of("S2").classes_.tolist() == ["c"]
    assert shards.of("S1").k == 3 and shards.of("S1").fingerprint == "fp"
    with pytest.raises(UnknownClassError, match="unknown superclass 'S9'; known: S1, S2"):
        shards.of("S9")
    shards.save(tmp_path)
    back = ShardSet.load(tmp_path, ["S1", "S2"], 8, SETTINGS, milvus=False)
    q = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    for s, shard in shards:
        np.testing.assert_array_equal(back.of(s).search(q)[1], shard.search(q)[1])


def test_insert_and_restore_change_the_lists_routers_hold():
    shards = filled(ShardSet.create(None, 8, **SETTINGS))
    held = shards.shards  # what a MemoryRouter keeps
    before = (list(shards.superclasses), list(shards.shards))
    shards.insert(1, "S1b", shards.new_shard("S1b"))
    assert shards.superclasses == ["S1", "S1b", "S2"] and len(held) == 3
    shards.restore(*before)
    assert shards.superclasses == ["S1", "S2"] and held is shards.shards and len(held) == 2


def test_milvus_shards_live_in_one_collection(milvus_server, tmp_path):
    uri = f"milvus://127.0.0.1:{milvus_server.port}/shardset_test"
    shards = filled(ShardSet.create(uri, 8, **SETTINGS))
    try:
        assert shards.live and all(isinstance(sh, MilvusShard) for _, sh in shards)
        assert shards.of("S1").classes_.tolist() == ["a", "b"] and shards.n_entries == 12
        shards.save(tmp_path)
        back = ShardSet.load(tmp_path, ["S1", "S2"], 8, SETTINGS, milvus=True)
        assert back.n_entries == 12 and back.of("S2").classes_.tolist() == ["c"]
        with pytest.raises(InputError, match="already holds 12 entries"):
            ShardSet.create(uri, 8, **SETTINGS)
    finally:
        shards.drop()
