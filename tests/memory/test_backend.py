import sys

import numpy as np
import pytest

from memory import InputError, MissingBackendError, VisualMemory, open_memory, parse_backend


@pytest.mark.parametrize("uri, expected", [
    (None, ("faiss", {})),
    ("faiss", ("faiss", {})),
    ("milvus://127.0.0.1:19530", ("milvus", {"uri": "http://127.0.0.1:19530", "collection": ""})),
    ("milvus://db.example:19530/memory", ("milvus", {"uri": "http://db.example:19530", "collection": "memory"})),
    ("https://cluster.example:443/m", ("milvus", {"uri": "https://cluster.example:443", "collection": "m"})),
])
def test_parse_backend(uri, expected):
    assert parse_backend(uri) == expected


def test_parse_backend_local_file(tmp_path):
    kind, settings = parse_backend(f"milvus-lite:{tmp_path / 'm.db'}#shards")
    assert kind == "milvus" and settings == {"uri": str(tmp_path / "m.db"), "collection": "shards"}


@pytest.mark.parametrize("uri, message", [
    ("milvus://localhost", "needs a host and a port"),
    ("redis://x:1", "unknown backend"),
    ("memory.sqlite", "unknown backend"),
])
def test_bad_backend_uris_name_the_fix(uri, message):
    with pytest.raises(InputError, match=message):
        parse_backend(uri)


def test_open_memory_defaults_to_embedded_faiss():
    mem = open_memory(dim=8, k=3)
    assert isinstance(mem, VisualMemory) and mem.k == 3 and mem.dim == 8


def test_missing_client_library_gives_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(MissingBackendError, match=r"pip install 'supersub\[milvus\]'"):
        open_memory(str(tmp_path / "m.db"), dim=4)


def test_unreachable_server_is_a_clear_error():
    from memory import MilvusMemory

    with pytest.raises(ConnectionError, match="cannot open the Milvus server at http://127.0.0.1:9"):
        MilvusMemory("http://127.0.0.1:9", "x", dim=4)


def test_milvus_memory_refuses_a_missing_collection_when_reopening(tmp_path):
    from memory import MemoryFormatError, MilvusMemory

    with pytest.raises(MemoryFormatError, match="there is no collection 'nope'"):
        MilvusMemory(str(tmp_path / "m.db"), "nope", create=False)


def test_fingerprint_and_dimension_are_checked_on_reopen(tmp_path):
    from memory import BackboneMismatchError, MilvusMemory

    first = MilvusMemory(str(tmp_path / "m.db"), "c", dim=4, fingerprint="lite0@128")
    first.add(np.eye(4, dtype=np.float32), ["a", "b", "c", "d"])
    first.close()
    with pytest.raises(BackboneMismatchError, match="built with backbone lite0@128"):
        MilvusMemory(str(tmp_path / "m.db"), "c", fingerprint="lite2@224")
    with pytest.raises(InputError, match="holds 4-d vectors, not 8-d"):
        MilvusMemory(str(tmp_path / "m.db"), "c", dim=8)
    again = MilvusMemory(str(tmp_path / "m.db"), "c")
    assert len(again) == 4 and again.dim == 4 and again.fingerprint == "lite0@128"


def test_drop_memory_deletes_a_collection_without_reading_it(tmp_path):
    from memory import MilvusMemory, drop_memory

    uri = f"{tmp_path / 'm.db'}#old"
    MilvusMemory(str(tmp_path / "m.db"), "old", dim=4).add(np.eye(4, dtype=np.float32), list("abcd"))
    assert drop_memory(uri) is True
    assert drop_memory(uri) is False
    assert len(open_memory(uri, dim=4)) == 0
    with pytest.raises(InputError, match="not a Milvus URI"):
        drop_memory("faiss")


def test_one_loader_for_every_backend_and_old_search_setting_names(tmp_path):
    import json
    import warnings

    from memory import MilvusMemory, load_any, load_memory

    faiss_mem = VisualMemory(4, progress=False)
    faiss_mem.add(np.eye(4, dtype=np.float32), ["a", "b", "c", "d"])
    faiss_mem.save(tmp_path / "faiss")
    assert isinstance(load_memory(tmp_path / "faiss"), VisualMemory)

    lite = MilvusMemory(str(tmp_path / "m.db"), "c", dim=4, index="HNSW", ef_search=32)
    lite.add(np.eye(4, dtype=np.float32), ["a", "b", "c", "d"])
    lite.save(tmp_path / "milvus")
    lite.close()
    link = tmp_path / "milvus" / "milvus.json"
    spec = json.loads(link.read_text())
    assert spec["settings"]["ef_search"] == 32
    spec["settings"]["ef"] = spec["settings"].pop("ef_search")  # as files written before the rename
    link.write_text(json.dumps(spec))
    again = load_memory(tmp_path / "milvus")
    assert isinstance(again, MilvusMemory) and again.ef_search == 32 and len(again) == 4
    again.close()
    with pytest.warns(DeprecationWarning, match="use memory.load_memory"):
        load_any(tmp_path / "faiss")
    with pytest.warns(DeprecationWarning, match="use ef_search="):
        MilvusMemory(str(tmp_path / "m2.db"), "d", dim=4, ef=16).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MilvusMemory(str(tmp_path / "m3.db"), "e", dim=4, ef_search=16).close()
