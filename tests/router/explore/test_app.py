"""The explorer's web app, served by uvicorn and driven by the system Chromium."""

import http.client
import json
import shutil
import struct
import zlib

import numpy as np
import pytest

from memory import Steer, open_image
from router import QueryEncoder, TwoStageClassifier
from router.cli import main
from router.explore import MAX_UPLOAD_BYTES, ExploreServer, Explorer, Mistakes, allowed_hosts_for, create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")


def _serve(model, explore_model, *, with_eval=True):
    explorer = Explorer(model)
    mistakes = Mistakes(explore_model["eval"], explorer.clf.tree) if with_eval else None
    app = create_app(explorer, data=explore_model["val"], mistakes=mistakes, allowed_hosts=["127.0.0.1"])
    return ExploreServer(app).start(), app.state.token


@pytest.fixture(scope="module")
def served(explore_model, tmp_path_factory):
    """The app over a private copy of the model (the tests here that edit use their own copy)."""
    model = shutil.copytree(explore_model["model"], tmp_path_factory.mktemp("served") / "model")
    server, token = _serve(model, explore_model)
    yield server, token, model
    server.stop()


def _raw(server, method, path, body=b"", headers=None):
    """One request with the path sent exactly as given (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    sent = {"Host": f"127.0.0.1:{server.port}", **(headers or {})}
    if method == "POST" and "Content-Length" not in sent:
        sent["Content-Length"] = str(len(body))
    for k, v in sent.items():
        conn.putheader(k, v)
    conn.endheaders()
    if body:
        conn.send(body)
    res = conn.getresponse()
    out = (res.status, res.read(), {k.lower(): v for k, v in res.getheaders()})
    conn.close()
    return out


@pytest.fixture
def page(browser):
    """A page that records console errors; the test asserts there are none."""
    p = browser.new_page(viewport={"width": 1280, "height": 900})
    p.errors = []
    p.on("console", lambda m: p.errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    p.on("dialog", lambda d: d.accept())
    yield p
    p.close()


def _decoded(page, selector):
    return page.evaluate(
        "sel => Promise.all(Array.from(document.querySelectorAll(sel)).map("
        "img => img.decode().then(() => img.naturalWidth > 0, () => false)))", selector)


def _shot(page, tmp_path, name):
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


@needs_chromium
def test_query_by_upload_shows_route_and_neighbours(served, page, explore_model, tmp_path):
    server, _, model = served
    clf = TwoStageClassifier.load(model)
    path = explore_model["val"].paths[-1]  # a val image of the last class
    page.goto(server.url + "/")
    page.set_input_files("#upload", str(path))
    page.wait_for_selector("#neighbours figure")
    assert page.locator("#route .bar").count() == len(clf.superclasses_)
    assert page.locator("#neighbours figure").count() == clf.k
    decoded = _decoded(page, "#neighbours img")
    assert len(decoded) == clf.k and all(decoded)
    assert all(_decoded(page, "#query-image"))
    X = QueryEncoder(clf, progress=False).images([open_image(path)])
    want = str(clf.predict(X)[0])
    assert page.locator("#prediction").inner_text().endswith(f"({want})")
    routes = clf.route_proba(X)[0]
    shown = page.locator("#route .bar .p").first.inner_text()
    assert shown == f"{100 * routes.max():.1f}%"
    _shot(page, tmp_path, "query")
    assert page.errors == []


@needs_chromium
def test_excluding_the_top_neighbours_source_is_the_apis_steering(served, page, explore_model, tmp_path):
    server, _, model = served
    clf = TwoStageClassifier.load(model)
    path = explore_model["val"].root / explore_model["a_refs"][0]
    page.goto(server.url + "/")
    page.set_input_files("#upload", str(path))
    page.wait_for_selector("#neighbours figure")
    top = page.locator("#neighbours figure").first
    source = top.get_attribute("data-source")
    X = QueryEncoder(clf, progress=False).images([open_image(path)])
    before = str(clf.predict(X)[0])
    after = str(clf.predict(X, steer=Steer(exclude_sources=(source,)))[0])
    assert before != after  # the case is one where steering matters
    assert page.locator("#prediction").inner_text().endswith(f"({before})")
    top.locator("button.ex-source").click()
    page.wait_for_selector("#diff-line")
    assert page.locator("#prediction").inner_text().endswith(f"({after})")
    assert "changed the prediction" in page.locator("#diff-line").inner_text()
    sources = [f.get_attribute("data-source") for f in page.locator("#neighbours figure").all()]
    assert source not in sources
    page.locator("#steer-reset").click()
    page.locator("#diff").wait_for(state="hidden")
    assert page.locator("#prediction").inner_text().endswith(f"({before})")
    _shot(page, tmp_path, "steer")
    assert page.errors == []


@needs_chromium
def test_unlearning_a_class_through_the_page_is_remove_class(explore_model, model_copy, page, tmp_path):
    served_model, twin = model_copy("served"), model_copy("twin")
    server, _ = _serve(served_model, explore_model, with_eval=False)
    gone = explore_model["b"]
    try:
        page.goto(server.url + "/")
        page.fill("#unlearn-class", gone)
        page.locator("#form-unlearn-class button").click()
        page.wait_for_selector("#edit-log tbody tr")
        cells = page.locator("#edit-log tbody tr td").all_inner_texts()
        _shot(page, tmp_path, "edit")
    finally:
        server.stop()
    clf = TwoStageClassifier.load(twin)
    removed = clf.remove_class(gone)
    assert cells[1:4] == ["unlearn class", gone, str(len(removed))]
    saved = TwoStageClassifier.load(served_model)
    X = QueryEncoder(clf, progress=False).images([open_image(p) for p in explore_model["val"].paths])
    assert gone not in saved.class_ids_
    np.testing.assert_array_equal(saved.predict(X), clf.predict(X))
    np.testing.assert_allclose(saved.predict_proba(X), clf.predict_proba(X))
    assert page.errors == []


@needs_chromium
def test_a_confusion_cell_leads_to_the_example_grid(served, page, explore_model, tmp_path):
    server, _, _ = served
    page.goto(server.url + "/mistakes")
    assert page.locator("#levels table tbody tr").count() == 8
    _shot(page, tmp_path, "mistakes")
    cells = page.locator("#matrix button.cell")
    assert cells.count() >= 1
    cells.first.click()
    page.wait_for_selector("#pairs button.pair")
    page.locator("#pairs button.pair").first.click()
    page.wait_for_selector("#examples figure.query")
    assert page.locator("#examples .example").count() >= 1
    decoded = _decoded(page, "#examples img")
    assert len(decoded) >= 2 and all(decoded)  # the query and at least one outvoter
    _shot(page, tmp_path, "examples")
    page.locator("#examples figure.query a").first.click()  # the example opens as a query
    page.wait_for_selector("#neighbours figure")
    assert page.errors == []


@needs_chromium
def test_labels_and_sources_are_never_markup(explore_model, model_copy, page, tmp_path):
    hostile = '<img src=x onerror="document.title=1">'
    path = model_copy()
    clf = TwoStageClassifier.load(path)
    ref = explore_model["a_refs"][0]
    X = QueryEncoder(clf, progress=False).images([open_image(explore_model["val"].root / ref)])
    clf.add(X, [explore_model["a"]], source=hostile, refs=[ref])
    clf.save(path)
    server, _ = _serve(path, explore_model, with_eval=False)
    try:
        page.goto(server.url + "/")
        page.set_input_files("#upload", str(explore_model["val"].root / ref))
        page.wait_for_selector("#neighbours figure")
        text = page.locator("#neighbours").inner_text()
        options = page.locator("#unlearn-source option").all_inner_texts()
        title = page.title()
    finally:
        server.stop()
    assert f"source {hostile}" in text and hostile in options
    assert title == "supersub explore"
    assert page.errors == []


def test_images_only_from_inside_the_roots(served, explore_model):
    server, _, _ = served
    ref = explore_model["a_refs"][0]
    status, body, headers = _raw(server, "GET", "/img/data/" + ref)
    assert status == 200 and body[:8] == b"\x89PNG\r\n\x1a\n" and headers["content-type"] == "image/png"
    absolute = str((explore_model["val"].root / ref).resolve())
    for path in ["/img/data/../wnids.txt", "/img/data/../../../../etc/passwd", "/img/memory/%2e%2e/%2e%2e/etc/passwd",
                 "/img/memory/..%2f..%2fetc%2fpasswd", "/img/data//etc/passwd", "/img/data/" + absolute,
                 "/img/data/%2F" + absolute.lstrip("/"), "/img/nowhere/" + ref, "/img/query/../" + ref]:
        status, body, _ = _raw(server, "GET", path)
        assert status == 404, path
        assert b"root:" not in body


def test_state_changing_requests_need_the_token(served, explore_model):
    server, token, model = served
    current = (model / "CURRENT").read_bytes()
    body = json.dumps({"action": "unlearn_class", "class": explore_model["a"]}).encode()
    for headers in ({}, {"X-Supersub-Token": "wrong"}, {"X-Supersub-Token": token[:-1]}):
        status, reply, _ = _raw(server, "POST", "/api/edit", body, {"Content-Type": "application/json", **headers})
        assert status == 403 and b"token" in reply
    assert (model / "CURRENT").read_bytes() == current
    status, _, _ = _raw(server, "POST", "/api/edit", body,
                        {"Host": "evil.example:80", "X-Supersub-Token": token})  # DNS rebinding
    assert status == 400
    assert (model / "CURRENT").read_bytes() == current


def _multipart(name, filename, data):
    boundary = "xXsupersubXx"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _png_header(width, height):
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_uploads_are_limited_and_decoded_first(served, explore_model):
    server, token, _ = served
    auth = {"X-Supersub-Token": token}
    real = (explore_model["val"].root / explore_model["a_refs"][0]).read_bytes()
    body, headers = _multipart("image", "a.jpg", real)
    status, reply, _ = _raw(server, "POST", "/api/query", body, {**headers, **auth})
    assert status == 200 and json.loads(reply)["prediction"]["class"] is not None
    for data, message in [(b"GIF89a not really", b"not a usable image"), (b"", b"is empty"),
                          (_png_header(30000, 30000), b"not a usable image"), (real[: len(real) // 3], b"not a usable")]:
        body, headers = _multipart("image", "x.png", data)
        status, reply, _ = _raw(server, "POST", "/api/query", body, {**headers, **auth})
        assert status == 400 and message in reply, reply
    status, reply, _ = _raw(server, "POST", "/api/query", b"", {
        **headers, **auth, "Content-Length": str(MAX_UPLOAD_BYTES + 1)})
    assert status == 413 and b"limit" in reply


def test_every_api_call_needs_the_token(served):
    """Reads cost compute too (the examples grid embeds images): no token, no answer."""
    server, token, _ = served
    for path in ("/api/summary", "/api/data", "/api/mistakes/cell?true=0&pred=1",
                 "/api/mistakes/examples?true=a&pred=b"):
        status, reply, _ = _raw(server, "GET", path)
        assert status == 403 and b"token" in reply, path
    status, _, _ = _raw(server, "GET", "/api/summary", headers={"X-Supersub-Token": token})
    assert status == 200


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "null"}])
def test_cross_site_writes_are_refused_even_with_the_token(served, explore_model, headers):
    server, token, model = served
    current = (model / "CURRENT").read_bytes()
    body = json.dumps({"action": "unlearn_class", "class": explore_model["a"]}).encode()
    status, reply, _ = _raw(server, "POST", "/api/edit", body,
                            {"Content-Type": "application/json", "X-Supersub-Token": token, **headers})
    assert status == 403 and b"refused" in reply
    assert (model / "CURRENT").read_bytes() == current


def test_a_same_origin_write_is_answered(served, explore_model):
    server, token, _ = served
    body = json.dumps({"query": -1}).encode()
    status, reply, _ = _raw(server, "POST", "/api/predict", body, {
        "Content-Type": "application/json", "X-Supersub-Token": token,
        "Origin": f"http://127.0.0.1:{server.port}", "Sec-Fetch-Site": "same-origin"})
    assert status != 403, reply


def test_a_deeply_nested_body_is_a_clear_400(served):
    server, token, _ = served
    body = b"[" * 100_000 + b"]" * 100_000
    status, reply, _ = _raw(server, "POST", "/api/predict", body,
                            {"Content-Type": "application/json", "X-Supersub-Token": token})
    assert status == 400 and b"levels deep" in reply


def test_the_host_allow_list_holds_in_every_mode(explore_model):
    """With a non-loopback bind the page and its token are served only to the names given."""
    assert allowed_hosts_for("10.1.2.3", False) == ["10.1.2.3"]
    assert allowed_hosts_for("0.0.0.0", False, ["box.lan"]) == ["box.lan"]
    assert "localhost" in allowed_hosts_for("127.0.0.1", True)
    with pytest.raises(Exception, match="--allowed-host"):
        allowed_hosts_for("0.0.0.0", False)
    explorer = Explorer(explore_model["model"])
    app = create_app(explorer, allowed_hosts=allowed_hosts_for("0.0.0.0", False, ["box.lan"]))
    with ExploreServer(app) as server:
        status, reply, _ = _raw(server, "GET", "/", headers={"Host": "evil.example"})
        assert status == 400 and app.state.token.encode() not in reply
        status, reply, _ = _raw(server, "GET", "/", headers={"Host": f"box.lan:{server.port}"})
        assert status == 200 and app.state.token.encode() in reply
    default = create_app(explorer)  # no list given: loopback names only, never any host
    with ExploreServer(default) as server:
        assert _raw(server, "GET", "/", headers={"Host": "evil.example"})[0] == 400


def test_a_wildcard_bind_needs_allowed_host(explore_model, capsys):
    assert main(["explore", "--model", str(explore_model["model"]), "--host", "0.0.0.0", "--allow-remote",
                 "--port", "1"]) == 2
    assert "--allowed-host" in capsys.readouterr().err


def test_explore_refuses_a_remote_address_without_the_flag(explore_model, capsys):
    assert main(["explore", "--model", str(explore_model["model"]), "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_the_class_picker_shows_names(served):
    server, _, _ = served
    status, body, _ = _raw(server, "GET", "/")
    assert status == 200
    picker = body[body.index(b'id="pick-class"'):body.index(b"</select>")].decode()
    assert '<option value="n01443537">goldfish (n01443537)</option>' in picker
    assert picker.index("goldfish") < picker.index("tabby")  # sorted by name
