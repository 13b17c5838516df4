"""Versioned JSON serialisation of class trees, and the trees shipped in ``data/``."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import networkx as nx

from ._errors import HierarchyError, TreeFormatError
from ._files import atomic_write, check_format
from ._superclasses import SuperclassMap
from ._text import parse_json, read_text
from ._tree import ClassTree

__all__ = ["FORMAT", "FORMAT_VERSION", "load_tree", "save_tree", "shipped_path", "shipped_tree"]

FORMAT = "supersub-tree"
FORMAT_VERSION = 1
#: Largest tree file read: 64 MiB (all 82,115 WordNet noun synsets take about 25 MB).
MAX_TREE_BYTES = 64 << 20


def tree_to_dict(tree: ClassTree) -> dict[str, Any]:
    """The JSON-ready form of a tree (see :func:`save_tree`)."""
    parents = tree.parents
    nodes = {
        n: {"name": tree.graph.nodes[n]["name"], "label": tree.graph.nodes[n]["label"],
            "parent": parents[n]}
        for n in nx.dfs_preorder_nodes(tree.graph, tree.root)
    }
    out = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "source": tree.source,
        "collapsed": tree.collapsed,
        "root": tree.root,
        "classes": list(tree.classes),
        "nodes": nodes,
        "superclasses": tree.superclasses.to_dict() if tree.superclasses else None,
    }
    if tree.uncollapsed is not None:  # the graph before collapsing, for grafting new classes
        full = tree.uncollapsed
        root = next(n for n in full if full.in_degree(n) == 0)
        out["uncollapsed"] = {
            n: {"name": full.nodes[n]["name"], "label": full.nodes[n]["label"],
                "parent": next(iter(full.predecessors(n)), None)}
            for n in nx.dfs_preorder_nodes(full, root)
        }
    return out


def _check_fields(data: dict[str, Any], origin: str) -> None:
    """Refuse a tree whose fields have the wrong types, naming the first one."""
    def bad(what: str) -> TreeFormatError:
        return TreeFormatError(f"{origin}: {what}; rebuild it with 'supersub tree build'")

    nodes, classes = data.get("nodes"), data.get("classes")
    if not isinstance(nodes, dict) or not nodes:
        raise bad("'nodes' must be a non-empty object of node id -> {name, label, parent}")
    for node, attrs in nodes.items():
        if not isinstance(attrs, dict):
            raise bad(f"node {node!r} must be an object with name, label and parent")
        for key in ("name", "label"):
            if not isinstance(attrs.get(key), str) or not attrs[key]:
                raise bad(f"node {node!r} has {key} {attrs.get(key)!r}; it must be a non-empty string")
        if attrs.get("parent") is not None and not isinstance(attrs["parent"], str):
            raise bad(f"node {node!r} has parent {attrs['parent']!r}; it must be a node id or null")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise bad("'classes' must be a non-empty list of node ids")
    sc = data.get("superclasses")
    if sc is not None:
        if not isinstance(sc, dict) or not isinstance(sc.get("assignment"), dict) or not isinstance(
            sc.get("names"), dict
        ):
            raise bad("'superclasses' must be null or an object with 'assignment' and 'names'")
        values = [*sc["assignment"], *sc["assignment"].values(), *sc["names"], *sc["names"].values()]
        if not all(isinstance(v, str) and v for v in values) or not isinstance(sc.get("method", ""), str):
            raise bad("superclass assignments and names must be non-empty strings")


def _graph(nodes: dict[str, Any], origin: str) -> nx.DiGraph:
    graph = nx.DiGraph()
    for node, attrs in nodes.items():
        graph.add_node(node, name=attrs["name"], label=attrs["label"])
    for node, attrs in nodes.items():
        if attrs["parent"] is not None:
            if attrs["parent"] not in graph:
                raise TreeFormatError(
                    f"{origin}: node {node!r} has parent {attrs['parent']!r}, which is not a node"
                )
            graph.add_edge(attrs["parent"], node)
    return graph


def tree_from_dict(data: Any, origin: str = "tree") -> ClassTree:
    """Inverse of :func:`tree_to_dict`, with validation."""
    check_format(data, FORMAT, FORMAT_VERSION, what=origin, noun="supersub tree", error=TreeFormatError,
                 rebuild="rebuild it with 'supersub tree build'")
    _check_fields(data, origin)
    try:
        graph = _graph(data["nodes"], origin)
        full = data.get("uncollapsed")
        if full is not None:
            _check_fields({"nodes": full, "classes": data["classes"]}, origin)
            full = _graph(full, origin)
        sc = data.get("superclasses")
        tree = ClassTree(
            graph,
            data["classes"],
            source=data.get("source", "wordnet"),
            collapsed=bool(data.get("collapsed", False)),
            superclasses=SuperclassMap.from_dict(sc) if sc else None,
            uncollapsed=full,
        )
        if "root" in data and data["root"] != tree.root:
            raise TreeFormatError(f"{origin}: its 'root' field is {data['root']!r}, but its nodes hang from "
                                  f"{tree.root!r}; rebuild it with 'supersub tree build'")
        return tree
    except TreeFormatError:
        raise
    except HierarchyError as exc:
        raise TreeFormatError(f"{origin}: {exc}") from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise TreeFormatError(f"{origin} is missing or mangles a field ({exc!r})") from exc


def save_tree(tree: ClassTree, path: str | os.PathLike[str]) -> Path:
    """Write ``tree`` (and its superclass cut) as JSON, atomically.

    The file is written beside its target and renamed over it, so a crash
    leaves either the old file or the new one.
    """
    path = Path(path)
    atomic_write(path, json.dumps(tree_to_dict(tree), indent=1, ensure_ascii=False) + "\n")
    return path


def load_tree(path: str | os.PathLike[str]) -> ClassTree:
    """Read a tree written by :func:`save_tree`.

    Raises
    ------
    TreeFormatError
        If the file is missing, not a regular file, over :data:`MAX_TREE_BYTES`,
        nested deeper than :data:`hierarchy.MAX_JSON_DEPTH`, truncated, or not a
        supersub tree (its ``root`` field included).
    """
    path = Path(path)
    try:
        text = read_text(path, limit=MAX_TREE_BYTES, what="tree file", error=TreeFormatError)
    except FileNotFoundError:
        raise TreeFormatError(f"tree file {path} does not exist; build one with 'supersub tree build'") from None
    data = parse_json(text, origin=str(path), error=TreeFormatError)
    return tree_from_dict(data, str(path))


def _data_root() -> Path:
    # A source checkout (or editable install) keeps data/ beside the package;
    # a wheel installs it as the hierarchy.data package.
    beside = Path(__file__).resolve().parents[1] / "data"
    if beside.is_dir():
        return beside
    return Path(str(resources.files("hierarchy.data")))


def shipped_path(dataset: str, name: str = "tree.json") -> Path:
    """Path of a file shipped for a dataset in ``data/`` (e.g. ``tiny-imagenet-200``)."""
    root = _data_root()
    candidate = root / dataset / name
    if not candidate.is_file():
        known = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise FileNotFoundError(
            f"no shipped file {dataset}/{name}; shipped datasets: {', '.join(known)}"
        )
    return candidate


def shipped_tree(dataset: str) -> ClassTree:
    """The prebuilt tree (with its 10-superclass balanced cut) shipped for ``dataset``.

    Needs no WordNet installation.  Available: ``tiny-imagenet-200``, ``imagenet-1k``.
    """
    return load_tree(shipped_path(dataset, "tree.json"))
