"""The epoch study of the precision benchmark: its training step and its table."""

import numpy as np
import torch

from benchmarks.precision_bench import EPOCH_SETTINGS, timed_epoch
from benchmarks.tables import precision_table
from router import paired_difference


def test_the_timed_step_trains_the_tail_in_every_layout(lite0_64):
    from router import split_backbone

    split = split_backbone(lite0_64)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    A = split.run_trunk(x.repeat(64, 1, 1, 1) + 0.3 * torch.randn(64, 3, 64, 64)).numpy().astype(np.float16)
    y = torch.from_numpy(rng.integers(0, 3, size=64))
    for layout in ("rows", "nchw", "channels-last"):
        tail = split.tail(3)
        if layout == "channels-last":
            tail = tail.to(memory_format=torch.channels_last)
        before = [p.detach().clone() for p in tail.parameters()]
        phases = timed_epoch(tail, A, y, layout=layout, precision="bf16", batch_size=16)
        assert set(phases) == {"batch", "forward", "backward", "optimiser"} and min(phases.values()) > 0
        assert any(not torch.equal(a, b) for a, b in zip(before, tail.parameters()))  # the step trained it


def test_the_epoch_table_shows_each_setting_against_the_library():
    rows = {name: {"images_per_s": 1000.0 / (i + 1), "seconds": 10.0 * (i + 1), "against_library": round(1 / (i + 1), 2),
                   "phases_s": {"batch": 0.2 * (i + 1), "forward": 3.0 * (i + 1), "backward": 6.5 * (i + 1),
                                "optimiser": 0.3 * (i + 1)}}
            for i, (name, *_) in enumerate(EPOCH_SETTINGS)}
    r = {"matmul_gflops": {"fp32": 1, "bf16": 2}, "matmul_speedup": 2.0,
         "trunk": {"fp32": {"images_per_s": 1}, "bf16": {"images_per_s": 2}, "speedup": 2.0, "cosine_min": 0.99,
                   "cosine_mean": 0.999},
         "tail": {"fp32": {"images_per_s": 1, "top1": 0.5}, "bf16": {"images_per_s": 2, "top1": 0.5}, "speedup": 2.0,
                  "top1_change": paired_difference([True, False, True, False], [True, True, False, False]).to_dict()},
         "setup": {"trunk_images": 8, "epochs": 1, "train": 10},
         "epoch": {"machine": {"cpu_model": "Test CPU", "matrix_flags": [], "date": "2026-01-01"}, "images": 20000,
                   "activations": [192, 5, 5], "rows": rows}}
    table = precision_table(r)
    assert "| bf16, rows, all cores (the library's) | 1,000 | **1.0x** | 2% | 30% | 65% | 3% |" in table
    assert "| bf16, modules NCHW, all cores | 500 | **0.5x** |" in table
    assert "20,000 cached activations of shape (192, 5, 5)" in table
    lo, hi = r["tail"]["top1_change"]["interval_95"]  # an accuracy change comes with its paired interval
    assert f"| 50.0% | 50.0% | +0.00 [{100 * lo:+.2f}, {100 * hi:+.2f}], p = 1: a tie (points, paired 95%) |" in table
