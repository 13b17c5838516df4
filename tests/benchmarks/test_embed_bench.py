import argparse

from benchmarks.embed_bench import resolution_rows
from benchmarks.tables import embed_table
from memory.embedding._openvino import openvino_has_bf16


def test_resolution_rows_time_and_compare_every_path(tiny_layout):
    images = sorted((tiny_layout["folder"] / "val" / "images").glob("*.JPEG"))
    args = argparse.Namespace(backbone="lite0", threads=2, batch_size=4, eager_images=4, repeats=1)
    row = resolution_rows(64, images, args)
    expected = {"eager fp32", "ONNX Runtime fp32", "OpenVINO fp32"}
    if openvino_has_bf16():
        expected.add("OpenVINO bf16")
    assert set(row["paths"]) == expected
    assert row["paths"]["ONNX Runtime fp32"]["vs_onnx"] == 1.0
    for name in ("eager fp32", "OpenVINO fp32"):
        assert row["paths"][name]["cos_min"] >= 0.9999  # the same fp32 function
    if "OpenVINO bf16" in row["paths"]:
        assert row["default"] == "bf16>blocks.1"
        assert 0.99 <= row["paths"]["OpenVINO bf16"]["cos_min"] < 0.99999
    out = {"backbone": "lite0", "batch_size": 4, "timing": "best of 1", "threads": 2, "images": len(images),
           "eager_images": 4, "sizes": {"64": row}}
    table = embed_table(out)
    assert "| 64 px |" in table and "**1.0x**" in table
