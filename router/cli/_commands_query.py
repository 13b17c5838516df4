"""The ``supersub`` subcommands that use a built model: predict, evaluate, compare and report.

Like :mod:`._commands`, each takes the parsed arguments, calls the packages,
prints, and returns the exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._commands import load_dataset, load_model, readable
from .._errors import CLIError

__all__ = ["calibrate", "compare", "evaluate", "explore", "predict", "report"]


# --------------------------------------------------------------- predict
def predict(args: argparse.Namespace) -> int:
    from memory import IMAGE_SUFFIXES, ImageError, open_image

    from ..pipeline import QueryEncoder, typical_similarity

    clf = load_model(args.model)
    paths: list[str] = []
    for given in args.images:
        if Path(given).is_dir():
            found = sorted(str(f) for f in Path(given).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                print(f"supersub: warning: folder {given} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})",
                      file=sys.stderr)
            paths += found
        else:
            paths.append(given)
    images, titles = [], []
    for path in paths:  # one unreadable file is reported; the others are still classified
        try:
            images.append(open_image(path))
            titles.append(path)
        except (ImageError, OSError) as exc:
            print(f"supersub: skipped {path}: {exc}", file=sys.stderr)
    if not images:
        raise CLIError(f"no readable image among the {len(paths)} given; nothing to classify")
    hedged = None
    if args.accuracy is not None:
        clf.check_calibration(strict=args.strict)  # type: ignore[attr-defined]
    X = QueryEncoder(clf, progress=False).images(images)
    if args.accuracy is not None:
        hedged = clf.predict_hedged(X, accuracy=args.accuracy, rule=args.rule, delta=args.delta,  # type: ignore[attr-defined]
                                    routing=args.routing, m=args.m)
    _print_explanations(clf, X, titles, top=args.top, neighbours=args.neighbours, routing=args.routing,
                        m=args.m, typical=typical_similarity(clf), hedged=hedged)
    if len(images) < len(paths):
        print(f"supersub: classified {len(images)} of {len(paths)} images; {len(paths) - len(images)} "
              "could not be read (see above)", file=sys.stderr)
    return 0


def _print_explanations(clf: object, X: object, titles: list[str], *, top: int, neighbours: int,
                        routing: str | None, m: int | None, typical: float | None = None,
                        hedged: object = None) -> None:
    tree = clf.tree  # type: ignore[attr-defined]

    def shown(cls: str) -> str:  # a wnid with its label; a mapping-file class is its own label
        label = tree.label(cls)
        return cls if label == cls else f"{cls}  {label}"

    explanations = clf.explain(X, top=top, routing=routing, m=m)  # type: ignore[attr-defined]
    for q, (path, e) in enumerate(zip(titles, explanations)):
        print(f"{path}")
        if hedged is not None:
            h = hedged  # type: Any
            node = h.nodes[q]
            what = "it does not know" if node == tree.root else f"it is {'' if h.is_class[q] else 'some '}" \
                f"{tree.label(node)} [{node}]"
            print(f"  at {h.accuracy:.0%} accuracy: {what} (probability {h.mass[q]:.2f}); path "
                  + " > ".join(f"{tree.label(n)} {m:.2f}" for n, m in h.paths[q]))
        if typical is not None and e.neighbours and e.neighbours[0].similarity < typical:
            print(f"  warning: unlike the memory: its nearest entry has similarity {e.neighbours[0].similarity:.2f}, "
                  f"below {typical:.2f}, which 95% of the memory's entries reach with their nearest neighbour; "
                  "the prediction is a guess")
        route = list(e.route.items())[:3]
        print("  route: " + ", ".join(f"{n} {p:.2f}" for n, p in route))
        for cls, p in e.probabilities.items():
            print(f"  {p:6.3f}  {shown(cls)}")
        for nb in e.neighbours[:neighbours]:
            print(f"    neighbour {nb.id:>7}  sim {nb.similarity:.3f}  weight {nb.weight:.3g}  "
                  f"{shown(nb.label)}  [{nb.source}] {nb.ref or ''}")


def _labelled(args: argparse.Namespace, clf: object, *, refuse_unknown: bool) -> tuple[object, object]:
    """The labelled images ``args`` name, embedded for ``clf``: (embedding set, dataset).

    Folder names become the model's classes where they name one.  Images of
    classes the model lacks are left out with a note, or refused
    (``refuse_unknown``, for a calibration).
    """
    import dataclasses

    from memory import ImageError

    from ..pipeline import QueryEncoder, class_of

    enc = QueryEncoder(clf, progress=not args.no_progress)
    ds = load_dataset(args.data, args.split, args.mapping)
    tree = clf.tree  # type: ignore[attr-defined]
    ds = dataclasses.replace(ds, classes=[class_of(tree, c) for c in ds.classes])  # type: ignore[type-var]
    held = {str(c) for c in clf.classes_}  # type: ignore[attr-defined]
    known = [c for c in ds.classes if c in held]  # type: ignore[attr-defined]
    missing = [i for i, c in enumerate(ds.classes) if c not in held]  # type: ignore[attr-defined]
    if not known:
        raise CLIError(f"none of the {len(ds.classes)} classes of the data is in the model; use data "  # type: ignore[attr-defined]
                       "of the model's classes (see 'supersub memory info')")
    if missing:
        import numpy as np

        dropped = int(np.isin(ds.targets, missing).sum())  # type: ignore[attr-defined]
        names = ", ".join(ds.classes[i] for i in missing[:5]) + (" ..." if len(missing) > 5 else "")  # type: ignore[attr-defined]
        if refuse_unknown:
            raise CLIError(f"the calibration set has {len(missing)} classes the model lacks ({names}); calibrate "
                           "on images of the model's own classes, or pass --mapping to name the folders")
        print(f"supersub: note: {len(missing)} of {len(ds.classes)} classes of the data ({dropped} of {len(ds)} "  # type: ignore[attr-defined, arg-type]
              f"images) are not in the model and are left out: {names}", file=sys.stderr)
    skip = getattr(args, "skip_per_class", 0)
    ds = readable(ds.subset(None if args.full else args.per_class, classes=known, skip=skip),  # type: ignore[attr-defined]
                  args.skip_unreadable)
    try:
        return enc.dataset(ds), ds  # type: ignore[arg-type]
    except ImageError as exc:
        raise CLIError(f"{exc}; pass --skip-unreadable to leave such images out") from None


def calibrate(args: argparse.Namespace) -> int:
    """Calibrate on labelled images, then store the calibration in the model under its writer lock."""
    from .._calibration import calibrate as fit
    from ..pipeline import edit_classifier

    clf = load_model(args.model)
    es, _ = _labelled(args, clf, refuse_unknown=True)
    cal = fit(clf, es.X, es.labels)  # type: ignore[attr-defined]
    with edit_classifier(args.model, wait=args.wait) as current:
        if current.n_entries != cal.entries or [str(c) for c in current.class_ids_] != list(cal.classes):
            raise CLIError(f"{args.model} was edited while it was being calibrated; run 'supersub calibrate' again")
        current.calibration_ = cal
    print(f"calibrated {args.model} on {cal.n} images: top-1 {cal.top1:.3f}, temperature {cal.temperature:.3f}, "
          f"expected calibration error {cal.ece_before:.3f} -> {cal.ece_after:.3f}")
    for alpha in (0.8, 0.9, 0.95, 0.99):
        try:
            cal.parameter(alpha)
            print(f"  accuracy {alpha:.0%}: can be promised (with confidence 90%)")
        except Exception as exc:  # noqa: BLE001 - reported, not raised: other levels still work
            print(f"  accuracy {alpha:.0%}: {exc}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from ..pipeline import evaluate_with_flat, evaluation_outputs, flat_from, write_evaluation

    clf = load_model(args.model)
    if args.accuracy is not None:
        clf.check_calibration(strict=args.strict)  # type: ignore[attr-defined]  # before minutes of embedding
    es, ds = _labelled(args, clf, refuse_unknown=False)
    flat = flat_from(clf)  # built once: kNN over every shard's entries, or the generalist
    # each model runs once over the queries; every figure and file below reads these
    outs = evaluation_outputs(clf, es.X, es.labels, flat, routing=args.routing, m=args.m)  # type: ignore[attr-defined]
    result = evaluate_with_flat(clf, es.X, es.labels, flat, routing=args.routing, m=args.m,  # type: ignore[attr-defined]
                                fingerprint=es.fingerprint, decision=args.decision, outputs=outs)  # type: ignore[attr-defined]
    if args.accuracy is not None:
        from .._hedging import hedged_curve, hedged_metrics

        answers = clf.hedged_from_proba(outs.proba, accuracy=args.accuracy, rule=args.rule,  # type: ignore[attr-defined]
                                        delta=args.delta, strict=args.strict)
        result["hedged"] = hedged_metrics(answers, clf.tree, es.labels)  # type: ignore[attr-defined]
        result["hedged_curve"] = hedged_curve(clf, es.X, es.labels, rule=args.rule, delta=args.delta,  # type: ignore[attr-defined]
                                              proba=outs.proba)
    routed = result["routed"]
    print(f"{len(es)} queries from {es.dataset}/{es.split}")
    flat_name = "flat tail (the generalist)" if getattr(clf, "takes_images", False) else "flat kNN (same memory)"
    systems = ((flat_name, result["flat_baseline"]), (f"routed ({clf!r})", routed))
    width = max(len(name) for name, _ in systems) + 2  # names are never cut off
    print(f"  {'system':<{width}}{'top-1':>8}{'superclass':>12}{'errors across/within':>24}")
    for name, r in systems:
        print(f"  {name:<{width}}{r['top1']:8.3f}{r['predicted_superclass_accuracy']:12.3f}"
              f"{r['errors_across_superclasses']:>12d}/{r['errors_within_superclass']:<11d}")
    if "routed_minus_flat" in result:
        d = result["routed_minus_flat"]
        lo, hi = d["interval_95"]
        print(f"  routed − flat top-1: {100 * d['difference']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] "
              f"(paired 95%, McNemar p = {d['p_value']:.3g}): "
              f"{'a tie' if d['verdict'] == 'tie' else 'routed better' if d['difference'] > 0 else 'flat better'}")
    print(f"  router superclass accuracy {routed['superclass_accuracy']:.3f}; specialist accuracy "
          f"given the right route {routed['specialist_accuracy']:.3f}; oracle route {routed['oracle_top1']:.3f}")
    print(f"  decision {routed['decision']}: mistakes' mean LCA height {routed['mistake_severity']:.2f}")
    if "hedged" in result:
        h = result["hedged"]
        print(f"  answers along the tree, promised {h['accuracy']:.0%} ({h['rule']}): achieved {h['achieved']:.1%}; "
              f"{h['class_level']:.1%} at class level, {h['root']:.1%} at the root; mean information gain "
              f"{h['mean_gain']:.2f}, mean depth {h['mean_depth']:.1f}")
    if "hedged" in result and "argmax" in routed:  # one line: what the tree buys
        h, a, d = result["hedged"], routed["argmax"], routed["minus_argmax"]
        gain = a["mistake_severity"] - routed["mistake_severity"]
        print(f"what the tree buys: at {h['accuracy']:.0%} accuracy, {h['class_level']:.0%} answered at class level "
              f"and the rest higher in the tree; {routed['decision']}: mistakes {abs(gain):.2f} levels "
              f"{'less' if gain >= 0 else 'more'} severe than argmax, at {100 * d['difference']:+.1f} points of "
              f"top-1 [{100 * d['interval_95'][0]:+.1f}, {100 * d['interval_95'][1]:+.1f}]")
    if args.explain:
        _print_explanations(clf, es.X[: args.explain], [f"{es.refs[i]} (true {es.labels[i]} "
                            f"{clf.tree.label(es.labels[i])})" for i in range(args.explain)],  # type: ignore[attr-defined]
                            top=3, neighbours=3, routing=args.routing, m=args.m)
    if args.output:
        if args.skip_unreadable:
            result = {**result, "skipped_unreadable": int(ds.info.get("skipped_unreadable", 0))}  # type: ignore[attr-defined]
        metrics, predictions = write_evaluation(args.output, clf, es.X, es.labels, es.refs, result, flat,  # type: ignore[attr-defined]
                                                routing=args.routing, m=args.m, data_root=ds.root, outputs=outs)  # type: ignore[attr-defined]
        print(f"wrote {metrics} and {predictions}")
    return 0


def compare(args: argparse.Namespace) -> int:
    """Best flat against best routed system over several ``evaluate`` outputs."""
    from hierarchy import read_json

    rows = []
    for path in args.metrics:
        try:
            data = read_json(path, what="metrics file", error=CLIError)
            flat, routed = data.get("flat_baseline") or data["flat_knn"], data["routed"]  # flat_knn: older files
            rows.append(("flat", data.get("flat") or "flat kNN (same memory)", flat["top1"], path))
            rows.append(("routed", data.get("model") or "routed", routed["top1"], path))
        except (OSError, ValueError, KeyError, TypeError, CLIError) as exc:
            raise CLIError(f"{path} is not a metrics.json written by supersub evaluate ({exc})") from None
    print(f"  {'kind':<8}{'top-1':>7}  system  [metrics]")
    for kind, name, top1, path in sorted(rows, key=lambda r: -r[2]):
        print(f"  {kind:<8}{top1:7.3f}  {name}  [{path}]")
    best = {k: max((r for r in rows if r[0] == k), key=lambda r: r[2]) for k in ("flat", "routed")}
    gap = round(100 * (best["routed"][2] - best["flat"][2]), 1) + 0.0  # no "-0.0"
    print(f"best routed {100 * best['routed'][2]:.1f}% ({best['routed'][1]}) against best flat "
          f"{100 * best['flat'][2]:.1f}% ({best['flat'][1]}): {gap:+.1f} points")
    flat_right = _right_by_ref(best["flat"][3], "flat")
    routed_right = _right_by_ref(best["routed"][3], "routed")
    if flat_right and routed_right and flat_right.keys() == routed_right.keys():
        from .._stats import paired_difference

        refs = sorted(flat_right)
        d = paired_difference([flat_right[r] for r in refs], [routed_right[r] for r in refs])
        print(f"  paired over the same {d.n:,} queries: {100 * d.difference:+.1f} points "
              f"[{100 * d.low:+.1f}, {100 * d.high:+.1f}] (95%), McNemar p = {d.p_value:.3g}: "
              f"{'a tie' if d.tie else 'routed better' if d.difference > 0 else 'flat better'}")
    else:
        print("  no paired interval: the two were not evaluated on the same queries (predictions.csv beside "
              "each metrics.json)")
    return 0


def _right_by_ref(metrics: str, system: str) -> dict[str, bool] | None:
    """Per query (by image reference), whether ``system`` was right, from the predictions.csv beside ``metrics``."""
    import csv

    path = Path(metrics).with_name("predictions.csv")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("system") == system]
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    out = {r["ref"]: r["true"] == r["pred"] for r in rows if r.get("ref") is not None}
    return out if out and len(out) == len(rows) else None


# ---------------------------------------------------------------- report
def _gallery(args: argparse.Namespace, clf: object, p: object, n: int) -> list:
    """Confident mistakes of ``p`` with the neighbours that outvoted the truth.

    Query images are read from ``--data`` if given, else from the folder the
    evaluation recorded beside the predictions; neighbour images always from
    the model's training data.
    """
    from hierarchy import read_json

    from ..report import mistake_gallery, training_root

    if args.data is not None:
        queries = Path(load_dataset(args.data, "val", args.mapping).root)  # type: ignore[attr-defined]
    else:
        metrics = Path(args.predictions).parent / "metrics.json"
        data = read_json(metrics, what="metrics file", error=CLIError) if metrics.is_file() else {}
        recorded = data.get("data_root") if isinstance(data, dict) else None
        if not isinstance(recorded, str):
            raise CLIError(f"{args.predictions} does not say where its images are; give --data (and --mapping)")
        queries = Path(recorded)
    trained = training_root(clf)
    return mistake_gallery(clf, p, queries, n, memory_root=Path(trained) if trained else None)  # type: ignore[arg-type]


def report(args: argparse.Namespace) -> int:
    import hierarchy as h

    from ..report import load_predictions
    from ..report import write_report

    systems = load_predictions(args.predictions)
    clf = load_model(args.model) if args.model else None
    if args.tree:
        tree = h.load_tree(args.tree)
    elif clf is not None:
        tree = clf.tree  # type: ignore[attr-defined]
    else:
        raise CLIError("give --tree (or --model, whose tree is used)")
    main_name = args.system or [n for n in systems if n != "oracle"][-1]
    if main_name not in systems:
        raise CLIError(f"no system {main_name!r} in {args.predictions}; present: {', '.join(systems)}")
    gallery = _gallery(args, clf, systems[main_name], args.gallery) if clf is not None and args.gallery else []
    hedging = None
    beside = Path(args.predictions).parent / "metrics.json"  # a calibrated evaluation's curve, if any
    if beside.is_file():
        from hierarchy import read_json

        try:
            hedging = read_json(beside, what="metrics file", error=CLIError).get("hedged_curve")
        except (CLIError, AttributeError):
            hedging = None
    paths = write_report(systems, tree, args.output, main=main_name, baseline=args.baseline,
                         oracle="oracle" if "oracle" in systems else None, gallery=gallery, hedging=hedging)
    print(Path(paths["markdown"]).read_text())
    print(f"wrote {paths['html']} and {paths['markdown']}")
    return 0


# --------------------------------------------------------------- explore
def explore(args: argparse.Namespace) -> int:
    """Serve the local web app until interrupted."""
    import importlib.util

    missing = [m for m in ("starlette", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise CLIError(f"supersub explore needs the 'explore' extra ({', '.join(missing)} missing): "
                       "pip install 'supersub[explore]'")
    from ..explore import ExploreServer, Explorer, Mistakes, allowed_hosts_for, check_host, create_app

    loopback = check_host(args.host, args.allow_remote)
    hosts = allowed_hosts_for(args.host, loopback, args.allowed_host)
    if not loopback:
        print(f"supersub: warning: serving on {args.host}, which is not loopback: anyone who can reach it and "
              "holds the page's token can edit the model", file=sys.stderr)
    explorer = Explorer(args.model, neighbours=args.neighbours, accuracy=args.accuracy)
    data = load_dataset(args.data, "val", args.mapping) if args.data else None
    mistakes = Mistakes(args.eval, explorer.clf.tree) if args.eval else None
    server = ExploreServer(create_app(explorer, data=data, mistakes=mistakes, allowed_hosts=hosts),
                           args.host, args.port)
    server.start()
    print(f"supersub explore: serving {args.model} on {server.url}/ (Ctrl-C stops it)", flush=True)
    try:
        server.thread.join()
    finally:
        server.stop()
    return 0
