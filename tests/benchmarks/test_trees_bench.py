"""The one-parent-rule figures in the README are what the benchmark computes now."""

import json

from benchmarks.trees_bench import run
from benchmarks._common import RESULTS


def test_tree_rule_figures_match_the_results_file():
    fresh = run()
    saved = json.loads((RESULTS / "trees.json").read_text())["rules"]
    assert fresh == saved
    for ds in ("tiny-imagenet-200", "imagenet-1k"):
        rows = fresh[ds]
        assert rows["specificity"]["mean_shortfall"] < rows["coverage"]["mean_shortfall"]
        assert rows["specificity"]["mean_shortfall"] < rows["deepest"]["mean_shortfall"]
        assert rows["specificity"]["dogs_and_cats_outside_placental"] == 0
