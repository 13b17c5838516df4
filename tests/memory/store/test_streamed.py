"""Files streamed into a snapshot: hashed and synced as they are written, and trusted only while unchanged."""

import hashlib
import json
import os

import faiss
import numpy as np
import pytest

from memory import VisualMemory
from memory.store import EntryTable, snapshot_writer, write_streamed, writer_lock


def chunks_of(payload: bytes, size: int, *, reuse: bool = False):
    """A producer that hands over ``payload`` ``size`` bytes at a time, optionally from one reused buffer."""
    def produce(sink):
        buf = bytearray(size)
        for a in range(0, len(payload), size):
            piece = payload[a:a + size]
            if reuse:
                buf[:len(piece)] = piece
                sink(memoryview(buf)[:len(piece)])
                buf[:] = b"\xff" * size  # the producer scribbles over its buffer at once
            else:
                sink(piece)
    return produce


@pytest.mark.parametrize("reuse", [False, True])
def test_the_digest_and_the_file_are_the_bytes_produced(tmp_path, reuse):
    payload = np.random.default_rng(0).bytes(1_000_003)
    path = tmp_path / "f.bin"
    digest = write_streamed(path, chunks_of(payload, 4096, reuse=reuse))
    assert path.read_bytes() == payload
    assert digest == hashlib.sha256(payload).hexdigest()


def test_the_file_is_written_back_as_it_grows_and_synced_at_the_end(tmp_path, monkeypatch):
    calls = []
    real_datasync, real_fsync = os.fdatasync, os.fsync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append("datasync"), real_datasync(fd))[1])
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    write_streamed(tmp_path / "f.bin", chunks_of(b"x" * 10_000, 1000), sync_every=2500)
    assert calls.count("datasync") == 3 and calls[-1] == "fsync"  # after 3000, 6000 and 9000 bytes


def test_errors_from_the_producer_and_from_a_sync_are_raised(tmp_path, monkeypatch):
    def broken(sink):
        sink(b"abc")
        raise ValueError("producer failed")

    with pytest.raises(ValueError, match="producer failed"):
        write_streamed(tmp_path / "a.bin", broken)

    def failing(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(OSError, match="I/O error"):
        write_streamed(tmp_path / "b.bin", chunks_of(b"y" * 100, 10), sync_every=20)
    index = faiss.IndexFlatIP(8)
    index.add(np.ones((500, 8), dtype=np.float32))
    with pytest.raises(OSError, match="I/O error"):  # raised through faiss's writer, and named as itself
        write_streamed(tmp_path / "c.faiss", lambda sink: faiss.write_index(index, faiss.PyCallbackIOWriter(sink, 64)),
                       sync_every=256)


def test_a_faiss_index_streams_to_the_bytes_faiss_writes(tmp_path):
    index = faiss.IndexFlatIP(16)
    index.add(np.random.default_rng(1).standard_normal((3000, 16)).astype(np.float32))
    digest = write_streamed(tmp_path / "i.faiss", lambda sink: faiss.write_index(index, faiss.PyCallbackIOWriter(sink, 4096)))
    faiss.write_index(index, str(tmp_path / "ref.faiss"))
    raw = (tmp_path / "i.faiss").read_bytes()
    assert raw == (tmp_path / "ref.faiss").read_bytes() and digest == hashlib.sha256(raw).hexdigest()


class Owner:
    """Something a snapshot is written for."""


def test_a_snapshot_uses_a_streamed_digest_only_while_the_file_is_unchanged(tmp_path):
    root = tmp_path / "s"
    with writer_lock(root), snapshot_writer(Owner(), root, {"format": "test"}) as tmp:
        write_streamed(tmp / "kept.bin", chunks_of(b"kept", 2))
        write_streamed(tmp / "changed.bin", chunks_of(b"first", 2))
        (tmp / "changed.bin").write_bytes(b"rewritten after streaming")
        (tmp / "plain.bin").write_bytes(b"plain")
    snap = next((root / "snapshots").iterdir())
    files = json.loads((snap / "manifest.json").read_text())["files"]
    assert files == {name: hashlib.sha256((snap / name).read_bytes()).hexdigest()
                     for name in ("changed.bin", "kept.bin", "plain.bin")}
    assert (snap / "changed.bin").read_bytes() == b"rewritten after streaming"


def test_a_failed_metadata_write_fails_the_save_and_keeps_the_old_state(mem, data, tmp_path, monkeypatch):
    _, _, Q, _ = data
    mem.save(tmp_path / "m")
    expected = mem.predict_proba(Q)

    def broken(self, path):
        raise OSError("database disk image is malformed")

    monkeypatch.setattr(EntryTable, "write_sqlite", broken)
    mem.remove(label="class00")
    with pytest.raises(OSError, match="malformed"):
        mem.save(tmp_path / "m")
    monkeypatch.undo()
    assert list((tmp_path / "m" / "snapshots").glob(".tmp-*")) == []
    back = VisualMemory.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict_proba(Q), expected)
    assert "class00" in back.classes_
