import hashlib
import json

import numpy as np
import pytest

import memory.store._snapshot as snapshot
from memory import BackboneMismatchError, MemoryFormatError, VisualMemory


def test_round_trip(mem, data, tmp_path):
    _, _, Q, _ = data
    mem.fingerprint = "lite0-128-abc"
    mem.set_weight(0.5, label="class02")
    mem.remove(label="class07")
    mem.save(tmp_path / "m")
    back = VisualMemory.load(tmp_path / "m", dim=24, fingerprint="lite0-128-abc")
    np.testing.assert_array_equal(back.ids_, mem.ids_)
    np.testing.assert_array_equal(back.vectors(back.ids_), mem.vectors(mem.ids_))
    assert back.get(back.ids_[:50]) == mem.get(mem.ids_[:50])
    np.testing.assert_array_equal(back.predict_proba(Q), mem.predict_proba(Q))
    assert back.add(Q[:1], "new")[0] == mem.add(Q[:1], "new")[0]  # id counter restored
    manifest = json.loads(next((tmp_path / "m" / "snapshots").iterdir()).joinpath("manifest.json").read_text())
    assert manifest["dim"] == 24 and manifest["counts"]["entries"] == len(back) - 1
    assert manifest["metric"] == "cosine" and manifest["version"] == 2


def test_saving_again_keeps_the_live_and_previous_snapshot(mem, tmp_path):
    for label in ("class01", "class02", "class03"):
        mem.save(tmp_path / "m")
        mem.remove(label=label)
    mem.save(tmp_path / "m")
    assert len(list((tmp_path / "m" / "snapshots").iterdir())) == 2  # live + previous, for readers
    assert len(VisualMemory.load(tmp_path / "m")) == len(mem)


def test_second_writer_is_refused(mem, tmp_path, lock_held_elsewhere):
    from memory import ConcurrentWriteError
    from memory import writer_lock

    mem.save(tmp_path / "m")
    before = (tmp_path / "m" / "CURRENT").read_text()
    with lock_held_elsewhere(tmp_path / "m"):
        with pytest.raises(ConcurrentWriteError, match="is being written by pid"):
            mem.save(tmp_path / "m")
        with pytest.raises(ConcurrentWriteError, match=r"waited 0.2 s"):
            mem.save(tmp_path / "m", wait=0.2)
    assert (tmp_path / "m" / "CURRENT").read_text() == before
    mem.save(tmp_path / "m")  # released: saving works again
    with writer_lock(tmp_path / "m"):  # re-entrant in the thread that holds it: save inside an edit
        mem.remove(label="class01")
        mem.save(tmp_path / "m")
    assert "class01" not in VisualMemory.load(tmp_path / "m").classes_


def test_approximate_index_is_saved(data, tmp_path):
    X, y, Q, _ = data
    mem = VisualMemory(index="HNSW16", ef_search=32, progress=False)
    mem.add(X, y)
    removed = mem.remove(label="class03")
    _, before = mem.search(Q, 5)
    mem.save(tmp_path / "h")
    back = VisualMemory.load(tmp_path / "h")
    assert back.index_.ann is not None
    _, after = back.search(Q, 5)
    np.testing.assert_array_equal(before, after)
    assert not np.isin(after, removed).any()


def test_mismatched_dim_and_backbone(mem, tmp_path):
    mem.fingerprint = "lite0"
    mem.save(tmp_path / "m")
    with pytest.raises(BackboneMismatchError, match="holds 24-d embeddings, expected 1280-d"):
        VisualMemory.load(tmp_path / "m", dim=1280)
    with pytest.raises(BackboneMismatchError, match="built with backbone 'lite0', not 'lite2'"):
        VisualMemory.load(tmp_path / "m", fingerprint="lite2")


@pytest.mark.parametrize("name", ["index.faiss", "metadata.sqlite", "ids.npy"])
def test_corrupt_file_is_detected(mem, tmp_path, name):
    mem.save(tmp_path / "m")
    snap = next((tmp_path / "m" / "snapshots").iterdir())
    raw = bytearray((snap / name).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (snap / name).write_bytes(bytes(raw))
    with pytest.raises(MemoryFormatError, match=f"{name} is missing or corrupt"):
        VisualMemory.load(tmp_path / "m")


def test_not_a_memory(tmp_path):
    with pytest.raises(MemoryFormatError, match="does not exist"):
        VisualMemory.load(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MemoryFormatError, match="no CURRENT file"):
        VisualMemory.load(tmp_path / "empty")


def test_crash_during_save_keeps_previous_state(mem, data, tmp_path, monkeypatch):
    _, _, Q, _ = data
    mem.save(tmp_path / "m")
    expected = mem.predict_proba(Q)
    mem.remove(label="class00")
    def crash_on_manifest(path, payload):  # every data file is written by then
        raise OSError("disk full")

    monkeypatch.setattr(snapshot, "write_bytes", crash_on_manifest)
    with pytest.raises(OSError, match="disk full"):
        mem.save(tmp_path / "m")
    monkeypatch.undo()
    old = VisualMemory.load(tmp_path / "m")
    np.testing.assert_array_equal(old.predict_proba(Q), expected)
    assert "class00" in old.classes_
    mem.save(tmp_path / "m")  # the next save works and cleans up
    assert "class00" not in VisualMemory.load(tmp_path / "m").classes_


def test_every_file_is_synced_before_the_manifest_and_a_failed_sync_fails_the_save(mem, data, tmp_path, monkeypatch):
    import os

    _, _, Q, _ = data
    mem.save(tmp_path / "m")
    expected = mem.predict_proba(Q)
    events = []
    real_fsync, real_write = os.fsync, snapshot.write_bytes

    def fsync(fd):
        events.append(("sync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        return real_fsync(fd)

    def write_bytes(path, payload):
        events.append(("write", os.path.basename(path)))
        return real_write(path, payload)

    monkeypatch.setattr(snapshot.os, "fsync", fsync)
    monkeypatch.setattr(snapshot, "write_bytes", write_bytes)
    mem.remove(label="class00")
    mem.save(tmp_path / "m")
    manifest = events.index(("write", "manifest.json"))
    listed = json.loads(next((tmp_path / "m").rglob("manifest.json")).read_text())["files"]
    synced = {name for kind, name in events[:manifest] if kind == "sync"}
    assert {os.path.basename(f) for f in listed} <= synced and len(listed) >= 3

    def failing(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(snapshot.os, "fsync", failing)
    mem.remove(label="class01")
    with pytest.raises(OSError, match="I/O error"):
        mem.save(tmp_path / "m")
    monkeypatch.undo()
    back = VisualMemory.load(tmp_path / "m")
    assert "class01" in back.classes_ and "class00" not in back.classes_
    assert not np.array_equal(back.predict_proba(Q), expected)


def test_other_format_version(mem, tmp_path):
    mem.save(tmp_path / "m")
    snap = next((tmp_path / "m" / "snapshots").iterdir())
    manifest = json.loads((snap / "manifest.json").read_text())
    manifest["version"] = 7
    raw = json.dumps(manifest).encode()
    (snap / "manifest.json").write_bytes(raw)
    with pytest.raises(MemoryFormatError, match="manifest.json is corrupt or was edited"):
        VisualMemory.load(tmp_path / "m")
    # A manifest that another release wrote, with its checksum in CURRENT:
    (tmp_path / "m" / "CURRENT").write_text(f"{snap.name}\n{hashlib.sha256(raw).hexdigest()}\n")
    with pytest.raises(MemoryFormatError, match="format version 7"):
        VisualMemory.load(tmp_path / "m")
