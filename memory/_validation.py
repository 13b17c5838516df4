"""Coercion and checks at the public boundary."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from hierarchy import normalize_name

from ._errors import InputError, InputTypeError
from ._parallel import in_parts

__all__ = ["Rows", "as_embeddings", "as_ids", "as_strings", "check_k", "check_weight", "env_precision", "prepare_rows",
           "row_norms"]


def as_embeddings(x: Any, dim: int | None, name: str = "X", owner: str = "the memory", *,
                  check_finite: bool = True) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 array of shape (n, dim).

    Raises :class:`InputError` for sparse, non-2-D, empty or featureless
    input, a wrong dimension, a non-numeric or complex dtype, NaN or inf.
    The messages contain scikit-learn's wording for the same faults, so
    that tools written against scikit-learn recognise them; ``owner`` names
    what expects ``dim`` features.  ``check_finite=False`` leaves NaN and
    inf to the caller (:func:`row_norms` finds them in the pass it makes anyway).
    """
    if type(x).__module__.startswith("scipy.sparse"):
        raise InputError(f"{name} is a sparse matrix, and sparse input is not supported; pass {name}.toarray()")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{name} cannot be read as an array: {exc}") from exc
    if arr.dtype == object:  # numbers held as Python objects: read them as numbers, as numpy would
        try:
            arr = arr.astype(np.float64)
        except TypeError as exc:
            raise InputTypeError(f"{name} must be numeric: {exc}") from exc
        except ValueError as exc:
            raise InputError(f"{name} must be numeric: {exc}") from exc
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"Complex data not supported: {name} must be real-valued, got dtype {arr.dtype}")
    if arr.ndim == 1 and dim is not None and arr.shape[0] == dim:
        raise InputError(
            f"{name} must be 2-D (n, {dim}). Reshape your data: for one embedding pass {name}[None, :] "
            f"or {name}.reshape(1, -1)"
        )
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (n_samples, dim), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError(f"{name} is empty: shape {arr.shape}")
    if arr.shape[1] == 0:
        raise InputError(f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required. "
                         "Give one column per embedding dimension")
    if dim is not None and arr.shape[1] != dim:
        raise InputError(
            f"expected {dim}-d embeddings, got {arr.shape[1]}-d ({name} has {arr.shape[1]} features, but "
            f"{owner} is expecting {dim} features as input); embed with the same backbone as {owner}"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if check_finite:
        _refuse_non_finite(arr, name)
    return arr


def _refuse_non_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise InputError(f"{name} contains NaN or inf (first in row {row}); drop or fix those rows")


def row_norms(X: np.ndarray, name: str = "X", chunk: int = 256) -> np.ndarray:
    """L2 norms of the rows of a float32 array, refusing NaN and inf in the same pass.

    Bit for bit ``np.linalg.norm(X, axis=1)``, computed a cache-sized block
    of rows at a time, so no temporary the size of ``X`` is made.  A row
    whose sum of squares is not finite holds NaN or inf (refused with
    :class:`InputError`) or values so large that their squares overflow
    float32; those rows are summed in float64.

    Parameters
    ----------
    X : ndarray of shape (n, dim), float32, C-contiguous
    name : str
        What the error message calls ``X``.

    Returns
    -------
    ndarray of shape (n,), float32
    """
    n = X.shape[0]
    sq = np.empty(n, dtype=np.float32)

    def sums(start: int, stop: int) -> None:  # the cores each take a block of rows
        buf = np.empty((min(chunk, stop - start), X.shape[1]), dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):  # such rows are found and handled below
            for a in range(start, stop, chunk):
                b = min(stop, a + chunk)
                np.multiply(X[a:b], X[a:b], out=buf[: b - a])
                np.add.reduce(buf[: b - a], axis=1, out=sq[a:b])

    in_parts(sums, 0, n)
    big = ~np.isfinite(sq)
    if big.any():
        rows = np.flatnonzero(big)
        bad = rows[~np.isfinite(X[rows]).all(axis=1)]
        if bad.size:
            raise InputError(f"{name} contains NaN or inf (first in row {int(bad[0])}); drop or fix those rows")
        wide = X[rows].astype(np.float64)
        norm64 = np.sqrt(np.einsum("ij,ij->i", wide, wide))
        huge = norm64 > np.finfo(np.float32).max
        if huge.any():
            raise InputError(f"row {int(rows[huge][0])} of {name} has a norm beyond float32's range; "
                             "scale the embeddings down")
        norms = np.sqrt(sq)
        norms[rows] = norm64.astype(np.float32)
        return norms
    return np.sqrt(sq)


def as_strings(values: Any, n: int, name: str) -> list[str]:
    """A length-``n`` list of non-empty strings from a scalar or a sequence, in Unicode NFC.

    A composed and a decomposed spelling of one name are one name
    (:func:`hierarchy.normalize_name`).
    """
    if values is None:
        raise InputError(f"{name} is required")
    if isinstance(values, (str, bytes)) or np.isscalar(values):
        return [normalize_name(str(values))] * n
    given = values if isinstance(values, list) else np.asarray(values, dtype=object).ravel().tolist()
    try:  # each distinct value is spelled once; typed keys keep 1, 1.0 and True apart
        spelled = {(type(v), v): "" for v in given}
    except TypeError:  # an unhashable value: spell each one
        out = [normalize_name(str(v)) for v in given]
    else:
        for key in spelled:
            spelled[key] = normalize_name(str(key[1]))
        out = [spelled[(type(v), v)] for v in given]
    if len(out) != n:
        raise InputError(f"got {len(out)} {name} for {n} embeddings; give one per row")
    if any(v == "" for v in out):
        raise InputError(f"{name} contains an empty string")
    return out


def check_weight(weight: Any) -> float:
    """A vote weight: a finite real number >= 0."""
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, (int, float, np.integer, np.floating)) \
            or not np.isfinite(weight) or weight < 0:
        raise InputError(f"weight must be a finite number >= 0, got {weight!r}")
    return float(weight)


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


