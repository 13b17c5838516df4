"""Regenerate the results tables of README.md and docs/*.md from benchmarks/results/*.json.

    python benchmarks/tables.py           # rewrite the pages in place
    python benchmarks/tables.py --check   # exit 1 if a page is out of date

Each table (or generated sentence) sits between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->``, in whichever page shows it.  One function per table,
each reading one results file, keeps every table's layout beside its data: hence
one long module of short functions.
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


def _machine_words(m: dict) -> str:
    """When and on which CPU, with its matrix units, a result was measured."""
    units = ", ".join(m.get("matrix_flags", [])) or "no matrix units"
    return f"{m['date']} on {m['cpu_model']} with {units}"


def _measured_on(r: dict) -> str:
    """A table's opening sentence naming the CPU, or nothing for results that did not record it."""
    m = r.get("machine", {})
    return f"Measured {_machine_words(m)}. " if m.get("cpu_model") else ""


def memory_table(r: dict) -> str:
    e, a, s = r["exact"], r["approximate"], r["sklearn"]
    f, d, sb, e32 = r["faiss"], r["faiss_direct"], r["faiss_small_batches"], r["exact_fp32"]
    fk = r["faiss_kernels_identical_top10"]
    q, default = r["queries"], r["default_scoring"]

    def speed(row: dict) -> str:
        return (f"{row['gflops']} effective GFLOP/s (2·q·n·d / time) = {row['fraction_of_fp32_peak']:.0%} of "
                f"the fp32 peak, {row['fraction_of_bf16_peak']:.0%} of the bf16 peak")

    rows = [
        f"{_measured_on(r)}{r['entries']:,} entries x {r['dim']}-d, {q:,} queries, k = {r['k']}; data: {r['data']}; "
        f"{r['timing']}; matmul peaks measured in the same run: fp32 {r['matmul_peak_gflops']} GFLOP/s, "
        f"bf16 {r['bf16_matmul_peak_gflops']} GFLOP/s. Default scoring on this CPU: {r['default_scoring']}.",
        "",
        "*Exact top-10 search alone:*",
        "",
        "| system | queries/s | vs faiss | notes |",
        "|---|---|---|---|",
        f"| faiss `IndexFlatIP`, BLAS kernel | {f['queries_per_s']:,} | 1.00x | {speed(f)} |",
        f"| faiss `IndexFlatIP`, direct kernel, one call | {d['queries_per_s']:,} | "
        f"{d['queries_per_s'] / f['queries_per_s']:.2f}x | {speed(d)} |",
        f"| faiss `IndexFlatIP`, direct kernel, 50 queries a call | {sb['queries_per_s']:,} | "
        f"{sb['queries_per_s'] / f['queries_per_s']:.2f}x | {speed(sb)} |",
    ]
    for mode in ("bf16", "int8"):
        b = r[f"{mode}_exact"]
        rows.append(f"| VisualMemory, {mode} scoring + fp32 re-rank | {b['queries_per_s']:,} | "
                    f"**{b['ratio_vs_faiss']}x** | {speed(b)}; identical top-10 ids: "
                    f"{b['identical_top10_vs_faiss_blas']:,} / {q:,} vs BLAS, "
                    f"{b['identical_top10_vs_faiss_direct']:,} vs one call, "
                    f"{b['identical_top10_vs_faiss_small']:,} vs 50 a call; copy "
                    f"{b['copy_bytes'] / 2**20:,.0f} MiB, built in {b['copy_build_s']} s |")
    rows += [
        "",
        f"faiss's own kernels round differently in the last bits and so order a few near-ties "
        f"differently: identical top-10 ids, BLAS against one call {fk['blas_vs_direct']:,} / {q:,}, "
        f"BLAS against 50 a call {fk['blas_vs_small']:,}, one call against 50 a call {fk['direct_vs_small']:,}. "
        "The re-rank uses the 50-a-call kernel's arithmetic. "
        f"The fp32 vectors take {r['fp32_vectors_bytes'] / 2**20:,.0f} MiB; the low-precision copy sits beside them.",
        "",
        "*Classification (search and vote):*",
        "",
        "| system | queries/s | vs scikit-learn | recall@10 | top-1 | notes |",
        "|---|---|---|---|---|---|",
        f"| scikit-learn brute cosine | {s['queries_per_s']:,} | 1.00x | 1.000 | | |",
        f"| VisualMemory, exact (`Flat`), {default} scoring | {e['queries_per_s']:,} | **{e['ratio_vs_sklearn']}x** | "
        f"1.000 | {e['accuracy']:.3f} | identical predictions: {e['identical_predictions']} |",
        f"| VisualMemory, exact (`Flat`), `SUPERSUB_SCORING=fp32` | {e32['queries_per_s']:,} | "
        f"{e32['queries_per_s'] / s['queries_per_s']:.2f}x | 1.000 | {e['accuracy']:.3f} | "
        f"same predictions as {default}: {e32['same_predictions_as_default']} |",
        f"| VisualMemory, `{a['index']}` nprobe {a['nprobe']} | {a['queries_per_s']:,} | "
        f"**{a['ratio_vs_sklearn']}x** | {a['recall_at_10']:.3f} | {a['accuracy']:.3f} | build {a['build_s']} s"
        + {True: "; lists searched in bf16", False: "; faiss's fp32 scan", None: ""}[a.get("bf16_lists")] + " |",
    ]
    if "routed" in r:
        rt = r["routed"]
        for mode in dict.fromkeys((default, "fp32")):
            rows.append(f"| routed, {rt['router']} router, {rt['superclasses']} exact shards, {mode} scoring | "
                        f"{rt[mode]['queries_per_s']:,} | {rt[mode]['queries_per_s'] / s['queries_per_s']:.2f}x | "
                        f"| {rt[mode]['accuracy']:.3f} | |")
    rows += ["",
             f"Add {r['entries']:,} entries in {r['add_s']} s ({r['add_per_s']:,} entries/s, in memory); "
             f"remove 1,000 ids {r['remove_1k_s'] * 1000:.0f} ms; save (a complete snapshot, fsynced) "
             f"{r['save_s']} s; load {r['load_s']} s."]
    if "add_commit" in r:
        c = r["add_commit"]
        rows += ["",
                 f"Add {c['entries']:,} entries to a new memory and commit them (vectors, ids and SQLite "
                 f"metadata written, hashed, fsynced, published): best {c['best_s']} s (add {c['add_s']} s + "
                 f"save {c['save_s']} s), median {c['median_s']} s of {len(c['runs_s'])} runs "
                 f"({', '.join(f'{v}' for v in c['runs_s'])} s); target {c['target_s']} s: "
                 f"{'met' if c['best_s'] <= c['target_s'] else 'not met'} at the best run, "
                 f"{'met' if c['median_s'] <= c['target_s'] else 'not met'} at the median."]
    return "\n".join(rows)


