"""The one atomic writer, checksum and format check that every package uses."""

import hashlib
import os
import stat

import pytest

import hierarchy
import memory
import router
from hierarchy import SupersubError, TreeFormatError, atomic_file, atomic_write, check_format, sha256_file


def test_atomic_write_replaces_and_returns_the_checksum(tmp_path):
    target = tmp_path / "deep" / "file.json"
    digest = atomic_write(target, "first ✓")
    assert target.read_text(encoding="utf-8") == "first ✓"
    assert digest == hashlib.sha256("first ✓".encode()).hexdigest() == sha256_file(target)
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.json"]  # no temporary file left


def test_a_failure_inside_the_block_leaves_the_old_file_and_no_debris(tmp_path):
    target = tmp_path / "keep.txt"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_file(target) as fh:
            fh.write(b"half of the new")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_permissions_follow_the_umask_not_the_temporary_files(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o640
    atomic_write(tmp_path / "b", "x", mode=0o600)
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o600


@pytest.mark.parametrize("meta, message", [
    ({"format": "other", "version": 1}, "is not a supersub thing \\(format 'other', expected 'thing'\\); rebuild it"),
    ([1, 2], "is not a supersub thing \\(format 'list'"),
    ({"format": "thing", "version": 0}, "format version 0; this supersub reads version 2: rebuild it"),
    ({"format": "thing", "version": 3}, "format version 3; this supersub reads version 2: upgrade supersub"),
])
def test_check_format_names_the_problem_and_the_fix(meta, message):
    with pytest.raises(TreeFormatError, match=message):
        check_format(meta, "thing", 2, what="x.json", noun="supersub thing", error=TreeFormatError)
    check_format({"format": "thing", "version": 2}, "thing", 2, what="x", noun="n", error=TreeFormatError)


def test_every_exported_error_is_under_the_one_root():
    errors = [getattr(pkg, name) for pkg in (hierarchy, memory, router) for name in pkg.__all__
              if isinstance(getattr(pkg, name), type) and issubclass(getattr(pkg, name), BaseException)]
    assert len(errors) >= 14
    assert all(issubclass(e, SupersubError) for e in errors), [e for e in errors if not issubclass(e, SupersubError)]
    assert issubclass(memory.MissingBackendError, ImportError) and issubclass(memory.UnknownEntryError, KeyError)
