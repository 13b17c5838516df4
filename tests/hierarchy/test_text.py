"""The input rules every reader shares: regular files, size and depth limits, normalised text."""

import json
import os

import pytest

from hierarchy import (
    MAX_JSON_DEPTH,
    WNID,
    HierarchyError,
    normalize_name,
    open_regular,
    parse_json,
    read_bytes,
    read_json,
    read_text,
)
from hierarchy import json_depth


@pytest.mark.parametrize("text, depth", [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4),
    ('["[[[[", "}}}"]', 1),                 # brackets inside strings do not count
    ('["\\"[[[", {"k\\\\": "]"}]', 2),      # nor after escaped quotes and backslashes
])
def test_json_depth_counts_only_structure(text, depth):
    json.loads(text)
    assert json_depth(text) == depth


def test_parse_json_refuses_depth_over_the_limit_and_accepts_it_at_the_limit():
    at = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(at, origin="x") == json.loads(at)
    over = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(HierarchyError, match=f"{MAX_JSON_DEPTH + 1} levels deep, over the limit of {MAX_JSON_DEPTH}"):
        parse_json(over, origin="x", error=HierarchyError)
    with pytest.raises(HierarchyError, match="levels deep"):  # far deeper than Python's recursion limit
        parse_json(b"[" * 1_000_000 + b"]" * 1_000_000, origin="x", error=HierarchyError)


def test_parse_json_drops_a_byte_order_mark_and_names_bad_json():
    assert parse_json("\ufeff{\"a\": 1}", origin="x") == {"a": 1}
    assert parse_json(b"\xef\xbb\xbf[1]", origin="x") == [1]
    with pytest.raises(HierarchyError, match="x is not valid JSON"):
        parse_json('{"a": ', origin="x", error=HierarchyError)
    with pytest.raises(HierarchyError, match="not UTF-8"):
        parse_json(b"\xff\xfe", origin="x", error=HierarchyError)


def test_read_bytes_enforces_its_limit(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 100)
    assert read_bytes(tmp_path / "f", limit=100) == b"x" * 100
    (tmp_path / "f").write_bytes(b"x" * 101)
    with pytest.raises(HierarchyError, match="is 101 bytes, over the limit of 100"):
        read_bytes(tmp_path / "f", limit=100, error=HierarchyError)


@pytest.mark.parametrize("kind, words", [("fifo", "is a FIFO"), ("device", "is a character device"),
                                         ("dir", "is a directory")])
def test_only_regular_files_are_opened(tmp_path, kind, words):
    path = tmp_path / "x.json"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block without O_NONBLOCK
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    with pytest.raises(HierarchyError, match=words):
        open_regular(path, error=HierarchyError)
    with pytest.raises(HierarchyError, match=words):
        read_json(path, error=HierarchyError)


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_text(tmp_path / "none", limit=10)


def test_read_text_drops_the_bom_and_refuses_other_encodings(tmp_path):
    (tmp_path / "a").write_bytes(b"\xef\xbb\xbfcat\n")
    assert read_text(tmp_path / "a", limit=100) == "cat\n"
    (tmp_path / "b").write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(HierarchyError, match="is not UTF-8 text"):
        read_text(tmp_path / "b", limit=100, error=HierarchyError)


def test_names_are_nfc_and_wnids_ascii():
    assert normalize_name("cafe\u0301") == normalize_name("caf\u00e9") == "caf\u00e9"
    assert normalize_name("\ufeffcat") == "cat"
    assert WNID.match("n01443537")
    assert not WNID.match("n" + "01443537".translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")))
    assert not WNID.match("n0144353") and not WNID.match("x01443537") and not WNID.match("n014435377")
