"""SIGKILL a writer at random moments: the saved memory is always the old or the new state."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from memory import VisualMemory

ROOT = Path(__file__).resolve().parents[2]
DIM = 16

WRITER = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from memory import VisualMemory

def vec(ids):
    return np.stack([np.random.default_rng(int(i)).standard_normal(16) for i in ids]).astype("float32")

mem = VisualMemory.load(sys.argv[1])
print("ready", flush=True)
while True:
    if len(mem) >= 400:
        mem.remove(mem.ids_[:200])
    new = np.arange(mem._next_id, mem._next_id + 50)
    mem.add(vec(new), [f"c{i % 5}" for i in new], ids=new)
    mem.save(sys.argv[1])
"""


def vec(ids):
    return np.stack([np.random.default_rng(int(i)).standard_normal(DIM) for i in ids]).astype("float32")


def check_consistent(path: Path) -> tuple[int, int]:
    """Load and verify every entry against the deterministic ground truth; returns (n, max id)."""
    mem = VisualMemory.load(path)
    ids = mem.ids_
    assert len(np.unique(ids)) == len(ids)
    expected = vec(ids)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(mem.vectors(ids), expected, atol=1e-6)
    assert [m["label"] for m in mem.get(ids)] == [f"c{i % 5}" for i in ids]
    assert sum(mem.counts("label").values()) == len(mem)
    return len(mem), int(ids.max())


def kill_loop(path: Path, kills: int, seed: int = 0) -> set[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    states = set()
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(ROOT)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()
        time.sleep(rng.uniform(0.0, 0.4))  # somewhere in the add/save loop
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        states.add(check_consistent(path))
    return states


def test_sigkill_during_saves_never_corrupts(tmp_path):
    path = tmp_path / "mem"
    mem = VisualMemory(DIM, progress=False)
    ids = np.arange(100)
    mem.add(vec(ids), [f"c{i % 5}" for i in ids], ids=ids)
    mem.save(path)
    kills = int(os.environ.get("SUPERSUB_KILLS", "10"))
    states = kill_loop(path, kills)
    assert len(states) > 1  # the writer really saved between kills
    mem = VisualMemory.load(path)
    mem.save(path)  # the next save cleans up after killed writers
    assert not list((path / "snapshots").glob(".tmp-*"))
