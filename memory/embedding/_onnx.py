"""Exporting a torch module to ONNX once, and running it with ONNX Runtime on the CPU."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from hierarchy import atomic_file

from .._parallel import usable_cores

__all__ = ["export_onnx", "onnx_session", "usable_cores"]


def export_onnx(module: Any, example: Any, path: str | Path, *, input_name: str, output_name: str) -> Path:
    """Write ``module`` (in eval mode, one input, one output) to ``path`` as ONNX, atomically.

    The batch axis stays dynamic.  The TorchScript exporter needs no extra
    packages (the newer ``torch.export`` one needs onnxscript); both give the
    same graph for these convolutional networks.

    Parameters
    ----------
    module : torch.nn.Module
    example : torch.Tensor
        An input of the right shape; its batch size does not matter.
    path : path
    input_name, output_name : str
    """
    import torch

    path = Path(path)
    with atomic_file(path) as fh, torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module.eval(), (example,), fh, input_names=[input_name], output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}}, opset_version=17, dynamo=False,
        )
    return path


def onnx_session(path: str | Path, threads: int) -> Any:
    """An ONNX Runtime CPU session of the graph at ``path`` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
