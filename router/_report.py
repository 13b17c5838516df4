"""Self-contained HTML misclassification reports (plots and images embedded) and a Markdown summary."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import ClassTree

from ._analysis import (
    Predictions,
    compare,
    confused_pairs,
    level_metrics,
    per_class_accuracy,
    per_superclass_accuracy,
    superclass_confusion,
)

__all__ = ["GalleryItem", "GalleryNeighbour", "SECTIONS", "write_report"]

#: Section ids every report contains, in order.
SECTIONS = (
    "levels", "errors", "severity", "confusion", "pairs", "per-class", "per-superclass",
    "gallery", "comparison",
)


@dataclass
class GalleryNeighbour:
    """A neighbour shown beside a mistaken query."""

    image: bytes | None
    label: str
    source: str
    weight: float
    similarity: float


@dataclass
class GalleryItem:
    """A confident mistake: the query and the neighbours that outvoted the truth."""

    image: bytes | None
    true: str
    pred: str
    score: float
    ref: str = ""
    neighbours: list[GalleryNeighbour] = field(default_factory=list)


def _img(data: bytes | None, alt: str) -> str:
    if not data:
        return f'<div class="noimg">{html.escape(alt)}</div>'
    mime = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
    return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{base64.b64encode(data).decode()}">'


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def _md(text: Any) -> str:
    """Text safe inside Markdown: HTML escaped, Markdown punctuation backslashed, one line."""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _plots(systems: dict[str, Predictions], metrics: dict[str, dict[str, Any]], tree: ClassTree,
           main: str) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / len(systems)
    for i, (name, m) in enumerate(metrics.items()):
        hist = m["lca_histogram"]
        xs = np.array(sorted(hist), dtype=float)
        ax.bar(xs + i * width, [hist[int(x)] for x in xs], width=width, label=name)
    ax.set_xlabel("LCA height of the mistake (0 = same class)")
    ax.set_ylabel("mistakes")
    ax.legend()
    ax.set_title("Mistake severity")
    out["severity"] = _png(fig)

    matrix, names = superclass_confusion(systems[main], tree)
    norm = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted superclass")
    ax.set_ylabel("true superclass")
    for i in range(len(names)):
        for j in range(len(names)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] < 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the row")
    ax.set_title(f"Superclass confusion ({main})")
    out["confusion"] = _png(fig)
    return out


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f3f3f3;cursor:pointer}td:first-child,th:first-child{text-align:left}
.gallery{display:flex;flex-direction:column;gap:1em}.mistake{display:flex;gap:.6em;align-items:flex-start}
.mistake figure{margin:0;width:110px;font-size:11px}.mistake img{width:104px;height:104px;image-rendering:pixelated}
.query{border:2px solid #c33;padding:2px}.noimg{width:104px;height:104px;background:#eee;font-size:10px}
.note{color:#666;font-size:.9em}
"""

