"""Super-sub at the network level: a fine-tuned generalist routes, tail specialists decide.

    python benchmarks/specialists_bench.py           # Tiny-ImageNet, writes results/specialists.json
    python benchmarks/specialists_bench.py --quick   # a small subset; nothing written

Lite0 at 160 px (``--size``) is split before its last stage (``blocks.6``); the trunk's
activations are computed once (float16 cache) and every network below
trains on them.  Two seeded, disjoint parts of train are held out: a cut
split (10 images per class) builds the confusion and induced cuts, and a dev
split (20 per class) chooses every epoch (the flat tails early-stop on it as
the specialists do), the mixing weights and the best flat and routed systems,
a tie going to the cheaper one (:func:`select`).  Training and memories use
the rest of train; val (10k) only scores, and each routed row is compared with
the best flat system on it with a paired 95% interval and McNemar's p.
``--seeds`` retrains the two headline systems with more seeds.

Rows, all in one run on the same trunk cache:

* frozen kNN and a frozen linear probe on the unmodified tail's features;
* the flat fine-tuned tail (the generalist), a flat tail trained for the
  generalist's epochs plus the specialists' (the same budget), and the
  generalist mixed with kNN over a memory of its own features (the cache
  model: the flat counterpart of the specialist memories);
* for each superclass cut (WordNet balanced:10, induced:10 from class-mean
  features, confusion:10 and confusion:8 from the generalist's confusion
  on the cut split, and confusion:8 with overlap): the generalist restricted to
  the routed superclasses; int8 delta specialists (hard, soft m=2/3, oracle); the same mixed with
  specialist memories; full fine-tuned specialist copies (WordNet and induced cuts).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result  # noqa: E402
from benchmarks._data import _hold_out  # noqa: E402
from hierarchy import cut_confusion, cut_induced, shipped_tree  # noqa: E402
from memory import VisualMemory, get_backbone, tiny_imagenet  # noqa: E402
from router import (  # noqa: E402
    NetworkTwoStage,
    paired_difference,
    TailSpecialists,
    fit_head,
    head_proba,
    run_trunk_on_images,
    split_backbone,
    tail_features,
    tail_logits,
    train_tail,
    trunk_activations,
)


def _normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32 (as the network model scales its memory features)."""
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (as the network model turns logits into probabilities)."""
    z = z.astype(np.float64) - z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


MIXES = [(a, b) for a in (0.0, 0.25, 0.5) for b in (0.0, 0.25, 0.5) if a + b <= 0.75]


class Data:
    """Trunk activations of train, of two held-out parts of train (cut, dev) and of val, with integer labels.

    ``cut`` (10 images per class) builds the confusion and induced cuts; ``dev``
    (20 per class, disjoint from it) chooses epochs, mixes and the best system;
    val only scores.
    """

    def __init__(self, quick: bool, seed: int = 0, *, size: int = 160, per_class: int = 12,
                 val_per_class: int = 4, permute_val: int | None = None) -> None:
        self.split = split_backbone(get_backbone("lite0", size=size))
        train_ds, val_ds = tiny_imagenet("train"), tiny_imagenet("val")
        if quick:
            train_ds, val_ds = train_ds.subset(per_class), val_ds.subset(val_per_class)
        t = time.perf_counter()
        tr = trunk_activations(train_ds, self.split)
        va = trunk_activations(val_ds, self.split)
        self.trunk_seconds = round(time.perf_counter() - t, 1)
        self.tree = shipped_tree("tiny-imagenet-200")
        self.classes = list(self.tree.classes)
        index = {c: i for i, c in enumerate(self.classes)}
        y = np.array([index[c] for c in tr.labels])
        dev = _hold_out(y, 3 if quick else 20, seed)  # selects epochs, mixes and the winner
        rest = np.flatnonzero(~dev)
        cut = np.zeros(len(y), dtype=bool)  # builds the confusion and induced cuts; disjoint from dev
        cut[rest[_hold_out(y[rest], 2 if quick else 10, seed + 1)]] = True
        self.A, self.y = tr.acts[~dev & ~cut], y[~dev & ~cut]
        self.dA, self.dy = tr.acts[dev], y[dev]
        self.cA, self.cy = tr.acts[cut], y[cut]
        self.vA, self.vy = va.acts, np.array([index[c] for c in va.labels])
        if permute_val is not None:  # a check: val labels must never steer a choice
            self.vy = np.random.default_rng(permute_val).permutation(self.vy)
        self.val_paths = val_ds.paths
        self.fingerprint = tr.fingerprint


class Scorer:
    def __init__(self, d: Data) -> None:
        self.d = d
        self.rows: list[dict[str, Any]] = []
        self.val_pred: dict[tuple[str, str], np.ndarray] = {}  # (cut, system) -> val predictions

    def right(self, cut: str, name: str) -> np.ndarray:
        """Which val images the row (``cut``, ``name``) got right, for paired intervals."""
        return self.val_pred[(cut, name)] == self.d.vy

    def score(self, pred: np.ndarray, y: np.ndarray, sup_of: np.ndarray) -> dict[str, float]:
        wrong = pred != y
        cross = sup_of[pred] != sup_of[y]
        return {"top1": round(float(np.mean(~wrong)), 4),
                "superclass_accuracy": round(float(np.mean(~cross)), 4),
                "cross_superclass_errors": round(float(cross.sum() / max(wrong.sum(), 1)), 4)}

    def add(self, name: str, cut: str, pred_val: np.ndarray, pred_dev: np.ndarray | None, sup_of: np.ndarray, *,
            router_accuracy: float | None = None, images_per_s: float | None = None,
            train_seconds: float | None = None, storage_tails: float | None = None, **extra: Any) -> dict[str, Any]:
        row = {"system": name, "cut": cut, **self.score(pred_val, self.d.vy, sup_of),
               "dev_top1": round(float(np.mean(pred_dev == self.d.dy)), 4) if pred_dev is not None else None,
               "router_accuracy": router_accuracy, "images_per_s": images_per_s,
               "train_seconds": train_seconds, "storage_tails": storage_tails, **extra}
        self.rows.append(row)
        self.val_pred[(cut, name)] = pred_val
        print(f"{cut:<16} {name:<44} top1 {row['top1']:.4f} dev {row['dev_top1']} sup {row['superclass_accuracy']}"
              f" router {router_accuracy} img/s {images_per_s}", flush=True)
        return row


def select(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The row of best dev top-1; a tie goes to the cheaper system.

    Cheaper means, in order: fewer stored tails (parameters), fewer
    specialists run per query (``m``), no memory search, no generalist in the
    mix, more measured images/s; then the name, so the choice never depends
    on the order rows were made in.
    """
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        mix = r.get("mix") or [0.0, 0.0]
        return (r["dev_top1"], -(r.get("storage_tails") or 0.0), -(r.get("m") or 1), -(mix[1] > 0), -(mix[0] > 0),
                r.get("images_per_s") or 0.0)

    return max(sorted(rows, key=lambda r: (r["cut"], r["system"])), key=key)


