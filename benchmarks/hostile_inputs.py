"""The hostile-input matrix: files and requests a hostile or careless user sends, each answered clearly.

    python benchmarks/hostile_inputs.py          # run every case, print a line each

Every case runs the real component (the ``supersub`` command line in
process, the Python API, or the web app over loopback) on a real miniature
model built from generated images, and checks what a user would see:

* a refusal exits with status 2 and an error line that names the problem and
  the fix, never ``supersub: internal error`` or a traceback;
* nothing is written, and no other model is read, changed or deleted (file
  bytes compared before and after);
* no input hangs (each case runs under a time limit);
* valid input that used to be misread (a byte-order mark, Unicode forms) is
  read as meant.

:func:`run_matrix` runs them all for ``benchmarks/reliability_bench.py``,
which records the counts in ``benchmarks/results/reliability.json``;
``tests/benchmarks/test_hostile_inputs.py`` runs each case as a test.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

#: goldfish, salamander, tabby: three classes that a balanced:2 cut splits.
WNIDS = ["n01443537", "n01629819", "n02123045"]
#: Seconds any one case may take before it counts as a hang.
CASE_SECONDS = 120


# ----------------------------------------------------------------- helpers
class Ran(NamedTuple):
    """What one command-line run returned and printed (unpacks as ``code, out, err``)."""

    returncode: int
    stdout: str
    stderr: str


def cli(*args: str | os.PathLike[str]) -> Ran:
    """Run ``supersub ARGS`` in this process; returns (status, stdout, stderr)."""
    from router import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
    return Ran(code, out.getvalue(), err.getvalue())


def snapshot(*paths: Path) -> dict[str, bytes]:
    """Every file below ``paths``, by path, with its bytes (``.lock`` files aside: a lock is no data)."""
    out = {}
    for base in paths:
        for p in sorted(base.rglob("*")) if base.is_dir() else [base]:
            if p.is_file() and not p.is_symlink() and p.name != ".lock":
                out[str(p)] = p.read_bytes()
    return out


def refused(args: list[Any], *expected: str, unchanged: tuple[Path, ...] = ()) -> str:
    """Run the command line and check it refuses with one clear line, leaving ``unchanged`` as it was."""
    before = snapshot(*unchanged)
    code, out, err = cli(*args)
    assert code == 2, f"exit {code}, expected 2: {err or out}"
    assert "internal error" not in err and "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("supersub") and "error:" in ln]
    assert lines, f"no 'supersub: error:' line: {err!r}"
    for word in expected:
        assert word in err, f"{word!r} not in {err!r}"
    assert snapshot(*unchanged) == before, "files changed"
    return err


def rewrite_manifest(model: Path, edit: Callable[[dict], None] | None = None, raw: bytes | None = None) -> Path:
    """Replace the live manifest (by ``edit`` or with ``raw``) and re-hash CURRENT, as an attacker could."""
    name = (model / "CURRENT").read_text().split()[0]
    snap = model / "snapshots" / name
    if raw is None:
        manifest = json.loads((snap / "manifest.json").read_text())
        if edit is not None:
            edit(manifest)
        raw = json.dumps(manifest).encode()
    (snap / "manifest.json").write_bytes(raw)
    (model / "CURRENT").write_text(f"{name}\n{hashlib.sha256(raw).hexdigest()}\n")
    return snap


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise TimeoutError if the block runs longer than ``seconds`` (main thread, POSIX)."""
    def hung(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer within {seconds} s: the input hangs")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class World:
    """Shared, real inputs made once: generated images, a tree, a built model and its evaluation."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._built = False

    def build(self) -> World:
        if self._built:
            return self
        from PIL import Image, ImageDraw

        rng = np.random.default_rng(0)
        for split, n in (("train", 4), ("val", 2)):
            for k, w in enumerate(WNIDS):
                folder = self.base / split / w
                folder.mkdir(parents=True)
                for i in range(n):
                    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
                    pixels[..., k] = 150 + int(rng.integers(0, 60))
                    pixels += rng.integers(0, 40, size=(64, 64, 3), dtype=np.uint8)
                    im = Image.fromarray(pixels)
                    x, y = (int(v) for v in rng.integers(5, 30, size=2))
                    ImageDraw.Draw(im).ellipse([(x, y), (x + 25, y + 25)], fill=(255, 255, 255))
                    im.save(folder / f"{w}_{i}.png")
        (self.base / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
        for args in (["tree", "build", "--wnids", self.base / "wnids.txt", "--cut", "balanced:2", "-q",
                      "-o", self.tree],
                     ["build", "--data", self.base / "train", "--tree", self.tree, "--size", "64", "--k", "3",
                      "--no-progress", "-o", self.model],
                     ["evaluate", "--model", self.model, "--data", self.base / "val", "--no-progress",
                      "-o", self.eval]):
            code, out, err = cli(*args)
            if code != 0:
                raise RuntimeError(f"supersub {args[0]} failed: {err}")
        self._built = True
        return self

    @property
    def tree(self) -> Path:
        return self.base / "tree.json"

    @property
    def model(self) -> Path:
        return self.base / "model"

    @property
    def eval(self) -> Path:
        return self.base / "eval"

    def image(self, i: int = 0) -> Path:
        return sorted((self.base / "val").rglob("*.png"))[i]

    def fresh(self, name: str) -> Path:
        """A new, empty folder for one case."""
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))

    def copy_model(self, into: Path, name: str = "model") -> Path:
        return Path(shutil.copytree(self.model, into / name))

    def head_model(self, into: Path) -> Path:
        """A memory-level model with a trained head router (it saves router.pt), fitted in Python."""
        from hierarchy import load_tree
        from router import TwoStageClassifier

        tree = load_tree(self.tree)
        rng = np.random.default_rng(1)
        X = rng.standard_normal((30, 16)).astype(np.float32)
        y = [WNIDS[i % 3] for i in range(30)]
        clf = TwoStageClassifier(tree, router="head", k=3, router_epochs=2).fit(X, y)
        clf.save(into / "head")
        return into / "head"


@dataclass(frozen=True)
class Case:
    """One hostile input: ``run(world)`` raises AssertionError unless it is answered as it should be."""

    name: str
    family: str
    run: Callable[[World], None]


CASES: list[Case] = []


def case(family: str) -> Callable[[Callable[[World], None]], Callable[[World], None]]:
    def add(fn: Callable[[World], None]) -> Callable[[World], None]:
        CASES.append(Case(fn.__name__, family, fn))
        return fn
    return add


# ------------------------------------------------------------ links, files
@case("links")
def linked_snapshots_never_touch_the_other_model(w: World) -> None:
    d = w.fresh("links")
    mine, other = w.copy_model(d, "mine"), w.copy_model(d, "other")
    shutil.rmtree(mine / "snapshots")
    (mine / "snapshots").symlink_to(other / "snapshots", target_is_directory=True)
    refused(["memory", "info", mine], "symbolic link", unchanged=(other,))
    refused(["predict", "--model", mine, w.image()], "symbolic link", unchanged=(other,))
    for _ in range(2):  # the second add used to delete the other model's live snapshot
        refused(["memory", "add", mine, w.image(), "--label", WNIDS[0]], "symbolic link", unchanged=(other,))
    code, out, err = cli("memory", "info", other)
    assert code == 0, err


@case("links")
def a_linked_current_file_is_refused(w: World) -> None:
    d = w.fresh("current")
    mine, other = w.copy_model(d, "mine"), w.copy_model(d, "other")
    (mine / "CURRENT").unlink()
    (mine / "CURRENT").symlink_to(other / "CURRENT")
    refused(["memory", "remove", mine, "--label", WNIDS[0]], "symbolic link", unchanged=(other,))


@case("links")
def a_file_planted_in_a_shard_is_refused(w: World) -> None:
    model = w.copy_model(w.fresh("planted"))
    shard_snap = next(p for p in (model / "snapshots").glob("*/shards/0/snapshots/*") if p.is_dir())
    (shard_snap / "router.pt").write_bytes(b"planted")
    refused(["memory", "info", model], "router.pt is not listed", unchanged=(model,))
    refused(["predict", "--model", model, w.image()], "router.pt is not listed", unchanged=(model,))


@case("links")
def a_link_inside_a_snapshot_is_refused(w: World) -> None:
    model = w.copy_model(w.fresh("innerlink"))
    snap = next(p for p in (model / "snapshots").iterdir())
    (snap / "tree.json").rename(snap / "tree.real")
    (snap / "tree.json").symlink_to(snap / "tree.real")
    refused(["memory", "info", model], "symbolic link", unchanged=(model,))


# ------------------------------------------------------------------- text
@case("text")
def a_csv_mapping_with_a_bom_and_a_header_is_read_as_meant(w: World) -> None:
    d = w.fresh("bom")
    (d / "bom.csv").write_bytes(b"\xef\xbb\xbfclass,superclass\ncat,animal\ndog,animal\ncar,thing\n")
    code, out, err = cli("tree", "build", "--mapping", d / "bom.csv", "--cut", "depth:1", "-q", "-o", d / "t.json")
    assert code == 0, err
    from hierarchy import load_tree

    assert list(load_tree(d / "t.json").classes) == ["cat", "dog", "car"]


@case("text")
def a_csv_mapping_with_a_bom_and_no_header_is_read_as_meant(w: World) -> None:
    d = w.fresh("bom2")
    (d / "bom.csv").write_bytes("\ufeffcat,animal\ndog,animal\ncar,thing\n".encode())
    assert cli("tree", "build", "--mapping", d / "bom.csv", "--cut", "depth:1", "-q", "-o", d / "t.json")[0] == 0
    from hierarchy import load_tree

    assert load_tree(d / "t.json").classes[0] == "cat"


@case("text")
def json_mapping_and_wnids_with_a_bom_are_accepted(w: World) -> None:
    d = w.fresh("bomjson")
    (d / "m.json").write_bytes("\ufeff".encode() + json.dumps({"animal": ["cat", "dog"], "thing": ["car"]}).encode())
    assert cli("tree", "build", "--mapping", d / "m.json", "--cut", "depth:1", "-q", "-o", d / "t.json")[0] == 0
    (d / "wnids.txt").write_bytes("\ufeff".encode() + "\n".join(WNIDS).encode())
    code, out, err = cli("tree", "build", "--wnids", d / "wnids.txt", "--cut", "balanced:2", "-q", "-o", d / "w.json")
    assert code == 0, err


@case("text")
def wnids_must_be_ascii_digits(w: World) -> None:
    d = w.fresh("digits")
    arabic = "n" + "01443537".translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    (d / "wnids.txt").write_text(f"n01443537\n{arabic}\nn02123045\n", encoding="utf-8")
    refused(["tree", "build", "--wnids", d / "wnids.txt", "--cut", "balanced:2", "-o", d / "t.json"],
            "8 ASCII digits")
    assert not (d / "t.json").exists()


@case("text")
def one_name_in_two_unicode_forms_is_one_name(w: World) -> None:
    d = w.fresh("nfc")
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    (d / "m.csv").write_text(f"{composed},drink\n{decomposed},drink\ntea,drink\nbun,food\n", encoding="utf-8")
    refused(["tree", "build", "--mapping", d / "m.csv", "--cut", "depth:1", "-o", d / "t.json"], "listed twice")
    from memory import VisualMemory

    mem = VisualMemory(k=1, progress=False)
    mem.add(np.eye(2, dtype=np.float32), [composed, decomposed])
    assert mem.classes_.tolist() == [composed]


@case("text")
def distance_voting_splits_an_exact_match_evenly(w: World) -> None:
    """A query equal to stored entries of two labels: an even split, the first class, whatever the scale."""
    from memory import VisualMemory

    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 8)).astype(np.float32)
    y = [f"c{i % 3}" for i in range(30)]
    mem = VisualMemory(k=5, voting="distance", progress=False)
    mem.add(np.vstack([X, X[:1]]), [*y, "c2"])
    for scale in rng.uniform(0.1, 10.0, 50):
        proba = mem.predict_proba(X[:1] * scale)[0]
        assert np.allclose(proba, [0.5, 0.0, 0.5]), proba
        assert mem.predict(X[:1] * scale)[0] == "c0"


# -------------------------------------------- clear errors, not internal ones
def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@case("internal errors")
def a_deeply_nested_tree_file(w: World) -> None:
    d = w.fresh("nested")
    (d / "t.json").write_bytes(_nested(200_000))
    refused(["tree", "show", d / "t.json"], "levels deep")


@case("internal errors")
def a_deeply_nested_model_manifest(w: World) -> None:
    model = w.copy_model(w.fresh("nestedman"))
    rewrite_manifest(model, raw=_nested(200_000))
    refused(["memory", "info", model], "levels deep", unchanged=(model,))


@case("internal errors")
def a_deeply_nested_metrics_file_for_compare(w: World) -> None:
    d = w.fresh("nestedmetrics")
    (d / "metrics.json").write_bytes(_nested(200_000))
    refused(["compare", d / "metrics.json", w.eval / "metrics.json"], "levels deep")


@case("internal errors")
def a_deeply_nested_metrics_file_for_report(w: World) -> None:
    d = w.fresh("nestedreport")
    shutil.copy(w.eval / "predictions.csv", d / "predictions.csv")
    (d / "metrics.json").write_bytes(_nested(200_000))
    refused(["report", "--predictions", d / "predictions.csv", "--model", w.model, "--system", "routed",
             "--baseline", "flat", "-o", d / "report"], "levels deep")


@case("internal errors")
def a_size_far_too_large(w: World) -> None:
    d = w.fresh("size")
    refused(["build", "--data", w.base / "train", "--tree", w.tree, "--size", "1000000", "-o", d / "m"],
            "from 16 to 1024")
    assert not (d / "m").exists()


@case("internal errors")
def a_predictions_field_over_the_csv_limit(w: World) -> None:
    d = w.fresh("field")
    (d / "p.csv").write_text("system,true,pred\nrouted," + "x" * 200_000 + ",y\n")
    refused(["report", "--predictions", d / "p.csv", "--tree", w.tree, "-o", d / "r"], "131,072 characters")


@case("internal errors")
def a_score_that_is_text(w: World) -> None:
    d = w.fresh("score")
    (d / "p.csv").write_text(f"system,true,pred,score\nrouted,{WNIDS[0]},{WNIDS[0]},abc\n")
    refused(["report", "--predictions", d / "p.csv", "--tree", w.tree, "-o", d / "r"], "score 'abc'")


@case("internal errors")
def a_score_that_is_nan(w: World) -> None:
    d = w.fresh("nan")
    (d / "p.csv").write_text(f"system,true,pred,score\nrouted,{WNIDS[0]},{WNIDS[0]},nan\n")
    refused(["report", "--predictions", d / "p.csv", "--tree", w.tree, "-o", d / "r"], "finite numbers")


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _payload_case(w: World, raw: bool) -> None:
    import pickle

    import torch

    d = w.fresh("pickle")
    model = w.head_model(d)
    marker = d / "payload-ran"
    snap = next(p for p in (model / "snapshots").iterdir())
    if raw:
        (snap / "router.pt").write_bytes(pickle.dumps(_Payload(str(marker))))
    else:
        torch.save({"state": _Payload(str(marker))}, snap / "router.pt")
    digest = hashlib.sha256((snap / "router.pt").read_bytes()).hexdigest()
    rewrite_manifest(model, lambda m: m["files"].__setitem__("router.pt", digest))
    err = refused(["memory", "info", model], "pickle payload", "nothing in it ran", unchanged=(model,))
    assert len(err.strip().splitlines()) == 1, err
    assert "weights_only" not in err and "Warning" not in err, err
    assert not marker.exists()


@case("internal errors")
def a_pickle_payload_in_a_torch_file(w: World) -> None:
    _payload_case(w, raw=False)


@case("internal errors")
def a_raw_pickle_payload(w: World) -> None:
    _payload_case(w, raw=True)


# ------------------------------------------------------------------ hangs
@case("hangs")
def a_fifo_among_the_training_images(w: World) -> None:
    d = w.fresh("fifo")
    data = Path(shutil.copytree(w.base / "train", d / "train"))
    os.mkfifo(data / WNIDS[0] / "x.jpg")
    with time_limit(CASE_SECONDS):
        refused(["build", "--data", data, "--tree", w.tree, "--size", "64", "--no-progress", "-o", d / "m"],
                "x.jpg is a FIFO")
    from memory import writer_lock

    with writer_lock(d / "m", wait=0):  # no lock left held
        pass


@case("hangs")
def predict_on_a_fifo_or_a_device(w: World) -> None:
    d = w.fresh("dev")
    os.mkfifo(d / "q.jpg")
    (d / "zero.jpg").symlink_to("/dev/zero")
    with time_limit(CASE_SECONDS):
        refused(["predict", "--model", w.model, d / "q.jpg"], "is a FIFO", unchanged=(w.model,))
        refused(["predict", "--model", w.model, d / "zero.jpg"], "is a character device", unchanged=(w.model,))
    err = refused(["predict", "--model", w.model, d / "none.jpg"], "does not exist")
    assert "FIFO" not in err


@case("hangs")
def a_fifo_given_as_a_tree_or_mapping(w: World) -> None:
    d = w.fresh("fifotree")
    os.mkfifo(d / "t.json")
    os.mkfifo(d / "m.csv")
    with time_limit(CASE_SECONDS):
        refused(["tree", "show", d / "t.json"], "is a FIFO")
        refused(["tree", "build", "--mapping", d / "m.csv", "-o", d / "o.json"], "is a FIFO")


# ---------------------------------------------------------------- web app
def _request(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    sent = {"Host": f"127.0.0.1:{port}", **headers}
    if method == "POST":
        sent.setdefault("Content-Length", str(len(body)))
    for k, v in sent.items():
        conn.putheader(k, v)
    conn.endheaders()
    if body:
        conn.send(body)
    res = conn.getresponse()
    out = res.status, res.read()
    conn.close()
    return out


@contextlib.contextmanager
def _served(w: World, hosts: list[str] | None = None) -> Iterator[tuple[int, str]]:
    from router.explore import ExploreServer, Explorer, Mistakes, create_app

    explorer = Explorer(w.copy_model(w.fresh("served")))
    app = create_app(explorer, mistakes=Mistakes(w.eval, explorer.clf.tree), allowed_hosts=hosts)
    with ExploreServer(app) as server:
        yield server.port, app.state.token


@case("web app")
def remote_mode_still_checks_the_host(w: World) -> None:
    from router.explore import allowed_hosts_for

    with _served(w, allowed_hosts_for("0.0.0.0", False, ["box.lan"])) as (port, token):
        status, body = _request(port, "GET", "/", {"Host": "evil.example"})
        assert status == 400 and token.encode() not in body, status
        assert _request(port, "GET", "/", {"Host": f"box.lan:{port}"})[0] == 200
    code, out, err = cli("explore", "--model", w.model, "--host", "0.0.0.0", "--allow-remote")
    assert code == 2 and "--allowed-host" in err, err


@case("web app")
def a_cross_site_write_is_refused_with_the_token(w: World) -> None:
    with _served(w) as (port, token):
        body = json.dumps({"action": "unlearn_class", "class": WNIDS[0]}).encode()
        for extra in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            status, reply = _request(port, "POST", "/api/edit", {
                "Content-Type": "application/json", "X-Supersub-Token": token, **extra}, body)
            assert status == 403 and b"refused" in reply, (status, reply)


@case("web app")
def compute_endpoints_need_the_token(w: World) -> None:
    with _served(w) as (port, token):
        status, _ = _request(port, "GET", f"/api/mistakes/examples?true={WNIDS[0]}&pred={WNIDS[1]}", {})
        assert status == 403
        status, _ = _request(port, "GET", f"/api/mistakes/examples?true={WNIDS[0]}&pred={WNIDS[1]}",
                             {"X-Supersub-Token": token})
        assert status == 200


@case("web app")
def a_deeply_nested_request_body(w: World) -> None:
    with _served(w) as (port, token):
        status, reply = _request(port, "POST", "/api/predict", {
            "Content-Type": "application/json", "X-Supersub-Token": token}, b"[" * 100_000 + b"]" * 100_000)
        assert status == 400 and b"levels deep" in reply, (status, reply[:200])


# ------------------------------------------------------- sizes and values
@case("sizes and values")
def a_tree_file_over_the_size_limit(w: World) -> None:
    from hierarchy import TreeFormatError, load_tree

    d = w.fresh("big")
    with open(d / "t.json", "wb") as fh:
        fh.truncate(200 << 20)  # sparse: 200 MB of zero bytes, cheap to make
    with time_limit(CASE_SECONDS):
        refused(["tree", "show", d / "t.json"], "over the limit")
    try:
        load_tree(d / "t.json")
    except TreeFormatError as exc:
        assert "over the limit" in str(exc)
    else:
        raise AssertionError("a 200 MB tree file was accepted")


@case("sizes and values")
def a_tree_files_root_field_is_checked(w: World) -> None:
    d = w.fresh("root")
    data = json.loads(w.tree.read_text())
    data["root"] = WNIDS[0]
    (d / "t.json").write_text(json.dumps(data))
    refused(["tree", "show", d / "t.json"], "'root' field")


# ------------------------------------------------------------------- slow
@case("slow")
def a_balanced_cut_of_a_deep_comb(w: World) -> None:
    """10,000 classes, each under its own chain node: the deepest tree shape there is."""
    from hierarchy import ClassTree, cut_balanced

    parents = {}
    for i in range(10_000):
        parents[f"c{i}"] = f"k{i}"
        if i:
            parents[f"k{i}"] = f"k{i - 1}"
    tree = ClassTree.from_parents(parents)
    start = time.process_time()
    cut = cut_balanced(tree, 10)
    seconds = time.process_time() - start
    assert seconds <= 2.0, f"balanced:10 took {seconds:.2f} s of CPU"
    assert sum(cut.sizes().values()) == 10_000 and len(cut) == 10


# --------------------------------------------------------------- messages
@case("messages")
def an_adjective_synset_gets_an_article_that_fits(w: World) -> None:
    from hierarchy import UnknownClassError, synset_from_wnid

    try:
        synset_from_wnid("a00001740", noun=True)
    except UnknownClassError as exc:
        assert "is an adjective synset" in str(exc), exc
    else:
        raise AssertionError("an adjective wnid was accepted as a class")


@case("messages")
def a_class_named_root(w: World) -> None:
    d = w.fresh("rootname")
    (d / "m.csv").write_text("root,plants\noak,plants\ncat,animals\n")
    code, out, err = cli("tree", "build", "--mapping", d / "m.csv", "--cut", "depth:1", "-q", "-o", d / "t.json")
    assert code == 0 and "root=" not in err, err
    from hierarchy import load_tree

    tree = load_tree(d / "t.json")
    assert list(tree.classes) == ["root", "oak", "cat"] and tree.root == "root-1"


@case("messages")
def equally_deep_synsets_name_their_reason(w: World) -> None:
    from hierarchy import ClassTree, HierarchyError, cut_from_synsets, load_wordnet

    wn = load_wordnet()
    tree = ClassTree.from_wnids((ROOT / "data" / "imagenet-1k" / "wnids.txt").read_text().split(), wordnet=wn)
    try:
        cut_from_synsets(tree, ["keyboard_instrument.n.01", "stringed_instrument.n.01"], remainder="other",
                         wordnet=wn)
    except HierarchyError as exc:
        assert "runs through none of them" in str(exc) and "grand piano" in str(exc), exc
    else:
        raise AssertionError("a tie between equally deep synsets was decided silently")


# ------------------------------------------------------------------ runner
def run_case(c: Case, world: World) -> dict[str, Any]:
    """Run one case; a row with whether it passed and, if not, why."""
    start = time.perf_counter()
    try:
        with time_limit(CASE_SECONDS + 30):
            c.run(world)
        ok, why = True, ""
    except Exception as exc:  # a failed check or an unexpected error: both count as failures
        ok, why = False, f"{type(exc).__name__}: {exc}"[:500]
    return {"case": c.name, "family": c.family, "passed": ok, "why": why,
            "seconds": round(time.perf_counter() - start, 2)}


def run_matrix() -> dict[str, Any]:
    """Every case on one miniature world; the counts that ``reliability.json`` records."""
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("SUPERSUB_CACHE")
        os.environ["SUPERSUB_CACHE"] = str(Path(tmp) / "cache")
        try:
            world = World(Path(tmp) / "world").build()
            rows = []
            for c in CASES:
                row = run_case(c, world)
                print(f"{'ok  ' if row['passed'] else 'FAIL'} {c.family:<17} {c.name}  {row['why']}", flush=True)
                rows.append(row)
        finally:
            if old is None:
                os.environ.pop("SUPERSUB_CACHE", None)
            else:
                os.environ["SUPERSUB_CACHE"] = old
    families: dict[str, int] = {}
    for r in rows:
        families[r["family"]] = families.get(r["family"], 0) + 1
    failed = [r["case"] for r in rows if not r["passed"]]
    return {"cases": len(rows), "passed": len(rows) - len(failed), "failed": len(failed),
            "failures": failed, "families": families, "rows": rows}


def main() -> None:
    summary = run_matrix()
    print(f"{summary['cases']} cases, {summary['passed']} passed, {summary['failed']} failed")
    sys.exit(1 if summary["failed"] else 0)


if __name__ == "__main__":
    main()
