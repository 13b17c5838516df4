"""Regenerate the README's results tables from benchmarks/results/*.json.

    python benchmarks/tables.py           # rewrite README.md in place
    python benchmarks/tables.py --check   # exit 1 if README.md is out of date

Each table sits between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def memory_table(r: dict) -> str:
    e, a, s = r["exact"], r["approximate"], r["sklearn"]
    return "\n".join([
        f"{r['entries']:,} entries x {r['dim']}-d, {r['queries']:,} queries, k = {r['k']}; data: {r['data']}; "
        f"{r['timing']}; matmul peak measured in the same run: {r['matmul_peak_gflops']} GFLOP/s.",
        "",
        "| system | queries/s | vs scikit-learn | recall@10 | top-1 | notes |",
        "|---|---|---|---|---|---|",
        f"| scikit-learn brute cosine | {s['queries_per_s']:,} | 1.00x | 1.000 | | |",
        f"| VisualMemory, exact (`Flat`) | {e['queries_per_s']:,} | **{e['ratio_vs_sklearn']}x** | 1.000 | "
        f"{e['accuracy']:.3f} | {e['gflops']} GFLOP/s = {e['fraction_of_peak']:.0%} of peak; "
        f"identical predictions: {e['identical_predictions']} |",
        f"| VisualMemory, `{a['index']}` nprobe {a['nprobe']} | {a['queries_per_s']:,} | "
        f"**{a['ratio_vs_sklearn']}x** | {a['recall_at_10']:.3f} | {a['accuracy']:.3f} | build {a['build_s']} s |",
        "",
        f"Add {r['add_per_s']:,} entries/s; remove 1,000 ids {r['remove_1k_s'] * 1000:.0f} ms; "
        f"save {r['save_s']} s; load {r['load_s']} s.",
    ])


def embed_table(r: dict) -> str:
    rows = [
        f"{r['backbone']}, batch {r['batch_size']}, {r['threads']} threads, {r['timing']}.",
        "",
        "| resolution | eager torch img/s | ONNX Runtime img/s | speed-up | max abs diff |",
        "|---|---|---|---|---|",
    ]
    for size, row in r["sizes"].items():
        rows.append(f"| {size} px | {row['torch_img_per_s']} | {row['onnx_img_per_s']} | "
                    f"**{row['speedup']}x** | {row['max_abs_diff']:.1e} |")
    return "\n".join(rows)


def router_table(r: dict) -> str:
    out = [f"{r['data']}; stage 2 kNN k = {r['k']}, {r['voting']} voting.", ""]
    for cut, body in r["cuts"].items():
        sizes = body["sizes"]
        out += [f"*Cut `{cut}`* (superclass sizes {sizes[0]} to {sizes[-1]}):", "",
                "| system | top-1 | superclass acc. | router acc. | errors across superclasses | queries/s |",
                "|---|---|---|---|---|---|"]
        for name, row in body["systems"].items():
            extra = f" (storage {row['storage_heads']} heads)" if "storage_heads" in row else ""
            out.append(
                f"| {name}{extra} | {row['top1']:.3f} | {row['superclass_accuracy']:.3f} | "
                f"{row.get('router_superclass_accuracy', float('nan')):.3f} | "
                f"{row['errors_across_share']:.0%} | {row['queries_per_s']:,.0f} |".replace("nan", "–")
            )
        out.append("")
    if "throughput" in r:
        t = r["throughput"]
        out += [f"*Throughput* on the WordNet cut, {t['timing']}:", "",
                "| system | queries/s | vs flat kNN |", "|---|---|---|"]
        out += [f"| {n} | {row['queries_per_s']:,.0f} | **{row['vs_flat']}x** |" for n, row in t["systems"].items()]
    out.insert(1, "Queries/s in the accuracy tables are single passes; the throughput table times each "
                  "system best of 3 with nothing else running.")
    return "\n".join(out).rstrip()


TABLES: dict[str, Callable[[dict], str]] = {
    "memory": memory_table, "embed": embed_table, "router": router_table,
}


def render(text: str) -> str:
    for name, fn in TABLES.items():
        data = _load(name)
        if data is None:
            continue
        body = fn(data)
        text = re.sub(
            rf"(<!-- results:{name} -->\n)(?:.*?\n)?(<!-- /results:{name} -->)",
            lambda m: m.group(1) + body + "\n" + m.group(2), text, flags=re.S,
        )
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    readme = ROOT / "README.md"
    old = readme.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print("README.md tables are out of date: run python benchmarks/tables.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
