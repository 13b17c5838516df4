"""The ``supersub`` command line: the one argument parser, and the entry point.

Options and their checks read in one place here; what each subcommand does is in
:mod:`._commands`, and the work itself is done by the packages.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from hierarchy import SupersubError

from ._commands import (build, embed, memory_add, memory_info, memory_remove, memory_set_weight, milvus_serve,
                        tree_build, tree_show)
from ._commands_query import calibrate, compare, evaluate, explore, predict, report

__all__ = ["build_parser", "main"]

log = logging.getLogger("supersub")


def _at_least(low: float, kind: type = int) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` no smaller than ``low`` (else exit 2 with a message)."""
    what = "an integer" if kind is int else "a number"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value != value or value < low:  # NaN, or too small
            raise argparse.ArgumentTypeError(f"must be {what} >= {low:g}, got {text}")
        return value  # type: ignore[no-any-return]

    parse.__name__ = what
    return parse


def _pixels(text: str) -> int:
    """An argparse type: an input resolution the backbones accept."""
    from memory import MAX_INPUT_SIZE, MIN_INPUT_SIZE

    value = int(_at_least(MIN_INPUT_SIZE)(text))
    if value > MAX_INPUT_SIZE:
        raise argparse.ArgumentTypeError(
            f"must be an integer from {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} pixels, got {text}")
    return value


def _number_in(check: Callable[[float], bool], what: str) -> Callable[[str], float]:
    """An argparse type: a number for which ``check`` holds (else exit 2 saying ``what`` it must be)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    parse.__name__ = "a number"
    return parse


#: A crop fraction, in (0, 1].
_fraction = _number_in(lambda v: 0.0 < v <= 1.0, "in (0, 1]")
#: A promised accuracy or a confidence level, strictly between 0 and 1.
_open_fraction = _number_in(lambda v: 0.0 < v < 1.0, "strictly between 0 and 1 (for example 0.9 for 90%)")


def _hedging_args(p: argparse.ArgumentParser, *, help_accuracy: str) -> None:
    """The options of answers along the tree with a promised accuracy."""
    p.add_argument("--accuracy", type=_open_fraction, default=None, help=help_accuracy)
    p.add_argument("--rule", choices=["darts", "threshold"], default="darts",
                   help="darts: the most informative node for the promise (default); threshold: the deepest node "
                        "whose calibrated probability reaches a calibrated level")
    p.add_argument("--delta", type=_open_fraction, default=0.1,
                   help="the promise holds with probability 1 - delta over the calibration images (default 0.1)")
    p.add_argument("--strict", action="store_true",
                   help="refuse, rather than warn, when the model was edited after its calibration")


def _port(text: str) -> int:
    """An argparse type: a TCP port, 1..65535."""
    value = int(_at_least(1)(text))
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port in 1..65535, got {text}")
    return value


_POSITIVE = _at_least(1)
_NON_NEGATIVE = _at_least(0)
_SECONDS = _at_least(0.0, float)


_VERBOSE = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
_VERBOSE.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                      help="log progress details, and show a traceback for an internal error")


def _command(subparsers: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand's parser: ``-v`` works after the subcommand too, and no option may be abbreviated."""
    return subparsers.add_parser(name, parents=[_VERBOSE], allow_abbrev=False, **kwargs)  # type: ignore[no-any-return]


