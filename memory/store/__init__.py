"""The store side of the memory: entries, vectors, search and voting, edits, persistence,
pruning and the cache model.

``from memory import VisualMemory`` is the usual way in; this sub-package also
exports the parts that code built on the memory uses: the snapshot writer every
saved model goes through, the voting functions, and the entry table and vector
index a :class:`VisualMemory` is made of.
"""

from ._cache import CacheModel, fit_cache
from ._explain import Explanation, Neighbour, PruneReport, Steer, build_explanations
from ._faiss import BLAS_THRESHOLD, blas_for_small_batches, faiss_threads
from ._index import VectorIndex
from ._ivf import IVF_BF16_MIN_WORK, Bf16Lists, ivf_bf16_pays, ivf_in_bf16
from ._lowprec import Bf16Vectors, Int8Vectors, LowPrecisionVectors
from ._persist import FORMAT, FORMAT_VERSION, edit_memory, load_snapshot, save_memory
from ._prune import compress, harm_counts, prune_harmful, prune_redundant
from ._query import QUERY_CHUNK
from ._scoring import (SCORING_ENV, SCORING_MODES, bf16_accumulates_in_fp32, bf16_error_bound, cpu_flags, exact_scores,
                       fp32_error_bound, has_amx, native_bf16, scoring_mode, scoring_mode_for)
from ._snapshot import (
    Snapshot,
    locked_edit,
    open_snapshot,
    origin_of,
    set_origin,
    snapshot_writer,
    writer_lock,
)
from ._verify import check_no_links, snapshot_entries, verify_files
from ._streamed import write_streamed
from ._table import COLUMNS, EntryTable, Vocab
from ._visual_memory import VisualMemory
from ._voting import VOTING_RULES, class_scores, decisions, get_voting, probabilities, register_voting, vote_weights
from ._when_lowp import (LOWP_ALWAYS_ROWS, LOWP_BATCH_MIN_DIM, LOWP_BATCH_MIN_DIM_BF16, LOWP_BF16_MIN_ROWS,
                         LOWP_MIN_DIM, LOWP_MIN_PAIRS, LOWP_MIN_ROWS, LOWP_SMALL_BATCH, use_low_precision)

__all__ = [
    "BLAS_THRESHOLD",
    "Bf16Lists",
    "Bf16Vectors",
    "COLUMNS",
    "CacheModel",
    "EntryTable",
    "Explanation",
    "FORMAT",
    "FORMAT_VERSION",
    "IVF_BF16_MIN_WORK",
    "Int8Vectors",
    "LOWP_ALWAYS_ROWS",
    "LOWP_BATCH_MIN_DIM",
    "LOWP_BATCH_MIN_DIM_BF16",
    "LOWP_BF16_MIN_ROWS",
    "LOWP_MIN_DIM",
    "LOWP_MIN_PAIRS",
    "LOWP_MIN_ROWS",
    "LOWP_SMALL_BATCH",
    "LowPrecisionVectors",
    "Neighbour",
    "PruneReport",
    "QUERY_CHUNK",
    "SCORING_ENV",
    "SCORING_MODES",
    "Snapshot",
    "Steer",
    "VOTING_RULES",
    "VectorIndex",
    "VisualMemory",
    "Vocab",
    "bf16_accumulates_in_fp32",
    "bf16_error_bound",
    "blas_for_small_batches",
    "build_explanations",
    "check_no_links",
    "class_scores",
    "compress",
    "cpu_flags",
    "decisions",
    "edit_memory",
    "exact_scores",
    "faiss_threads",
    "fit_cache",
    "fp32_error_bound",
    "get_voting",
    "harm_counts",
    "has_amx",
    "ivf_bf16_pays",
    "ivf_in_bf16",
    "load_snapshot",
    "locked_edit",
    "native_bf16",
    "open_snapshot",
    "origin_of",
    "probabilities",
    "prune_harmful",
    "prune_redundant",
    "register_voting",
    "save_memory",
    "scoring_mode",
    "scoring_mode_for",
    "set_origin",
    "snapshot_entries",
    "snapshot_writer",
    "use_low_precision",
    "verify_files",
    "vote_weights",
    "write_streamed",
    "writer_lock",
]
