from benchmarks import tables


def test_every_page_is_regenerated_from_the_results():
    for page in tables.pages():
        text = page.read_text()
        assert tables.render(text) == text, f"{page.name}: run python benchmarks/tables.py"


def test_every_results_file_has_a_table_in_a_page():
    text = "".join(page.read_text() for page in tables.pages())
    for path in sorted(tables.RESULTS.glob("*.json")):
        assert path.stem in tables.TABLES, f"{path.name} has no table function"
        assert f"<!-- results:{path.stem} -->" in text, path.stem
        assert len(tables.render(f"<!-- results:{path.stem} -->\n<!-- /results:{path.stem} -->")) > 60


def test_every_result_kept_per_kind_of_cpu_has_a_table_for_each_kind():
    import re

    from benchmarks._common import per_cpu_name

    names = {m for path in sorted((tables.ROOT / "benchmarks").glob("*_bench.py"))
             for m in re.findall(r'per_cpu_name\("(\w+)"\)', path.read_text())}
    assert {"crossover", "demo", "embed", "memory", "network_speed"} <= names
    text = "".join(page.read_text() for page in tables.pages())
    for name in names:
        for flags in ({"amx_bf16", "avx512_bf16"}, {"avx512_bf16"}):
            stem = per_cpu_name(name, frozenset(flags))
            assert stem in tables.TABLES and f"<!-- results:{stem} -->" in text, stem


def test_a_stale_page_is_found(tmp_path, monkeypatch):
    page = tmp_path / "README.md"
    page.write_text("<!-- results:claims -->\nold\n<!-- /results:claims -->\n")
    monkeypatch.setattr(tables, "pages", lambda: [page])
    monkeypatch.setattr(tables, "ROOT", tmp_path)
    assert tables.main(["--check"]) == 1 and "old" in page.read_text()
    assert tables.main([]) == 0 and tables.main(["--check"]) == 0 and "| claim |" in page.read_text()


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
