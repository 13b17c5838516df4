"""What the ``supersub`` subcommands that make and edit models do, given their parsed arguments.

The parser and its checks are in :mod:`._cli`; each function here takes the
parsed ``argparse.Namespace``, calls the packages, prints, and returns the exit
status.  Heavy imports happen inside the functions, so ``supersub --help`` is fast.
The subcommands that use a built model are in :mod:`._commands_query`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from pathlib import Path
from typing import Any

from .._errors import CLIError

__all__ = ["build", "embed", "load_dataset", "load_model", "memory_add", "memory_info", "memory_remove",
           "memory_set_weight", "milvus_serve", "readable", "tree_build", "tree_show"]

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
    from hierarchy import normalize_name, read_text

    p = Path(path)
    try:
        text = read_text(p, limit=16 << 20, what="wnids file", error=CLIError)
    except FileNotFoundError:
        raise CLIError(f"wnids file {p} does not exist") from None
    lines = [normalize_name(ln).strip() for ln in text.splitlines()]
    return [ln.split()[0] for ln in lines if ln and not ln.startswith("#")]


# ---------------------------------------------------------------- embed
def readable(ds: Any, skip: bool) -> Any:
    """With ``--skip-unreadable``, ``ds`` less the images that do not decode, each reported and counted."""
    if not skip:
        return ds
    kept, skipped = ds.without_unreadable()
    for ref, why in skipped[:5]:
        print(f"supersub: skipped {ref}: {why}", file=sys.stderr)
    if skipped:
        more = f" ({len(skipped) - 5} more not listed)" if len(skipped) > 5 else ""
        print(f"supersub: skipped {len(skipped)} of {len(ds)} images that do not decode{more}", file=sys.stderr)
    if not len(kept):
        raise CLIError(f"none of the {len(ds)} images decodes; check the data folder")
    return kept


def load_dataset(data: str | None, split: str, mapping: str | None = None) -> object:
    import memory as m

    if not _is_tiny_imagenet(data):
        return m.image_folder(data, mapping=mapping, split=split)  # type: ignore[arg-type]
    return m.tiny_imagenet(split, data)


def embed(args: argparse.Namespace) -> int:
    import memory as m

    ds = load_dataset(args.data, args.split, args.mapping)
    if args.per_class:
        ds = ds.subset(args.per_class)  # type: ignore[attr-defined]
    backbone = m.get_backbone(args.backbone, size=args.size, crop_pct=args.crop)
    embedder = m.Embedder(backbone, runtime=args.runtime, precision=args.precision, threads=args.threads,
                          batch_size=args.batch_size, progress=not args.no_progress)
    es = m.embed_dataset(ds, embedder, use_cache=not args.no_cache)  # type: ignore[arg-type]
    m.save_embeddings(es, args.output)
    print(f"wrote {args.output}: {es!r} (runtime {embedder.runtime}, {embedder.numeric_path})")
    return 0


# ---------------------------------------------------------------- build
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
            try:
                return _build_locked(args)
            except m.ImageError as exc:
                raise CLIError(f"{exc}; pass --skip-unreadable to leave such images out") from None
    except BaseException:
        if fresh and out.is_dir() and not (out / "CURRENT").exists():
            import shutil

            shutil.rmtree(out, ignore_errors=True)  # leave no half-made model behind
        raise


def _build_locked(args: argparse.Namespace) -> int:
    import memory as m

    tree = _tree_for(args)
    from ..pipeline import match_classes

    ds = match_classes(tree, load_dataset(args.data, "train", args.mapping))  # type: ignore[arg-type]  # before any embedding
    if args.per_class and not args.full:
        ds = ds.subset(args.per_class)  # type: ignore[attr-defined]
    ds = readable(ds, args.skip_unreadable)
    if args.router == "generalist" or args.specialist.startswith("tail-"):
        return _build_network(args, tree, ds)
    from ..pipeline import build_memory_model

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
    from ..network import NetworkTwoStage

    if args.backend:
        raise CLIError("--backend applies to memory models; a network-level model keeps its memories embedded")
    specialist = "tail-delta" if args.specialist == "memory" else args.specialist  # memory: the default
    if args.router not in ("generalist", "centroids"):  # centroids: the parser's default
        raise CLIError(f"--router {args.router} routes a memory-level model; a network-level one routes with its "
                       "fine-tuned generalist (--router generalist)")
    clf = NetworkTwoStage(
        tree, specialist=specialist,
        routing=args.routing or "soft", m=args.m, k=args.k, backbone=args.backbone, size=args.size or 160, crop_pct=args.crop,
        split_at=args.split_at, rank=args.rank, epochs=args.epochs, specialist_epochs=args.specialist_epochs,
        dev_per_class=args.dev_per_class, progress=not args.no_progress, hierarchy_beta=args.hierarchy_beta,
        runtime=args.runtime,
    )
    clf.fit(ds)
    clf.save(args.output)
    st = clf.storage()
    print(f"built {args.output}: {clf!r} from {len(ds)} images ({clf.fingerprint}); "  # type: ignore[arg-type]
          f"storage {st['tails']:.3f} tails (bound 0.2N+1 = {st['published_bound_tails']}), mix {clf.mix_}")
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


def load_model(path: str) -> object:
    """The saved model at ``path``, of either kind (:func:`router.load_model`)."""
    from ..pipeline import load_model as load

    return load(path)


def memory_info(args: argparse.Namespace) -> int:
    from ..pipeline import memory_summary

    clf = load_model(args.model)
    print(f"{args.model}: {clf!r}, {len(clf.classes_)} classes, fingerprint {clf.fingerprint}")  # type: ignore[attr-defined]
    for s, name, n, c, sources in memory_summary(clf):  # type: ignore[arg-type]
        print(f"  {name:<28} {n:7d} entries {c:4d} classes  sources: {sources}")
    return 0


def memory_add(args: argparse.Namespace) -> int:
    import memory as m

    from ..pipeline import edit_classifier
    from ..pipeline import QueryEncoder

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
    from ..pipeline import edit_classifier

    if not (args.label or args.source):
        raise CLIError("give --label and/or --source to remove")
    with edit_classifier(args.model, wait=args.wait) as clf:
        if args.label and not args.source:
            removed = {args.label: clf.remove_class(args.label)}
        else:
            removed = clf.remove(source=args.source, label=args.label)
    print(f"removed {sum(len(v) for v in removed.values())} entries")
    return 0


def memory_set_weight(args: argparse.Namespace) -> int:
    from ..pipeline import edit_classifier

    if not (args.label or args.source):
        raise CLIError("give --label and/or --source to choose the entries to reweight")
    with edit_classifier(args.model, wait=args.wait) as clf:
        changed = clf.set_weight(args.weight, label=args.label, source=args.source)
    print(f"set the weight of {sum(len(v) for v in changed.values())} entries to {args.weight:g}")
    return 0


# ----------------------------------------------------------------- parser
