"""The network speed benchmark's paths: eager first (the baseline), OpenVINO bf16 only where the CPU runs it."""

from benchmarks.network_speed_bench import PATHS, _paths
from router import choose_path


def test_eager_is_the_baseline_and_bf16_needs_a_native_cpu():
    paths = _paths()
    assert paths[0] == ("eager torch bf16", "torch", "bf16")
    native = choose_path("auto", "bf16").precision == "bf16"
    assert (("OpenVINO bf16", "openvino", "bf16") in paths) == native
    assert len(paths) == len(PATHS) - (0 if native else 1)