def build_cuts(d: Data, p_cut: np.ndarray, F: np.ndarray, seed: int) -> dict[str, Any]:
    """Every superclass cut: WordNet's, and those built from the cut split (never from dev or val)."""
    n = len(d.classes)
    confusion = np.zeros((n, n))
    np.add.at(confusion, d.cy, p_cut)  # summed probabilities on the cut split: rows true, columns predicted
    means = np.stack([F[d.y == i].mean(0) for i in range(n)])
    return {
        "wordnet balanced:10": d.tree.superclasses,
        "induced:10": cut_induced(d.tree, means, 10, seed=seed),
        "confusion:10": cut_confusion(d.tree, confusion, 10, seed=seed),
        "confusion:8": cut_confusion(d.tree, confusion, 8, seed=seed),
        "confusion:8 overlap 0.1": cut_confusion(d.tree, confusion, 8, overlap=0.1, seed=seed),
    }


def _flat_replicate(d: Data, split: Any, F: np.ndarray, row: dict[str, Any], seed: int, *, epochs: int,
                    spec_epochs: int) -> np.ndarray:
    """Val predictions of the flat system ``row`` trained again with ``seed``."""
    n = len(d.classes)
    name = row["system"]
    if name == "frozen linear probe":
        head = fit_head(F, d.y, n, weight_decay=row["weight_decay"], epochs=10, seed=seed)
        return head_proba(head, _normalise(tail_features(split.tail(), d.vA))).argmax(1)
    tail = split.tail(n, seed=seed)
    train_tail(tail, d.A, d.y, epochs=epochs + spec_epochs if "same budget" in name else epochs, seed=seed,
               dev=(d.dA, d.dy), keep_best=True)
    p = _softmax(tail_logits(tail, d.vA))
    if "cache model" not in name:
        return p.argmax(1)
    b = row["mix"][1]
    feats = _normalise(tail_features(tail, d.A))
    mem = VisualMemory(feats.shape[1], k=10, progress=False)
    mem.add(feats, [d.classes[i] for i in d.y], source="train")
    order = [d.classes.index(c) for c in mem.classes_]
    k = np.zeros_like(p)
    k[:, order] = mem.predict_proba(_normalise(tail_features(tail, d.vA)))
    return ((1 - b) * p + b * k).argmax(1)


