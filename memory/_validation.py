"""Coercion and checks at the public boundary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ._errors import InputError

__all__ = ["as_embeddings", "as_ids", "as_strings", "check_k"]


def as_embeddings(x: Any, dim: int | None, name: str = "X") -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 array of shape (n, dim).

    Raises :class:`InputError` for non-2-D input, a wrong dimension, an
    empty batch, a non-numeric dtype, NaN or inf.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{name} cannot be read as an array: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{name} must be real-valued, got dtype {arr.dtype}")
    if arr.ndim == 1 and dim is not None and arr.shape[0] == dim:
        raise InputError(
            f"{name} must be 2-D (n, {dim}); for one embedding pass {name}[None, :] or "
            f"{name}.reshape(1, -1)"
        )
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (n_samples, dim), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError(f"{name} is empty: shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise InputError(
            f"expected {dim}-d embeddings, got {arr.shape[1]}-d; embed with the same backbone "
            "as the memory"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise InputError(f"{name} contains NaN or inf (first in row {row}); drop or fix those rows")
    return arr


def as_strings(values: Any, n: int, name: str) -> list[str]:
    """A length-``n`` list of non-empty strings from a scalar or a sequence."""
    if values is None:
        raise InputError(f"{name} is required")
    if isinstance(values, (str, bytes)) or np.isscalar(values):
        return [str(values)] * n
    out = [str(v) for v in np.asarray(values, dtype=object).ravel().tolist()] if not isinstance(
        values, list
    ) else [str(v) for v in values]
    if len(out) != n:
        raise InputError(f"got {len(out)} {name} for {n} embeddings; give one per row")
    if any(v == "" for v in out):
        raise InputError(f"{name} contains an empty string")
    return out


def as_ids(ids: Any, n: int | None = None, name: str = "ids") -> np.ndarray:
    """Entry ids as an int64 array; checks length and uniqueness."""
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name} must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64).ravel()
    if n is not None and arr.shape[0] != n:
        raise InputError(f"got {arr.shape[0]} {name} for {n} embeddings; give one per row")
    if arr.size and arr.min() < 0:
        raise InputError(f"{name} must be non-negative, got {int(arr.min())}")
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise InputError(f"duplicate id {int(uniq[counts > 1][0])} in {name}")
    return arr


def check_k(k: Any, name: str = "k") -> int:
    """``k`` as a positive int."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


def as_set(values: Iterable[Any] | None) -> set[str]:
    if values is None:
        return set()
    if isinstance(values, (str, bytes)) or np.isscalar(values):
        return {str(values)}
    return {str(v) for v in values}


def as_id_set(values: Sequence[int] | np.ndarray | None) -> np.ndarray:
    if values is None:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.asarray(values, dtype=np.int64).ravel())