def embed_table(r: dict) -> str:
    sizes = r["sizes"]
    names = list(next(iter(sizes.values()))["paths"])
    rows = [
        f"{_measured_on(r)}{r['backbone']}, batch {r['batch_size']}, {r['threads']} threads, {r['timing']}; the same "
        f"{r['images']} Tiny-ImageNet val images per resolution ({r['eager_images']} for eager torch). "
        "Cosine: each path's features against ONNX Runtime fp32, mean (min).",
        "",
        "| resolution | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for size, row in sizes.items():
        cells = []
        for n in names:
            p = row["paths"].get(n)
            cells.append("–" if p is None else
                         f"{p['img_per_s']:,.0f} img/s, **{p['vs_onnx']}x**, cos {p['cos_mean']:.4f} ({p['cos_min']:.4f})")
        rows.append(f"| {size} px | " + " | ".join(cells) + " |")
    d = r.get("dataset")
    if d:
        tr, va = d["splits"]["train"], d["splits"]["val"]
        knn = d["knn"]
        rows += [
            "",
            f"*All of Tiny-ImageNet at {d['size']} px with the default path* (`{d['path']}` on {d['runtime']}), "
            "decoding overlapped with the model as `embed_dataset` does it:",
            "",
            "| split | images | wall s | img/s | decode s (img/s) | model s (img/s) |",
            "|---|---|---|---|---|---|",
        ]
        for name, sp in (("train", tr), ("val", va)):
            rows.append(f"| {name} | {sp['images']:,} | {sp['wall_s']} | {sp['img_per_s']:,.0f} | "
                        f"{sp['decode_s']} ({sp['decode_img_per_s']:,.0f}) | {sp['model_s']} ({sp['model_img_per_s']:,.0f}) |")
        rows += ["", f"Flat kNN top-1 on val (k = {knn['k']}, 100k train as the memory); val cosine to fp32 "
                     f"{d['cos_val_mean']:.4f} mean, {d['cos_val_min']:.4f} min:", "",
                 "| embeddings | top-1 | change | queries gained / lost against fp32 | standard error of the change |",
                 "|---|---|---|---|---|"]
        for name, v in knn["top1"].items():
            ch = knn["change_points"].get(name)
            fl = knn.get("flips", {}).get(name)
            se = knn.get("change_se_points", {}).get(name)
            change = "–" if ch is None else f"{ch:+.2f} points"
            flips = "–" if fl is None else f"{fl['gained']} / {fl['lost']}"
            error = "–" if se is None else f"{se:.2f} points"
            rows.append(f"| {name} | {100 * v:.2f}% | {change} | {flips} | {error} |")
    return "\n".join(rows)


def router_table(r: dict) -> str:
    out = [f"{r['data']}; stage 2 kNN k = {r['k']}, {r['voting']} voting.", ""]
    for cut, body in r["cuts"].items():
        sizes = body["sizes"]
        out += [f"*Cut `{cut}`* (superclass sizes {sizes[0]} to {sizes[-1]}):", "",
                "| system | top-1 | against its flat counterpart [95%], McNemar p | superclass acc. | router acc. "
                "| errors across superclasses | queries/s |",
                "|---|---|---|---|---|---|---|"]
        for name, row in body["systems"].items():
            extra = f" (storage {row['storage_heads']} heads)" if "storage_heads" in row else ""
            against = f"{row['against']['system']}: {_paired_cell(row['against'])}" if "against" in row else ""
            out.append(
                f"| {name}{extra} | {row['top1']:.3f} | {against} | {row['superclass_accuracy']:.3f} | "
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


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def accuracy_table(r: dict) -> str:
    rows = r["rows"]
    out = [f"{r['data']}.", "",
           "| system | top-1 | against flat kNN (softmax, k = 10) [95%], McNemar p | superclass acc. "
           "| mean LCA height of mistakes | queries/s |",
           "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        extra = ""
        if "entries" in row:
            extra = f" ({row['entries']:,} entries)"
        if "lam" in row:
            extra = f" (θ = {row['theta']:g}, λ = {row['lam']:g}, k = {row['k']})"
        out.append(f"| {name}{extra} | {_pct(row['top1'])} | {_paired_cell(row.get('against_flat_knn'))} | "
                   f"{_pct(row['superclass_accuracy'])} | {row['mean_lca_height']:.2f} | {row['queries_per_s']:,.0f} |")
    flat = rows["flat kNN, softmax, k=10"]["top1"]
    voting = {n: v["top1"] for n, v in rows.items() if v["group"] == "voting"}
    best = max(voting, key=voting.__getitem__)
    routed = {n: v["top1"] for n, v in rows.items() if v["group"] == "routing" and "oracle" not in n}
    best_routed = max(routed, key=routed.__getitem__)
    probe, cache = rows["linear probe"]["top1"], rows["linear probe + cache model"]["top1"]
    dnc = {n: v["top1"] for n, v in rows.items() if v["group"] == "centroids"}
    best_dnc = max(dnc, key=dnc.__getitem__)
    out += ["",
            f"Best voting row: {best} ({_pct(voting[best])}). Best routed row: {best_routed} "
            f"({_pct(routed[best_routed])}, {100 * (routed[best_routed] - flat):+.1f} points against flat "
            f"softmax k = 10). Best sub-centroid row: {best_dnc} ({_pct(dnc[best_dnc])}). "
            f"The cache model moves the linear probe by {100 * (cache - probe):+.1f} points "
            f"({_pct(probe)} → {_pct(cache)}"
            + (f"; {_paired_cell(rows['linear probe + cache model']['against_linear_probe'])}"
               if "against_linear_probe" in rows["linear probe + cache model"] else "")
            + "). Queries/s are single passes."]
    return "\n".join(out)


def continual_table(r: dict) -> str:
    out = [f"{r['data']}; {r['tasks']} tasks of {r['classes_per_task']} classes, class order seeded "
           f"({r['seed']}).", "",
           "| system | setting | final average accuracy | average incremental accuracy | forgetting |",
           "|---|---|---|---|---|"]
    for name, row in r["systems"].items():
        for setting in ("task_incremental", "class_incremental"):
            cell = row[setting]
            inc = cell.get("average_incremental_accuracy")
            fgt = cell.get("forgetting")
            out.append(f"| {name} | {setting.replace('_', '-')} | {_pct(cell['final_average_accuracy'])} | "
                       f"{_pct(inc) if inc is not None else '–'} | "
                       f"{f'{100 * fgt:.1f} points' if fgt is not None else '–'} |")
    out += ["", f"The memory after all tasks predicts as one built from all the data at once: "
                f"{r['memory_equals_batch_build']}."]
    return "\n".join(out)


def unlearning_table(r: dict) -> str:
    out = [f"{r['data']}; k = {r['k']}, {r['voting']} voting.", "",
           "| request | forgotten | forget set: before → after | never seen | retained train: before → after "
           "| val: before → after | forgotten ids in any top-50 | equals rebuild | remove vs rebuild |",
           "|---|---|---|---|---|---|---|---|---|"]
    for key, label in (("class", f"class `{r['class']['forgotten_class']}`"),
                       ("source", f"source `{r['source']['source']}` ({r['source']['fraction']:.0%} of train)")):
        row = r[key]
        b, a = row["before"], row["after"]
        unseen = ", ".join(f"{k.replace('_', ' ')} {_pct(v)}" for k, v in row["unseen"].items())
        out.append(f"| {label} | {row['forgotten']:,} | {_pct(b['forget_set'])} → {_pct(a['forget_set'])} | "
                   f"{unseen} | {_pct(b['retain'])} → {_pct(a['retain'])} | {_pct(b['val'])} → {_pct(a['val'])} | "
                   f"{row['forgotten_ids_returned_in_top50']} | {row['identical_to_rebuild']} | "
                   f"{row['remove_s'] * 1000:.1f} ms vs {row['rebuild_s']:.2f} s (**{row['speedup_vs_rebuild']:,}x**) |")
    rs = r["routed_source"]
    out += ["", f"Routed classifier (centroid router), same source request: {rs['forgotten']:,} entries removed in "
                f"{rs['remove_s'] * 1000:.0f} ms; probabilities equal a routed rebuild bit for bit: "
                f"{rs['identical_to_rebuild']}; val top-1 afterwards {_pct(rs['val_after'])}."]
    return "\n".join(out)


def pruning_table(r: dict) -> str:
    curves = r["curves"]
    methods = list(curves)
    out = [f"{r['data']}; {r['entries']:,} entries, k = {r['k']}, {r['voting']} voting. Val top-1 "
           "(achieved fraction pruned in brackets where it differs from the row's):", "",
           "| pruned | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for i, point in enumerate(curves[methods[0]]):
        target = point["fraction"]
        cells = []
        for m in methods:
            p = curves[m][i]
            note = f" ({p['fraction']:.0%})" if abs(p["fraction"] - target) > 0.005 else ""
            cells.append(f"{_pct(p['top1'])}{note}")
        out.append(f"| {target:.0%} | " + " | ".join(cells) + " |")
    h = r["harmful_rule"]
    out += ["", f"The `prune_harmful` rule itself (wrong > right on the dev split) removes {h['removed']:,} "
                f"entries ({h['fraction']:.1%}): val top-1 {_pct(h['top1'])}."]
    return "\n".join(out)


def adding_table(r: dict) -> str:
    late, t = r["late"], r["throughput"]
    out = [f"{r['data']}.", "",
           f"*Late superclasses*: {', '.join(late['late_superclasses'])} ({late['late_classes']} classes) left out "
           f"of the build, then added with `add_class` in {late['add_s']} s.", "",
           "| system | old classes before | old classes after | change [95%], McNemar p | new classes |",
           "|---|---|---|---|---|"]
    paired = late.get("old_class_change_paired", {})
    for name in ("routed", "flat"):
        change = _paired_cell(paired.get(name)) or f"{late['old_class_change_points'][name]:+.2f} points"
        out.append(f"| {name} | {_pct(late['old_class_accuracy_before'][name])} | "
                   f"{_pct(late['old_class_accuracy_after'][name])} | {change} | "
                   f"{_pct(late['new_class_accuracy'][name])} |")
    full = late["routed_full_accuracy"]
    vs = late.get("added_late_against_from_start")
    out += ["", f"Routed, added late: {_pct(full['added_late'])} on all val images; built with every class from the "
                f"start: {_pct(full['built_from_start'])}" + (f" (difference {_paired_cell(vs)})" if vs else "")
                + f"; same probabilities: {late['routed_equals_build_from_start']}.",
            "", f"*Adding {t['samples']:,} samples* one call at a time against one batched call:", "",
            "| target | one at a time | batched | batched vs single |", "|---|---|---|---|"]
    for name in ("flat memory", "routed classifier"):
        row = t[name]
        out.append(f"| {name} | {row['one_at_a_time_per_s']:,.0f} /s | {row['batched_per_s']:,.0f} /s | "
                   f"**{row['batched_vs_single']}x** |")
    return "\n".join(out)


def scale_table(r: dict) -> str:
    out = [f"{_measured_on(r)}{r['data']}; k = {r['k']}; {r['queries']:,} queries batched, "
           "single queries for latency.", "",
           "| entries | flat p50 / p99 | routed p50 / p99 | flat q/s | routed q/s | routed vs flat | "
           "flat top-1 | routed top-1 | flat RSS | routed RSS |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        f, g = row["flat"], row["routed"]
        out.append(f"| {row['entries']:,} | {f['p50_ms']:.2f} / {f['p99_ms']:.2f} ms | "
                   f"{g['p50_ms']:.2f} / {g['p99_ms']:.2f} ms | {f['queries_per_s']:,.0f} | {g['queries_per_s']:,.0f} | "
                   f"**{f['routed_speedup_batched']}x** | {_pct(f['top1'])} | {_pct(g['top1'])} | "
                   f"{_mb(f['rss_growth_bytes'])} | {_mb(g['rss_growth_bytes'])} |")
    if "fp32_scoring" in r["rows"][0]["flat"]:
        amx = r["scoring"] == "bf16" and "amx_bf16" in r.get("machine", {}).get("matrix_flags", [])
        batches = (f"At {r['dim']}-d batches take the pass too (bf16 on AMX, from 256-d):" if amx else
                   f"At {r['dim']}-d only single queries take the pass (batches need 1,024-d), "
                   "so the batched ratio shows the run's noise:")
        out += ["", f"Exact scoring with the `{r['scoring']}` pass against fp32 only (`SUPERSUB_SCORING=fp32`), "
                    f"same objects, same run. {batches}", "",
                "| entries | system | p50 / p99 | fp32 p50 / p99 | p50 gain | q/s | fp32 q/s | batched ratio "
                "| same predictions |",
                "|---|---|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            for name in ("flat", "routed"):
                a = row[name]
                b = a["fp32_scoring"]
                out.append(f"| {row['entries']:,} | {name} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} ms | "
                           f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} ms | **{a['scoring_speedup_p50']}x** | "
                           f"{a['queries_per_s']:,.0f} | {b['queries_per_s']:,.0f} | {a['scoring_speedup_batched']}x | "
                           f"{a['identical_predictions']} |")
    out += ["", "| entries | index | recall@10 | q/s | p50 / p99 | build | first batch | RSS |",
            "|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        for spec, ix in row["indexes"].items():
            lists = " (lists in bf16)" if ix.get("bf16_lists") else ""
            first = f"{ix['first_batch_s']:.2f} s" if "first_batch_s" in ix else "—"
            out.append(f"| {row['entries']:,} | `{spec}` nprobe {ix['nprobe']}{lists} | {ix['recall_at_10']:.3f} | "
                       f"{ix['queries_per_s']:,.0f} | {ix['p50_ms']:.2f} / {ix['p99_ms']:.2f} ms | "
                       f"{ix['build_s']:.1f} s | {first} | {_mb(ix['rss_growth_bytes'])} |")
    g = r["growth_exponents"]
    out += ["", "Growth with memory size (exponent b of cost ∝ n^b over these sizes): "
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in g.items() if v is not None) + "."]
    return "\n".join(out)


def backend_table(r: dict) -> str:
    out = [f"{r['data']}; k = {r['k']}; Milvus: {r['milvus']['server']}.", "",
           "| entries | backend | insert /s | flush + index | routed query p50 / p99 | vs faiss p50 | batched q/s "
           "| delete 100 ids p50 / p99 | recall@10 | deleted id returned |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        for name, b in row.items():
            if not isinstance(b, dict):
                continue
            q, d = b["routed_query"], b["delete_100_ids"]
            out.append(f"| {row['entries']:,} | {name} | {b['insert_per_s']:,.0f} | {b['flush_and_index_s']:.1f} s | "
                       f"{q['p50_ms']:.2f} / {q['p99_ms']:.2f} ms | {b.get('p50_vs_faiss', 1.0)}x | "
                       f"{b['routed_queries_per_s_batched']:,.0f} | {d['p50_ms']:.1f} / {d['p99_ms']:.1f} ms | "
                       f"{b['recall_at_10']:.3f} | {b['deleted_id_returned']} |")
    return "\n".join(out)


def reliability_table(r: dict) -> str:
    m = r["machine"]
    out = [f"`python benchmarks/reliability_bench.py` ({_machine_words(m) if m.get('cpu_model') else m['date']}):", "",
           "| concurrent writers | repetitions x writers (offsets 0 to 2 s) | acknowledged | present at the end "
           "| refused with a message | lost |", "|---|---|---|---|---|---|"]
    for w in r["concurrent_writers"]:
        out.append(f"| {w['mode']} | {w['repetitions']} x {w['writers_per_repetition']} | {w['acknowledged']} | "
                   f"{w['present']} | {w['refused']} | **{w['lost']}** |")
    cli = r["cli_concurrent_writers_20"]
    out += ["", f"Two `supersub memory add` runs on one model, 20 offsets from 0 to 2 s: "
                f"{'passed' if cli['passed'] else 'FAILED'} ({cli['summary']}).", "",
            "| SIGKILL aimed at the write window | entries | kills | inside the window | loads consistent "
            "| temporaries removed on next open | states seen |", "|---|---|---|---|---|---|---|"]
    for k in r["kills_in_write_window"]:
        out.append(f"| {k['target']} | {k['entries']:,} | {k['kills']} | {k['kills_inside_write_window']} | "
                   f"{k['loads_consistent']} | {k['temporaries_removed_on_next_open']} | {k['distinct_states_seen']} |")
    crash, prop = r["crash_safety_50_kills"], r["long_property_run"]
    rss = r["streaming_search"]
    grew = " and ".join(f"{x['growth_mb']:.0f} MB for {x['queries']:,} queries" for x in rss)
    out += ["", f"Random-moment kills (50): {'passed' if crash['passed'] else 'FAILED'}. Long property run: "
                f"{prop['sequences']:,} sequences, {prop['steps']:,} steps, {'passed' if prop['passed'] else 'FAILED'}. "
                f"Searching against {rss[-1]['memory_entries']:,} entries grew the resident set by {grew} "
                f"(an unchunked similarity matrix for the last: {rss[-1]['unchunked_similarity_matrix_mb']:,.0f} MB)."]
    hostile = r.get("hostile_inputs")
    if hostile:
        out += ["", f"Hostile-input matrix (`benchmarks/hostile_inputs.py`): **{hostile['cases']} cases, "
                    f"{hostile['passed']} passed, {hostile['failed']} failed**"
                    + (f" ({', '.join(hostile['failures'])})" if hostile["failures"] else "") + ".", "",
                "| family | cases |", "|---|---|"]
        out += [f"| {family} | {n} |" for family, n in hostile["families"].items()]
    return "\n".join(out)


def trees_table(r: dict) -> str:
    out = ["| dataset | parent rule | mean shortfall | pairs exact | classes off their deepest path "
           "| golden retriever / lion, / goldfish | tabby / lion, / goldfish | dogs and cats outside placental |",
           "|---|---|---|---|---|---|---|---|"]
    for ds, rules in r["rules"].items():
        for rule, row in rules.items():
            sev = row["severity"]
            out.append(f"| {ds} | `{rule}`{' (default)' if rule == 'specificity' else ''} | "
                       f"{row['mean_shortfall']:.3f} | {_pct(row['pairs_exact'])} | {row['classes_off_deepest_path']} | "
                       f"{sev['golden retriever / lion']}, {sev['golden retriever / goldfish']} | "
                       f"{sev['tabby / lion']}, {sev['tabby / goldfish']} | "
                       f"{row['dogs_and_cats_outside_placental']} of {row['dogs_and_cats']} |")
    return "\n".join(out)


def specialists_table(r: dict) -> str:
    su, st = r["summary"], r["setup"]
    size = st.get("size") or st["backbone"].split("@")[1].split("/")[0]
    out = [f"Lite0 @ {size} px split at `{st['split_at']}` (trunk {tuple(st['trunk_shape'])}, cached in float16); "
           f"train {st['train']:,}, dev {st['dev']:,}, val {st['val']:,}; generalist {st['epochs']} epochs, "
           f"specialists up to {st['specialist_epochs']} (kept at the dev-best epoch), rank {st['rank']}, "
           f"{st['precision']}. Whole run {r['total_seconds'] / 60:.0f} min, of which computing the trunk "
           f"cache took {st['trunk_cache_seconds'] / 60:.0f} min.", "",
           "| cut | system | top-1 | dev | against the best flat [95%], McNemar p | superclass acc. | router acc. "
           "| errors across superclasses | images/s | training s | storage (tails) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]

    def cell(v: object, fmt: str = "{}") -> str:
        return "" if v is None else fmt.format(v)

    for row in r["rows"]:
        if row.get("tuning"):
            continue
        out.append(f"| {row['cut']} | {row['system']} | {_pct(row['top1'])} | {cell(row['dev_top1'], '{:.1%}')} | "
                   f"{_paired_cell(row.get('against_best_flat'))} | "
                   f"{_pct(row['superclass_accuracy'])} | {cell(row['router_accuracy'], '{:.1%}')} | "
                   f"{_pct(row['cross_superclass_errors'])} | {cell(row['images_per_s'], '{:.0f}')} | "
                   f"{cell(row['train_seconds'], '{:.0f}')} | {cell(row['storage_tails'], '{:.3f}')} |")
    b, f = su["best_routed"], su["best_flat"]
    paired = su.get("routed_minus_best_flat_paired")
    out += ["", f"Best routed system (chosen on dev): {b['system']} on {b['cut']}, **{_pct(b['top1'])}**; "
            f"best flat: {f['system']}, **{_pct(f['top1'])}**; routed minus the best flat system: "
            f"**{100 * su['routed_minus_best_flat']:+.2f} points**"
            + (f" {_paired_cell(paired)}" if paired else "") + ". Oracle minus the same-budget flat tail: "
            + ", ".join(f"{c} {100 * v:+.1f}" for c, v in su["oracle_minus_flat"].items()) + " points."]
    if "seeds" in su:
        sd = su["seeds"]
        out += ["", f"With {len(sd['seeds'])} training seeds ({', '.join(map(str, sd['seeds']))}): best flat "
                    f"{_pct(sd['flat_mean_sd'][0])} ± {100 * sd['flat_mean_sd'][1]:.2f}, best routed "
                    f"{_pct(sd['routed_mean_sd'][0])} ± {100 * sd['routed_mean_sd'][1]:.2f}; routed − flat "
                    f"{100 * sd['difference_mean_sd'][0]:+.2f} ± {100 * sd['difference_mean_sd'][1]:.2f} points "
                    "(mean ± sd over seeds)."]
    shares = {c: i["errors_across_superclasses"] for c, i in r["cuts"].items() if "errors_across_superclasses" in i}
    if shares:
        out += ["", "Share of the errors that cross superclasses, per cut:", "",
                "| cut | best flat system | routed (dev-best of the cut) |", "|---|---|---|"]
        out += [f"| {c} | {_pct(v['best flat'])} | {_pct(v['routed (dev-best of this cut)'])} |"
                for c, v in shares.items()]
    out += ["", "| target | met |", "|---|---|"]
    out += [f"| {t} | {'yes' if ok else '**no**'} |" for t, ok in su["targets"].items()]
    return "\n".join(out)


def errors_across_table() -> str:
    """Seed 004's finding (errors mostly within a superclass), measured per cut, flat and routed."""
    router, spec = _load("router"), _load("specialists")
    if router is None and spec is None:
        return "(no results yet: run python benchmarks/router_bench.py and benchmarks/specialists_bench.py)"
    out = ["| level | cut | flat | routed |", "|---|---|---|---|"]
    if router:
        for cut, body in router["cuts"].items():
            sy = body["systems"]
            routed = {n: v for n, v in sy.items() if n.startswith("routed") and "oracle" not in n}
            best = max(routed, key=lambda n: routed[n]["top1"])
            out.append(f"| memory (Lite0 embeddings, kNN) | {cut} | flat kNN {_pct(sy['flat kNN']['errors_across_share'])}, "
                       f"linear probe {_pct(sy['linear probe']['errors_across_share'])} | {best}: "
                       f"{_pct(routed[best]['errors_across_share'])} |")
    if spec:
        rows = [r for r in spec["rows"] if "dev-best mix" in r["system"] and r["system"].endswith("soft m=2")]
        flat = {c: i["errors_across_superclasses"]["best flat"] for c, i in spec["cuts"].items()
                if "errors_across_superclasses" in i}
        for r in rows:
            f = f"best flat {_pct(flat[r['cut']])}" if r["cut"] in flat else ""
            out.append(f"| network (fine-tuned tail) | {r['cut']} | {f} | specialists + memory, soft m=2: "
                       f"{_pct(r['cross_superclass_errors'])} |")
    return "\n".join(out)


def reproducibility_table(r: dict) -> str:
    """Builds of the network model that differ in one thing, compared on val."""
    out = [f"{_measured_on(r)}{r['data']}.", "",
           "| builds | what differs | bit-identical | largest probability difference | predictions that differ "
           "| top-1 | top-1 change [95%] |", "|---|---|---|---|---|---|---|"]
    for p in r["pairs"]:
        a, b = r["builds"][p["a"]], r["builds"][p["b"]]
        out.append(f"| {p['a']} / {p['b']} | {p['differs_in']} | {'yes' if p['bit_identical'] else 'no'} | "
                   f"{p['max_probability_difference']:g} | {_pct(p['predictions_differ'])} | "
                   f"{_pct(a['top1'])} / {_pct(b['top1'])} | {_paired_cell(p['top1_change'])} |")
    t = r["trunk_threads_2_vs_1"]
    out += ["", "The trunk alone at 2 and 1 threads on the same " f"{t['bf16']['images']} images: "
            + "; ".join(f"{prec}: {'bit-identical' if x['bit_identical'] else 'largest difference ' + format(x['max_abs_difference'], 'g')}"
                        for prec, x in t.items()) + ". Builds reuse one trunk cache, so the rows above vary the "
            "training only."]
    return "\n".join(out)


def _ci(d: dict | None, digits: int = 1, scale: float = 100) -> str:
    """`` [lo, hi]`` of a paired difference (in points by default), and ``, a tie`` when it holds 0."""
    if not d:
        return ""
    lo, hi = d["interval_95"]
    return f" [{scale * lo:+.{digits}f}, {scale * hi:+.{digits}f}]{', a tie' if lo <= 0 <= hi else ''}"


def _paired_cell(d: dict | None) -> str:
    """A paired difference (from router.paired_difference's to_dict) in points, with its verdict."""
    if not d:
        return ""
    lo, hi = d["interval_95"]
    p = "" if d.get("p_value") is None else f", p = {d['p_value']:.2g}"
    verdict = "a tie" if lo <= 0 <= hi else ("better" if d["difference"] > 0 else "worse")
    return f"{100 * d['difference']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]{p}: {verdict}"


def _cache_sentence(tc: dict, path: str) -> str:
    what = f"The whole training cache ({tc['full_cache_images']:,} images) on {path}"
    if "full_cache_reused" not in tc:
        return f"Computing or loading the {what[4:]} took {tc['full_cache_seconds']:.0f} s."
    verb = "was loaded from disk" if tc["full_cache_reused"] else "was computed"
    return f"{what} {verb} in {tc['full_cache_seconds']:.0f} s."


def network_speed_table(r: dict) -> str:
    """The network-level model on each runtime: speed, top-1 and its change against eager torch."""
    st, t = r["setup"], r["targets"]
    alternating = ", flat and routed alternating on each path" if "alternating" in st.get("timing", "") else ""
    cache_timing = ", best of 3 with the paths alternating" if "paths alternating" in st.get("timing", "") else ""
    out = [f"{_measured_on(r)}Lite0 at {st['size']} px, {st['threads']} threads; the routed model is int8 delta "
           f"specialists with memories, {st['cut']}, {st['routing']}; flat is its generalist alone. End to end: "
           f"all {st['val']:,} val images from files, decoding overlapped; tensors: {st['tensors']:,} decoded "
           f"images, best of 3{alternating}. Change: top-1 against eager torch bf16 on the same queries, in points, "
           "with the paired 95% interval, and the answers that changed.", "",
           "| system | path | end to end | from tensors | top-1 | change against eager | answers changed |",
           "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        change = ""
        if "top1_change" in row:
            lo, hi = row["change_interval"]
            tie = ", a tie" if lo <= 0 <= hi else ""
            change = f"{100 * row['top1_change']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]{tie}"
        out.append(f"| {row['system']} | {row['path']} | {row['images_per_s_files']:,.0f} img/s | "
                   f"{row['images_per_s_tensors']:,.0f} img/s | {_pct(row['top1'])} | {change or '–'} | "
                   f"{row.get('flips', '–')} |")
    tc = r["trunk_cache"]
    cost = ", ".join(f"{k} {v:.2f}x" for k, v in t["routed_cost_vs_flat"].items())
    best = next(row for row in r["rows"] if row["system"] == "routed" and row["path"] == r["best_path"])
    lo, hi = best["change_interval"]
    out += ["", f"Targets, {r['best_path']} against eager torch: the routed model end to end "
            f"**{t['routed_end_to_end_vs_eager']:.2f}x** (target 3x) with top-1 {t['routed_top1_change_points']:+.2f} "
            f"points [{100 * lo:+.2f}, {100 * hi:+.2f}]{', a tie' if lo <= 0 <= hi else ''} "
            f"(target within 0.1); the trunk cache **{t['trunk_cache_vs_eager']:.2f}x** (target 3x; "
            + ", ".join(f"{k} {v:,.0f} img/s" for k, v in tc["images_per_s"].items())
            + f", from files{cache_timing}); routed inference costs {cost} as much as flat from tensors (target 1.2x). "
            + _cache_sentence(tc, st["default_path"])]
    files = ", ".join(f"{k} {v:.2f}x" for k, v in t["routed_cost_vs_flat_files"].items())
    out[-1] += f" End to end from files, where decoding takes its share, routed costs {files} as much as flat."
    sp = r.get("specialists_per_image")
    if sp:
        every = ", ".join(f"{row['path']} {row['images_per_s_tensors_every_specialist']:,.0f}" for row in r["rows"]
                          if "images_per_s_tensors_every_specialist" in row)
        settled = 100 * sp["settled_by_the_first"]
        out[-1] += (f" Routed `predict` ran {sp['predict']:.2f} specialists per image ({settled:.1f}%"
                    f" settled by the first); `predict_proba` runs all {sp['predict_proba']:.0f}, from tensors at "
                    f"{every} img/s.")
    return "\n".join(out)


def precision_table(r: dict) -> str:
    t, tl, m = r["trunk"], r["tail"], r["matmul_gflops"]
    heads = []
    if "heads" in r:
        h = r["heads"]
        hm = h["machine"]
        heads = ["", f"*Heads on frozen embeddings* (`--part heads`, measured {_machine_words(hm)}; "
                     f"{h['setup']['train']:,} train "
                     f"and {h['setup']['val']:,} val embeddings, {h['setup']['superclasses']} superclasses):", "",
                 "| head | fp32 s | bf16 s | speed-up | fp32 val acc. | bf16 val acc. | bf16 − fp32, points (paired 95%) |",
                 "|---|---|---|---|---|---|---|"]
        for name, row in h["rows"].items():
            heads.append(f"| {name} | {row['fp32']['seconds']} | {row['bf16']['seconds']} | **{row['speedup']}x** | "
                         f"{_pct(row['fp32']['top1'])} | {_pct(row['bf16']['top1'])} | "
                         f"{_paired_cell(row['top1_change'])} |")
    return "\n".join([
        "| measurement | fp32 | bf16 autocast | bf16 / fp32 |", "|---|---|---|---|",
        f"| matmul 2048², GFLOP/s | {m['fp32']} | {m['bf16']} | **{r['matmul_speedup']}x** |",
        f"| trunk, images/s ({r['setup']['trunk_images']} val images, 128 px) | {t['fp32']['images_per_s']} | "
        f"{t['bf16']['images_per_s']} | **{t['speedup']}x** (cosine min {t['cosine_min']}, mean {t['cosine_mean']}) |",
        f"| tail fine-tuning, images/s ({r['setup']['epochs']} epochs, {r['setup']['train']:,} images) | "
        f"{tl['fp32']['images_per_s']} | {tl['bf16']['images_per_s']} | **{tl['speedup']}x** |",
        f"| tail fine-tuning, val top-1 | {_pct(tl['fp32']['top1'])} | {_pct(tl['bf16']['top1'])} | "
        f"{_paired_cell(tl['top1_change'])} (points, paired 95%) |",
        *heads,
        *_epoch_rows(r.get("epoch")),
    ])


def _epoch_rows(e: dict | None) -> list[str]:
    """The epoch study of :func:`precision_table`: each training setting, and where an epoch goes."""
    if not e:
        return []
    out = ["", f"*One epoch of tail fine-tuning* (`--part epoch`, measured {_machine_words(e['machine'])}; "
               f"{e['images']:,} cached activations of shape {tuple(e['activations'])}, batch 256):", "",
           "| setting | images/s | against the library's | batch | forward | backward | optimiser |",
           "|---|---|---|---|---|---|---|"]
    for name, row in e["rows"].items():
        ph, total = row["phases_s"], row["seconds"]
        share = " | ".join(f"{100 * ph[k] / total:.0f}%" for k in ("batch", "forward", "backward", "optimiser"))
        out.append(f"| {name} | {row['images_per_s']:,.0f} | **{row['against_library']}x** | {share} |")
    return out


def explore_table(r: dict) -> str:
    rows = [
        f"{r['entries']:,} entries, {r['classes']} classes; {r['neighbours_shown']} neighbours shown; model load "
        f"{r['model_load_s']} s (not timed), {r['warmup_queries']} untimed warm-up queries.",
        "",
        "| round trip | p50 | p95 | n |",
        "|---|---|---|---|",
    ]
    for key, name in (("page_upload", "page: upload to rendered page, neighbour images decoded"),
                      ("page_steer", "page: steer (exclude a source, or clear it) to re-rendered page"),
                      ("api", "API in-process: decode, embed, route, search, explain")):
        x = r[key]
        rows.append(f"| {name} | {x['p50_ms']:.0f} ms | {x['p95_ms']:.0f} ms | {x['n']} |")
    rows += ["", f"Page against API at p50: **{r['page_over_api_p50']}x**. Target p50 <= {r['target_p50_ms']:.0f} ms: "
                 f"{'met' if r['meets_target'] else 'not met'}."]
    return "\n".join(rows)


def cache_table(r: dict) -> str:
    """The embedding caches against embedding every image."""
    rows = [f"{_measured_on(r)}{r['data']}; hashing the files took {r['hashing_s']} s.", "",
            "| case | images | embedded | seconds | images/s |", "|---|---|---|---|---|"]
    rows += [f"| {name} | {c['images']:,} | {c['embedded']:,} | {c['seconds']} | {c['images_per_s']:,} |"
             for name, c in r["cases"].items()]
    rows += ["", f"The cold run filling both caches took {r['cold_overhead_vs_no_cache']:.2f}x the uncached time; "
                 f"a subset served by the per-image cache came {r['subset_speedup_vs_no_cache']}x faster per image; "
                 f"cached embeddings equal computed ones: {r['cached_equals_computed']}."]
    return "\n".join(rows)


def hedging_table(r: dict) -> str:
    """Answers along the tree: the promise kept, how informative, CRM, and classes the model lacks."""
    systems = r["systems"]
    rows = [f"{_measured_on(r)}{r['data']}; δ = {r['delta']}.", "",
            "CRM decides on the calibrated probabilities, as `predict(decision=\"crm\")` does once the model "
            "is calibrated; on the raw ones beside it.", "",
            "| system | top-1 | temperature, floor | ECE before → after | mistakes' LCA height: argmax → CRM raw → "
            "CRM calibrated | CRM calibrated: top-1 change [95%] | at 90%: DARTS − threshold mean gain [95%] |",
            "|---|---|---|---|---|---|---|"]
    for name, x in systems.items():
        raw, c = x["crm_uncalibrated"], x["crm_calibrated"]
        lo, hi = c["top1_change_95"]
        rows.append(f"| {name} | {_pct(x['top1'])} | {x['temperature']}, {x['floor']} | {x['ece_before']} → "
                    f"{x['ece_after']} | {c['argmax_severity']} → {raw['crm_severity']} → {c['crm_severity']} | "
                    f"{100 * (c['crm_top1'] - c['argmax_top1']):+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] | "
                    f"{_gain_gap(x.get('darts_minus_threshold_gain_0.9'))} |")
    rows += ["", "| system | rule | promised | achieved [95%] | at class level | at the root | mean gain | mean depth |",
             "|---|---|---|---|---|---|---|---|"]
    for name, x in systems.items():
        for key, h in x["hedged"].items():
            if "error" in h:
                rows.append(f"| {name} | {key.split()[0]} | {key.split()[1]} | too few calibration images | | | | |")
                continue
            lo, hi = h["achieved_95"]
            held = "" if h["guarantee_held"] else " **(missed)**"
            rows.append(f"| {name} | {h['rule']} | {h['accuracy']:.0%} | {_pct(h['achieved'])} "
                        f"[{_pct(lo)}, {_pct(hi)}]{held} | {_pct(h['class_level'])} | {_pct(h['root'])} | "
                        f"{h['mean_gain']:.3f} | {h['mean_depth']:.2f} |")
    nv = r["novel"]
    rows += ["", f"Classes held out of the model ({len(nv['held_out_classes'])}), their val images answered at "
                 f"{nv['alpha']:.0%} ({nv['rule']}):", "",
             "| system | queries | a correct ancestor | the root | a wrong node |", "|---|---|---|---|---|"]
    rows += [f"| {name} | {v['queries']:,} | {_pct(v['correct_ancestor'])} | {_pct(v['root'])} | {_pct(v['wrong'])} |"
             for name, v in nv["systems"].items()]
    su = r["summary"]
    rows += ["", f"Best system: {su['best_system']}. Targets: the promise held for every system and level: "
                 f"{'yes' if su['guarantee_held_everywhere'] else '**no**'}; DARTS at 90% mean gain "
                 f"{su['darts_0.9_mean_gain']} (target 0.55: {'met' if (su['darts_0.9_mean_gain'] or 0) >= 0.55 else 'not met'}), "
                 f"never below the threshold rule: {'yes' if su['darts_never_below_threshold_at_0.9'] else '**no**'}; "
                 f"CRM (calibrated) changes the mean LCA height of mistakes by {su['crm_severity_change']:+.3f} at "
                 f"{100 * su['crm_top1_change']:+.2f} points of top-1 (target −0.2 at ≥ −0.3 points: "
                 f"{'met' if su['crm_severity_change'] <= -0.2 and su['crm_top1_change'] >= -0.003 else 'not met'}); "
                 f"fewer than half of the novel queries get a wrong node: "
                 f"{'yes' if su['novel_wrong_below_half'] else '**no**'}."]
    if "soft_labels_and_crm" in su:
        sl = su["soft_labels_and_crm"]
        lo, hi = sl.get("top1_change_95", (float("nan"), float("nan")))
        rows += ["", f"{sl['system']} with CRM, against the routed network model with argmax: mean LCA height of "
                     f"mistakes {sl['severity_change']:+.3f}, top-1 {100 * sl['top1_change']:+.2f} points "
                     f"[{100 * lo:+.2f}, {100 * hi:+.2f}]{' (a tie)' if lo <= 0 <= hi else ''}."]
    return "\n".join(rows)


def _gain_gap(d: dict | None) -> str:
    return f"{d['difference']:+.3f}{_ci(d, 3, scale=1)}" if d else "n/a"


def hedging_summary() -> str:
    """The README's view of hedging.json: at a promised 90%, what each system answers, and CRM."""
    r = _load("hedging")
    if r is None:
        return "(no results yet: run python benchmarks/hedging_bench.py)"
    rows = [f"{r['data']}. At a promised 90% accuracy (DARTS rule, δ = {r['delta']}):", "",
            "| system | top-1 | achieved | answered at class level | mean information gain | "
            "mistakes' LCA height: argmax → CRM |",
            "|---|---|---|---|---|---|"]
    for name, x in r["systems"].items():
        h, c = x["hedged"].get("darts 0.9", {}), x["crm_calibrated"]
        got = (f"{_pct(h['achieved'])} | {_pct(h['class_level'])} | {h['mean_gain']:.3f}" if "achieved" in h
               else "too few calibration images | | ")
        rows.append(f"| {name} | {_pct(x['top1'])} | {got} | {c['argmax_severity']} → {c['crm_severity']} |")
    su, nv = r["summary"], r["novel"]
    worst = max(nv["systems"].items(), key=lambda kv: kv[1]["wrong"])
    missed = [f"{name}, {h['rule']} at {h['accuracy']:.0%}: {_pct(h['achieved'])}" for name, x in r["systems"].items()
              for h in x["hedged"].values() if "error" not in h and not h["guarantee_held"]]
    rows += ["", "Achieved accuracy at least the promised one less 0.5 points, for every system, both rules and "
                 f"every promise from 70% to 99%: {'yes' if not missed else '**no** (' + '; '.join(missed) + ')'}. "
                 f"Queries of {len(nv['held_out_classes'])} "
                 f"classes held out of the models get a wrong node at most {_pct(worst[1]['wrong'])} of the time "
                 f"({worst[0]}); the rest get a correct ancestor or the root."]
    if "soft_labels_and_crm" in su:
        sl = su["soft_labels_and_crm"]
        rows[-1] += (f" Hierarchy-aware training with CRM moves the mistakes' mean LCA height by "
                     f"{sl['severity_change']:+.2f} at {100 * sl['top1_change']:+.2f} points of top-1"
                     f"{_ci({'interval_95': sl['top1_change_95']}, 2) if 'top1_change_95' in sl else ''}.")
    return "\n".join(rows)


def demo_table(r: dict) -> str:
    """The demo's time and its two comparisons, as a sentence for the README."""
    mem, net = r["memory_level"], r["network_level"]

    def level(x: dict) -> str:
        how = x["routing"]["mode"] + (f" m={x['routing']['m']}" if x["routing"].get("m") else "")
        gap = f" ({_paired_cell(x['routed_minus_flat'])})" if x.get("routed_minus_flat") else ""
        return f"routed ({how}) {_pct(x['routed_top1'])} against {_pct(x['flat_top1'])} for {x['flat']}{gap}"

    return (f"{_measured_on(r)}`{r['command']}` took **{r['seconds'] / 60:.1f} minutes** "
            f"({r['subset']['train_per_class']} train and {r['subset']['val_per_class']} val images per class, "
            f"{mem['queries']:,} queries)" + _steps(r.get("steps")) + f". Memory level: {level(mem)}. "
            f"Network level: {level(net)}." + (_tree_buys(r["tree_buys"]) if "tree_buys" in r else ""))


def _steps(steps: list[dict] | None) -> str:
    """``; the longest steps: build 92 s, ...`` (the three slowest commands of the recipe)."""
    if not steps:
        return ""
    slow = sorted(steps, key=lambda x: -x["seconds"])[:3]
    return "; the slowest steps: " + ", ".join(f"`{x['command']}` {x['seconds']:.0f} s" for x in slow)


def _tree_buys(t: dict) -> str:
    return (f" What the tree buys, on the network model: at {t['accuracy']:.0%} promised accuracy "
            f"({_pct(t['achieved'])} achieved) {_pct(t['class_level'])} of the answers name a class and the rest a "
            f"node above it; CRM changes the mistakes' mean LCA height by {t['crm_severity_change']:+.2f}"
            + (f" at {100 * t['crm_top1_change']:+.1f} points of top-1{_ci(t['crm_top1_change_paired'])}"
               if t.get("crm_top1_change_paired") else "") + ".")


def _seeds_sentence(su: dict) -> str:
    """`` Over 3 training seeds: routed − best flat -0.29 ± 0.14 points (mean ± sd).``, when measured."""
    if "seeds" not in su:
        return ""
    sd = su["seeds"]
    return (f" Over {len(sd['seeds'])} training seeds, routed {_pct(sd['routed_mean_sd'][0])} ± "
            f"{100 * sd['routed_mean_sd'][1]:.2f} against flat {_pct(sd['flat_mean_sd'][0])} ± "
            f"{100 * sd['flat_mean_sd'][1]:.2f}: routed − best flat {100 * sd['difference_mean_sd'][0]:+.2f} ± "
            f"{100 * sd['difference_mean_sd'][1]:.2f} points (mean ± sd).")


def routing_summary() -> str:
    """Where routing stands at the network level, in sentences drawn from specialists.json."""
    r = _load("specialists")
    if r is None:
        return "(no results yet: run python benchmarks/specialists_bench.py)"
    rows = {(x["cut"], x["system"]): x for x in r["rows"]}
    probe = rows[("flat", "frozen linear probe")]["top1"]
    tail = next(x for (c, n), x in rows.items() if c == "flat" and n.startswith("flat fine-tuned tail ("))
    su = r["summary"]
    best, flat = su["best_routed"], su["best_flat"]
    routers = {c: x["router_accuracy"] for (c, n), x in rows.items() if x.get("router_accuracy") and "dev-best" in n
               and n.endswith("hard")}
    lines = [f"Fine-tuning the tail adds {100 * (tail['top1'] - probe):.1f} points over a frozen linear probe "
             f"({_pct(tail['top1'])} against {_pct(probe)}, {r['setup']['backbone'].split('/')[0]}). "
             f"The best routed system, {_pct(best['top1'])} ({best['system']}, {best['cut']}), is "
             + (_paired_cell(su["routed_minus_best_flat_paired"]) if su.get("routed_minus_best_flat_paired")
                else f"{100 * su['routed_minus_best_flat']:+.2f}")
             + f" against the best flat system ({flat['system']}, {_pct(flat['top1'])})." + _seeds_sentence(su), "",
             "| cut | router accuracy | oracle route against flat |", "|---|---|---|"]
    lines += [f"| {c} | {_pct(a)} | {100 * su['oracle_minus_flat'][c]:+.1f} points |" for c, a in routers.items()
              if c in su["oracle_minus_flat"]]
    return "\n".join(lines)


def _ivf_bf16_pays() -> Callable[..., bool]:
    """The library's rule for when an IVF search takes its bf16 lists (:func:`memory.store.ivf_bf16_pays`)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from memory.store import ivf_bf16_pays

    return ivf_bf16_pays


def scoring_table(r: dict) -> str:
    """The low-precision pass against faiss's fp32 search over the grid, with the rule's choice marked."""
    mode, sm = r["mode"], r["summary"]
    queries = sorted({row["queries"] for row in r["rows"]})
    out = [f"{_measured_on(r)}{r['data']}; k = {r['k']}; each path's best of {2 * r['repeats']} calls. Each cell: "
           f"the {mode} pass's speed-up over faiss's fp32 search; **bold** where `use_low_precision` takes the "
           f"{mode} pass.", "",
           "| rows | dim | " + " | ".join(f"{q:,} {'query' if q == 1 else 'queries'}" for q in queries) + " |",
           "|---|---|" + "---|" * len(queries)]
    cells: dict[tuple[int, int], dict[int, dict]] = {}
    for row in r["rows"]:
        cells.setdefault((row["dim"], row["rows"]), {})[row["queries"]] = row
    for (dim, n), by_q in sorted(cells.items()):
        marks = [(f"**{c['speedup']:.2f}x**" if c["rule_takes_lowp"] else f"{c['speedup']:.2f}x") if c else "—"
                 for c in (by_q.get(q) for q in queries)]
        out.append(f"| {n:,} | {dim} | " + " | ".join(marks) + " |")
    w = sm["worst_cell"]
    out += ["", f"The rule takes the faster path in {sm['rule_takes_the_faster_path']} of {sm['cells']} cells; "
            f"the paths it takes cost {sm['geomean_taken_over_faster']:.3f}x the faster ones (geometric mean), and "
            f"they are {sm['geomean_speedup_of_the_rule_over_fp32']:.2f}x as fast as fp32 alone. Its worst cell: "
            f"{w['rows']:,} rows, {w['dim']}-d, {w['queries']:,} {'query' if w['queries'] == 1 else 'queries'}, "
            f"{w['taken_over_faster']:.2f}x the faster "
            "path's time."]
    return "\n".join(out)


def crossover_table(r: dict) -> str:
    """Exact search against approximate indexes tuned to the target recall, by memory size."""
    target = r["target_recall"]
    lists = ("IVF...,Flat indexes search their lists in bf16 with an fp32 re-rank (faiss's own fp32 scan of the "
             "same index, same run, in the last column). " if r.get("ivf_flat_lists_in_bf16") else "")
    out = [f"{_measured_on(r)}{r['data']}; k = {r['k']}; {r['queries']:,} queries batched. Each index's "
           f"search-time knob is raised until recall@{r['k']} against exact search reaches {target}; "
           f"its q/s there is set against exact search's. {lists}".rstrip(), "",
           "| entries | exact q/s | index | setting at the target | recall@10 | q/s | against exact | build "
           "| faiss's scan: q/s, ours against it, identical top-10 |",
           "|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        ex = row["exact"]
        for spec, a in row["approximate"].items():
            best = a["at_target"]
            point = best if best is not None else a["points"][-1]
            scan = "—"
            if "faiss_scan_queries_per_s" in point:
                fs = point["faiss_scan_queries_per_s"]
                used = point.get("bf16_lists")
                if used is None:  # not recorded: the rule the search applied
                    nlist = int(spec[3:spec.index(",")])
                    used = _ivf_bf16_pays()(r["queries"], point["nprobe"], nlist, row["entries"], r["dim"])
                scan = (f"{fs:,.0f}, {point['queries_per_s'] / fs:.2f}x, "
                        f"{point['identical_top10_vs_faiss_scan']:,} / {r['queries']:,}"
                        + ("" if used else "; too little work per list, so faiss's scan both times"))
            if best is None:
                out.append(f"| {row['entries']:,} | {ex['queries_per_s']:,.0f} | `{spec}` | not reached "
                           f"({a['knob']} {point[a['knob']]}) | {point['recall_at_10']:.3f} | "
                           f"{point['queries_per_s']:,.0f} | — | {a['build_s']:.1f} s | {scan} |")
                continue
            out.append(f"| {row['entries']:,} | {ex['queries_per_s']:,.0f} | `{spec}` | {a['knob']} {best[a['knob']]} | "
                       f"{best['recall_at_10']:.3f} | {best['queries_per_s']:,.0f} | **{a['speedup_at_target']}x** | "
                       f"{a['build_s']:.1f} s | {scan} |")
    first = r["first_size_where_approximate_wins"]
    smallest = " (the smallest measured)" if first == r["rows"][0]["entries"] else ""
    out += ["", ("No approximate index beat exact search at these sizes." if first is None else
                 f"The first size at which an approximate index at recall@10 ≥ {target} beats exact search: "
                 f"**{first:,} entries**{smallest}.")]
    return "\n".join(out)


def claims_table(_: dict | None = None) -> str:
    """Each published claim beside what the benchmarks measured here, with a computed verdict."""
    acc, cont, unl, pru, add = (_load(n) for n in ("accuracy", "continual", "unlearning", "pruning", "adding"))
    router, scale = _load("router"), _load("scale")
    rows: list[tuple[str, str, str, str]] = []

    def held(ok: bool) -> str:
        return "held" if ok else "**did not hold**"

    if acc:
        r = acc["rows"]
        flat = r["flat kNN, softmax, k=10"]["top1"]
        best = max(v["top1"] for v in r.values() if v["group"] == "voting")
        rows.append(("kNN over stored backbone features classifies well without fine-tuning",
                     "79.8% ImageNet top-1 (larger backbone, full ImageNet)",
                     f"{_pct(best)} best flat kNN on Tiny-ImageNet with Lite0; linear probe {_pct(r['linear probe']['top1'])}",
                     "held in kind: no training, within "
                     f"{100 * (r['linear probe']['top1'] - best):.1f} points of a trained probe"))
        soft = r["routed kNN, kNN router, soft m=2"]["top1"]
        hard = r["routed kNN, centroid router, hard"]["top1"]
        gain = soft - flat
        text = (f"memory: kNN-routed soft m=2 {100 * (soft - flat):+.1f}"
                f"{_ci(r['routed kNN, kNN router, soft m=2'].get('against_flat_knn'))}, centroid-routed hard "
                f"{100 * (hard - flat):+.1f}{_ci(r['routed kNN, centroid router, hard'].get('against_flat_knn'))} "
                "points against flat kNN (k = 10)")
        if router:
            wn = router["cuts"]["wordnet-balanced-10"]["systems"]
            nets = {n: v["top1"] for n, v in wn.items() if n.startswith("MLP generalist") and "oracle" not in n}
            best_net = max(nets, key=nets.__getitem__)
            net_gain = nets[best_net] - wn["flat MLP head"]["top1"]
            gain = max(gain, net_gain)
            text += (f"; networks: best routed ({best_net}) {100 * net_gain:+.1f}{_ci(wn[best_net].get('against'))} "
                     "points against the flat MLP head")
        spec = _load("specialists")
        if spec:
            su = spec["summary"]
            gain = max(gain, su["routed_minus_best_flat"])
            text += (f"; backbone tail: best routed ({su['best_routed']['system']}, {su['best_routed']['cut']}) "
                     f"{100 * su['routed_minus_best_flat']:+.2f}{_ci(su.get('routed_minus_best_flat_paired'))} "
                     "points against the best flat system (the fine-tuned tail with a cache of its features)")
        rows.append(("two-stage super-sub classification beats flat", "+3.3 points on ImageNet", text,
                     held(gain >= 0.033)))
        m4, m1 = r["sub-centroids, m=4 per class, nearest"]["top1"], r["sub-centroids, m=1 per class, nearest"]["top1"]
        text = f"nearest sub-centroid: m = 4 {_pct(m4)}, m = 1 {_pct(m1)}, against {_pct(flat)} for all entries"
        verdict = (held(True) if m4 >= flat else
                   f"**did not hold** for m = 4 ({100 * (m4 - flat):+.1f} points with "
                   f"{r['sub-centroids, m=4 per class, nearest']['entries']:,} entries)")
        if pru:
            pts = [p for p in pru["curves"]["sub-centroid"] if p["fraction"] >= 0.9]
            if pts:
                small = pts[-1]
                text += (f"; 10-NN over m = {small['m']} sub-centroids per class ({small['fraction']:.0%} pruned): "
                         f"{_pct(small['top1'])}")
                if small["top1"] >= pru["curves"]["random"][0]["top1"]:
                    verdict += f"; held with m = {small['m']} and 10-NN voting"
        rows.append(("a few sub-centroids per class keep the accuracy (Deep Nearest Centroids)",
                     "about 4 sub-centroids per class", text, verdict))
        probe, cache = r["linear probe"]["top1"], r["linear probe + cache model"]["top1"]
        vs = r["linear probe + cache model"].get("against_linear_probe")
        rows.append(("a cache over the training features improves the model it augments", "Orhan 2018",
                     f"{_pct(probe)} → {_pct(cache)} ({100 * (cache - probe):+.1f}{_ci(vs)} points)",
                     held(vs["interval_95"][0] > 0 if vs else cache > probe)
                     + (" (a tie: the interval holds 0)" if vs and vs["interval_95"][0] <= 0 <= vs["interval_95"][1]
                        else "")))
        votes = {n.split(", ")[1]: v["top1"] for n, v in r.items() if v["group"] == "voting" and n.endswith("k=50")}
        rows.append(("softmax and rank voting beat plurality", "Geirhos et al. 2024",
                     ", ".join(f"{k} {_pct(v)}" for k, v in votes.items()) + " at k = 50",
                     held(votes["softmax"] >= votes["plurality"] and votes["rank"] >= votes["plurality"])))
    if cont:
        mem = cont["systems"]["memory updates (kNN, k=10)"]
        ft = cont["systems"]["sequential fine-tuning, linear head"]
        rows.append(("memory updates learn continually without forgetting", "90.8% Split CIFAR-100 task-incremental",
                     f"task-IL {_pct(mem['task_incremental']['final_average_accuracy'])}, forgetting "
                     f"{100 * mem['task_incremental']['forgetting']:.1f} points; sequential fine-tuning "
                     f"{_pct(ft['task_incremental']['final_average_accuracy'])}, forgetting "
                     f"{100 * ft['task_incremental']['forgetting']:.1f} points",
                     held(mem["task_incremental"]["forgetting"] == 0)
                     + " (no forgetting; the accuracy figure is for another dataset)"))
    if unl:
        ok = unl["class"]["identical_to_rebuild"] and unl["source"]["identical_to_rebuild"]
        rows.append(("unlearning is exact", "Geirhos et al. 2024",
                     f"edited memory equals a rebuild bit for bit: {ok}; source removal "
                     f"{unl['source']['speedup_vs_rebuild']:,}x faster than rebuilding", held(ok)))
    if pru:
        base = pru["curves"]["random"][0]["top1"]
        half_h, half_r = pru["curves"]["harmful"][2]["top1"], pru["curves"]["random"][2]["top1"]
        rule = pru["harmful_rule"]
        rows.append(("pruning harmful entries helps", "Geirhos et al. 2024",
                     f"`prune_harmful` removes {rule['fraction']:.1%}: {_pct(base)} → {_pct(rule['top1'])}; "
                     f"at 50% pruned, harm-ranked {_pct(half_h)} against random {_pct(half_r)}",
                     held(rule["top1"] > base)))
    if add:
        late = add["late"]
        rows.append(("whole classes can be added late", "Geirhos et al. 2024",
                     f"same predictions as a build with them from the start: {late['routed_equals_build_from_start']}; "
                     f"old classes {late['old_class_change_points']['routed']:+.2f}"
                     f"{_ci(late.get('old_class_change_paired', {}).get('routed'), 2)} points",
                     held(late["routed_equals_build_from_start"])))
    if router:
        wn = router["cuts"]["wordnet-balanced-10"]["systems"]
        key = "MLP generalist + delta specialists, hard"
        if key in wn and "storage_heads" in wn[key]:
            rows.append(("delta specialists store N specialists in about 0.2N + 1 heads", "3 heads for N = 10",
                         f"{wn[key]['storage_heads']} heads for 10 int8 low-rank deltas", held(wn[key]["storage_heads"] <= 3)))
    spec = _load("specialists")
    if spec:
        deltas = [row["storage"] for row in spec["rows"] if row.get("storage", {}).get("kind") == "delta"]
        if deltas:
            d = max(deltas, key=lambda x: x["tails"])
            rows.append(("delta specialists of the network store N specialists in about 0.2N + 1 networks",
                         f"{d['published_bound_tails']} for N = {d['n_specialists']}",
                         f"{d['tails']} tails ({d['networks']} whole networks) for {d['n_specialists']} int8 "
                         f"rank-{d['rank']} tail deltas", held(d["tails"] <= d["published_bound_tails"])))
    if scale:
        big = scale["rows"][-1]
        rows.append(("routing cuts search cost as the memory grows", "visual memory up to billions",
                     f"{big['entries']:,} entries: routed {big['flat']['routed_speedup_batched']}x flat throughput, "
                     f"p50 {big['flat']['p50_ms']:.1f} → {big['routed']['p50_ms']:.1f} ms",
                     held(big["flat"]["routed_speedup_batched"] > 1)))
    out = ["| claim | published | measured here | verdict |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(out)


TABLES: dict[str, Callable[[dict], str]] = {
    "memory": memory_table, "embed": embed_table, "router": router_table,
    "accuracy": accuracy_table, "continual": continual_table, "unlearning": unlearning_table,
    "pruning": pruning_table, "adding": adding_table, "scale": scale_table, "crossover": crossover_table,
    "backend": backend_table,
    "reliability": reliability_table, "trees": trees_table, "specialists": specialists_table,
    "precision": precision_table, "explore": explore_table, "demo": demo_table, "cache": cache_table,
    "hedging": hedging_table, "reproducibility": reproducibility_table, "network_speed": network_speed_table,
    "scoring": scoring_table,
    # The same commands on a CPU with AVX-512 BF16 and no AMX (see benchmarks/_common.per_cpu_name).
    "network_speed_avx512_bf16": network_speed_table, "memory_avx512_bf16": memory_table,
    "embed_avx512_bf16": embed_table, "crossover_avx512_bf16": crossover_table, "demo_avx512_bf16": demo_table,
    "scoring_avx512_bf16": scoring_table,
}
# Tables drawn from several results files at once.
COMBINED: dict[str, Callable[[], str]] = {"claims": claims_table, "routing-summary": routing_summary,
                                          "hedging-summary": hedging_summary, "errors-across": errors_across_table}


def render(text: str) -> str:
    for name, fn in TABLES.items():
        data = _load(name)
        if data is None:
            continue
        body = fn(data)
        text = _replace(text, name, body)
    for name, make in COMBINED.items():
        text = _replace(text, name, make())
    return text


def _replace(text: str, name: str, body: str) -> str:
    return re.sub(
        rf"(<!-- results:{name} -->\n)(?:.*?\n)?(<!-- /results:{name} -->)",
        lambda m: m.group(1) + body + "\n" + m.group(2), text, flags=re.S,
    )


def pages() -> list[Path]:
    """The pages that hold results blocks: the README and the documentation."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    stale = []
    for page in pages():
        old = page.read_text()
        new = render(old)
        if new == old:
            continue
        if args.check:
            stale.append(page.relative_to(ROOT).as_posix())
        else:
            page.write_text(new)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python benchmarks/tables.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
