"""The ``supersub`` command line.

Every subcommand and the one argument parser that names them, so that options and
their checks read in one place; the work itself is done by the packages.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from hierarchy import SupersubError

from ._errors import CLIError

__all__ = ["main"]

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


def _fraction(text: str) -> float:
    """An argparse type: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _port(text: str) -> int:
    """An argparse type: a TCP port, 1..65535."""
    value = int(_at_least(1)(text))
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port in 1..65535, got {text}")
    return value


_POSITIVE = _at_least(1)
_NON_NEGATIVE = _at_least(0)
_SECONDS = _at_least(0.0, float)


# ----------------------------------------------------------------- tree
def _tree_build(args: argparse.Namespace) -> int:
    import hierarchy as h

    if args.mapping:
        tree = h.ClassTree.from_parents(h.read_mapping(args.mapping))
    else:
        wnids = _read_wnids(args.wnids) if args.wnids else _read_wnids(
            h.shipped_path(args.dataset, "wnids.txt")
        )
        tree = h.ClassTree.from_wnids(wnids)
    if args.collapse:
        tree = tree.collapse()
    if args.cut:
        tree = tree.with_superclasses(h.make_cut(tree, args.cut))
    h.save_tree(tree, args.output)
    print(f"wrote {args.output}: {tree!r}")
    if tree.superclasses is None:
        print(f"supersub: warning: {args.output} has no superclass cut, so 'supersub build' cannot route "
              "with it; add --cut balanced:10 (or depth:D, file:PATH, synsets:A,B,...)", file=sys.stderr)
    if tree.superclasses is not None and not args.quiet:
        _print_superclasses(tree, members=False)
    return 0


def _tree_show(args: argparse.Namespace) -> int:
    import hierarchy as h

    tree = h.load_tree(args.tree)
    print(f"{args.tree}: {tree!r}, source {tree.source}")
    if tree.superclasses is None:
        print("no superclass cut; add one with 'supersub tree build --cut ...'")
        return 0
    _print_superclasses(tree, members=not args.brief)
    return 0


def _print_superclasses(tree: object, *, members: bool) -> None:
    sc = tree.superclasses  # type: ignore[attr-defined]
    sizes = sc.sizes()
    print(f"{len(sc)} superclasses ({sc.method}), sizes {min(sizes.values())}..{max(sizes.values())}")
    width = max(len(sc.names[s]) for s in sc.superclasses)
    for i, s in enumerate(sc.superclasses):
        print(f"{i:3d}  {sc.names[s]:<{width}}  {sizes[s]:4d}  {s}")
        if members:
            labels = ", ".join(tree.label(c) for c in sc.members(s))  # type: ignore[attr-defined]
            print(textwrap.fill(labels, width=100, initial_indent="       ", subsequent_indent="       "))


def _read_wnids(path: str | Path) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"wnids file {p} does not exist")
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    return [ln.split()[0] for ln in lines if ln and not ln.startswith("#")]


# ---------------------------------------------------------------- embed
def _load_dataset(data: str | None, split: str, mapping: str | None = None) -> object:
    import memory as m

    if data is not None and Path(data).is_dir() and not (
        (Path(data) / "wnids.txt").is_file() or any((p / "wnids.txt").is_file() for p in Path(data).iterdir() if p.is_dir())
    ):
        return m.image_folder(data, mapping=mapping, split=split)
    return m.tiny_imagenet(split, data)


def _embed(args: argparse.Namespace) -> int:
    import memory as m

    ds = _load_dataset(args.data, args.split, args.mapping)
    if args.per_class:
        ds = ds.subset(args.per_class)  # type: ignore[attr-defined]
    backbone = m.get_backbone(args.backbone, size=args.size, crop_pct=args.crop)
    embedder = m.Embedder(backbone, runtime=args.runtime, threads=args.threads,
                          batch_size=args.batch_size, progress=not args.no_progress)
    es = m.embed_dataset(ds, embedder, use_cache=not args.no_cache)  # type: ignore[arg-type]
    m.save_embeddings(es, args.output)
    print(f"wrote {args.output}: {es!r} (runtime {embedder.runtime})")
    return 0


