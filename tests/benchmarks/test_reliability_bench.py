"""A fast subset of the reliability benchmark: concurrent writers and kills in the write window."""

import pytest

pytestmark = pytest.mark.subprocess

from benchmarks.reliability_bench import concurrent_writers, kills_in_write_window


@pytest.mark.parametrize("locked", [True, False])
def test_concurrent_writers_lose_no_acknowledged_edit(locked):
    row = concurrent_writers(reps=2, locked=locked)
    assert row["lost"] == 0
    assert row["acknowledged"] == row["present"] >= 2
    assert row["acknowledged"] + row["refused"] == 4
    if locked:  # holding the lock from load to save, the second writer waits instead of failing
        assert row["refused"] == 0


@pytest.mark.parametrize("kind, entries", [("memory", 20_000), ("classifier", 4_000)])
def test_kills_inside_the_write_window_leave_a_loadable_state(kind, entries):
    row = kills_in_write_window(3, kind, entries=entries)
    assert row["kills_inside_write_window"] >= 1
    assert row["loads_consistent"] == row["kills"] == row["temporaries_removed_on_next_open"]
