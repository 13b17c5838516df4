"""Symmetric per-row int8 quantisation, shared by both kinds of delta specialists."""

from __future__ import annotations

import numpy as np

__all__ = ["dequantise_int8", "quantise_int8"]


def quantise_int8(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8 quantisation: returns (int8 matrix, float32 row scales)."""
    m = np.asarray(m, dtype=np.float32)
    scale = np.abs(m).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(m / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def dequantise_int8(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The float32 matrix a :func:`quantise_int8` pair stands for."""
    return q.astype(np.float32) * scale[:, None]
