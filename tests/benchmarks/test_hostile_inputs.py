"""The hostile-input matrix, one test per case (benchmarks/hostile_inputs.py holds the cases)."""

import pytest

from benchmarks.hostile_inputs import CASES, World, run_case


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return World(tmp_path_factory.mktemp("hostile")).build()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_answered_clearly(case, world):
    case.run(world)


def test_the_matrix_covers_every_family_of_the_report():
    families = {c.family for c in CASES}
    assert families == {"links", "text", "internal errors", "hangs", "web app", "sizes and values", "slow",
                        "messages"}
    assert len({c.name for c in CASES}) == len(CASES)


def test_a_failing_case_is_counted_not_raised(world):
    """The runner records a failed check as a failure with its reason, so the matrix reports it."""
    from benchmarks.hostile_inputs import Case

    def broken(w):
        assert 1 == 2, "as expected"

    row = run_case(Case("broken", "links", broken), world)
    assert row["passed"] is False and "as expected" in row["why"]