def _routed_replicate(d: Data, split: Any, F: np.ndarray, row: dict[str, Any], seed: int, *, epochs: int,
                      spec_epochs: int, rank: int) -> np.ndarray:
    """Val predictions of the routed system ``row`` (same cut recipe, routing and mix) trained again with ``seed``."""
    n = len(d.classes)
    generalist = split.tail(n, seed=seed)
    train_tail(generalist, d.A, d.y, epochs=epochs, seed=seed, dev=(d.dA, d.dy), keep_best=True)
    cut = build_cuts(d, _softmax(tail_logits(generalist, d.cA)), F, seed)[row["cut"]]
    tree = d.tree.with_superclasses(cut)
    net = NetworkTwoStage.from_parts(tree, split, generalist, d.classes, progress=False)
    kind = "full" if row["system"].startswith("full") else "delta"
    specs = TailSpecialists(generalist, kind=kind, rank=rank).fit(d.A, d.y, net.groups_, epochs=spec_epochs,
                                                                   seed=seed, dev=(d.dA, d.dy))
    net = NetworkTwoStage.from_parts(tree, split, generalist, d.classes, specs, progress=False)
    a, b = row.get("mix") or (0.0, 0.0)
    if b:
        net.fit_memories(d.A, d.y)
    index = {c: i for i, c in enumerate(d.classes)}
    pred = net.predict(d.vA.astype(np.float32), routing=row["routing"], m=row["m"], mix=(a, b))
    return np.array([index[c] for c in pred])


def replicates(d: Data, split: Any, F: np.ndarray, flat: dict[str, Any], routed: dict[str, Any], *, rank: int,
               epochs: int, spec_epochs: int, seeds: Any, first: tuple[float, float],
               first_flat_pred: np.ndarray) -> dict[str, Any]:
    """The two headline systems with more training seeds: top-1 mean ± sd, and the routed − flat difference."""
    tops: dict[str, list[float]] = {"flat": [first[0]], "routed": [first[1]]}
    for s in list(seeds)[1:]:
        t = time.perf_counter()
        untrained = flat["system"].startswith("frozen kNN")  # nothing is trained: every seed answers alike
        fp = first_flat_pred if untrained else _flat_replicate(d, split, F, flat, s, epochs=epochs,
                                                               spec_epochs=spec_epochs)
        rp = _routed_replicate(d, split, F, routed, s, epochs=epochs, spec_epochs=spec_epochs, rank=rank)
        tops["flat"].append(round(float(np.mean(fp == d.vy)), 4))
        tops["routed"].append(round(float(np.mean(rp == d.vy)), 4))
        print(f"seed {s}: flat {tops['flat'][-1]}, routed {tops['routed'][-1]} ({time.perf_counter() - t:.0f} s)",
              flush=True)
    diff = np.array(tops["routed"]) - np.array(tops["flat"])
    return {"seeds": list(seeds), "flat": flat["system"], "routed": [routed["cut"], routed["system"]],
            "flat_top1": tops["flat"], "routed_top1": tops["routed"],
            "flat_mean_sd": [round(float(np.mean(tops["flat"])), 4), round(float(np.std(tops["flat"], ddof=1)), 4)],
            "routed_mean_sd": [round(float(np.mean(tops["routed"])), 4),
                               round(float(np.std(tops["routed"], ddof=1)), 4)],
            "difference_mean_sd": [round(float(diff.mean()), 4), round(float(diff.std(ddof=1)), 4)]}


