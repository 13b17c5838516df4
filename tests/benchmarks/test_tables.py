from benchmarks import tables


def test_readme_tables_are_regenerated_from_the_results():
    readme = (tables.ROOT / "README.md").read_text()
    assert tables.render(readme) == readme, "run python benchmarks/tables.py"


def test_every_results_file_has_a_table_in_the_readme():
    readme = (tables.ROOT / "README.md").read_text()
    for path in sorted(tables.RESULTS.glob("*.json")):
        if path.stem in tables.TABLES:
            assert f"<!-- results:{path.stem} -->" in readme, path.stem
