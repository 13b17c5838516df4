import numpy as np
import pytest

from benchmarks.scoring_bench import run, summary
from benchmarks.tables import scoring_table
from memory.store import scoring_mode, use_low_precision


@pytest.mark.skipif(scoring_mode() == "fp32", reason="this CPU has no low-precision pass")
def test_a_small_grid_times_both_paths_and_records_the_rules_choice():
    out = run((600, 3000), (256,), (1, 32), repeats=1)
    assert [(r["rows"], r["queries"]) for r in out["rows"]] == [(600, 1), (600, 32), (3000, 1), (3000, 32)]
    for r in out["rows"]:
        assert r["fp32_ms"] > 0 and r["lowp_ms"] > 0
        assert r["speedup"] == pytest.approx(r["fp32_ms"] / r["lowp_ms"], rel=0.02, abs=0.01)
        assert r["rule_takes_lowp"] == use_low_precision(r["queries"], r["rows"], r["dim"], out["mode"])
    assert out["summary"]["cells"] == 4
    table = scoring_table(out)
    assert "| 3,000 | 256 |" in table and f"rule takes the faster path in {out['summary']['rule_takes_the_faster_path']} of 4" in table


def test_the_summary_scores_the_rule_against_the_faster_path():
    rows = [{"rows": 1, "dim": 256, "queries": 1, "fp32_ms": 2.0, "lowp_ms": 1.0, "rule_takes_lowp": True},
            {"rows": 2, "dim": 256, "queries": 1, "fp32_ms": 1.0, "lowp_ms": 4.0, "rule_takes_lowp": True},
            {"rows": 3, "dim": 256, "queries": 1, "fp32_ms": 1.0, "lowp_ms": 2.0, "rule_takes_lowp": False}]
    s = summary(rows)
    assert s["rule_takes_the_faster_path"] == 2
    assert s["geomean_taken_over_faster"] == pytest.approx(4 ** (1 / 3), abs=1e-3)  # 1 x 4 x 1
    assert s["geomean_speedup_of_the_rule_over_fp32"] == pytest.approx((2 * 0.25 * 1) ** (1 / 3), abs=1e-3)
    assert s["worst_cell"] == {"rows": 2, "dim": 256, "queries": 1, "taken_over_faster": 4.0}
    assert np.isfinite(s["geomean_taken_over_faster"])
