"""When an exact search takes the low-precision pass (:mod:`._lowprec`), by its size and the CPU.

The thresholds below were measured; each comment gives its measurement.
"""

from __future__ import annotations

from ._scoring import has_amx, native_bf16

__all__ = ["LOWP_ALWAYS_ROWS", "LOWP_BATCH_MIN_DIM", "LOWP_BATCH_MIN_DIM_BF16", "LOWP_BF16_MIN_ROWS", "LOWP_MIN_DIM",
           "LOWP_MIN_PAIRS", "LOWP_MIN_ROWS", "LOWP_SMALL_BATCH", "use_low_precision"]

#: When an exact search takes the low-precision pass: over at least ``LOWP_ALWAYS_ROWS`` allowed
#: vectors, or over at least ``LOWP_MIN_ROWS`` with at least ``LOWP_MIN_PAIRS`` (query, vector)
#: pairs.  Measured on Tiny-ImageNet embeddings (1280-d, k = 10): against 100k vectors the
#: int8 pass beats faiss from one query (15 against 32 ms); against 10k, from about 500
#: queries; against 2k, not at 1,000 queries, where its fixed cost per block dominates.
LOWP_ALWAYS_ROWS = 1 << 16
LOWP_MIN_ROWS = 1 << 13
LOWP_MIN_PAIRS = 1 << 23
#: Below ``LOWP_MIN_DIM`` the pass is never taken, and for batches of ``LOWP_SMALL_BATCH``
#: queries or more (where faiss switches to its BLAS kernel) not below ``LOWP_BATCH_MIN_DIM``:
#: the product is then too cheap per pair for the low-precision scores to pay for writing,
#: selecting and re-ranking them.  Measured on random unit vectors, int8 against fp32:
#: single queries gained from 256-d (1.6x at 100k rows, 2.9x at 1M; at 128-d 8.0 against
#: 7.2 ms, a loss); batches of 500 did not gain at 256 to 768-d (0.69x to 1.08x) and gained
#: 1.77x at 1280-d on Tiny-ImageNet embeddings.  bf16 on a CPU that multiplies bf16 in
#: hardware pays on batches from ``LOWP_BATCH_MIN_DIM_BF16``.  With AMX, batches of 500 gained
#: 1.26x at 256-d, 1.87x at 512-d and 2.09x at 768-d against 100k random unit vectors (1.15x
#: and 1.45x against 1M at 256 and 512-d), and single queries 1.12x at 256-d against 100k,
#: 1.92x against 1M.  With AVX-512 BF16 and no AMX (an AMD EPYC), batches of 500 gained 1.29x,
#: 1.81x and 1.67x at 256, 512 and 768-d against 100k (2.01x, 2.11x and 2.37x against 1M), and
#: single queries 1.11x at 256-d against 100k, 1.20x against 1M.
LOWP_MIN_DIM = 256
LOWP_SMALL_BATCH = 20
LOWP_BATCH_MIN_DIM = 1024
LOWP_BATCH_MIN_DIM_BF16 = 256
#: bf16 on a CPU that multiplies bf16 in hardware (AMX, or AVX-512 BF16), from ``LOWP_BATCH_MIN_DIM``
#: dimensions, takes every batch against ``LOWP_BF16_MIN_ROWS`` rows or more.  On rows of a 1280-d
#: specialist shard, 1 to 1,000 queries gained 1.13x to 1.39x against 5,000 rows and 1.70x to
#: 2.17x against 11,040 with AMX (0.85x at 256 queries against 4,000).  With AVX-512 BF16 and no
#: AMX (an AMD EPYC), on 1280-d Tiny-ImageNet embeddings, 1 to 1,000 queries gained 1.35x to 3.13x
#: against 5,000 rows, 1.75x to 2.35x against 11,000 and 1.56x to 2.64x against 30,000 (where the
#: pair rule alone would keep faiss below 763 and 280 queries), and 0.78x to 1.30x against 2,000.
LOWP_BF16_MIN_ROWS = 5000
# With AVX-512 BF16 and no AMX, bf16 also takes every batch from ``LOWP_MIN_DIM`` dimensions
# against ``LOWP_MIN_ROWS`` rows or more.  Measured on an AMD EPYC by ``benchmarks/scoring_bench.py``
# (clustered data, 1 to 1,000 queries; ``scoring_avx512_bf16.json``): against 8,192 to 100,000
# rows 0.97x to 2.81x at 512 and 768-d and 0.74x to 2.59x at 256-d (below 0.95x only for single
# 256-d queries against 16,384 and 30,000 rows); against 5,000 rows 0.70x to 1.65x at 256-d,
# 0.79x to 1.33x at 512-d and 1.06x to 1.39x at 768-d.  Over the whole grid the rule takes the
# faster path in 124 of 144 cells, at 1.03x the faster path's time (geometric mean).  Not
# measured with AMX, where these sizes keep the rules above.


def use_low_precision(queries: int, rows: int, dim: int | None = None, mode: str | None = None) -> bool:
    """Whether an exact search of ``queries`` against ``rows`` allowed ``dim``-d vectors takes the low-precision pass.

    ``mode`` is the scoring mode (:func:`scoring_mode`).  ``"bf16"`` on a CPU that multiplies
    bf16 in hardware (AMX or AVX-512 BF16) takes batches from ``LOWP_BATCH_MIN_DIM_BF16``
    dimensions (every other mode from ``LOWP_BATCH_MIN_DIM``), and every batch from
    ``LOWP_BATCH_MIN_DIM`` dimensions against ``LOWP_BF16_MIN_ROWS`` vectors or more; without
    AMX, also every batch from ``LOWP_MIN_DIM`` dimensions against ``LOWP_MIN_ROWS`` vectors or more.
    """
    bf16 = mode == "bf16" and native_bf16()
    batch_min_dim = LOWP_BATCH_MIN_DIM_BF16 if bf16 else LOWP_BATCH_MIN_DIM
    if dim is not None and (dim < LOWP_MIN_DIM or (queries >= LOWP_SMALL_BATCH and dim < batch_min_dim)):
        return False
    if bf16 and dim is not None:
        if dim >= LOWP_BATCH_MIN_DIM and rows >= LOWP_BF16_MIN_ROWS:
            return True
        if not has_amx() and rows >= LOWP_MIN_ROWS:
            return True
    return rows >= LOWP_ALWAYS_ROWS or (rows >= LOWP_MIN_ROWS and queries * rows >= LOWP_MIN_PAIRS)
