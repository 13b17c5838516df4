from benchmarks import tables


def test_readme_tables_are_regenerated_from_the_results():
    readme = (tables.ROOT / "README.md").read_text()
    assert tables.render(readme) == readme, "run python benchmarks/tables.py"


def test_every_results_file_has_a_table_in_the_readme():
    readme = (tables.ROOT / "README.md").read_text()
    for path in sorted(tables.RESULTS.glob("*.json")):
        if path.stem in tables.TABLES:
            assert f"<!-- results:{path.stem} -->" in readme, path.stem


def test_results_record_no_absolute_paths():
    """A results file is read on other machines: paths are relative to the repository or the data root."""
    import json
    import re
    from pathlib import Path

    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    found = [(f.name, s) for f in sorted(results.glob("*.json")) for s in strings(json.loads(f.read_text()))
             if re.search(r"(^|[\s(])/(work|tmp|home|root|Users)/", s)]
    assert not found, found


def test_repo_path_is_relative_inside_the_repository(tmp_path):
    from benchmarks._common import RESULTS, repo_path

    assert repo_path(RESULTS / "x.json") == "benchmarks/results/x.json"
    assert repo_path(tmp_path / "a" / "model") == "a/model"