def needed_parts(net: NetworkTwoStage, acts: np.ndarray, p_gen: np.ndarray, route: np.ndarray,
                 true_sup: np.ndarray, m: int = 3) -> list[dict[str, np.ndarray]]:
    """Each specialist's conditionals on the queries any scored row weighs it for, zero elsewhere.

    The rows route softly to at most ``m`` superclasses, or to the true one
    (oracle), so a specialist runs only on the queries that have it among
    their ``m`` best routes or as their true superclass.
    """
    top = np.argsort(-route, axis=1)[:, :m]
    out = []
    for s in range(net.n_superclasses):
        need = (top == s).any(1) | (true_sup == s)
        keys = ("generalist", "specialist") + (("memory",) if net.memories_ is not None else ())
        full = {key: np.zeros((len(acts), len(net.groups_[s]))) for key in keys}
        if need.any():
            for key, value in net.within_parts(s, acts[need], p_gen[need]).items():
                full[key][need] = value
        out.append(full)
    return out


def throughput(fn: Any, paths: list[Any]) -> float:
    t = time.perf_counter()
    fn(paths)
    return round(len(paths) / (time.perf_counter() - t), 1)


def run(quick: bool = False, *, size: int = 160, epochs: int = 4, spec_epochs: int = 2, rank: int = 16,
        seed: int = 0, full_copies: bool = True, n_timing: int = 512, per_class: int = 12,
        val_per_class: int = 4, seeds: int = 1, permute_val: int | None = None) -> dict[str, Any]:
    """Every row in one run; ``quick`` takes ``per_class`` train and ``val_per_class`` val images per class.

    ``seeds`` > 1 retrains the two headline systems (best routed, best flat)
    with that many training seeds; ``permute_val`` shuffles the val labels
    (a check that no choice depends on them).
    """
    t_start = time.perf_counter()
    d = Data(quick, seed, size=size, per_class=per_class, val_per_class=val_per_class, permute_val=permute_val)
    sc = Scorer(d)
    n_classes = len(d.classes)
    split = d.split
    trunk_params = sum(p.numel() for p in split.trunk.parameters())
    timing = d.val_paths[: min(n_timing if not quick else 64, len(d.val_paths))]
    if quick:
        epochs, spec_epochs = 1, 1
    wordnet_sup = np.array(d.tree.superclasses.index(d.classes))  # type: ignore[union-attr]

    # ---- frozen rows: the unmodified tail's features
    frozen = split.tail()
    F, dF, vF = (_normalise(tail_features(frozen, a)) for a in (d.A, d.dA, d.vA))
    mem = VisualMemory(F.shape[1], k=10, progress=False)
    mem.add(F, [d.classes[i] for i in d.y], source="train")
    index = {c: i for i, c in enumerate(d.classes)}
    knn = lambda X: np.array([index[c] for c in mem.predict(X)])  # noqa: E731

    def knn_images(paths: list[Any]) -> Any:
        return knn(_normalise(tail_features(frozen, run_trunk_on_images(split, paths))))

    sc.add("frozen kNN (k=10, softmax)", "flat", knn(vF), knn(dF), wordnet_sup,
           images_per_s=throughput(knn_images, timing), train_seconds=0.0)
    t = time.perf_counter()
    best = None
    for wd in (1e-4, 1e-3, 1e-2):
        head = fit_head(F, d.y, n_classes, weight_decay=wd, epochs=10 if not quick else 3, seed=seed)
        acc = float(np.mean(head_proba(head, dF).argmax(1) == d.dy))
        if best is None or acc > best[0]:
            best = (acc, wd, head)
    assert best is not None
    probe = best[2]
    probe_images = lambda p: head_proba(probe, _normalise(tail_features(frozen, run_trunk_on_images(split, p))))  # noqa: E731
    sc.add("frozen linear probe", "flat", head_proba(probe, vF).argmax(1), head_proba(probe, dF).argmax(1),
           wordnet_sup, images_per_s=throughput(probe_images, timing),
           train_seconds=round(time.perf_counter() - t, 1), weight_decay=best[1])

    # ---- the generalist (flat fine-tuned tail) and the same-budget flat tail
    generalist = split.tail(n_classes, seed=seed)
    hist = train_tail(generalist, d.A, d.y, epochs=epochs, seed=seed, dev=(d.dA, d.dy), keep_best=True)
    p_val, p_dev, p_cut = (_softmax(tail_logits(generalist, a)) for a in (d.vA, d.dA, d.cA))
    gen_images = lambda p: tail_logits(generalist, run_trunk_on_images(split, p)).argmax(1)  # noqa: E731
    sc.add(f"flat fine-tuned tail ({epochs} epochs)", "flat", p_val.argmax(1), p_dev.argmax(1), wordnet_sup,
           images_per_s=throughput(gen_images, timing), train_seconds=hist["seconds"],
           storage_tails=1.0, history=hist)
    budget = split.tail(n_classes, seed=seed)
    hist_b = train_tail(budget, d.A, d.y, epochs=epochs + spec_epochs, seed=seed, dev=(d.dA, d.dy), keep_best=True)
    flat_budget = sc.add(f"flat fine-tuned tail, same budget ({epochs + spec_epochs} epochs)", "flat",
                         tail_logits(budget, d.vA).argmax(1), tail_logits(budget, d.dA).argmax(1), wordnet_sup,
                         images_per_s=throughput(gen_images, timing), train_seconds=hist_b["seconds"],
                         storage_tails=1.0, history=hist_b)
    del budget

    # ---- the generalist with a memory of its own features (the cache model), mixed as routed systems are
    t = time.perf_counter()
    gF = _normalise(tail_features(generalist, d.A))
    gmem = VisualMemory(gF.shape[1], k=10, progress=False)
    gmem.add(gF, [d.classes[i] for i in d.y], source="train")
    order = [index[c] for c in gmem.classes_]

    def cache_p(acts: np.ndarray, p_gen: np.ndarray, b: float) -> np.ndarray:
        p = np.zeros_like(p_gen)
        p[:, order] = gmem.predict_proba(_normalise(tail_features(generalist, acts)))
        return (1 - b) * p_gen + b * p

    kv, kd = cache_p(d.vA, p_val, 1.0), cache_p(d.dA, p_dev, 1.0)
    b_best = max((0.25, 0.5, 0.75), key=lambda b: float(np.mean(((1 - b) * p_dev + b * kd).argmax(1) == d.dy)))

    def cache_images(paths: list[Any]) -> Any:
        acts = run_trunk_on_images(split, paths)
        return cache_p(acts, _softmax(tail_logits(generalist, acts)), b_best).argmax(1)

    sc.add(f"flat fine-tuned tail + memory of its features (cache model, mix {b_best:g})", "flat",
           ((1 - b_best) * p_val + b_best * kv).argmax(1), ((1 - b_best) * p_dev + b_best * kd).argmax(1),
           wordnet_sup, images_per_s=throughput(cache_images, timing),
           train_seconds=round(hist["seconds"] + time.perf_counter() - t, 1), storage_tails=1.0, mix=[0.0, b_best])
    del gF, kv

    # ---- cuts
    cuts = build_cuts(d, p_cut, F, seed)
    sups: dict[str, np.ndarray] = {}
    cut_info: dict[str, Any] = {}
    for cname, cut in cuts.items():
        assert cut is not None
        sup = sups[cname] = np.array(cut.index(d.classes))
        tree = d.tree.with_superclasses(cut)
        net = NetworkTwoStage.from_parts(tree, split, generalist, d.classes, progress=False)
        route_v, route_d = net.route_from(p_val), net.route_from(p_dev)
        groups = net.groups_
        router_acc = round(float(np.mean(route_v.argmax(1) == sup[d.vy])), 4)
        within_extra = {s: len(cut.overlap.get(s, ())) for s in cut.superclasses}
        cut_info[cname] = {"sizes": list(cut.sizes().values()), "router_accuracy": router_acc,
                           "overlap_classes": sum(within_extra.values()), "names": list(cut.names.values())}
        print(f"== {cname}: sizes {cut_info[cname]['sizes']}, router {router_acc}, overlap "
              f"{cut_info[cname]['overlap_classes']}", flush=True)

        def restricted(p: np.ndarray) -> list[np.ndarray]:
            return [net.within_parts(s, None, p)["generalist"] for s in range(net.n_superclasses)]

        gv, gd = restricted(p_val), restricted(p_dev)
        for routing, m in (("hard", 1), ("oracle", 1)):
            kw = {"routing": routing, "m": m}
            pv = net.combine(route_v, gv, superclass=sup[d.vy], **kw).argmax(1)
            pd = net.combine(route_d, gd, superclass=sup[d.dy], **kw).argmax(1)
            sc.add(f"generalist restricted to route, {routing}", cname, pv, pd if routing != "oracle" else None,
                   sup, router_accuracy=router_acc)
        kinds = [("delta", f"int8 delta specialists (rank {rank})")]
        if full_copies and cname in ("wordnet balanced:10", "induced:10"):
            kinds.append(("full", "full specialist copies"))
        for kind, label in kinds:
            specs = TailSpecialists(generalist, kind=kind, rank=rank).fit(
                d.A, d.y, groups, epochs=spec_epochs, seed=seed, dev=(d.dA, d.dy))
            storage = specs.storage(trunk_params)
            net = NetworkTwoStage.from_parts(tree, split, generalist, d.classes, specs, progress=False)
            with_mem = kind == "delta"
            if with_mem:
                t = time.perf_counter()
                net.fit_memories(d.A, d.y)
                mem_seconds = round(time.perf_counter() - t, 1)
            parts_v = needed_parts(net, d.vA, p_val, route_v, sup[d.vy])
            parts_d = needed_parts(net, d.dA, p_dev, route_d, sup[d.dy])

            def mixed(parts: list[dict[str, np.ndarray]], a: float, b: float) -> list[np.ndarray]:
                return [(1 - a - b) * p["specialist"] + a * p["generalist"] + (b * p["memory"] if b else 0)
                        for p in parts]

            common = {"router_accuracy": router_acc, "train_seconds": specs.fitted.seconds,
                      "storage_tails": storage["tails"], "storage": storage,
                      "best_epochs": specs.fitted.best_epoch}
            for routing, m in (("hard", 1), ("soft", 2), ("soft", 3), ("oracle", 1)):
                kw = {"routing": routing, "m": m}
                wv, wd = mixed(parts_v, 0, 0), mixed(parts_d, 0, 0)
                pv = net.combine(route_v, wv, superclass=sup[d.vy], **kw).argmax(1)
                pd = net.combine(route_d, wd, superclass=sup[d.dy], **kw).argmax(1)
                tag = routing if routing != "soft" else f"soft m={m}"
                sc.add(f"{label}, {tag}", cname, pv, pd if routing != "oracle" else None, sup,
                       mix=[0.0, 0.0], routing=routing, m=m, **common)
            if with_mem:  # mixing weights, tuned on dev at soft m=2
                for a, b in MIXES[1:]:
                    wv, wd = mixed(parts_v, a, b), mixed(parts_d, a, b)
                    pv = net.combine(route_v, wv, routing="soft", m=2).argmax(1)
                    pd = net.combine(route_d, wd, routing="soft", m=2).argmax(1)
                    sc.add(f"{label} + mix gen {a:g} / memory {b:g}, soft m=2", cname, pv, pd, sup,
                           mix=[a, b], routing="soft", m=2, tuning=True, **common)
            if with_mem:
                # the dev-best mix, at every routing
                mine = [r for r in sc.rows if r["cut"] == cname and r.get("routing") == "soft" and r["m"] == 2
                        and r["system"].startswith(label)]
                top = select(mine)
                a, b = top["mix"]
                wv = mixed(parts_v, a, b)
                wd = mixed(parts_d, a, b)
                rows_mix = {}
                for routing, m in (("hard", 1), ("soft", 2), ("soft", 3), ("oracle", 1)):
                    kw = {"routing": routing, "m": m}
                    pv = net.combine(route_v, wv, superclass=sup[d.vy], **kw).argmax(1)
                    pd = net.combine(route_d, wd, superclass=sup[d.dy], **kw).argmax(1)
                    tag = routing if routing != "soft" else f"soft m={m}"
                    rows_mix[tag] = sc.add(
                        f"{label} + memory, dev-best mix gen {a:g} / memory {b:g}, {tag}", cname, pv,
                        pd if routing != "oracle" else None, sup, mix=[a, b], routing=routing, m=m,
                        memory_seconds=mem_seconds, **common)
                rows_mix["soft m=2"]["images_per_s"] = throughput(
                    lambda p: net.predict(list(p), routing="soft", m=2, mix=(a, b)), timing)
            memories, net.memories_ = net.memories_, None
            plain = [r for r in sc.rows if r["cut"] == cname and r["system"] == f"{label}, soft m=2"][0]
            plain["images_per_s"] = throughput(lambda p: net.predict(list(p), routing="soft", m=2, mix=(0, 0)),
                                               timing)
            del memories, specs, parts_v, parts_d

    # ---- the best routed and the best flat system, each chosen on dev by the same rule
    routed = [r for r in sc.rows if r["cut"] != "flat" and r.get("routing") != "oracle"
              and "restricted" not in r["system"] and not r.get("tuning") and r["dev_top1"] is not None]
    best_routed = select(routed)
    flat_best = select([r for r in sc.rows if r["cut"] == "flat"])
    base = sc.right("flat", flat_best["system"])
    for r in routed:  # every routed row against the best flat system, paired on the same val images
        r["against_best_flat"] = paired_difference(base, sc.right(r["cut"], r["system"])).to_dict()
    r = flat_budget
    r["against_best_flat"] = paired_difference(base, sc.right("flat", r["system"])).to_dict()
    for cname, sup in sups.items():  # seed 004: how many errors cross superclasses, flat and routed, per cut
        mine = [x for x in routed if x["cut"] == cname]
        pick = select(mine)
        flat_pred = sc.val_pred[("flat", flat_best["system"])]
        wrong = flat_pred != d.vy
        cut_info[cname]["errors_across_superclasses"] = {
            "best flat": round(float(np.mean(sup[flat_pred[wrong]] != sup[d.vy[wrong]])), 4),
            "routed (dev-best of this cut)": pick["cross_superclass_errors"], "routed system": pick["system"]}
    oracle_gap = {c: round(max(r["top1"] for r in sc.rows if r["cut"] == c and r.get("routing") == "oracle")
                           - flat_budget["top1"], 4) for c in cuts}
    gap = paired_difference(base, sc.right(best_routed["cut"], best_routed["system"]))
    summary = {
        "selection": "dev (20 images per class) chooses epochs, mixes and the winners; a disjoint cut split "
                     "(10 per class) builds the confusion and induced cuts; ties go to the cheaper system",
        "best_routed": {k: best_routed[k] for k in ("system", "cut", "top1", "dev_top1", "router_accuracy")},
        "best_flat": {k: flat_best[k] for k in ("system", "top1", "dev_top1")},
        "routed_minus_same_budget_flat": round(best_routed["top1"] - flat_budget["top1"], 4),
        "routed_minus_best_flat": round(best_routed["top1"] - flat_best["top1"], 4),
        "routed_minus_best_flat_paired": gap.to_dict(),
        "oracle_minus_flat": oracle_gap,
        "targets": {
            "best routed >= 67.0%": best_routed["top1"] >= 0.67,
            "routed - same-budget flat >= 1.0 point": best_routed["top1"] - flat_budget["top1"] >= 0.01,
            "routed - best flat (chosen on dev, cache model included) >= 1.0 point":
                best_routed["top1"] - flat_best["top1"] >= 0.01,
            "routed better than best flat (paired 95% interval above 0)": gap.low > 0,
            "router >= 85% on a cut with oracle >= flat + 5 points": any(
                cut_info[c]["router_accuracy"] >= 0.85 and oracle_gap[c] >= 0.05 for c in cuts),
            "delta storage <= 0.2N+1 tails": all(
                r["storage"]["tails"] <= r["storage"]["published_bound_tails"] for r in sc.rows
                if r.get("storage", {}).get("kind") == "delta"),
        },
        "selected": {"probe_weight_decay": next(r["weight_decay"] for r in sc.rows if r["system"] ==
                                                "frozen linear probe"),
                     "generalist_best_epoch": hist["best_epoch"], "same_budget_best_epoch": hist_b["best_epoch"],
                     "mixes": {r["cut"]: r["mix"] for r in sc.rows if "dev-best mix" in r["system"]},
                     "specialist_best_epochs": {f"{r['cut']} / {r['system']}": r["best_epochs"] for r in sc.rows
                                                if r.get("best_epochs") is not None and r.get("routing") == "hard"
                                                and "memory" not in r["system"]},
                     "best_routed": [best_routed["cut"], best_routed["system"]],
                     "best_flat": flat_best["system"]},
    }
    if seeds > 1:
        summary["seeds"] = replicates(d, split, F, flat_best, best_routed, rank=rank, epochs=epochs,
                                      spec_epochs=spec_epochs, seeds=range(seed, seed + seeds),
                                      first=(flat_best["top1"], best_routed["top1"]),
                                      first_flat_pred=sc.val_pred[("flat", flat_best["system"])])
    total = round(time.perf_counter() - t_start, 1)
    summary["targets"]["whole benchmark <= 60 min"] = total <= 3600
    out = {
        "setup": {"backbone": d.fingerprint, "size": size, "split_at": split.at, "trunk_shape": list(split.trunk_shape),
                  "train": int(len(d.y)), "cut": int(len(d.cy)), "dev": int(len(d.dy)), "val": int(len(d.vy)),
                  "epochs": epochs,
                  "specialist_epochs": spec_epochs, "rank": rank, "precision": "bf16 autocast",
                  "trunk_params": int(trunk_params), "tail_params": int(generalist.n_params()),
                  "trunk_cache_seconds": d.trunk_seconds, "timing_images": len(timing)},
        "cuts": cut_info, "rows": sc.rows, "summary": summary, "total_seconds": total,
    }
    print("summary", summary, "total", total, "s", flush=True)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small subset, one epoch; results are not written")
    ap.add_argument("--size", type=int, default=160, help="input size in pixels (default 160)")
    ap.add_argument("--epochs", type=int, default=4, help="generalist epochs (default 4)")
    ap.add_argument("--specialist-epochs", type=int, default=2, help="specialist epochs (default 2)")
    ap.add_argument("--rank", type=int, default=16, help="rank of the low-rank deltas (default 16)")
    ap.add_argument("--no-full-copies", action="store_true", help="skip the full specialist copies")
    ap.add_argument("--seeds", type=int, default=3, help="training seeds for the two headline systems (default 3)")
    args = ap.parse_args(argv)
    out = run(args.quick, size=args.size, epochs=args.epochs, spec_epochs=args.specialist_epochs, rank=args.rank,
              full_copies=not args.no_full_copies, seeds=args.seeds)
    if not args.quick:
        print("wrote", write_result("specialists", out))
    return out


if __name__ == "__main__":
    main()
