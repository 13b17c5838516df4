"""The ``supersub`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main"]

log = logging.getLogger("supersub")


class CLIError(Exception):
    """A user error the CLI reports without a traceback."""


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
        help="balanced:N, depth:D, file:MAPPING, synsets:A,B,... or induced:N:MEANS.npy",
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
    emb.add_argument("--size", type=int, default=128, help="input resolution")
    emb.add_argument("--crop", type=float, default=None, help="centre-crop fraction (default 0.875)")
    emb.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torch"])
    emb.add_argument("--threads", type=int, default=None)
    emb.add_argument("--batch-size", type=int, default=64)
    emb.add_argument("--per-class", type=int, default=None, help="embed only N images per class")
    emb.add_argument("--no-cache", action="store_true", help="ignore and do not write the cache")
    emb.add_argument("--no-progress", action="store_true")
    emb.add_argument("-o", "--output", required=True, help="directory to write")
    emb.set_defaults(func=_embed)
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
    except (CLIError, ValueError, OSError, RuntimeError, KeyError) as exc:
        if args.verbose:
            raise
        print(f"supersub: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
