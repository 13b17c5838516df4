import argparse

from benchmarks.embed_bench import resolution_rows
from benchmarks.tables import embed_table
from memory.embedding import openvino_has_bf16


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
        assert row["default"] == "bf16>blocks.2"
        assert 0.99 <= row["paths"]["OpenVINO bf16"]["cos_min"] < 0.99999
    out = {"backbone": "lite0", "batch_size": 4, "timing": "best of 1", "threads": 2, "images": len(images),
           "eager_images": 4, "sizes": {"64": row}}
    table = embed_table(out)
    assert "| 64 px |" in table and "**1.0x**" in table


def test_the_knn_change_is_paired_and_carries_its_standard_error():
    import numpy as np

    from benchmarks.embed_bench import knn_change

    fp32 = np.array([True] * 60 + [False] * 40)
    bf16 = fp32.copy()
    bf16[:3] = False  # 3 lost
    bf16[60:68] = True  # 8 gained
    got = knn_change({"fp32": fp32, "bf16": bf16})
    assert got["top1"] == {"fp32": 0.6, "bf16": 0.65}
    assert got["flips"] == {"bf16": {"gained": 8, "lost": 3}}
    assert got["change_points"] == {"bf16": 5.0}
    assert got["change_se_points"] == {"bf16": round(100 * np.sqrt(11) / 100, 2)}