def env_precision(variable: str) -> str:
    """``$variable`` as ``"fp32"`` or ``"bf16"``; ``""`` when unset.  Any other value is refused."""
    value = os.environ.get(variable, "").strip().lower()
    if value and value not in ("fp32", "bf16"):
        raise InputError(f"{variable}={value!r} is not a precision; use fp32 or bf16")
    return value


def check_k(k: Any, name: str = "k") -> int:
    """``k`` as a positive int."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


def as_set(values: Iterable[Any] | None) -> set[str]:
    if values is None:
        return set()
    if isinstance(values, (str, bytes)) or np.isscalar(values):
        return {normalize_name(str(values))}
    return {normalize_name(str(v)) for v in values}


def as_id_set(values: Sequence[int] | np.ndarray | None) -> np.ndarray:
    if values is None:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.asarray(values, dtype=np.int64).ravel())


class Rows:
    """Validated rows for an add: the vectors (normalised, or with their norms) and one metadata value per row."""

    __slots__ = ("X", "labels", "superclasses", "sources", "refs", "weight", "ids", "norms")

    def __init__(self, X: np.ndarray, labels: list[str], superclasses: list[str], sources: list[str],
                 refs: list[str | None], weight: float, ids: np.ndarray | None, *,
                 norms: np.ndarray | None = None) -> None:
        self.X, self.labels, self.superclasses, self.sources = X, labels, superclasses, sources
        self.refs, self.weight, self.ids = refs, weight, ids
        self.norms = norms  # the divisor of each row (1 for a zero row); None once X is normalised

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def normalized(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop`` of ``X`` divided by their norms, written to ``out`` if given.

        Rows normalised already (``norms`` None) are returned, or copied to ``out``, as they are.
        """
        if self.norms is None:
            if out is None:
                return self.X[start:stop]
            out[...] = self.X[start:stop]
            return out
        return np.divide(self.X[start:stop], self.norms[start:stop, None], out=out)


def prepare_rows(X: Any, labels: Any, *, dim: int | None, ids: Any = None, superclass: Any = "",
                 source: Any = "default", refs: Any = None, weight: float = 1.0,
                 allow_zero: bool = False, normalize: bool = True) -> Rows:
    """Check and normalise everything an add needs before anything is written.

    Raises :class:`InputError` for a wrong shape or dimension, NaN/inf, zero
    vectors (unless ``allow_zero``: they stay zero), mismatched lengths, a bad
    weight or malformed ids.  ``normalize=False`` keeps ``X`` as given, with
    the norms in ``rows.norms``, for a caller that divides the rows straight
    into their storage (:meth:`Rows.normalized`) instead of through a copy.
    """
    X = as_embeddings(X, dim, check_finite=False)
    n = X.shape[0]
    norms = row_norms(X)  # refuses NaN and inf
    labels_ = as_strings(labels, n, "labels")
    supers = (
        [""] * n if isinstance(superclass, str) and superclass == ""
        else as_strings(superclass, n, "superclass")
    )
    sources = as_strings(source, n, "source")
    refs_ = [None] * n if refs is None else [None if r is None else str(r) for r in refs]
    if len(refs_) != n:
        raise InputError(f"got {len(refs_)} refs for {n} embeddings; give one per row")
    if not np.isfinite(weight) or weight < 0:
        raise InputError(f"weight must be a finite number >= 0, got {weight!r}")
    new_ids = None if ids is None else as_ids(ids, n)
    if (norms == 0).any() and not allow_zero:
        raise InputError(f"row {int(np.argmin(norms))} of X is a zero vector; it has no direction")
    rows = Rows(X, labels_, supers, sources, refs_, float(weight), new_ids, norms=np.where(norms > 0, norms, 1.0))
    if normalize:
        rows.X, rows.norms = rows.normalized(0, n), None
    return rows


def check_knn(k: Any, voting: str, temperature: Any) -> tuple[int, str, float]:
    """Validate a memory's kNN settings: ``k >= 1``, a known voting rule, ``temperature > 0``."""
    from .store import get_voting

    k = check_k(k)
    get_voting(voting)
    if not temperature > 0:
        raise InputError(f"temperature must be > 0, got {temperature!r}")
    return k, voting, float(temperature)