# ------------------------------------------------------ build / predict
def _tree_for(args: argparse.Namespace) -> object:
    import hierarchy as h

    return h.load_tree(args.tree) if args.tree else h.shipped_tree("tiny-imagenet-200")


def _build(args: argparse.Namespace) -> int:
    import memory as m

    out = Path(args.output)
    fresh = not out.exists()
    try:
        # Held from start to commit: a concurrent edit of an existing model waits for the new one.
        with m.writer_lock(out, wait=args.wait):
            return _build_locked(args)
    except BaseException:
        if fresh and out.is_dir() and not (out / "CURRENT").exists():
            import shutil

            shutil.rmtree(out, ignore_errors=True)  # leave no half-made model behind
        raise


def _build_locked(args: argparse.Namespace) -> int:
    import memory as m

    tree = _tree_for(args)
    ds = _load_dataset(args.data, "train", args.mapping)
    if args.per_class and not args.full:
        ds = ds.subset(args.per_class)  # type: ignore[attr-defined]
    if args.router == "generalist" or args.specialist.startswith("tail-"):
        return _build_network(args, tree, ds)
    from ._pipeline import build_memory_model

    if args.backend and args.overwrite and m.parse_backend(args.backend)[0] == "milvus":
        m.drop_memory(args.backend)
    clf = build_memory_model(
        tree, ds, {"backbone": args.backbone, "size": args.size or 128, "crop_pct": args.crop},  # type: ignore[arg-type]
        router=args.router, specialist=args.specialist, routing=args.routing or "hard", m=args.m, k=args.k,
        voting=args.voting, backend=args.backend, progress=not args.no_progress)
    clf.save(args.output)
    print(f"built {args.output}: {clf!r} from {len(ds)} images of {len(clf.classes_)} classes "  # type: ignore[arg-type]
          f"({clf.fingerprint})")
    return 0


def _build_network(args: argparse.Namespace, tree: object, ds: object) -> int:
    from router import TwoStageClassifier

    if args.backend:
        raise CLIError("--backend applies to memory models; a network-level model keeps its memories embedded")
    specialist = "tail-delta" if args.specialist == "memory" else args.specialist  # memory: the default
    clf = TwoStageClassifier(
        tree, router="generalist" if args.router == "centroids" else args.router, specialist=specialist,
        routing=args.routing or "soft", m=args.m, k=args.k, backbone=args.backbone, size=args.size or 160, crop_pct=args.crop,
        split_at=args.split_at, rank=args.rank, epochs=args.epochs, specialist_epochs=args.specialist_epochs,
        dev_per_class=args.dev_per_class, progress=not args.no_progress,
    )
    clf.fit(ds)
    clf.save(args.output)
    st = clf.storage()
    print(f"built {args.output}: {clf!r} from {len(ds)} images ({clf.fingerprint}); "  # type: ignore[arg-type]
          f"storage {st['tails']:.3f} tails (bound 0.2N+1 = {st['published_bound_tails']}), mix {clf.mix}")
    return 0


def _milvus_serve(args: argparse.Namespace) -> int:
    import signal
    import time

    from memory import LocalMilvusServer

    def stop(signum: int, _: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGINT):  # stop the server cleanly on either
        signal.signal(sig, stop)
    with LocalMilvusServer(args.data, port=args.port) as server:
        print(f"Milvus is up at {server.uri} (data in {server.data_dir}); use "
              f"--backend milvus://127.0.0.1:{server.port}/NAME. Ctrl-C stops it.", flush=True)
        while True:
            time.sleep(3600)


def _load_model(path: str) -> object:
    from router import TwoStageClassifier

    return TwoStageClassifier.load(path)


