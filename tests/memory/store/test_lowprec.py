"""bf16 and int8 scoring with fp32 re-ranking return the exact top k: faiss's answer, ties included."""

import pickle

import faiss
import numpy as np
import pytest
import torch

from memory import VisualMemory
from memory.store import (SCORING_ENV, Bf16Vectors, Int8Vectors, LowPrecisionVectors, _index, _lowprec, _when_lowp,
                          bf16_error_bound, exact_scores, faiss_threads)
from memory.store._lowprec import _top

SCORERS = pytest.mark.parametrize("scorer", [Bf16Vectors, Int8Vectors], ids=["bf16", "int8"])


def unit(A):
    A = np.asarray(A, dtype=np.float32)
    return np.ascontiguousarray(A / np.linalg.norm(A, axis=1, keepdims=True))


def brute_force(X, Q, k, mask=None):
    """Every allowed vector scored in fp32 by the re-rank's kernel, descending."""
    allowed = np.arange(len(X)) if mask is None else np.flatnonzero(mask)
    S = exact_scores(Q, X, np.broadcast_to(allowed, (len(Q), len(allowed))))
    return -np.sort(-S, axis=1)[:, :k]


def faiss_search(X, Q, k, mask=None):
    """IndexFlatIP's answer, 50 queries a call (the arithmetic the re-rank uses)."""
    allowed = np.arange(len(X)) if mask is None else np.flatnonzero(mask)
    index = faiss.IndexFlatIP(X.shape[1])
    index.add(np.ascontiguousarray(X[allowed]))
    parts = [index.search(Q[i : i + 50], k) for i in range(0, len(Q), 50)]
    return np.concatenate([p[0] for p in parts]), allowed[np.concatenate([p[1] for p in parts])]


