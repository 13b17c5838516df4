import numpy as np
import pytest

from memory import VisualMemory


def clustered(n: int, dim: int, n_classes: int, seed: int = 0, spread: float = 0.6,
              sample_seed: int | None = None):
    """Gaussian clusters; ``seed`` fixes the centres, ``sample_seed`` the samples."""
    centres = np.random.default_rng(seed).normal(size=(n_classes, dim))
    rng = np.random.default_rng(seed if sample_seed is None else sample_seed + 1000)
    y = rng.integers(0, n_classes, size=n)
    X = (centres[y] + spread * rng.normal(size=(n, dim))).astype(np.float32)
    return X, np.array([f"class{c:02d}" for c in y])


@pytest.fixture
def data():
    X, y = clustered(1200, 24, 8, seed=0)
    Q, qy = clustered(300, 24, 8, seed=0, sample_seed=1)
    return X, y, Q, qy


@pytest.fixture
def mem(data):
    X, y, _, _ = data
    m = VisualMemory(k=10, progress=False)
    sources = np.where(np.arange(len(X)) % 3 == 0, "web", "lab")
    supers = np.array(["A" if int(l[-2:]) < 4 else "B" for l in y])
    m.add(X, y, source=sources, superclass=supers, refs=[f"img{i}.jpg" for i in range(len(X))])
    return m


def brute_force(X, Q, k):
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    sims = Qn @ Xn.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, 1), order


@pytest.fixture(scope="session")
def make_clustered():
    return clustered


@pytest.fixture(scope="session")
def exact_knn():
    return brute_force


DIM_W = 16
WRITER = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[2])
import time
from memory import ConcurrentWriteError, VisualMemory

def vec(ids):
    return np.stack([np.random.default_rng(int(i)).standard_normal(16) for i in ids]).astype("float32")

mem = VisualMemory.load(sys.argv[1])
print("ready", flush=True)
while True:
    if len(mem) >= 400:
        mem.remove(mem.ids_[:200])
    new = np.arange(mem.table_.next_id, mem.table_.next_id + 50)
    mem.add(vec(new), [f"c{i % 5}" for i in new], ids=new)
    try:
        mem.save(sys.argv[1])
    except ConcurrentWriteError:  # another writer holds the lock or committed: start from its state
        time.sleep(0.001)
        mem = VisualMemory.load(sys.argv[1])
"""


def _vec16(ids):
    return np.stack([np.random.default_rng(int(i)).standard_normal(DIM_W) for i in ids]).astype("float32")


class SavingWriter:
    """A separate process that edits and saves a memory directory in a loop, until killed."""

    def __init__(self, path):
        import subprocess
        import sys
        from pathlib import Path

        root = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(root)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().strip()
        assert line == b"ready", self.proc.stderr.read().decode()

    def kill(self):
        import os
        import signal

        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def saved_memory(tmp_path):
    """A saved 16-d memory whose vectors and labels are functions of the ids."""
    path = tmp_path / "mem"
    mem = VisualMemory(DIM_W, progress=False)
    ids = np.arange(100)
    mem.add(_vec16(ids), [f"c{i % 5}" for i in ids], ids=ids)
    mem.save(path)
    return path


@pytest.fixture(scope="session")
def check_consistent():
    def check(path):
        """Load and verify every entry against the ground truth; returns (n, max id)."""
        mem = VisualMemory.load(path)
        ids = mem.ids_
        assert len(np.unique(ids)) == len(ids)
        expected = _vec16(ids)
        expected /= np.linalg.norm(expected, axis=1, keepdims=True)
        np.testing.assert_allclose(mem.vectors(ids), expected, atol=1e-6)
        assert [m["label"] for m in mem.get(ids)] == [f"c{i % 5}" for i in ids]
        assert sum(mem.counts("label").values()) == len(mem)
        return len(mem), int(ids.max())

    return check


@pytest.fixture(scope="session")
def saving_writer():
    return SavingWriter


@pytest.fixture
def lock_held_elsewhere():
    """``with lock_held_elsewhere(path):`` -- another thread holds the writer lock of ``path`` meanwhile."""
    import contextlib
    import threading

    from memory import writer_lock

    @contextlib.contextmanager
    def hold(path):
        held, release = threading.Event(), threading.Event()

        def other_writer():
            with writer_lock(path):
                held.set()
                release.wait(30)

        t = threading.Thread(target=other_writer)
        t.start()
        try:
            assert held.wait(30)
            yield
        finally:
            release.set()
            t.join()

    return hold
