import json

import pytest

from hierarchy import ClassTree, MappingFileError, read_mapping


def test_json_both_forms_and_csv(tmp_path):
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"cat": "animal", "car": "vehicle"}))
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"animal": ["cat"], "vehicle": ["car"]}))
    c = tmp_path / "c.csv"
    c.write_text("class,superclass\ncat,animal\n# comment\n\ncar,vehicle\n")
    expected = {"cat": "animal", "car": "vehicle"}
    assert read_mapping(a) == read_mapping(b) == read_mapping(c) == expected


def test_cycle_is_named(tmp_path):
    p = tmp_path / "cyc.csv"
    p.write_text("cat,feline\nfeline,animal\nanimal,cat\n")
    with pytest.raises(MappingFileError, match="cycle: cat -> feline -> animal -> cat"):
        read_mapping(p)


def test_self_parent(tmp_path):
    p = tmp_path / "self.json"
    p.write_text(json.dumps({"cat": "cat"}))
    with pytest.raises(MappingFileError, match="its own parent"):
        read_mapping(p)


def test_class_listed_twice_csv(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("cat,animal\ndog,animal\ncat,pet\n")
    with pytest.raises(MappingFileError, match="'cat' is listed twice \\(line 1 and line 3\\)"):
        read_mapping(p)


def test_class_listed_twice_json(tmp_path):
    p = tmp_path / "dup.json"
    p.write_text('{"cat": "animal", "cat": "pet"}')
    with pytest.raises(MappingFileError, match="'cat' is listed twice"):
        read_mapping(p)
    q = tmp_path / "dup2.json"
    q.write_text(json.dumps({"animal": ["cat"], "pet": ["cat"]}))
    with pytest.raises(MappingFileError, match="'cat' is listed twice"):
        read_mapping(q)


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("trunc.json", '{"cat": "ani', "not valid JSON"),
        ("list.json", '["cat"]', "expected a JSON object"),
        ("cols.csv", "cat,animal,extra\n", "expected 2 columns"),
        ("empty.csv", "", "is empty"),
        ("blank.csv", "cat,\n", "empty or non-string"),
    ],
)
def test_bad_files(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(MappingFileError, match=match):
        read_mapping(p)


def test_missing_file(tmp_path):
    with pytest.raises(MappingFileError, match="does not exist"):
        read_mapping(tmp_path / "nope.csv")


def test_deep_mapping_builds_tree(tmp_path):
    p = tmp_path / "deep.csv"
    p.write_text("tabby,cat\ncat,animal\nbeagle,dog\ndog,animal\ncar,vehicle\n")
    tree = ClassTree.from_parents(read_mapping(p))
    assert tree.classes == ("tabby", "beagle", "car")
    assert tree.path_to_root("tabby") == ["tabby", "cat", "animal", "root"]
    assert tree.lca_height("tabby", "beagle") == 2


@pytest.mark.parametrize("header", ["class,superclass", "child,parent", "Child, Parent", "# a comment\nchild,parent"])
def test_optional_header_row(tmp_path, header):
    p = tmp_path / "m.csv"
    p.write_text(f"{header}\ncat,feline\nfeline,animal\ncar,vehicle\n")
    assert read_mapping(p) == {"cat": "feline", "feline": "animal", "car": "vehicle"}
    tree = ClassTree.from_parents(read_mapping(p))
    assert sorted(tree.classes) == ["car", "cat"]  # no class named 'child' or 'class'


def test_a_header_like_row_after_data_is_data(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("cat,animal\nchild,parent\n")
    assert read_mapping(p) == {"cat": "animal", "child": "parent"}