def _predict(args: argparse.Namespace) -> int:
    from ._pipeline import QueryEncoder

    clf = _load_model(args.model)
    X = QueryEncoder(clf, progress=False).images(args.images)
    _print_explanations(clf, X, args.images, top=args.top, neighbours=args.neighbours,
                        routing=args.routing, m=args.m)
    return 0


def _print_explanations(clf: object, X: object, titles: list[str], *, top: int, neighbours: int,
                        routing: str | None, m: int | None) -> None:
    names = clf.tree  # type: ignore[attr-defined]
    explanations = clf.explain(X, top=top, routing=routing, m=m)  # type: ignore[attr-defined]
    for path, e in zip(titles, explanations):
        print(f"{path}")
        route = list(e.route.items())[:3]
        print("  route: " + ", ".join(f"{n} {p:.2f}" for n, p in route))
        for cls, p in e.probabilities.items():
            print(f"  {p:6.3f}  {cls}  {names.label(cls)}")
        for nb in e.neighbours[:neighbours]:
            print(f"    neighbour {nb.id:>7}  sim {nb.similarity:.3f}  weight {nb.weight:.3g}  "
                  f"{nb.label} {names.label(nb.label)}  [{nb.source}] {nb.ref or ''}")


def _evaluate(args: argparse.Namespace) -> int:
    from ._pipeline import QueryEncoder, evaluate_with_flat, flat_from, write_evaluation

    clf = _load_model(args.model)
    enc = QueryEncoder(clf, progress=not args.no_progress)
    ds = _load_dataset(args.data, args.split, args.mapping)
    known = [c for c in ds.classes if c in set(clf.classes_)]  # type: ignore[attr-defined]
    ds = ds.subset(None if args.full else args.per_class, classes=known)  # type: ignore[attr-defined]
    es = enc.dataset(ds)  # type: ignore[arg-type]
    flat = flat_from(clf)  # built once: kNN over every shard's entries, or the generalist
    result = evaluate_with_flat(clf, es.X, es.labels, flat, routing=args.routing, m=args.m,
                                fingerprint=es.fingerprint)
    routed = result["routed"]
    print(f"{len(es)} queries from {es.dataset}/{es.split}")
    print(f"  {'system':<28}{'top-1':>8}{'superclass':>12}{'errors across/within':>24}")
    flat_name = "flat kNN (same memory)" if not enc.network else "flat tail (the generalist)"
    for name, r in ((flat_name, result["flat_knn"]), (f"routed ({clf!r})", routed)):
        print(f"  {name[:27]:<28}{r['top1']:8.3f}{r['predicted_superclass_accuracy']:12.3f}"
              f"{r['errors_across_superclasses']:>12d}/{r['errors_within_superclass']:<11d}")
    print(f"  router superclass accuracy {routed['superclass_accuracy']:.3f}; specialist accuracy "
          f"given the right route {routed['specialist_accuracy']:.3f}; oracle route {routed['oracle_top1']:.3f}")
    if args.explain:
        _print_explanations(clf, es.X[: args.explain], [f"{es.refs[i]} (true {es.labels[i]} "
                            f"{clf.tree.label(es.labels[i])})" for i in range(args.explain)],  # type: ignore[attr-defined]
                            top=3, neighbours=3, routing=args.routing, m=args.m)
    if args.output:
        metrics, predictions = write_evaluation(args.output, clf, es.X, es.labels, es.refs, result, flat,
                                                routing=args.routing, m=args.m)
        print(f"wrote {metrics} and {predictions}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Best flat against best routed system over several ``evaluate`` outputs."""
    import json

    rows = []
    for path in args.metrics:
        try:
            data = json.loads(Path(path).read_text())
            flat, routed = data["flat_knn"], data["routed"]
            rows.append(("flat", data.get("flat") or "flat kNN (same memory)", flat["top1"], path))
            rows.append(("routed", data.get("model") or "routed", routed["top1"], path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CLIError(f"{path} is not a metrics.json written by supersub evaluate ({exc})") from None
    print(f"  {'kind':<8}{'top-1':>7}  system  [metrics]")
    for kind, name, top1, path in sorted(rows, key=lambda r: -r[2]):
        print(f"  {kind:<8}{top1:7.3f}  {name}  [{path}]")
    best = {k: max((r for r in rows if r[0] == k), key=lambda r: r[2]) for k in ("flat", "routed")}
    gap = round(100 * (best["routed"][2] - best["flat"][2]), 1) + 0.0  # no "-0.0"
    print(f"best routed {100 * best['routed'][2]:.1f}% ({best['routed'][1]}) against best flat "
          f"{100 * best['flat'][2]:.1f}% ({best['flat'][1]}): {gap:+.1f} points")
    return 0


def _memory_info(args: argparse.Namespace) -> int:
    from ._pipeline import memory_summary

    clf = _load_model(args.model)
    print(f"{args.model}: {clf!r}, {len(clf.classes_)} classes, fingerprint {clf.fingerprint}")  # type: ignore[attr-defined]
    for s, name, n, c, sources in memory_summary(clf):  # type: ignore[arg-type]
        print(f"  {name:<28} {n:7d} entries {c:4d} classes  sources: {sources}")
    return 0


def _memory_add(args: argparse.Namespace) -> int:
    import memory as m

    from ._persist import edit_classifier
    from ._pipeline import QueryEncoder

    images: list[str] = []
    for item in args.images:
        p = Path(item)
        images.extend(sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in m.IMAGE_SUFFIXES)
                      if p.is_dir() else [item])
    if not images:
        raise CLIError("no images found")
    # The writer lock is held from load to save: a concurrent edit waits (--wait) instead of being lost.
    with edit_classifier(args.model, wait=args.wait) as clf:
        X = QueryEncoder(clf, progress=False).images(images)
        if args.label in set(clf.classes_):
            clf.add(X, [args.label] * len(X), source=args.source, refs=images)
            where = clf.assignment_[args.label]
        else:
            where = clf.add_class(args.label, X, superclass=args.superclass, source=args.source, refs=images)
        name = clf.tree.superclasses.names[where]  # type: ignore[union-attr]
    print(f"added {len(X)} images of {args.label} to superclass {name}")
    return 0


def _memory_remove(args: argparse.Namespace) -> int:
    from ._persist import edit_classifier

    if not (args.label or args.source):
        raise CLIError("give --label and/or --source to remove")
    with edit_classifier(args.model, wait=args.wait) as clf:
        if args.label and not args.source:
            removed = {args.label: clf.remove_class(args.label)}
        else:
            removed = clf.remove(source=args.source, label=args.label)
    print(f"removed {sum(len(v) for v in removed.values())} entries")
    return 0


# ---------------------------------------------------------------- report
def _gallery(args: argparse.Namespace, p: object, n: int) -> list:
    """Confident mistakes of ``p`` with the neighbours that outvoted the truth."""
    from ._gallery import mistake_gallery

    ds = _load_dataset(args.data, "val", None)
    return mistake_gallery(_load_model(args.model), p, Path(ds.root), n)  # type: ignore[arg-type, attr-defined]


def _report(args: argparse.Namespace) -> int:
    import hierarchy as h

    from ._analysis import load_predictions
    from ._report import write_report

    systems = load_predictions(args.predictions)
    if args.tree:
        tree = h.load_tree(args.tree)
    elif args.model:
        tree = _load_model(args.model).tree  # type: ignore[attr-defined]
    else:
        raise CLIError("give --tree (or --model, whose tree is used)")
    main_name = args.system or [n for n in systems if n != "oracle"][-1]
    if main_name not in systems:
        raise CLIError(f"no system {main_name!r} in {args.predictions}; present: {', '.join(systems)}")
    gallery = _gallery(args, systems[main_name], args.gallery) if args.model and args.gallery else []
    paths = write_report(systems, tree, args.output, main=main_name, baseline=args.baseline,
                         oracle="oracle" if "oracle" in systems else None, gallery=gallery)
    print(Path(paths["markdown"]).read_text())
    print(f"wrote {paths['html']} and {paths['markdown']}")
    return 0


# ----------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``supersub``."""
    parser = argparse.ArgumentParser(
        prog="supersub",
        description="Hierarchical, superclass-routed image classification over an editable memory.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    tree = sub.add_parser("tree", help="build and inspect superclass trees")
    tsub = tree.add_subparsers(dest="tree_command", metavar="ACTION", required=True)
    build = tsub.add_parser("build", help="build a class tree and a superclass cut")
    src = build.add_mutually_exclusive_group(required=True)
    src.add_argument("--wnids", help="file with one WordNet id per line (e.g. wnids.txt)")
    src.add_argument(
        "--dataset", choices=["tiny-imagenet-200", "imagenet-1k"], help="a shipped class list"
    )
    src.add_argument("--mapping", help="JSON/CSV child,parent file for label sets outside WordNet")
    build.add_argument(
        "--cut",
        help="balanced:N, depth:D, file:MAPPING, synsets:A,B,..., induced:N:MEANS.npy or "
             "confusion:N:MATRIX[:OVERLAP]",
    )
    build.add_argument("--collapse", action="store_true", help="remove single-child chains")
    build.add_argument("-o", "--output", required=True, help="tree JSON to write")
    build.add_argument("-q", "--quiet", action="store_true", help="do not print the superclasses")
    build.set_defaults(func=_tree_build)
    show = tsub.add_parser("show", help="print each superclass with its name, size and members")
    show.add_argument("tree", help="tree JSON")
    show.add_argument("--brief", action="store_true", help="omit member lists")
    show.set_defaults(func=_tree_show)

    emb = sub.add_parser("embed", help="embed a dataset split with a pretrained backbone (cached)")
    emb.add_argument("--data", help="Tiny-ImageNet folder/zip/tarball or a wnid image folder "
                     "(default: $SUPERSUB_DATA, else download)")
    emb.add_argument("--split", default="train", help="train or val (Tiny-ImageNet)")
    emb.add_argument("--mapping", help="folder,wnid file for image folders not named by wnid")
    emb.add_argument("--backbone", default="lite0", help="lite0, lite1, lite2, timm:NAME, torchvision:NAME")
    emb.add_argument("--size", type=_at_least(16), default=128, help="input resolution")
    emb.add_argument("--crop", type=_fraction, default=None, help="centre-crop fraction (default 0.875)")
    emb.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torch"])
    emb.add_argument("--threads", type=_POSITIVE, default=None)
    emb.add_argument("--batch-size", type=_POSITIVE, default=64)
    emb.add_argument("--per-class", type=_POSITIVE, default=None, help="embed only N images per class")
    emb.add_argument("--no-cache", action="store_true", help="ignore and do not write the cache")
    emb.add_argument("--no-progress", action="store_true")
    emb.add_argument("-o", "--output", required=True, help="directory to write")
    emb.set_defaults(func=_embed)

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", help="Tiny-ImageNet folder/zip/tarball or a wnid image folder "
                       "(default: $SUPERSUB_DATA, else download)")
        p.add_argument("--mapping", help="folder,wnid file for image folders not named by wnid")
        p.add_argument("--per-class", type=_POSITIVE, default=None, help="use N images per class (N >= 1)")
        p.add_argument("--full", action="store_true", help="use every image (overrides --per-class)")
        p.add_argument("--no-progress", action="store_true")

    b = sub.add_parser("build", help="build a routed memory from a dataset's train split")
    data_args(b)
    b.add_argument("--tree", help="tree JSON with a superclass cut (default: shipped Tiny-ImageNet tree)")
    b.add_argument("--backbone", default="lite0")
    b.add_argument("--size", type=_at_least(16), default=None,
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
    b.set_defaults(func=_build)

    p = sub.add_parser("predict", help="classify images: top-k, route and neighbours")
    p.add_argument("images", nargs="+")
    p.add_argument("--model", required=True)
    p.add_argument("--top", type=_POSITIVE, default=5, help="classes to show (>= 1)")
    p.add_argument("--neighbours", type=_NON_NEGATIVE, default=5, help="neighbours to show (>= 0)")
    p.add_argument("--routing", choices=["hard", "soft"], default=None)
    p.add_argument("--m", type=_POSITIVE, default=None)
    p.set_defaults(func=_predict)

    ev = sub.add_parser("evaluate", help="accuracy by level, routed against flat kNN on the same memory")
    data_args(ev)
    ev.add_argument("--model", required=True)
    ev.add_argument("--split", default="val")
    ev.add_argument("--routing", choices=["hard", "soft"], default=None)
    ev.add_argument("--m", type=_POSITIVE, default=None)
    ev.add_argument("--explain", type=_NON_NEGATIVE, default=0, help="print route and neighbours of N queries")
    ev.add_argument("-o", "--output", help="directory for metrics.json and predictions.csv")
    ev.set_defaults(func=_evaluate)

    cmp_ = sub.add_parser("compare", help="best routed against best flat system over evaluate outputs")
    cmp_.add_argument("metrics", nargs="+", help="metrics.json files written by supersub evaluate -o")
    cmp_.set_defaults(func=_compare)

    mem = sub.add_parser("memory", help="edit and inspect a routed memory")
    msub = mem.add_subparsers(dest="memory_command", metavar="ACTION", required=True)
    info = msub.add_parser("info", help="entries, classes and sources per superclass")
    info.add_argument("model")
    info.set_defaults(func=_memory_info)
    add = msub.add_parser("add", help="add images of a class (a new wnid is placed through WordNet)")
    add.add_argument("model")
    add.add_argument("images", nargs="+", help="image files or folders")
    add.add_argument("--label", required=True, help="the class wnid")
    add.add_argument("--superclass", help="place a new class here instead of through WordNet")
    add.add_argument("--source", default="added")
    add.add_argument("--wait", type=_SECONDS, default=300.0,
                     help="seconds to wait while another writer edits the model (default 300)")
    add.set_defaults(func=_memory_add)
    rm = msub.add_parser("remove", help="unlearn a class or a source")
    rm.add_argument("model")
    rm.add_argument("--label")
    rm.add_argument("--source")
    rm.add_argument("--wait", type=_SECONDS, default=300.0,
                    help="seconds to wait while another writer edits the model (default 300)")
    rm.set_defaults(func=_memory_remove)

    mv = sub.add_parser("milvus", help="run a local Milvus server (loopback only) for the Milvus backend")
    mvsub = mv.add_subparsers(dest="milvus_command", required=True)
    serve = mvsub.add_parser("serve", help="start Milvus standalone on 127.0.0.1 and wait (Ctrl-C stops it)")
    serve.add_argument("--data", required=True, help="directory for Milvus's binaries, logs and data")
    serve.add_argument("--port", type=_port, default=19530)
    serve.set_defaults(func=_milvus_serve)

    rep = sub.add_parser("report", help="misclassification report (HTML + Markdown) from predictions")
    rep.add_argument("--predictions", required=True, help="CSV/Parquet with true,pred[,route,score,ref,system]")
    rep.add_argument("--tree", help="tree JSON with a superclass cut (default: the model's tree)")
    rep.add_argument("--model", help="routed model, for the neighbour gallery")
    rep.add_argument("--data", help="dataset the refs point into (default: $SUPERSUB_DATA)")
    rep.add_argument("--system", help="system to describe (default: the last in the file)")
    rep.add_argument("--baseline", help="system to compare against (default: the first other)")
    rep.add_argument("--gallery", type=_NON_NEGATIVE, default=8, help="confident mistakes to show")
    rep.add_argument("-o", "--output", required=True, help="directory for report.html and summary.md")
    rep.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``supersub``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
