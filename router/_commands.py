"""What each ``supersub`` subcommand does, given its parsed arguments.

The parser and its checks are in :mod:`._cli`; each function here takes the
parsed ``argparse.Namespace``, calls the packages, prints, and returns the exit
status.  Heavy imports happen inside the functions, so ``supersub --help`` is fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from pathlib import Path

from ._errors import CLIError

__all__ = ["build", "compare", "embed", "evaluate", "memory_add", "memory_info", "memory_remove", "milvus_serve", "predict", "report", "tree_build", "tree_show"]

log = logging.getLogger("supersub")


# ----------------------------------------------------------------- tree
def tree_build(args: argparse.Namespace) -> int:
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


def tree_show(args: argparse.Namespace) -> int:
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

    if not _is_tiny_imagenet(data):
        return m.image_folder(data, mapping=mapping, split=split)  # type: ignore[arg-type]
    return m.tiny_imagenet(split, data)


def embed(args: argparse.Namespace) -> int:
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
def _resolvable(tree: object, name: str) -> bool:
    import hierarchy as h

    try:
        tree.resolve_classes([name])  # type: ignore[attr-defined]
        return True
    except h.UnknownClassError:
        return False


def _is_tiny_imagenet(data: str | None) -> bool:
    return data is None or not Path(data).is_dir() or (Path(data) / "wnids.txt").is_file() or any(
        (p / "wnids.txt").is_file() for p in Path(data).iterdir() if p.is_dir())


def _tree_for(args: argparse.Namespace) -> object:
    import hierarchy as h

    if args.tree:
        return h.load_tree(args.tree)
    if not _is_tiny_imagenet(args.data):
        raise CLIError(f"--tree is needed for {args.data}: build one with 'supersub tree build --mapping FILE "
                       "--cut balanced:N -o tree.json' (or --wnids FILE for WordNet ids) and pass --tree tree.json")
    return h.shipped_tree("tiny-imagenet-200")


def build(args: argparse.Namespace) -> int:
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
    from ._pipeline import match_classes

    ds = match_classes(tree, _load_dataset(args.data, "train", args.mapping))  # type: ignore[arg-type]  # before any embedding
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


def milvus_serve(args: argparse.Namespace) -> int:
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


def predict(args: argparse.Namespace) -> int:
    from memory import IMAGE_SUFFIXES, ImageError, open_image

    from ._pipeline import QueryEncoder, typical_similarity

    clf = _load_model(args.model)
    paths: list[str] = []
    for given in args.images:
        if Path(given).is_dir():
            found = sorted(str(f) for f in Path(given).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                print(f"supersub: warning: folder {given} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})",
                      file=sys.stderr)
            paths += found
        else:
            paths.append(given)
    images, titles = [], []
    for path in paths:  # one unreadable file is reported; the others are still classified
        try:
            images.append(open_image(path))
            titles.append(path)
        except (ImageError, OSError) as exc:
            print(f"supersub: skipped {path}: {exc}", file=sys.stderr)
    if not images:
        raise CLIError(f"no readable image among the {len(paths)} given; nothing to classify")
    X = QueryEncoder(clf, progress=False).images(images)
    _print_explanations(clf, X, titles, top=args.top, neighbours=args.neighbours, routing=args.routing,
                        m=args.m, typical=typical_similarity(clf))
    if len(images) < len(paths):
        print(f"supersub: classified {len(images)} of {len(paths)} images; {len(paths) - len(images)} "
              "could not be read (see above)", file=sys.stderr)
    return 0


def _print_explanations(clf: object, X: object, titles: list[str], *, top: int, neighbours: int,
                        routing: str | None, m: int | None, typical: float | None = None) -> None:
    names = clf.tree  # type: ignore[attr-defined]
    explanations = clf.explain(X, top=top, routing=routing, m=m)  # type: ignore[attr-defined]
    for path, e in zip(titles, explanations):
        print(f"{path}")
        if typical is not None and e.neighbours and e.neighbours[0].similarity < typical:
            print(f"  warning: unlike the memory: its nearest entry has similarity {e.neighbours[0].similarity:.2f}, "
                  f"below {typical:.2f}, which 95% of the memory's entries reach with their nearest neighbour; "
                  "the prediction is a guess")
        route = list(e.route.items())[:3]
        print("  route: " + ", ".join(f"{n} {p:.2f}" for n, p in route))
        for cls, p in e.probabilities.items():
            print(f"  {p:6.3f}  {cls}  {names.label(cls)}")
        for nb in e.neighbours[:neighbours]:
            print(f"    neighbour {nb.id:>7}  sim {nb.similarity:.3f}  weight {nb.weight:.3g}  "
                  f"{nb.label} {names.label(nb.label)}  [{nb.source}] {nb.ref or ''}")


def evaluate(args: argparse.Namespace) -> int:
    from ._pipeline import QueryEncoder, evaluate_with_flat, flat_from, write_evaluation

    clf = _load_model(args.model)
    enc = QueryEncoder(clf, progress=not args.no_progress)
    ds = _load_dataset(args.data, args.split, args.mapping)
    tree = clf.tree  # type: ignore[attr-defined]
    import dataclasses

    ds = dataclasses.replace(ds, classes=[  # folder names as the model's classes, where they name one
        tree.resolve_classes([c])[0] if _resolvable(tree, c) else c for c in ds.classes])  # type: ignore[attr-defined]
    held = {str(c) for c in clf.classes_}  # type: ignore[attr-defined]
    known = [c for c in ds.classes if c in held]
    missing = [i for i, c in enumerate(ds.classes) if c not in held]
    if not known:
        raise CLIError(f"none of the {len(ds.classes)} classes of the data is in the model; evaluate on data "
                       "of the model's classes (see 'supersub memory info')")
    if missing:
        import numpy as np

        dropped = int(np.isin(ds.targets, missing).sum())
        names = ", ".join(ds.classes[i] for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        print(f"supersub: note: {len(missing)} of {len(ds.classes)} classes of the data ({dropped} of {len(ds)} "
              f"images) are not in the model and are left out: {names}", file=sys.stderr)
    ds = ds.subset(None if args.full else args.per_class, classes=known)  # type: ignore[attr-defined]
    es = enc.dataset(ds)  # type: ignore[arg-type]
    flat = flat_from(clf)  # built once: kNN over every shard's entries, or the generalist
    result = evaluate_with_flat(clf, es.X, es.labels, flat, routing=args.routing, m=args.m,
                                fingerprint=es.fingerprint)
    routed = result["routed"]
    print(f"{len(es)} queries from {es.dataset}/{es.split}")
    flat_name = "flat kNN (same memory)" if not enc.network else "flat tail (the generalist)"
    systems = ((flat_name, result["flat_knn"]), (f"routed ({clf!r})", routed))
    width = max(len(name) for name, _ in systems) + 2  # names are never cut off
    print(f"  {'system':<{width}}{'top-1':>8}{'superclass':>12}{'errors across/within':>24}")
    for name, r in systems:
        print(f"  {name:<{width}}{r['top1']:8.3f}{r['predicted_superclass_accuracy']:12.3f}"
              f"{r['errors_across_superclasses']:>12d}/{r['errors_within_superclass']:<11d}")
    print(f"  router superclass accuracy {routed['superclass_accuracy']:.3f}; specialist accuracy "
          f"given the right route {routed['specialist_accuracy']:.3f}; oracle route {routed['oracle_top1']:.3f}")
    if args.explain:
        _print_explanations(clf, es.X[: args.explain], [f"{es.refs[i]} (true {es.labels[i]} "
                            f"{clf.tree.label(es.labels[i])})" for i in range(args.explain)],  # type: ignore[attr-defined]
                            top=3, neighbours=3, routing=args.routing, m=args.m)
    if args.output:
        metrics, predictions = write_evaluation(args.output, clf, es.X, es.labels, es.refs, result, flat,
                                                routing=args.routing, m=args.m, data_root=ds.root)  # type: ignore[attr-defined]
        print(f"wrote {metrics} and {predictions}")
    return 0


def compare(args: argparse.Namespace) -> int:
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


def memory_info(args: argparse.Namespace) -> int:
    from ._pipeline import memory_summary

    clf = _load_model(args.model)
    print(f"{args.model}: {clf!r}, {len(clf.classes_)} classes, fingerprint {clf.fingerprint}")  # type: ignore[attr-defined]
    for s, name, n, c, sources in memory_summary(clf):  # type: ignore[arg-type]
        print(f"  {name:<28} {n:7d} entries {c:4d} classes  sources: {sources}")
    return 0


def memory_add(args: argparse.Namespace) -> int:
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


def memory_remove(args: argparse.Namespace) -> int:
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
def _gallery(args: argparse.Namespace, clf: object, p: object, n: int) -> list:
    """Confident mistakes of ``p`` with the neighbours that outvoted the truth.

    Query images are read from ``--data`` if given, else from the folder the
    evaluation recorded beside the predictions; neighbour images always from
    the model's training data.
    """
    import json

    from ._gallery import mistake_gallery

    if args.data is not None:
        queries = Path(_load_dataset(args.data, "val", args.mapping).root)  # type: ignore[attr-defined]
    else:
        metrics = Path(args.predictions).parent / "metrics.json"
        recorded = json.loads(metrics.read_text()).get("data_root") if metrics.is_file() else None
        if recorded is None:
            raise CLIError(f"{args.predictions} does not say where its images are; give --data (and --mapping)")
        queries = Path(recorded)
    trained = (getattr(clf, "data", None) or {}).get("root")
    return mistake_gallery(clf, p, queries, n, memory_root=Path(trained) if trained else None)  # type: ignore[arg-type]


def report(args: argparse.Namespace) -> int:
    import hierarchy as h

    from ._analysis import load_predictions
    from ._report import write_report

    systems = load_predictions(args.predictions)
    clf = _load_model(args.model) if args.model else None
    if args.tree:
        tree = h.load_tree(args.tree)
    elif clf is not None:
        tree = clf.tree  # type: ignore[attr-defined]
    else:
        raise CLIError("give --tree (or --model, whose tree is used)")
    main_name = args.system or [n for n in systems if n != "oracle"][-1]
    if main_name not in systems:
        raise CLIError(f"no system {main_name!r} in {args.predictions}; present: {', '.join(systems)}")
    gallery = _gallery(args, clf, systems[main_name], args.gallery) if clf is not None and args.gallery else []
    paths = write_report(systems, tree, args.output, main=main_name, baseline=args.baseline,
                         oracle="oracle" if "oracle" in systems else None, gallery=gallery)
    print(Path(paths["markdown"]).read_text())
    print(f"wrote {paths['html']} and {paths['markdown']}")
    return 0


# ----------------------------------------------------------------- parser
