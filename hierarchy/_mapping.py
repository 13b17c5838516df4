"""Reading class-to-parent mapping files (JSON or CSV)."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path

from ._errors import MappingFileError
from ._text import normalize_name, parse_json, read_text

__all__ = ["check_parents", "read_mapping"]


#: Header rows a CSV mapping may start with (compared in lower case).
HEADERS = (["class", "superclass"], ["child", "parent"])
#: Largest mapping file read: 64 MiB.
MAX_MAPPING_BYTES = 64 << 20


def check_parents(parents: Mapping[str, str], origin: str = "mapping") -> None:
    """Raise :class:`MappingFileError` unless ``parents`` describes a forest.

    Parameters
    ----------
    parents : mapping of str to str
        Child to parent.
    origin : str
        Where the mapping came from, for error messages.
    """
    if not parents:
        raise MappingFileError(f"{origin} is empty: give at least one 'class,superclass' pair")
    for child, parent in parents.items():
        for value in (child, parent):
            if not isinstance(value, str) or not value.strip():
                raise MappingFileError(
                    f"{origin}: {child!r} -> {parent!r} has an empty or non-string name"
                )
        if child == parent:
            raise MappingFileError(f"{origin}: {child!r} is listed as its own parent (a cycle)")
    done: set[str] = set()
    for start in parents:
        path: list[str] = []
        on_path: set[str] = set()
        node: str | None = start
        while node is not None and node not in done:
            if node in on_path:
                cycle = path[path.index(node) :] + [node]
                raise MappingFileError(
                    f"{origin} has a cycle: {' -> '.join(cycle)}; every chain of parents "
                    "must end at a top-level superclass"
                )
            on_path.add(node)
            path.append(node)
            node = parents.get(node)
        done.update(path)


def read_mapping(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a class-to-superclass (child-to-parent) mapping file.

    Accepted forms:

    * JSON object ``{"class": "superclass", ...}``;
    * JSON object ``{"superclass": ["class", ...], ...}``;
    * CSV with two columns, child then parent; an optional first row
      ``class,superclass`` or ``child,parent`` names them.

    Chains are allowed (``cat -> feline -> animal``), which describes a deeper
    tree for :meth:`ClassTree.from_parents`.

    The file is UTF-8, with or without a byte-order mark, at most
    :data:`MAX_MAPPING_BYTES`.  Names are stripped of surrounding blanks and
    put in Unicode NFC, so a composed and a decomposed spelling of one name
    are one class (and listing both is "listed twice").

    Returns
    -------
    dict of str to str
        Child to parent, in file order.

    Raises
    ------
    MappingFileError
        If the file is missing, unreadable, lists a class twice or has a cycle.
    """
    p = Path(path)
    try:
        text = read_text(p, limit=MAX_MAPPING_BYTES, what="mapping file", error=MappingFileError)
    except FileNotFoundError:
        raise MappingFileError(f"mapping file {p} does not exist or is not a file") from None
    except OSError as exc:
        raise MappingFileError(f"cannot read mapping file {p}: {exc}") from exc
    parents: dict[str, str] = {}
    where: dict[str, str] = {}

    def put(child: str, parent: str, loc: str) -> None:
        child, parent = normalize_name(str(child)).strip(), normalize_name(str(parent)).strip()
        if child in parents:
            raise MappingFileError(
                f"{p}: class {child!r} is listed twice ({where[child]} and {loc}); "
                "each class belongs to exactly one superclass"
            )
        parents[child] = parent
        where[child] = loc

    if p.suffix.lower() == ".json":
        def pairs_hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
            out = dict(pairs)
            if len(out) != len(pairs):
                seen: set[str] = set()
                dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
                raise MappingFileError(f"{p}: key {dup!r} is listed twice; list each key once")
            return out

        data = parse_json(text, origin=str(p), error=MappingFileError, object_pairs_hook=pairs_hook)
        if not isinstance(data, dict):
            raise MappingFileError(f"{p}: expected a JSON object, got {type(data).__name__}")
        for key, value in data.items():
            if isinstance(value, list):
                for member in value:
                    put(member, key, f"under {key!r}")
            elif isinstance(value, str):
                put(key, value, f"key {key!r}")
            else:
                raise MappingFileError(
                    f"{p}: value of {key!r} must be a superclass name or a list of classes"
                )
    else:
        try:
            rows = list(csv.reader(text.splitlines()))
        except csv.Error as exc:
            raise MappingFileError(f"{p} is not a readable CSV mapping ({exc}); give 'class,superclass' "
                                   "rows") from None
        first = True
        for lineno, row in enumerate(rows, start=1):
            row = [c.strip() for c in row]
            if not row or all(not c for c in row) or row[0].startswith("#"):
                continue
            if first and [c.lower() for c in row] in HEADERS:
                first = False
                continue
            first = False
            if len(row) != 2:
                raise MappingFileError(
                    f"{p}:{lineno}: expected 2 columns 'class,superclass', got {len(row)}"
                )
            put(row[0], row[1], f"line {lineno}")
    check_parents(parents, origin=str(p))
    return parents
