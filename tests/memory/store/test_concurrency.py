"""Readers predicting while a writer edits; readers of a directory while a process saves to it."""

import threading

import numpy as np

from memory import ConcurrentWriteError, VisualMemory

DIM = 16


def vec(ids):
    return np.stack([np.random.default_rng(int(i)).standard_normal(DIM) for i in ids]).astype("float32")


def test_threads_read_while_a_writer_edits_and_saves(tmp_path):
    mem = VisualMemory(DIM, k=5, voting="plurality", progress=False)
    ids = np.arange(200)
    mem.add(vec(ids), [f"c{i % 7}" for i in ids], ids=ids)
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = [0]

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                q = rng.standard_normal((8, DIM)).astype(np.float32)
                for e in mem.explain(q):
                    got = [n.id for n in e.neighbours]
                    assert len(set(got)) == len(got) == 5
                    assert all(n.label == f"c{n.id % 7}" for n in e.neighbours)  # no torn rows
                np.testing.assert_allclose(mem.predict_proba(q).sum(1), 1.0)
                reads[0] += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def writer() -> None:
        try:
            next_id = 200
            for step in range(40):
                new = np.arange(next_id, next_id + 20)
                next_id += 20
                mem.add(vec(new), [f"c{i % 7}" for i in new], ids=new)
                mem.remove(mem.ids_[:10])
                if step % 10 == 0:
                    mem.save(tmp_path / "m")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    w = threading.Thread(target=writer)
    w.start()
    w.join()
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert reads[0] > 0
    assert len(mem) == 200 + 40 * 10


def test_readers_load_while_another_process_saves(saved_memory, saving_writer, check_consistent):
    writer = saving_writer(saved_memory)
    try:
        seen = {check_consistent(saved_memory) for _ in range(30)}
        # While it saves in a loop, a second writer here is either refused with a clear
        # error or succeeds whole; the directory stays consistent either way.
        mem = VisualMemory.load(saved_memory)
        outcomes = set()
        for _ in range(200):
            try:
                mem.save(saved_memory)
                outcomes.add("saved")
            except ConcurrentWriteError as exc:
                # The other writer holds the lock, or committed since this copy was loaded.
                assert "is being written by" in str(exc) or "changed by another writer" in str(exc)
                outcomes.add("refused")
                mem = VisualMemory.load(saved_memory)
        check_consistent(saved_memory)
        assert writer.proc.poll() is None  # the other writer is still running
    finally:
        writer.kill()
    # The readers saw the other process's commits, and this writer met it at least once.
    assert len(seen) > 1 and "refused" in outcomes
