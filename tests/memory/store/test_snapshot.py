"""Snapshot directories: the lock from load to save, refusal of stale saves, and what CURRENT may name."""

import hashlib
import os
import shutil
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from memory import ConcurrentWriteError, MemoryFormatError, VisualMemory, edit_memory

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def saved(mem, tmp_path):
    mem.save(tmp_path / "m")
    return tmp_path / "m"


def test_a_save_after_another_writer_committed_is_refused(saved):
    first, second = VisualMemory.load(saved), VisualMemory.load(saved)
    first.remove(label="class01")
    first.save(saved)
    second.remove(label="class02")
    with pytest.raises(ConcurrentWriteError, match="changed by another writer since it was loaded"):
        second.save(saved)
    back = VisualMemory.load(saved)  # the first edit survives; the refused one left nothing
    assert "class01" not in back.classes_ and "class02" in back.classes_
    first.remove(label="class03")
    first.save(saved)  # a writer that saved last may save again
    assert "class03" not in VisualMemory.load(saved).classes_


def test_a_fresh_memory_replaces_a_saved_one(saved, data):
    X, y, _, _ = data
    new = VisualMemory(progress=False)
    new.add(X[:10], y[:10])
    new.save(saved)  # not loaded from there: a replacement, as 'supersub build -o' is
    assert len(VisualMemory.load(saved)) == 10


def _edit_in_process(path, label, started):
    with edit_memory(path, wait=30) as mem:
        started.set()
        time.sleep(0.5)  # hold the lock across a slow edit
        mem.remove(label=label)


@pytest.mark.subprocess
def test_edit_blocks_serialise_two_processes(saved):
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    proc = ctx.Process(target=_edit_in_process, args=(saved, "class01", started))
    proc.start()
    try:
        assert started.wait(60)
        with edit_memory(saved, wait=30) as mem:  # waits for the other edit, then sees it
            assert "class01" not in mem.classes_
            mem.remove(label="class02")
    finally:
        proc.join(60)
    assert proc.exitcode == 0
    back = VisualMemory.load(saved)
    assert "class01" not in back.classes_ and "class02" not in back.classes_


def test_an_edit_block_that_raises_saves_nothing(saved):
    before = (saved / "CURRENT").read_text()
    with pytest.raises(RuntimeError, match="changed my mind"):
        with edit_memory(saved) as mem:
            mem.remove(label="class01")
            raise RuntimeError("changed my mind")
    assert (saved / "CURRENT").read_text() == before
    assert "class01" in VisualMemory.load(saved).classes_


def test_waiting_writer_gives_up_with_a_clear_error(saved, lock_held_elsewhere):
    with lock_held_elsewhere(saved):
        start = time.monotonic()
        with pytest.raises(ConcurrentWriteError, match=r"is being written by pid \d+ \(waited 0.3 s\)"):
            with edit_memory(saved, wait=0.3):
                pass
        assert time.monotonic() - start >= 0.3


@pytest.mark.parametrize("name", ["../../elsewhere/snapshots/20260101T000000-1-000000000",
                                  "/etc", "20260101T000000-1-000000000/../x", ""])
def test_current_may_only_name_a_snapshot_of_its_directory(saved, name):
    (saved / "CURRENT").write_text(f"{name}\n{'0' * 64}\n")
    with pytest.raises(MemoryFormatError, match="must name a snapshot inside"):
        VisualMemory.load(saved)


def test_a_planted_symlink_is_not_followed(saved, tmp_path, mem):
    mem.save(tmp_path / "other")
    other = next(p for p in (tmp_path / "other" / "snapshots").iterdir())
    link = saved / "snapshots" / "20990101T000000-1-000000000"
    link.symlink_to(other, target_is_directory=True)
    digest = hashlib.sha256((other / "manifest.json").read_bytes()).hexdigest()
    (saved / "CURRENT").write_text(f"{link.name}\n{digest}\n")
    with pytest.raises(MemoryFormatError, match="is a symbolic link"):
        VisualMemory.load(saved)


