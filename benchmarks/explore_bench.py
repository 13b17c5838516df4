"""Round trip of a query in ``supersub explore``: upload to rendered page, against the same query through the API.

    python benchmarks/explore_bench.py                 # the 100k Tiny-ImageNet memory (built once, then reused)
    python benchmarks/explore_bench.py --model DIR     # any routed memory model
    python benchmarks/explore_bench.py --quick ...     # few queries; nothing written

The model is loaded and the server started before any timing (the first
model load is not counted), then a few untimed queries warm the embedder.
Each timed query is a real Tiny-ImageNet val image (not in the memory): the
headless system Chromium uploads it through the page's file input, and the
clock stops when the prediction, the route and the neighbours are rendered
and every neighbour image has decoded.  A steering round trip (exclude the
top neighbour's source, and back) is timed on the same page.  The baseline
is the same query in-process through the API (``Explorer.add_query`` and
``predict``: decode, embed, route, search, explain), so the ratio is what
HTTP, JSON and the browser add.  Writes benchmarks/results/explore.json.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import repo_path, write_result  # noqa: E402

TARGET_P50_MS = 300.0
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "runs" / "explore-bench" / "model"
_WAIT_RENDERED = """async ([before, n]) => {
  const deadline = Date.now() + 60000;
  while ((document.body.dataset.rendered || "") === before) {
    if (Date.now() > deadline || !document.getElementById("error").hidden) {
      throw new Error("the page did not render: " + document.getElementById("error").textContent);
    }
    await new Promise(r => setTimeout(r, 1));
  }
  const imgs = Array.from(document.querySelectorAll('#neighbours img'));
  await Promise.all(imgs.map(i => i.decode()));
  return [document.body.dataset.rendered, imgs.length];
}"""


def build_tiny_model(out: Path) -> Path:
    """The routed memory of all 100k Tiny-ImageNet train images (embeddings from the cache after the first run)."""
    from router import main

    out.parent.mkdir(parents=True, exist_ok=True)
    tree = out.parent / "tree.json"
    if main(["tree", "build", "--dataset", "tiny-imagenet-200", "--cut", "balanced:10", "-o", str(tree), "-q"]):
        raise SystemExit("tree build failed")
    if main(["build", "--tree", str(tree), "--full", "--no-progress", "-o", str(out)]):
        raise SystemExit("model build failed")
    return out


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
            "mean_ms": round(float(a.mean()), 1), "n": len(ms)}


def run(model: Path, images: list[Path], *, warmup: int = 3, chromium: str | None = None) -> dict[str, Any]:
    """Time ``images`` as page uploads and as API calls on ``model``; returns the result rows."""
    from playwright.sync_api import sync_playwright

    from memory import open_image
    from router.explore import ExploreServer, Explorer, create_app

    chromium = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs a Chromium (Debian: apt-get install chromium)")
    t0 = time.perf_counter()
    explorer = Explorer(model)
    load_s = time.perf_counter() - t0
    api_ms = []
    for path in images[:warmup] + images:
        t = time.perf_counter()
        explorer.predict(explorer.add_query(open_image(path), path.name))
        api_ms.append(1000 * (time.perf_counter() - t))
    api_ms = api_ms[warmup:]
    page_ms, steer_ms = [], []
    explorer = Explorer(model)  # fresh: the page's queries are not already embedded
    with ExploreServer(create_app(explorer, allowed_hosts=["127.0.0.1"])) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.url + "/")
        rendered = ""
        for i, path in enumerate(images[:warmup] + images):
            t = time.perf_counter()
            page.set_input_files("#upload", str(path))
            rendered, shown = page.evaluate(_WAIT_RENDERED, [rendered, 0])
            elapsed = 1000 * (time.perf_counter() - t)
            if i >= warmup:
                page_ms.append(elapsed)
                if (i - warmup) % 4 == 0:  # steering: exclude the top neighbour's source, then clear it
                    for button in ("#neighbours figure button.ex-source", "#steer-reset"):
                        t = time.perf_counter()
                        page.locator(button).first.click()
                        rendered, _ = page.evaluate(_WAIT_RENDERED, [rendered, 0])
                        steer_ms.append(1000 * (time.perf_counter() - t))
        browser.close()
    page_stats, api_stats = _stats(page_ms), _stats(api_ms)
    return {
        "model": repo_path(model), "entries": int(explorer.clf.n_entries), "classes": len(explorer.clf.class_ids_),
        "neighbours_shown": int(shown), "model_load_s": round(load_s, 2), "warmup_queries": warmup,
        "page_upload": page_stats, "page_steer": _stats(steer_ms), "api": api_stats,
        "page_over_api_p50": round(page_stats["p50_ms"] / api_stats["p50_ms"], 2),
        "target_p50_ms": TARGET_P50_MS, "meets_target": page_stats["p50_ms"] <= TARGET_P50_MS,
    }


def val_images(n: int, seed: int = 0) -> list[Path]:
    """``n`` Tiny-ImageNet val images, one class after another (seeded)."""
    from memory import tiny_imagenet

    val = tiny_imagenet("val")
    rng = np.random.default_rng(seed)
    return [val.paths[i] for i in rng.choice(len(val), n, replace=False)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help=f"routed memory model (default: {DEFAULT_MODEL}, "
                                                            "built from all of Tiny-ImageNet if absent)")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--quick", action="store_true", help="8 queries; nothing written")
    args = ap.parse_args(argv)
    model = args.model
    if model is None:
        model = DEFAULT_MODEL if (DEFAULT_MODEL / "CURRENT").is_file() else build_tiny_model(DEFAULT_MODEL)
    result = run(model, val_images(8 if args.quick else args.queries))
    for key in ("page_upload", "page_steer", "api"):
        r = result[key]
        print(f"{key:<12} p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  (n = {r['n']})")
    print(f"{result['entries']} entries; page/API at p50: {result['page_over_api_p50']}x; "
          f"target p50 <= {TARGET_P50_MS:.0f} ms: {'met' if result['meets_target'] else 'NOT met'}")
    if not args.quick:
        print(f"wrote {write_result('explore', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