def lowp_search(scorer, X, Q, k, mask=None):
    copy = scorer(X.shape[1])
    copy.append(X[: len(X) // 3])  # grown in two steps, as a memory grows
    if copy.accepts(X[len(X) // 3 :]):
        copy.append(X[len(X) // 3 :])
    else:  # beyond the int8 scale: rebuilt, as the index does
        copy = scorer(X.shape[1])
        copy.append(X)
    return copy.search(Q, X, k, mask)


def assert_exact(got, X, Q, k, mask=None, ties_expected=False):
    """The answer holds the k best scores, each its row's fp32 score, and is faiss's answer.

    For ``k < 100`` the ids equal faiss's, ties included (faiss's heap rule,
    replayed); for larger ``k`` faiss selects differently and only queries
    without equal scores are compared.
    """
    s, r = got
    assert np.array_equal(s, brute_force(X, Q, k, mask))
    assert np.array_equal(s, exact_scores(Q, X, r))
    n = len(X) if mask is None else int(mask.sum())
    wide, _ = faiss_search(X, Q, min(k + 1, n), mask)  # sees a tie at the k-th place too
    untied = ~(wide[:, 1:] == wide[:, :-1]).any(axis=1)
    compared = np.ones(len(Q), dtype=bool) if k < 100 else untied
    fs, fr = faiss_search(X, Q, k, mask)
    assert np.array_equal(r[compared], fr[compared])
    assert np.array_equal(s[compared], fs[compared])
    if ties_expected is not None:
        assert (~untied).any() == ties_expected


def always_low_precision(monkeypatch):
    for name in ("LOWP_ALWAYS_ROWS", "LOWP_MIN_ROWS", "LOWP_MIN_PAIRS", "LOWP_MIN_DIM", "LOWP_BATCH_MIN_DIM",
                 "LOWP_BATCH_MIN_DIM_BF16"):
        monkeypatch.setattr(_when_lowp, name, 0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True, params=[0, 2], ids=["full-topk", "groups-of-2"])
def grouping(request, monkeypatch):
    """Every test runs with candidates selected by a full top-k and through group maxima."""
    monkeypatch.setattr(LowPrecisionVectors, "GROUP", request.param)
    return request.param


@SCORERS
def test_random_vectors_match_faiss_bit_for_bit(scorer, rng):
    X = unit(rng.standard_normal((3000, 96)))
    Q = unit(rng.standard_normal((700, 96)))  # more than one block of queries
    for k in (1, 10, 100):
        assert_exact(lowp_search(scorer, X, Q, k), X, Q, k)


@SCORERS
def test_near_ties_far_inside_the_low_precision_error_need_the_fp32_rerank(scorer, rng):
    """Hundreds of vectors whose scores differ by less than bf16 can resolve, at the top-k boundary."""
    centre = rng.standard_normal(64)
    X = unit(centre + 3e-2 * rng.standard_normal((600, 64)))  # 600 near-copies: scores within ~1e-3
    X = unit(np.concatenate([X, rng.standard_normal((2000, 64))]))
    Q = unit(centre + 3e-2 * rng.standard_normal((50, 64)))
    eps, _ = bf16_error_bound(64)
    s, _ = faiss_search(X, Q, 600)
    assert (s[:, 0] - s[:, -1]).max() < eps  # all 600 are within the bf16 error of one another
    for k in (10, 300):  # the first 64 candidates cannot certify: the search must widen
        assert_exact(lowp_search(scorer, X, Q, k), X, Q, k, ties_expected=None)


@SCORERS
def test_exact_duplicates_are_kept_and_ordered_as_faiss_does(scorer, rng):
    base = unit(rng.standard_normal((40, 32)))
    X = np.ascontiguousarray(np.repeat(base, 5, axis=0)[rng.permutation(200)])
    Q = unit(rng.standard_normal((30, 32)))
    for k in (3, 12):
        s, r = lowp_search(scorer, X, Q, k)
        assert_exact((s, r), X, Q, k, ties_expected=True)
        tied = s[:, 1:] == s[:, :-1]
        assert tied.any() and (r[:, 1:][tied] < r[:, :-1][tied]).all()  # faiss lists equal scores so


@SCORERS
def test_k_equal_to_the_memory_size_ranks_everything(scorer, rng):
    X = unit(rng.standard_normal((300, 24)))
    Q = unit(rng.standard_normal((20, 24)))
    assert_exact(lowp_search(scorer, X, Q, 300), X, Q, 300, ties_expected=None)


@SCORERS
def test_masks_of_a_few_exclusions_and_of_a_shard(scorer, rng):
    X = unit(rng.standard_normal((2000, 48)))
    Q = unit(rng.standard_normal((100, 48)))
    few = np.ones(2000, dtype=bool)
    few[rng.choice(2000, 40, replace=False)] = False
    shard = np.zeros(2000, dtype=bool)
    shard[rng.choice(2000, 300, replace=False)] = True
    for mask in (few, shard):
        assert_exact(lowp_search(scorer, X, Q, 10, mask), X, Q, 10, mask)
        everything = int(mask.sum())  # among ~2,000 random scores, equal fp32 pairs happen
        assert_exact(lowp_search(scorer, X, Q, everything, mask), X, Q, everything, mask, ties_expected=None)


@SCORERS
def test_a_k_out_of_range_is_refused(scorer, rng):
    X = unit(rng.standard_normal((10, 8)))
    with pytest.raises(ValueError, match="k=11"):
        lowp_search(scorer, X, X, 11)


def test_the_int8_bound_holds_on_adversarial_rows(rng):
    X = unit(np.concatenate([np.abs(rng.standard_normal((300, 512))) + 0.5, rng.standard_normal((300, 512)),
                             np.eye(512)[:50]]))
    Q = unit(np.concatenate([X[:40], rng.standard_normal((40, 512)), np.eye(512)[50:60]]))
    copy = Int8Vectors(512)
    copy.append(X)
    S, factor, eps = copy._score(Q, copy.buf[: copy.n])
    approx = S.numpy().astype(np.float64) * factor[:, None]
    err = np.abs(approx - Q.astype(np.float64) @ X.astype(np.float64).T).max(axis=1)
    assert (err <= eps).all()
    assert eps.max() < 0.1  # a usable margin for unit vectors


def test_an_int8_copy_refuses_a_row_beyond_its_scale_and_the_index_rebuilds_it(rng, monkeypatch):
    always_low_precision(monkeypatch)
    monkeypatch.setenv(SCORING_ENV, "int8")
    X = unit(rng.standard_normal((400, 16)))
    index = _index.VectorIndex(16)
    index.add(X)
    index.search(X[:30], 5, None, None)
    assert index.lowp is not None and index.lowp.mode == "int8"
    spike = np.zeros((1, 16), dtype=np.float32)
    spike[0, 3] = 1.0  # larger than any component so far
    assert not index.lowp.accepts(spike)
    index.add(spike)
    assert index.lowp is None
    s, r = index.search(spike, 1, None, None)
    assert r[0, 0] == 400 and index.lowp.n == 401


def _memory(X, y):
    mem = VisualMemory(k=10, progress=False)
    mem.add(X, y, superclass=[f"s{int(label[1:]) % 4}" for label in y])
    return mem


MODES = pytest.mark.parametrize("mode", ["bf16", "int8"])


@MODES
def test_the_memory_uses_the_path_and_agrees_with_fp32_through_edits(mode, rng, monkeypatch):
    always_low_precision(monkeypatch)
    X = rng.standard_normal((4000, 64)).astype(np.float32)
    y = np.array([f"c{i % 20}" for i in range(4000)])
    Q = rng.standard_normal((300, 64)).astype(np.float32)
    monkeypatch.setenv(SCORING_ENV, mode)
    fast = _memory(X[:3000], y[:3000])
    monkeypatch.setenv(SCORING_ENV, "fp32")
    slow = _memory(X[:3000], y[:3000])

    def check(steps):
        for kwargs in ({}, {"superclass": "s1"}, {"superclass": list(np.resize(["s0", "s2"], len(Q)))}):
            monkeypatch.setenv(SCORING_ENV, mode)
            got = fast.search(Q, 10, **kwargs)
            monkeypatch.setenv(SCORING_ENV, "fp32")
            want = slow.search(Q, 10, **kwargs)
            np.testing.assert_array_equal(got[1], want[1], err_msg=steps)
            np.testing.assert_allclose(got[0], want[0], atol=1e-6, err_msg=steps)
        monkeypatch.setenv(SCORING_ENV, mode)
        np.testing.assert_array_equal(fast.predict(Q), slow.predict(Q), err_msg=steps)

    monkeypatch.setenv(SCORING_ENV, mode)
    fast.search(Q[:5], 10)
    assert fast.index_.lowp is not None and fast.index_.lowp.mode == mode and fast.index_.lowp.n == 3000
    check("built")
    for m in (fast, slow):
        m.add(X[3000:], y[3000:], superclass=[f"s{int(label[1:]) % 4}" for label in y[3000:]])
    assert fast.index_.lowp is None or fast.index_.lowp.n == 4000  # appended (int8: unless beyond its scale)
    check("added")
    for m in (fast, slow):
        m.remove(m.ids_[::7])
    assert fast.index_.lowp is None  # rebuilt on the next search
    check("removed")
    fast, slow = pickle.loads(pickle.dumps(fast)), pickle.loads(pickle.dumps(slow))
    check("pickled")


def test_with_fp32_forced_no_copy_is_made(rng, monkeypatch):
    always_low_precision(monkeypatch)
    monkeypatch.setenv(SCORING_ENV, "fp32")
    X = rng.standard_normal((500, 16)).astype(np.float32)
    mem = _memory(X, np.array([f"c{i % 5}" for i in range(500)]))
    mem.search(X[:50], 5)
    assert mem.index_.lowp is None


@MODES
def test_small_searches_stay_on_faiss(mode, rng, monkeypatch):
    monkeypatch.setenv(SCORING_ENV, mode)
    X = rng.standard_normal((500, 16)).astype(np.float32)
    mem = _memory(X, np.array([f"c{i % 5}" for i in range(500)]))
    mem.search(X[:50], 5)  # 500 rows, 25,000 pairs: under every threshold
    assert mem.index_.lowp is None


@MODES
def test_the_index_answers_duplicates_as_faiss_whatever_the_batch(mode, rng, monkeypatch):
    always_low_precision(monkeypatch)
    monkeypatch.setenv(SCORING_ENV, mode)
    base = unit(rng.standard_normal((300, 40)))
    X = np.ascontiguousarray(np.repeat(base, 4, axis=0)[rng.permutation(1200)])
    Q = unit(np.concatenate([base[:40] + 0.05 * rng.standard_normal((40, 40)), rng.standard_normal((40, 40))]))
    index = _index.VectorIndex(40)
    index.add(X)
    shard = np.zeros(1200, dtype=bool)
    shard[::3] = True
    for mask in (None, shard):
        got = index.search(Q, 10, mask, None)
        assert index.lowp is not None and index.lowp.mode == mode
        assert_exact(got, X, Q, 10, mask, ties_expected=True)
        one = index.search(Q[5:6], 10, mask, None)  # a lone query gets the same answer as in a batch
        assert np.array_equal(one[1], got[1][5:6]) and np.array_equal(one[0], got[0][5:6])


def test_the_thresholds_follow_the_measured_crossover():
    assert _when_lowp.use_low_precision(1, 100_000)  # a large memory: from one query
    assert not _when_lowp.use_low_precision(64, 10_000) and _when_lowp.use_low_precision(1024, 10_000)
    assert not _when_lowp.use_low_precision(100_000, 2_000)  # a small shard: never
    assert _when_lowp.use_low_precision(1, 100_000, 1280) and _when_lowp.use_low_precision(1, 100_000, 256)
    assert not _when_lowp.use_low_precision(1, 1_000_000, 128)  # too cheap per pair to pay
    assert _when_lowp.use_low_precision(1000, 100_000, 1280) and _when_lowp.use_low_precision(19, 100_000, 256)
    assert not _when_lowp.use_low_precision(20, 1_000_000, 768)  # batches: only from 1024-d


@pytest.mark.parametrize("native", [True, False])
def test_native_bf16_takes_batches_from_256_dimensions(native, monkeypatch):
    # AMX or AVX-512 BF16: batches of 500 against 100k rows gained 1.26x and 1.29x at 256-d
    monkeypatch.setattr(_when_lowp, "native_bf16", lambda: native)
    assert _when_lowp.use_low_precision(500, 100_000, 256, "bf16") == native
    assert not _when_lowp.use_low_precision(500, 100_000, 256, "int8")  # VNNI int8 did not pay there
    assert not _when_lowp.use_low_precision(500, 100_000, 128, "bf16")  # nor anything below 256-d
    assert _when_lowp.use_low_precision(500, 100_000, 1280, "int8")


@pytest.mark.parametrize("kind", ["amx", "avx512_bf16", "neither"])
def test_native_bf16_takes_every_batch_against_a_specialist_shard(kind, monkeypatch):
    monkeypatch.setattr(_when_lowp, "native_bf16", lambda: kind != "neither")
    monkeypatch.setattr(_when_lowp, "has_amx", lambda: kind == "amx")
    for queries in (1, 64, 1000):  # 5,000 to 11,040 rows of 1280-d shard features: 1.13x to 3.13x
        assert _when_lowp.use_low_precision(queries, 6240, 1280, "bf16") == (kind != "neither")
        assert not _when_lowp.use_low_precision(queries, 4000, 1280, "bf16")  # 0.85x at 256 queries with AMX
        assert not _when_lowp.use_low_precision(queries, 6240, 1280, "int8")  # the pair rule
    assert not _when_lowp.use_low_precision(64, 6240, 768, "bf16")  # below 1024-d: from 8,192 rows without AMX
    # batches below 1024-d wherever bf16 is multiplied in hardware
    assert _when_lowp.use_low_precision(500, 100_000, 256, "bf16") == (kind != "neither")


@pytest.mark.parametrize("kind", ["amx", "avx512_bf16", "neither"])
def test_avx512_bf16_without_amx_takes_every_batch_against_mid_sized_memories(kind, monkeypatch):
    # benchmarks/scoring_bench.py on an AMD EPYC, clustered data, 1 to 1,000 queries
    monkeypatch.setattr(_when_lowp, "native_bf16", lambda: kind != "neither")
    monkeypatch.setattr(_when_lowp, "has_amx", lambda: kind == "amx")
    for queries in (1, 4, 64, 1000):
        # 256 to 768-d from 8,192 rows: 0.97x to 2.81x at 512 and 768-d, 0.74x to 2.59x at 256-d
        for dim in (256, 512, 768):
            assert _when_lowp.use_low_precision(queries, 8192, dim, "bf16") == (kind == "avx512_bf16")
            assert not _when_lowp.use_low_precision(queries, 8191, dim, "bf16")  # 0.70x to 1.65x at 5,000
        assert not _when_lowp.use_low_precision(queries, 8192, 512, "int8")  # int8 keeps the pair rule
    assert not _when_lowp.use_low_precision(64, 100_000, 128, "bf16")  # never below 256-d


def test_the_re_rank_runs_on_the_calling_thread_for_small_batches(rng, monkeypatch):
    seen = []
    real = faiss.fvec_inner_products_by_idx
    monkeypatch.setattr(faiss, "fvec_inner_products_by_idx",
                        lambda *a: seen.append(faiss.omp_get_max_threads()) or real(*a))
    X = unit(rng.standard_normal((3000, 64)))
    Q = unit(rng.standard_normal((300, 64)))
    outer = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)  # the suite may run with one thread
    try:
        small = exact_scores(Q[:2], X, np.tile(np.arange(64), (2, 1)))
        large = exact_scores(Q, X, np.tile(np.arange(3000), (300, 1)))  # 900,000 pairs
        assert seen == [1, 2] and faiss.omp_get_max_threads() == 2
        with faiss_threads(1):
            assert faiss.omp_get_max_threads() == 1
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(outer)
    assert np.array_equal(small, large[:2, :64])  # the same kernel: the same bits


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.int32])
@pytest.mark.parametrize("n", [1040, 1000, 333])
def test_selection_through_group_maxima_returns_the_full_top_values(dtype, n, rng):
    """Same values as torch.topk, columns that hold them: ties, loose columns, all-negative rows."""
    m, group = 5, 8
    S = torch.from_numpy(np.round(rng.standard_normal((40, n)) * 8))  # many equal values
    S[1] = -torch.rand(n) - 0.1  # every score negative: bf16 falls back to a full top-k
    S[2, -1] = S[2, -2] = 99  # the best two among the loose columns (n mod 8 > 0)
    S[3, :] = 4  # all equal
    S[4, ::2] = -0.0
    S = S.to(dtype)
    vals, cols = _top(S, m, group)
    want = torch.topk(S, m, dim=1).values
    assert torch.equal(vals, want)
    assert torch.equal(S.gather(1, cols), vals)
    assert all(len(set(row.tolist())) == m for row in cols)
    if n % group:
        assert set(cols[2, :2].tolist()) == {n - 1, n - 2}


@pytest.mark.parametrize("grouping", [128])  # overrides the autouse fixture: the default size
@SCORERS
def test_a_memory_wide_enough_for_the_default_groups_stays_exact(scorer, grouping, rng, monkeypatch):
    """40,000 rows take the default group size; duplicates, exclusions and all-negative queries."""
    monkeypatch.setattr(LowPrecisionVectors, "GROUP", grouping)
    calls = []
    monkeypatch.setattr(_lowprec, "_top",
                        lambda S, m, group: calls.append((S.shape[1], m, group)) or _top(S, m, group))
    base = unit(np.abs(rng.standard_normal((20_000, 32))))  # a positive cone
    X = np.ascontiguousarray(np.concatenate([base, base[:20_000]])[rng.permutation(40_000)])
    Q = unit(np.concatenate([base[:60] + 0.05 * rng.standard_normal((60, 32)),
                             rng.standard_normal((60, 32)),
                             -np.abs(rng.standard_normal((20, 32)))]))  # scores below 0 for every row
    few = np.ones(40_000, dtype=bool)
    few[rng.choice(40_000, 500, replace=False)] = False
    for mask in (None, few):
        assert_exact(lowp_search(scorer, X, Q, 10, mask), X, Q, 10, mask, ties_expected=True)
    assert (40_000, LowPrecisionVectors.CANDIDATES + 1, 128) in calls  # the first round went through the groups
