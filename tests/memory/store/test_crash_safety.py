"""SIGKILL a writer at random moments: the saved memory is always the old or the new state."""

import os
import time

import numpy as np

from memory import VisualMemory


def test_sigkill_during_saves_never_corrupts(saved_memory, saving_writer, check_consistent):
    rng = np.random.default_rng(0)
    kills = int(os.environ.get("SUPERSUB_KILLS", "10"))
    states = set()
    for _ in range(kills):
        writer = saving_writer(saved_memory)
        time.sleep(rng.uniform(0.0, 0.4))  # somewhere in the add/save loop
        writer.kill()
        states.add(check_consistent(saved_memory))
    assert len(states) > 1  # the writer really saved between kills
    mem = VisualMemory.load(saved_memory)
    mem.save(saved_memory)  # the next save cleans up after killed writers
    assert not list((saved_memory / "snapshots").glob(".tmp-*"))
