"""Self-contained HTML misclassification reports (plots and images embedded) and a Markdown summary.

The pages are Jinja2 templates (``router/report/templates/report.html`` and
``summary.md``).  The HTML environment autoescapes every value, so a class
name or file name can never inject markup; the Markdown one escapes names
with the ``md`` filter.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import ClassTree, atomic_write

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


def _hedging_plot(curve: dict[str, Any]) -> bytes:
    """The accuracy–specificity curve: for each promised accuracy, the share at class level and the gain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = curve["points"]
    promised = [x["accuracy"] for x in pts]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(promised, [x["achieved"] for x in pts], "o-", label="achieved accuracy")
    ax.plot(promised, [x["class_level"] for x in pts], "s-", label="answered at class level")
    ax.plot(promised, [x["mean_gain"] for x in pts], "^-", label="mean information gain")
    ax.plot([min(promised), max(promised)], [min(promised), max(promised)], ":", color="grey", label="promised")
    ax.set_xlabel("promised accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title(f"Accuracy against specificity ({curve['rule']})")
    return _png(fig)


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


_MD_ENV: Any = None
_HTML_ENV: Any = None


def _templates() -> tuple[Any, Any]:
    """The HTML environment (autoescaping every value) and the Markdown one (an ``md`` filter)."""
    global _MD_ENV, _HTML_ENV
    if _HTML_ENV is None:
        import jinja2

        loader = jinja2.PackageLoader("router.report", "templates")
        _HTML_ENV = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
        _MD_ENV = jinja2.Environment(loader=loader, autoescape=False, undefined=jinja2.StrictUndefined,
                                     keep_trailing_newline=True)
        _MD_ENV.filters["md"] = _md
    return _HTML_ENV, _MD_ENV


def _uri(data: bytes | None) -> str | None:
    """An image as a ``data:`` URI (PNG or JPEG), or None."""
    if not data:
        return None
    mime = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


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
    hedging: dict[str, Any] | None = None,
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
    hedging : dict, optional
        The ``hedged_curve`` of a calibrated evaluation (``supersub evaluate
        --accuracy``): adds a section ``hedging`` with the accuracy–specificity
        curve and the answers by level.

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
    if hedging:
        plots["hedging"] = _hedging_plot(hedging)
    label = tree.label
    p = systems[main]

    pcs = {n: per_class_accuracy(systems[n]) for n in names}
    pss = {n: per_superclass_accuracy(systems[n], tree) for n in names}
    cmp_ = compare(systems[baseline], p) if baseline is not None else None
    comparison = None
    if cmp_ is not None:
        examples = []
        for what in ("fixed", "introduced"):
            examples.append((what, [[p.ref[i] if p.ref is not None else i, label(p.true[i]),
                                     label(systems[baseline].pred[i]), label(p.pred[i])]  # type: ignore[index]
                                    for i in cmp_[f"{what}_index"][:15]]))
        comparison = {**{k: cmp_[k] for k in ("fixed", "introduced", "both_right", "both_wrong")},
                      "examples": examples}
    sup_names = tree.superclasses.names  # type: ignore[union-attr]
    context = {
        "title": title, "n_queries": len(p), "names": names, "main": main, "baseline": baseline,
        "cut": tree.superclasses.method if tree.superclasses else "",
        "oracle": _pct(oracle_acc) if oracle_acc is not None else None,
        "plots": {k: _uri(v) for k, v in plots.items()},
        "levels": [[n, m["class_accuracy"], m["superclass_accuracy"], m.get("routing_accuracy", "–"),
                    m.get("specialist_accuracy", "–")] for n, m in metrics.items()],
        "errors": [[n, m["errors"], m.get("routing_errors", "–"), m.get("specialist_errors", "–"),
                    m["within_errors"], m["across_errors"], m["within_rate"], m["across_rate"]]
                   for n, m in metrics.items()],
        "severity": [[n, m["mean_lca_height"], *[m["hierarchical_distance_at_k"].get(k, "–") for k in (1, 2, 5)]]
                     for n, m in metrics.items()],
        "pairs": [(sup, [[f"{label(a)} ({a})", f"{label(b)} ({b})", n] for a, b, n in pairs])
                  for sup, pairs in confused_pairs(p, tree).items() if pairs],
        "per_class": [[f"{label(c)} ({c})", sup_names[tree.superclass_of(c)], count, *[pcs[n][c][0] for n in names]]
                      for c, (_, count) in pcs[main].items()],
        "per_superclass_headers": [f"class acc. {n}" for n in names] + [f"routing acc. {n}" for n in names],
        "per_superclass": [[s, row["n"], *[pss[n][s]["class_accuracy"] for n in names],
                            *[pss[n][s].get("routing_accuracy", "–") for n in names]] for s, row in pss[main].items()],
        "gallery": [{"uri": _uri(item.image), "ref": item.ref, "true": label(item.true), "pred": label(item.pred),
                     "score": item.score,
                     "neighbours": [{"uri": _uri(nb.image), "label": nb.label, "name": label(nb.label),
                                     "source": nb.source, "weight": nb.weight, "similarity": nb.similarity}
                                    for nb in item.neighbours]} for item in gallery],
        "comparison": comparison,
        "hedging": None if not hedging else {
            "rule": hedging["rule"], "delta": hedging["delta"],
            "rows": [[_pct(x["accuracy"]), _pct(x["achieved"]), _pct(x["class_level"]), _pct(x["inner"]),
                      _pct(x["root"]), round(x["mean_gain"], 3), round(x["mean_depth"], 2)]
                     for x in hedging["points"]]},
        "summary": [{"name": n, "class_accuracy": _pct(m["class_accuracy"]),
                     "superclass_accuracy": _pct(m["superclass_accuracy"]), "within": _pct(m["within_rate"]),
                     "across": _pct(m["across_rate"]), "mean_lca": m["mean_lca_height"]} for n, m in metrics.items()],
    }
    html_env, md_env = _templates()
    doc = html_env.get_template("report.html").render(context)
    md_text = md_env.get_template("summary.md").render(context)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "report.html", "markdown": out / "summary.md", "metrics": out / "report.json"}
    serial = {n: {k: v for k, v in m.items()} for n, m in metrics.items()}
    if oracle_acc is not None:
        serial["oracle"] = {"class_accuracy": oracle_acc}
    for key, text in (("html", doc), ("markdown", md_text),
                      ("metrics", json.dumps(serial, indent=1, default=str))):
        atomic_write(paths[key], text)
    return paths