_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th, col){
  th.addEventListener('click', function(){
    var table = th.closest('table'), body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
    rows.sort(function(a, b){
      var x = a.cells[col].dataset.v || a.cells[col].textContent;
      var y = b.cells[col].dataset.v || b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], sortable: bool = False) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for r in rows:
        cells = []
        for v in r:
            if isinstance(v, float):
                cells.append(f'<td data-v="{v:.6f}">{v:.3f}</td>')
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def write_report(
    systems: dict[str, Predictions],
    tree: ClassTree,
    out_dir: str | os.PathLike[str],
    *,
    main: str | None = None,
    baseline: str | None = None,
    oracle: str | None = None,
    gallery: Sequence[GalleryItem] = (),
    title: str = "Misclassification report",
) -> dict[str, Path]:
    """Write ``report.html`` (self-contained) and ``summary.md`` into ``out_dir``.

    Parameters
    ----------
    systems : dict of str to Predictions
        One or more systems evaluated on the same queries.
    tree : ClassTree
        With a superclass cut.
    main : str, optional
        The system the per-class sections describe (default: the last one).
    baseline : str, optional
        Compared side by side with ``main`` (default: the first other one).
    oracle : str, optional
        A system routed by the true superclass, giving the oracle-route bound.
    gallery : sequence of GalleryItem
        Confident mistakes of ``main`` with their neighbours.

    Returns
    -------
    dict
        ``{"html": path, "markdown": path, "metrics": path}``.
    """
    names = [n for n in systems if n != oracle]
    main = main or names[-1]
    baseline = baseline or next((n for n in names if n != main), None)
    metrics = {n: level_metrics(systems[n], tree) for n in names}
    oracle_acc = level_metrics(systems[oracle], tree)["class_accuracy"] if oracle else None
    plots = _plots({n: systems[n] for n in names}, metrics, tree, main)
    label = tree.label
    p = systems[main]

    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="note">{len(p)} queries; systems: {", ".join(map(html.escape, names))}; '
             f"tree cut {html.escape(tree.superclasses.method if tree.superclasses else '')}.</p>"]

    rows = []
    for n, m in metrics.items():
        rows.append([n, m["class_accuracy"], m["superclass_accuracy"], m.get("routing_accuracy", "–"),
                     m.get("specialist_accuracy", "–")])
    parts.append('<section id="levels"><h2>Accuracy by level</h2>')
    parts.append(_table(["system", "class", "superclass", "routing", "specialist | right route"], rows))
    if oracle_acc is not None:
        parts.append(f"<p>Oracle-route bound (true superclass, same specialists): <b>{_pct(oracle_acc)}</b>.</p>")
    parts.append("</section>")

    parts.append('<section id="errors"><h2>Where the errors are</h2>')
    rows = [[n, m["errors"], m.get("routing_errors", "–"), m.get("specialist_errors", "–"),
             m["within_errors"], m["across_errors"], m["within_rate"], m["across_rate"]] for n, m in metrics.items()]
    parts.append(_table(["system", "errors", "routing errors", "specialist errors", "within superclass",
                         "across superclasses", "within rate", "across rate"], rows))
    parts.append('<p class="note">Routing errors: the route missed the true superclass. Specialist errors: '
                 "the route was right and the specialist chose the wrong class. Within/across compares the "
                 "predicted class's superclass with the true one.</p></section>")

    parts.append('<section id="severity"><h2>Mistake severity</h2>')
    rows = [[n, m["mean_lca_height"], *[m["hierarchical_distance_at_k"].get(k, "–") for k in (1, 2, 5)]]
            for n, m in metrics.items()]
    parts.append(_table(["system", "mean LCA height of mistakes", "hier. distance@1", "@2", "@5"], rows))
    parts.append(_img(plots["severity"], "LCA height histogram") + "</section>")

    parts.append('<section id="confusion"><h2>Superclass confusion</h2>'
                 + _img(plots["confusion"], "superclass confusion heatmap") + "</section>")

    parts.append(f'<section id="pairs"><h2>Most-confused class pairs inside each superclass ({html.escape(main)})</h2>')
    for sup, pairs in confused_pairs(p, tree).items():
        if pairs:
            parts.append(f"<h3>{html.escape(sup)}</h3>" + _table(
                ["true", "predicted", "count"], [[f"{label(a)} ({a})", f"{label(b)} ({b})", n] for a, b, n in pairs]))
    parts.append("</section>")

    pcs = {n: per_class_accuracy(systems[n]) for n in names}
    rows = []
    for c, (acc, count) in pcs[main].items():
        rows.append([f"{label(c)} ({c})", tree.superclasses.names[tree.superclass_of(c)], count,  # type: ignore[union-attr]
                     *[pcs[n][c][0] for n in names]])
    parts.append('<section id="per-class"><h2>Per-class accuracy</h2><p class="note">Click a header to sort.</p>')
    parts.append(_table(["class", "superclass", "queries", *names], rows, sortable=True) + "</section>")

    pss = {n: per_superclass_accuracy(systems[n], tree) for n in names}
    rows = [[s, row["n"], *[pss[n][s]["class_accuracy"] for n in names],
             *[pss[n][s].get("routing_accuracy", "–") for n in names]] for s, row in pss[main].items()]
    parts.append('<section id="per-superclass"><h2>Per-superclass accuracy</h2>')
    parts.append(_table(["superclass", "queries", *[f"class acc. {n}" for n in names],
                         *[f"routing acc. {n}" for n in names]], rows, sortable=True) + "</section>")

    parts.append(f'<section id="gallery"><h2>Neighbour gallery: most confident mistakes ({html.escape(main)})</h2>')
    if not gallery:
        parts.append('<p class="note">No gallery: pass the model and data to draw it.</p>')
    parts.append('<div class="gallery">')
    for item in gallery:
        figs = [f'<figure class="query">{_img(item.image, item.ref)}<figcaption>query {html.escape(item.ref)}<br>'
                f"true: {html.escape(label(item.true))}<br>pred: {html.escape(label(item.pred))} ({item.score:.2f})"
                "</figcaption></figure>"]
        for nb in item.neighbours:
            figs.append(f"<figure>{_img(nb.image, nb.label)}<figcaption>{html.escape(label(nb.label))}<br>"
                        f"[{html.escape(nb.source)}]<br>weight {nb.weight:.3g}, sim {nb.similarity:.2f}</figcaption></figure>")
        parts.append('<div class="mistake">' + "".join(figs) + "</div>")
    parts.append("</div></section>")

    parts.append('<section id="comparison"><h2>Side-by-side comparison</h2>')
    cmp_ = None
    if baseline is not None:
        cmp_ = compare(systems[baseline], p)
        parts.append(f"<p>Against <b>{html.escape(baseline)}</b>, <b>{html.escape(main)}</b> fixes "
                     f"<b>{cmp_['fixed']}</b> errors and introduces <b>{cmp_['introduced']}</b> "
                     f"(both right {cmp_['both_right']}, both wrong {cmp_['both_wrong']}).</p>")
        for what in ("fixed", "introduced"):
            idx = cmp_[f"{what}_index"][:15]
            rows = [[p.ref[i] if p.ref is not None else i, f"{label(p.true[i])}",
                     f"{label(systems[baseline].pred[i])}", f"{label(p.pred[i])}"] for i in idx]
            parts.append(f"<h3>Examples {what}</h3>" + _table(["query", "true", baseline, main], rows))
    else:
        parts.append('<p class="note">Only one system: nothing to compare.</p>')
    parts.append("</section>")

    doc = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
           + "\n".join(parts) + f"<script>{_JS}</script></body></html>")

    md = [f"# {_md(title)}", "", f"{len(p)} queries.", "",
          "| system | class acc. | superclass acc. | errors within / across | mean LCA height of mistakes |",
          "|---|---|---|---|---|"]
    for n, m in metrics.items():
        md.append(f"| {_md(n)} | {_pct(m['class_accuracy'])} | {_pct(m['superclass_accuracy'])} | "
                  f"{_pct(m['within_rate'])} / {_pct(m['across_rate'])} | {m['mean_lca_height']:.2f} |")
    if oracle_acc is not None:
        md += ["", f"Oracle-route bound: {_pct(oracle_acc)}."]
    if cmp_ is not None:
        md += ["", f"{_md(main)} against {_md(baseline)}: fixes {cmp_['fixed']} errors, introduces {cmp_['introduced']}."]

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "report.html", "markdown": out / "summary.md", "metrics": out / "report.json"}
    serial = {n: {k: v for k, v in m.items()} for n, m in metrics.items()}
    if oracle_acc is not None:
        serial["oracle"] = {"class_accuracy": oracle_acc}
    for key, text in (("html", doc), ("markdown", "\n".join(md) + "\n"),
                      ("metrics", json.dumps(serial, indent=1, default=str))):
        fd, tmp = tempfile.mkstemp(prefix=".report-", dir=out)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, paths[key])
    return paths
