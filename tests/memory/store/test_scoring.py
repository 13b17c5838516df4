"""The scoring mode, its error bounds and the fp32 re-rank kernel."""

import faiss
import numpy as np
import pytest

from memory.store import SCORING_ENV, bf16_error_bound, exact_scores, scoring_mode
from memory.store import bf16_accumulates_in_fp32, scoring_mode_for


def unit(A):
    A = np.asarray(A, dtype=np.float32)
    return np.ascontiguousarray(A / np.linalg.norm(A, axis=1, keepdims=True))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_the_bf16_product_stays_inside_the_documented_error_bound(rng):
    import torch

    assert bf16_accumulates_in_fp32()
    X = unit(np.abs(rng.standard_normal((500, 1280))) + 0.5)  # all-positive: the worst case for rounding
    Q = unit(np.concatenate([X[:50], rng.standard_normal((50, 1280))]))
    approx = (torch.from_numpy(Q).to(torch.bfloat16) @ torch.from_numpy(X).to(torch.bfloat16).T).float().numpy()
    err = np.abs(approx - Q.astype(np.float64) @ X.astype(np.float64).T).max()
    eps, g = bf16_error_bound(1280)
    assert err <= eps
    assert eps < 0.0125 and g < 1e-4  # the margin the re-rank pays for


def test_the_environment_variable_chooses_the_path(monkeypatch):
    for mode in ("fp32", "bf16", "int8"):
        monkeypatch.setenv(SCORING_ENV, mode)
        assert scoring_mode() == mode
    monkeypatch.setenv(SCORING_ENV, "fast")
    with pytest.raises(ValueError, match="SUPERSUB_SCORING='fast'"):
        scoring_mode()


def test_the_cpu_flags_choose_the_default():
    assert scoring_mode_for(frozenset({"amx_bf16", "amx_int8", "avx512_vnni", "avx512_bf16"})) == "bf16"
    # no AMX, AVX-512 BF16 and VNNI (AMD EPYC): bf16 searched 3.2x and int8 2.4x as fast as faiss
    assert scoring_mode_for(frozenset({"avx512_vnni", "avx512_bf16", "avx_vnni"})) == "bf16"
    assert scoring_mode_for(frozenset({"avx512_vnni", "avx512f"})) == "int8"  # VNNI without bf16
    assert scoring_mode_for(frozenset({"avx_vnni", "avx2"})) == "int8"
    assert scoring_mode_for(frozenset({"avx512_bf16"})) == "bf16"
    assert scoring_mode_for(frozenset({"avx2", "fma"})) == "fp32"


def test_the_rerank_kernel_is_faiss_small_batch_arithmetic(rng):
    X = unit(rng.standard_normal((3000, 1280)))
    Q = unit(rng.standard_normal((50, 1280)))
    index = faiss.IndexFlatIP(1280)
    index.add(X)
    s, r = index.search(Q, 10)
    assert np.array_equal(exact_scores(Q, X, r), s)
    assert np.isneginf(exact_scores(Q, X, np.full((2, 3), -1))).all()