def _tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("linked", ["snapshots", "CURRENT", ".lock"])
def test_a_linked_part_is_refused_and_the_other_memory_is_untouched(saved, tmp_path, mem, linked):
    """A model whose snapshots/ (or CURRENT, or .lock) links into another model's folder."""
    other = tmp_path / "other"
    mem.save(other)
    before = _tree_bytes(other)
    target = saved / linked
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)
    target.symlink_to(other / linked, target_is_directory=linked == "snapshots")
    with pytest.raises(MemoryFormatError, match="is a symbolic link"):
        VisualMemory.load(saved)
    for _ in range(2):  # two edits: the first would have left a new snapshot, the second deleted the old one
        with pytest.raises(MemoryFormatError, match="is a symbolic link"):
            with edit_memory(saved) as m:
                m.add(np.ones((1, m.dim), np.float32), "c0")
        with pytest.raises(MemoryFormatError, match="is a symbolic link"):
            mem.save(saved)
    assert _tree_bytes(other) == before
    assert len(VisualMemory.load(other)) == len(mem)


def test_an_unlisted_file_in_a_snapshot_is_refused(saved):
    snap = next(p for p in (saved / "snapshots").iterdir())
    (snap / "router.pt").write_bytes(b"planted")
    with pytest.raises(MemoryFormatError, match="router.pt is not listed in"):
        VisualMemory.load(saved)


@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_a_snapshot_holds_only_regular_files(saved, kind):
    snap = next(p for p in (saved / "snapshots").iterdir())
    if kind == "fifo":
        os.mkfifo(snap / "extra")
        match = "is a FIFO"
    else:
        (snap / "ids.npy").rename(snap / "ids.real")
        (snap / "ids.npy").symlink_to(snap / "ids.real")
        match = "is a symbolic link"
    with pytest.raises(MemoryFormatError, match=match):
        VisualMemory.load(saved)


def test_stale_temporaries_are_removed_on_open_and_on_save(saved, mem):
    for i in range(5):
        (saved / "snapshots" / f".tmp-dead{i}").mkdir()
    VisualMemory.load(saved)
    assert not list((saved / "snapshots").glob(".tmp-*"))
    (saved / "snapshots" / ".tmp-dead").mkdir()
    mem.save(saved)
    assert not list((saved / "snapshots").glob(".tmp-*"))


def test_a_reader_leaves_a_busy_writers_temporary_alone(saved, lock_held_elsewhere):
    busy = saved / "snapshots" / ".tmp-busy"
    with lock_held_elsewhere(saved):  # a writer holds the lock: its temporary is live
        busy.mkdir()
        VisualMemory.load(saved)
        assert busy.is_dir()
    VisualMemory.load(saved)  # once it is gone, the temporary is stale and goes
    assert not busy.exists()


WRITER = """
import sys, time
sys.path.insert(0, sys.argv[3])
from memory import ConcurrentWriteError, VisualMemory, edit_memory
import numpy as np
try:
    with edit_memory(sys.argv[1], wait=float(sys.argv[4])) as mem:
        time.sleep(0.3)
        rng = np.random.default_rng(int(sys.argv[2]))
        mem.add(rng.standard_normal((5, 24)).astype("float32"), "c", source=f"writer{sys.argv[2]}")
    print("acknowledged")
except ConcurrentWriteError as exc:
    print("refused", exc)
"""


@pytest.mark.subprocess
@pytest.mark.parametrize("wait", [30.0, 0.0])
def test_staggered_python_writers_lose_nothing(saved, wait):
    """Processes doing load -> edit -> save, started 0 to 0.4 s apart: every acknowledged edit is kept."""
    procs = []
    for i in range(4):
        procs.append(subprocess.Popen([sys.executable, "-c", WRITER, str(saved), str(i), str(ROOT), str(wait)],
                                      stdout=subprocess.PIPE, text=True))
        time.sleep(0.1 * i)
    said = [p.communicate(timeout=120)[0].strip() for p in procs]
    counts = VisualMemory.load(saved).counts("source")
    for i, out in enumerate(said):
        if out == "acknowledged":
            assert counts.get(f"writer{i}") == 5
        else:
            assert out.startswith("refused") and "being written" in out and f"writer{i}" not in counts
    if wait:
        assert said == ["acknowledged"] * 4
    assert np.sum([s == "acknowledged" for s in said]) >= 1