def _selection_and_wait(p: argparse.ArgumentParser) -> None:
    """The entries an edit applies to, and how long it waits for another writer."""
    p.add_argument("--label")
    p.add_argument("--source")
    p.add_argument("--wait", type=_SECONDS, default=300.0,
                   help="seconds to wait while another writer edits the model (default 300)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``supersub``."""
    parser = argparse.ArgumentParser(
        prog="supersub", allow_abbrev=False,
        description="Hierarchical, superclass-routed image classification over an editable memory.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.set_defaults(verbose=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    tree = _command(sub, "tree", help="build and inspect superclass trees")
    tsub = tree.add_subparsers(dest="tree_command", metavar="ACTION", required=True)
    tbuild = _command(tsub, "build", help="build a class tree and a superclass cut")
    src = tbuild.add_mutually_exclusive_group(required=True)
    src.add_argument("--wnids", help="file with one WordNet id per line (e.g. wnids.txt)")
    src.add_argument(
        "--dataset", choices=["tiny-imagenet-200", "imagenet-1k"], help="a shipped class list"
    )
    src.add_argument("--mapping", help="JSON/CSV child,parent file for label sets outside WordNet")
    tbuild.add_argument(
        "--cut",
        help="balanced:N, depth:D, file:MAPPING, synsets:A,B,..., induced:N:MEANS.npy or "
             "confusion:N:MATRIX[:OVERLAP]",
    )
    tbuild.add_argument("--collapse", action="store_true", help="remove single-child chains")
    tbuild.add_argument("-o", "--output", required=True, help="tree JSON to write")
    tbuild.add_argument("-q", "--quiet", action="store_true", help="do not print the superclasses")
    tbuild.set_defaults(func=tree_build)
    show = _command(tsub, "show", help="print each superclass with its name, size and members")
    show.add_argument("tree", help="tree JSON")
    show.add_argument("--brief", action="store_true", help="omit member lists")
    show.set_defaults(func=tree_show)

    emb = _command(sub, "embed", help="embed a dataset split with a pretrained backbone (cached)")
    emb.add_argument("--data", help="Tiny-ImageNet folder/zip/tarball or a wnid image folder "
                     "(default: $SUPERSUB_DATA, else download)")
    emb.add_argument("--split", default="train", help="train or val (Tiny-ImageNet)")
    emb.add_argument("--mapping", help="CSV 'folder,label' file for class folders not named by their class")
    emb.add_argument("--backbone", default="lite0", help="lite0, lite1, lite2, timm:NAME, torchvision:NAME")
    emb.add_argument("--size", type=_pixels, default=128, help="input resolution (16 to 1024)")
    emb.add_argument("--crop", type=_fraction, default=None, help="centre-crop fraction (default 0.875)")
    emb.add_argument("--runtime", default="auto", choices=["auto", "onnx", "openvino", "torch"])
    emb.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                     help="numeric path (default: bf16 where measured safe and the CPU runs it, else fp32)")
    emb.add_argument("--threads", type=_POSITIVE, default=None)
    emb.add_argument("--batch-size", type=_POSITIVE, default=64)
    emb.add_argument("--per-class", type=_POSITIVE, default=None, help="embed only N images per class")
    emb.add_argument("--no-cache", action="store_true", help="ignore and do not write the cache")
    emb.add_argument("--no-progress", action="store_true")
    emb.add_argument("-o", "--output", required=True, help="directory to write")
    emb.set_defaults(func=embed)

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", help="Tiny-ImageNet folder/zip/tarball or a wnid image folder "
                       "(default: $SUPERSUB_DATA, else download)")
        p.add_argument("--mapping", help="CSV 'folder,label' file for class folders not named by their class")
        p.add_argument("--per-class", type=_POSITIVE, default=None, help="use N images per class (N >= 1)")
        p.add_argument("--full", action="store_true", help="use every image (overrides --per-class)")
        p.add_argument("--skip-unreadable", action="store_true",
                       help="leave out images that do not decode, reporting each and the count (one extra "
                            "decoding pass); without it one such image stops the run")
        p.add_argument("--no-progress", action="store_true")

    b = _command(sub, "build", help="build a routed memory from a dataset's train split")
    data_args(b)
    b.add_argument("--tree", help="tree JSON with a superclass cut (default: shipped Tiny-ImageNet tree)")
    b.add_argument("--backbone", default="lite0")
    b.add_argument("--size", type=_pixels, default=None,
                   help="input resolution (default 128; 160 for --router generalist, whose tail is fine-tuned)")
    b.add_argument("--crop", type=_fraction, default=None)
    b.add_argument("--router", default="centroids", choices=["memory", "centroids", "head", "generalist"],
                   help="generalist: fine-tune the backbone's tail on all classes and route with it "
                        "(with --specialist tail-delta or tail-full)")
    b.add_argument("--specialist", default="memory", choices=["memory", "delta", "full", "tail-delta", "tail-full"],
                   help="tail-delta: per-superclass int8 deltas of the fine-tuned tail, with specialist memories")
    b.add_argument("--split-at", default=None, help="first backbone stage of the tail (default blocks.6)")
    b.add_argument("--epochs", type=_POSITIVE, default=4, help="generalist fine-tuning epochs (default 4)")
    b.add_argument("--specialist-epochs", type=_NON_NEGATIVE, default=2, help="specialist epochs (default 2)")
    b.add_argument("--rank", type=_POSITIVE, default=16, help="rank of the specialist deltas (default 16)")
    b.add_argument("--dev-per-class", type=_NON_NEGATIVE, default=0,
                   help="images per class held out to stop specialists early and choose the mix")
    b.add_argument("--runtime", default="auto", choices=["auto", "onnx", "openvino", "torch"],
                   help="network builds: where the trunk and tails run at inference and for the training cache "
                        "(default: OpenVINO, bf16 where the CPU runs it natively; see choose_path)")
    b.add_argument("--hierarchy-beta", type=_at_least(0.0, float), default=0.0,
                   help="network builds: train the generalist on hierarchy-aware soft labels with this beta "
                        "(0, the default: plain labels with label smoothing)")
    b.add_argument("--routing", default=None, choices=["hard", "soft"],
                   help="default: hard for memory models, soft (m = 2) for network-level models")
    b.add_argument("--m", type=_POSITIVE, default=2, help="superclasses searched by soft routing")
    b.add_argument("--k", type=_POSITIVE, default=10)
    b.add_argument("--voting", default="softmax", choices=["softmax", "rank", "distance", "plurality"])
    b.add_argument("--backend", default=None,
                   help="where the memory lives: faiss (default, embedded), milvus://HOST:PORT[/COLLECTION] "
                        "(a Milvus server or cluster) or PATH.db (Milvus Lite)")
    b.add_argument("--overwrite", action="store_true", help="drop the Milvus collection first if it exists")
    b.add_argument("--wait", type=_SECONDS, default=300.0,
                   help="seconds to wait for another writer of the output model (default 300)")
    b.add_argument("-o", "--output", required=True, help="model directory to write")
    b.set_defaults(func=build)

    p = _command(sub, "predict", help="classify images: top-k, route and neighbours")
    p.add_argument("images", nargs="+")
    p.add_argument("--model", required=True)
    p.add_argument("--top", type=_POSITIVE, default=5, help="classes to show (>= 1)")
    p.add_argument("--neighbours", type=_NON_NEGATIVE, default=5, help="neighbours to show (>= 0)")
    p.add_argument("--routing", choices=["hard", "soft"], default=None)
    p.add_argument("--m", type=_POSITIVE, default=None)
    _hedging_args(p, help_accuracy="also answer along the tree: the most specific node (class, superclass, ...) "
                                    "right for this share of images, e.g. 0.9 (needs 'supersub calibrate')")
    p.set_defaults(func=predict)

    ev = _command(sub, "evaluate", help="accuracy by level, routed against flat kNN on the same memory")
    data_args(ev)
    ev.add_argument("--model", required=True)
    ev.add_argument("--split", default="val")
    ev.add_argument("--routing", choices=["hard", "soft"], default=None)
    ev.add_argument("--m", type=_POSITIVE, default=None)
    ev.add_argument("--explain", type=_NON_NEGATIVE, default=0, help="print route and neighbours of N queries")
    ev.add_argument("-o", "--output", help="directory for metrics.json and predictions.csv")
    ev.add_argument("--decision", choices=["argmax", "crm"], default="argmax",
                    help="argmax: the most probable class (default); crm: the class of least expected mistake "
                         "severity (LCA height)")
    _hedging_args(ev, help_accuracy="also score answers along the tree that promise this accuracy, e.g. 0.9: "
                                     "achieved accuracy, share answered at class level, information gain "
                                     "(needs 'supersub calibrate')")
    ev.set_defaults(func=evaluate)

    cal = _command(sub, "calibrate", help="calibrate a model on labelled images it was not built from, for "
                                          "answers with a promised accuracy (predict/evaluate --accuracy)")
    data_args(cal)
    cal.add_argument("--model", required=True)
    cal.add_argument("--split", default="val", help="the split to read (default val; for Tiny-ImageNet, "
                                                   "'train --skip-per-class N' holds out train images)")
    cal.add_argument("--skip-per-class", type=_NON_NEGATIVE, default=0,
                     help="leave out the first N images of each class (those a 'build --per-class N' used)")
    cal.add_argument("--wait", type=_SECONDS, default=300.0,
                     help="seconds to wait while another writer edits the model (default 300)")
    cal.set_defaults(func=calibrate)

    cmp_ = _command(sub, "compare", help="best routed against best flat system over evaluate outputs")
    cmp_.add_argument("metrics", nargs="+", help="metrics.json files written by supersub evaluate -o")
    cmp_.set_defaults(func=compare)

    mem = _command(sub, "memory", help="edit and inspect a routed memory")
    msub = mem.add_subparsers(dest="memory_command", metavar="ACTION", required=True)
    info = _command(msub, "info", help="entries, classes and sources per superclass")
    info.add_argument("model")
    info.set_defaults(func=memory_info)
    add = _command(msub, "add", help="add images of a class (a new wnid is placed through WordNet, "
                                     "another new name with --superclass)")
    add.add_argument("model")
    add.add_argument("images", nargs="+", help="image files or folders")
    add.add_argument("--label", required=True, help="the class: a wnid, or a label of a mapping-file tree")
    add.add_argument("--superclass", help="place a new class here instead of through WordNet")
    add.add_argument("--source", default="added")
    add.add_argument("--wait", type=_SECONDS, default=300.0,
                     help="seconds to wait while another writer edits the model (default 300)")
    add.set_defaults(func=memory_add)
    rm = _command(msub, "remove", help="unlearn a class or a source")
    rm.add_argument("model")
    _selection_and_wait(rm)
    rm.set_defaults(func=memory_remove)
    sw = _command(msub, "set-weight", help="set the stored vote weight of a class's or a source's entries")
    sw.add_argument("model")
    sw.add_argument("weight", type=_at_least(0.0, float), help="the new weight: 0 silences, 1 is the default")
    _selection_and_wait(sw)
    sw.set_defaults(func=memory_set_weight)

    mv = _command(sub, "milvus", help="run a local Milvus server (loopback only) for the Milvus backend")
    mvsub = mv.add_subparsers(dest="milvus_command", required=True)
    serve = _command(mvsub, "serve", help="start Milvus standalone on 127.0.0.1 and wait (Ctrl-C stops it)")
    serve.add_argument("--data", required=True, help="directory for Milvus's binaries, logs and data")
    serve.add_argument("--port", type=_port, default=19530)
    serve.set_defaults(func=milvus_serve)

    rep = _command(sub, "report", help="misclassification report (HTML + Markdown) from predictions")
    rep.add_argument("--predictions", required=True, help="CSV/Parquet with true,pred[,route,score,ref,system]")
    rep.add_argument("--tree", help="tree JSON with a superclass cut (default: the model's tree)")
    rep.add_argument("--model", help="routed model, for the neighbour gallery")
    rep.add_argument("--data", help="dataset the predictions' refs point into (default: the folder the evaluation "
                                    "recorded in metrics.json beside the predictions)")
    rep.add_argument("--mapping", help="with --data: CSV 'folder,label' mapping its class folders to labels")
    rep.add_argument("--system", help="system to describe (default: the last in the file)")
    rep.add_argument("--baseline", help="system to compare against (default: the first other)")
    rep.add_argument("--gallery", type=_NON_NEGATIVE, default=8, help="confident mistakes to show")
    rep.add_argument("-o", "--output", required=True, help="directory for report.html and summary.md")
    rep.set_defaults(func=report)

    ex = _command(sub, "explore", help="local web app: query, explain, steer and edit the memory, browse mistakes")
    ex.add_argument("--model", required=True, help="routed memory model (supersub build)")
    ex.add_argument("--data", help="images to pick queries from: a class-folder tree, or Tiny-ImageNet (folder, zip or tar; its val split)")
    ex.add_argument("--mapping", help="with --data: CSV 'folder,label' mapping its class folders to labels")
    ex.add_argument("--eval", help="directory written by 'supersub evaluate -o', for the mistakes page")
    ex.add_argument("--neighbours", type=_POSITIVE, default=10, help="neighbours shown per query (default 10)")
    ex.add_argument("--accuracy", type=_open_fraction, default=0.9,
                    help="for a calibrated model, the promised accuracy of its answers along the tree (default 0.9)")
    ex.add_argument("--port", type=_port, default=8765)
    ex.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    ex.add_argument("--allow-remote", action="store_true",
                    help="allow a --host that is not loopback (the app can edit the model: use with care)")
    ex.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                    help="a Host name clients use to reach the server, answered besides the bound address "
                         "(repeatable; needed for a wildcard --host such as 0.0.0.0)")
    ex.set_defaults(func=explore)
    return parser


class _StderrHandler(logging.Handler):
    """Log lines as the command line's own (``supersub: warning: ...``), to whatever ``sys.stderr`` is now."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            line = f"supersub: {record.levelname.lower()}: {record.getMessage()}"
        else:  # -v: progress details, with the module that logged them
            line = f"supersub: ({record.name}) {record.getMessage()}"
        print(line, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``supersub``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):  # once per process
        root.addHandler(_StderrHandler())
    root.setLevel(logging.INFO if args.verbose else logging.WARNING)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("supersub: interrupted", file=sys.stderr)
        return 130
    except (SupersubError, OSError) as exc:  # bad input, or the environment: no such file, disk full
        if args.verbose:
            raise
        print(f"supersub: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # anything else is a bug
        if args.verbose:
            raise
        print(f"supersub: internal error: {type(exc).__name__}: {exc} (rerun with -v for the traceback, "
              "and please report it)", file=sys.stderr)
        return 1

