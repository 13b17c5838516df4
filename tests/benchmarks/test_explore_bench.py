import shutil

import pytest

from benchmarks.explore_bench import run
from benchmarks.tables import explore_table
from router import TwoStageClassifier


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_round_trips_are_timed_through_the_page_and_the_api(explore_model):
    images = list(explore_model["val"].paths)
    r = run(explore_model["model"], images, warmup=1)
    clf = TwoStageClassifier.load(explore_model["model"])
    assert r["entries"] == clf.n_entries and r["neighbours_shown"] == clf.k
    assert r["page_upload"]["n"] == r["api"]["n"] == len(images)
    assert r["page_steer"]["n"] == 2 * len(range(0, len(images), 4))
    assert r["page_upload"]["p50_ms"] > 0 and r["api"]["p50_ms"] > 0
    assert r["page_over_api_p50"] == round(r["page_upload"]["p50_ms"] / r["api"]["p50_ms"], 2)
    table = explore_table(r)
    assert f"| {r['page_upload']['p50_ms']:.0f} ms |" in table
