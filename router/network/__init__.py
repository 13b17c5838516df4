"""The network-level two-stage model, over images.

The backbone is split into a frozen trunk and a tail.  The tail fine-tuned on
all classes (the generalist) routes; per-superclass int8 low-rank deltas of
that tail specialise; optional memories of tail features make each prediction
explainable and steerable.
"""

from ._classifier import NetworkTwoStage
from ._graphs import RUNTIMES, NetworkPath, choose_path, graph_runner, installed_runtimes
from ._persist import FORMAT, is_network, load_network, save_network
from ._routing import GeneralistFlat, routed_sum
from ._rows import RowsForward, rows_forward
from ._tail_specialists import DeltaParams, TailDeltas, TailSpecialists, merged_params
from ._tails import PHASES, tail_features, tail_logits, train_epoch, train_tail
from ._trunk import (
    DEFAULT_SPLITS,
    BackboneSplit,
    Tail,
    TrunkActivations,
    load_trunk_activations,
    run_trunk_on_images,
    split_backbone,
    trunk_activations,
    trunk_cache_dir,
)

__all__ = [
    "BackboneSplit",
    "DEFAULT_SPLITS",
    "DeltaParams",
    "FORMAT",
    "GeneralistFlat",
    "NetworkPath",
    "NetworkTwoStage",
    "PHASES",
    "RUNTIMES",
    "RowsForward",
    "Tail",
    "TailDeltas",
    "TailSpecialists",
    "TrunkActivations",
    "choose_path",
    "graph_runner",
    "installed_runtimes",
    "is_network",
    "load_network",
    "load_trunk_activations",
    "merged_params",
    "routed_sum",
    "rows_forward",
    "run_trunk_on_images",
    "save_network",
    "split_backbone",
    "tail_features",
    "tail_logits",
    "train_epoch",
    "train_tail",
    "trunk_activations",
    "trunk_cache_dir",
]
