"""The explorer's web app (Starlette): pages, a JSON API, images, and the rules that keep it local.

Security rules, all enforced here:

* the server binds to loopback unless told otherwise, and answers only the
  Host names of an allow-list in every mode (no DNS rebinding; see
  :mod:`._security`);
* every API request carries the session token that the pages hold, in the
  ``X-Supersub-Token`` header, and a state-changing one (POST) must come from
  this server's own origin;
* request bodies are size-limited before they are read, and uploads are
  decoded under a pixel limit before use;
* images are served only from the model's data root, the ``--data`` folder
  and the evaluation's data root, as re-encoded PNGs; anything else is a 404;
* pages are rendered by Jinja2 with autoescaping, and the script builds the
  dynamic parts with ``textContent``; the Content-Security-Policy allows no
  inline script and nothing from another origin.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

from hierarchy import SupersubError, parse_json, read_bytes
from memory import ConcurrentWriteError, InputError, UnknownEntryError

from ._explorer import Explorer, parse_steer
from ._images import MAX_UPLOAD_BYTES, decode_upload, inside, thumbnail_of
from ._security import LOOPBACK_HOSTS, cross_site_refusal
from ._mistakes import Mistakes

__all__ = ["ExploreServer", "create_app"]

log = logging.getLogger("supersub")

HERE = Path(__file__).parent
TOKEN_HEADER = "X-Supersub-Token"
#: Largest JSON body accepted, in bytes.
MAX_JSON_BYTES = 256 * 1024
#: Images of one class offered for picking from ``--data``.
PICK_LIMIT = 24
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


class _Error(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(explorer: Explorer, *, data: Any = None, mistakes: Mistakes | None = None,
               allowed_hosts: list[str] | None = None, token: str | None = None) -> Any:
    """The Starlette application serving ``explorer``.

    Parameters
    ----------
    explorer : Explorer
    data : ImageDataset, optional
        Images offered for picking as queries.
    mistakes : Mistakes, optional
        An evaluation to browse on the mistakes page.
    allowed_hosts : list of str, optional
        Host header values answered (others get 400); by default the loopback
        names (:data:`LOOPBACK_HOSTS`).  Every mode has an allow-list.
    token : str, optional
        The session token; a random one by default (``app.state.token``).
    """
    from jinja2 import Environment, FileSystemLoader
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    token = token or secrets.token_urlsafe(32)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    roots = {"memory": lambda: explorer.memory_root,
             "data": lambda: Path(data.root) if data is not None else None,
             "eval": lambda: mistakes.root if mistakes is not None else None}
    classes_of_data: dict[str, list[str]] = {}
    if data is not None:
        from ..pipeline import class_of

        names = [class_of(explorer.clf.tree, c) for c in data.classes]
        for ref, t in zip(data.refs, data.targets):
            classes_of_data.setdefault(names[int(t)], []).append(str(ref))

    def page(name: str, **context: Any) -> Response:
        html = env.get_template(name).render(token=token, summary=explorer.summary(), has_eval=mistakes is not None,
                                              **context)
        return HTMLResponse(html)

    def guarded(handler: Any, *, write: bool = False, limit: int = MAX_JSON_BYTES) -> Any:
        """Every API call carries the session token; a state-changing one also comes from this origin."""
        async def endpoint(request: Request) -> Response:
            try:
                sent = request.headers.get(TOKEN_HEADER, "")
                if not hmac.compare_digest(sent.encode(), token.encode()):
                    raise _Error(403, f"missing or wrong {TOKEN_HEADER}: reload the page to get a session token")
                refusal = cross_site_refusal(request.headers, request.url.scheme) if write else None
                if refusal is not None:
                    raise _Error(403, refusal)
                if write:
                    length = request.headers.get("content-length")
                    if length is None:
                        raise _Error(411, "send a Content-Length")
                    if not (length.isascii() and length.isdigit()) or int(length) > limit:
                        raise _Error(413, f"the request is over the {limit // 1024} KiB limit; send fewer or "
                                          "smaller images")
                return await handler(request)  # type: ignore[no-any-return]
            except _Error as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status)
            except UnknownEntryError as exc:
                return JSONResponse({"error": str(exc).strip("\"'")}, status_code=404)
            except ConcurrentWriteError as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)
            except (SupersubError, InputError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return endpoint

    async def body_json(request: Request) -> dict[str, Any]:
        try:
            value = parse_json(await request.body(), origin="the request body", error=InputError)
        except InputError as exc:
            raise _Error(400, str(exc)) from None
        if not isinstance(value, dict):
            raise _Error(400, "the request body must be a JSON object")
        return value

    # ------------------------------------------------------------- pages
    async def index(request: Request) -> Response:
        named = sorted(((c, explorer.label(c)) for c in classes_of_data), key=lambda cl: (cl[1].lower(), cl[0]))
        return page("index.html", data_classes=named, superclasses=explorer.summary()["superclasses"])

    async def mistakes_page(request: Request) -> Response:
        if mistakes is None:
            return page("mistakes.html", metrics=None)
        summary = await run_in_threadpool(mistakes.summary)
        matrix = mistakes.error_matrix()
        return page("mistakes.html", metrics=summary, matrix=matrix.tolist(), names=mistakes.superclass_names)

    # ------------------------------------------------------------ images
    async def image(request: Request) -> Response:
        kind, ref = request.path_params["kind"], request.path_params["ref"]
        png = None
        if kind == "query":
            png = explorer.query_image(ref)
        elif kind in roots:
            path = inside(roots[kind](), ref)
            if path is not None:
                png = await run_in_threadpool(thumbnail_of, path, path.stat().st_mtime_ns)
        if png is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    # --------------------------------------------------------------- API
    async def api_summary(request: Request) -> Response:
        return JSONResponse({**explorer.summary(), "edits": [e.to_dict() for e in explorer.edits]})

    async def api_data(request: Request) -> Response:
        cls = request.query_params.get("class", "")
        if cls not in classes_of_data:
            raise _Error(404, f"no images of class {cls!r} in the data")
        return JSONResponse({"class": cls, "label": explorer.label(cls), "refs": classes_of_data[cls][:PICK_LIMIT]})

    async def api_query(request: Request) -> Response:
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise _Error(400, "send the image as the form field 'image'")
        data_ = await upload.read()
        name = upload.filename or "upload"
        image_ = await run_in_threadpool(decode_upload, data_, name)
        qid = await run_in_threadpool(explorer.add_query, image_, name)
        return JSONResponse(await run_in_threadpool(explorer.predict, qid))

    async def api_query_ref(request: Request) -> Response:
        body = await body_json(request)
        kind, ref = body.get("kind"), body.get("ref")
        if kind not in ("data", "eval") or not isinstance(ref, str):
            raise _Error(400, "give kind ('data' or 'eval') and ref (a path inside it)")
        path = inside(roots[kind](), ref)
        if path is None:
            raise _Error(404, f"no image {ref!r} in the {kind} folder")
        raw = await run_in_threadpool(read_bytes, path, limit=MAX_UPLOAD_BYTES, what="image", error=InputError)
        image_ = await run_in_threadpool(decode_upload, raw, ref)
        qid = await run_in_threadpool(explorer.add_query, image_, ref)
        return JSONResponse(await run_in_threadpool(explorer.predict, qid))

    async def api_predict(request: Request) -> Response:
        body = await body_json(request)
        qid = body.get("query")
        if not isinstance(qid, str):
            raise _Error(400, "give the query id ('query') from an earlier query")
        steer = parse_steer(body.get("steer"))
        return JSONResponse(await run_in_threadpool(explorer.predict, qid, steer))

    async def api_edit(request: Request) -> Response:
        body = await body_json(request)
        action = body.get("action")
        if action == "unlearn_class":
            rec = await run_in_threadpool(explorer.unlearn_class, body.get("class"))
        elif action == "unlearn_source":
            rec = await run_in_threadpool(explorer.unlearn_source, body.get("source"))
        elif action == "set_weight":
            weight = body.get("weight")
            if type(weight) not in (int, float):
                raise _Error(400, "give weight, a number >= 0")
            rec = await run_in_threadpool(lambda: explorer.set_weight(
                float(weight), label=body.get("class") or None, source=body.get("source") or None))
        else:
            raise _Error(400, "action must be unlearn_class, unlearn_source or set_weight")
        return JSONResponse({"edit": rec.to_dict(), "summary": explorer.summary()})

    async def api_add(request: Request) -> Response:
        form = await request.form(max_files=64, max_fields=70)
        files = []
        for item in form.getlist("images"):
            if isinstance(item, str):
                raise _Error(400, "send the images as files in the form field 'images'")
            files.append((item.filename or "upload", await item.read()))
        cls, superclass, source = (form.get(k) for k in ("class", "superclass", "source"))
        if not all(v is None or isinstance(v, str) for v in (cls, superclass, source)):
            raise _Error(400, "class, superclass and source must be text fields")
        rec = await run_in_threadpool(lambda: explorer.add_images(
            files, cls or "", superclass=superclass or None, source=source or "explore"))
        return JSONResponse({"edit": rec.to_dict(), "summary": explorer.summary()})

    async def api_cell(request: Request) -> Response:
        if mistakes is None:
            raise _Error(404, "no evaluation was given; start with --eval DIR")
        try:
            i, j = int(request.query_params["i"]), int(request.query_params["j"])
        except (KeyError, ValueError):
            raise _Error(400, "give the cell as integers i and j") from None
        pairs = mistakes.cell(i, j)
        for p in pairs:
            p.update(true_label=explorer.label(p["true"]), pred_label=explorer.label(p["pred"]))
        return JSONResponse({"true_superclass": mistakes.superclass_names[i],
                             "pred_superclass": mistakes.superclass_names[j], "pairs": pairs})

    async def api_examples(request: Request) -> Response:
        if mistakes is None:
            raise _Error(404, "no evaluation was given; start with --eval DIR")
        true, pred = request.query_params.get("true", ""), request.query_params.get("pred", "")
        rows = mistakes.examples(true, pred)
        out = []
        for row in rows:
            path = inside(mistakes.root, row["ref"] or "")
            if path is None:
                continue
            try:
                raw = await run_in_threadpool(read_bytes, path, limit=MAX_UPLOAD_BYTES, what="image",
                                              error=InputError)
            except (InputError, OSError):
                continue
            image_ = await run_in_threadpool(decode_upload, raw, row["ref"])
            qid = await run_in_threadpool(explorer.add_query, image_, row["ref"])
            now = await run_in_threadpool(explorer.predict, qid)
            row.update(query=qid, now=now["prediction"],
                       outvoters=[nb for nb in now["neighbours"] if nb["class"] != true][:5])
            out.append(row)
        return JSONResponse({"true": true, "pred": pred, "true_label": explorer.label(true),
                             "pred_label": explorer.label(pred), "examples": out,
                             "left_out": len(rows) - len(out)})

    async def headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response  # type: ignore[no-any-return]

    routes = [
        Route("/", index),
        Route("/mistakes", mistakes_page),
        Route("/img/{kind}/{ref:path}", image),
        Route("/api/summary", guarded(api_summary)),
        Route("/api/data", guarded(api_data)),
        Route("/api/query", guarded(api_query, write=True, limit=MAX_UPLOAD_BYTES), methods=["POST"]),
        Route("/api/query-ref", guarded(api_query_ref, write=True), methods=["POST"]),
        Route("/api/predict", guarded(api_predict, write=True), methods=["POST"]),
        Route("/api/edit", guarded(api_edit, write=True), methods=["POST"]),
        Route("/api/add", guarded(api_add, write=True, limit=MAX_UPLOAD_BYTES), methods=["POST"]),
        Route("/api/mistakes/cell", guarded(api_cell)),
        Route("/api/mistakes/examples", guarded(api_examples)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    from starlette.middleware.base import BaseHTTPMiddleware

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts or LOOPBACK_HOSTS)),
                  Middleware(BaseHTTPMiddleware, dispatch=headers)]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.token = token
    return app


class ExploreServer:
    """Run the explorer's app with uvicorn in a background thread (tests, benchmarks, notebooks).

    Parameters
    ----------
    app : Starlette application, from :func:`create_app`
    host : str, default "127.0.0.1"
    port : int, default 0
        0 picks a free port; see :attr:`url`.

    Examples
    --------
    >>> with ExploreServer(create_app(Explorer("model/"))) as server:   # doctest: +SKIP
    ...     print(server.url)
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = host, self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ExploreServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the explorer did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ExploreServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
