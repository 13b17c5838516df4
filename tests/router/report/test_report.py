"""The HTML report, rendered by a real headless Chromium."""

import shutil

import numpy as np
import pytest

from hierarchy import ClassTree, cut_at_depth
from router import SECTIONS, GalleryItem, GalleryNeighbour, Predictions, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_layout):
    parents = {"tabby": "cat", "persian": "cat", "beagle": "dog", "cat": "animal", "dog": "animal",
               "car": "vehicle", "bus": "vehicle"}
    tree = ClassTree.from_parents(parents)
    tree = tree.with_superclasses(cut_at_depth(tree, 1))
    rng = np.random.default_rng(0)
    classes = np.array(["tabby", "persian", "beagle", "car", "bus"], dtype=object)
    true = classes[rng.integers(0, 5, 200)]
    flat = np.where(rng.random(200) < 0.6, true, classes[rng.integers(0, 5, 200)])
    routed = np.where(rng.random(200) < 0.7, true, classes[rng.integers(0, 5, 200)])
    route = np.array([tree.superclass_of(c) for c in routed], dtype=object)
    refs = np.array([f"q{i}.jpg" for i in range(200)], dtype=object)
    systems = {
        "flat": Predictions(true, flat, score=rng.random(200), ref=refs),
        "routed": Predictions(true, routed, route=route, score=rng.random(200), ref=refs),
        "oracle": Predictions(true, true.copy()),
    }
    jpegs = sorted((tiny_layout["folder"] / "train").rglob("*.JPEG"))
    gallery = [
        GalleryItem(jpegs[i].read_bytes(), "tabby", "persian", 0.9 - i / 10, f"q{i}.jpg",
                    [GalleryNeighbour(jpegs[i + j + 1].read_bytes(), "persian", "train", 0.5, 0.8) for j in range(3)])
        for i in range(3)
    ]
    out = tmp_path_factory.mktemp("report")
    paths = write_report(systems, tree, out, main="routed", baseline="flat", oracle="oracle", gallery=gallery)
    return paths, systems


def test_report_files_and_summary(report):
    paths, systems = report
    text = paths["html"].read_text()
    assert "http://" not in text and "https://" not in text  # self-contained: nothing to fetch
    md = paths["markdown"].read_text()
    acc = np.mean(systems["routed"].pred == systems["routed"].true)
    assert f"| routed | {100 * acc:.1f}% |" in md
    assert "Oracle-route bound: 100.0%." in md


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    from playwright.sync_api import sync_playwright

    paths, _ = report
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(paths["html"].as_uri())
        page.wait_for_load_state("load")
        present = page.evaluate("ids => ids.filter(id => document.getElementById(id) !== null)", list(SECTIONS))
        decoded = page.evaluate(
            "Promise.all(Array.from(document.querySelectorAll('#gallery img')).map("
            "img => img.decode().then(() => img.naturalWidth > 0, () => false)))")
        plots = page.evaluate("Array.from(document.querySelectorAll('#severity img, #confusion img'))"
                              ".map(i => i.naturalWidth)")
        # Sorting works: click the header twice and read the first row.
        first = page.locator("#per-class table tbody tr").first
        page.locator("#per-class th").nth(2).click()
        page.locator("#per-class th").nth(2).click()
        top = int(first.locator("td").nth(2).inner_text())
        counts = [int(t) for t in page.locator("#per-class table tbody tr td:nth-child(3)").all_inner_texts()]
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert errors == []
    assert present == list(SECTIONS)
    assert len(decoded) == 12 and all(decoded)  # 3 queries + 9 neighbours
    assert len(plots) == 2 and all(w > 100 for w in plots)
    assert top == max(counts)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_summary_escapes_hostile_names(tmp_path):
    tree = ClassTree.from_parents({"a": "s", "b": "s", "c": "t"})
    tree = tree.with_superclasses(cut_at_depth(tree, 1))
    true = np.array(["a", "b", "c", "a"], dtype=object)
    hostile = "x | <script>alert(1)</script> [link](javascript:evil) *\n# heading"
    systems = {hostile: Predictions(true, np.array(["a", "a", "c", "b"], dtype=object)),
               "flat": Predictions(true, true.copy())}
    paths = write_report(systems, tree, tmp_path, main=hostile, baseline="flat", title="<b>t</b> | #x")
    md = paths["markdown"].read_text()
    assert "<script>" not in md and "<b>" not in md and "](javascript:" not in md
    assert "&lt;script&gt;" in md and r"\[link\]\(javascript:evil\)" in md
    table_rows = [ln for ln in md.splitlines() if ln.startswith("| ") and "%" in ln]
    assert all(ln.count(" | ") == 4 for ln in table_rows)  # a '|' in a name does not add a column
    assert "\n# heading" not in md
    assert "<script>alert(1)" not in paths["html"].read_text()
