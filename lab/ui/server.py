"""`lab ui`: a local, read-only web page over the registry (Starlette on uvicorn).

    lab ui                     # prints http://127.0.0.1:PORT/?token=...; Ctrl-C stops it

Pages: the experiments (filtered with `--where` syntax and tags), the leaderboard, each experiment's report,
a comparison of selected experiments, and TensorBoard started over a selection. It listens on 127.0.0.1
only and answers only requests that carry its token (in the URL once, then in a cookie, as Jupyter does);
every other request gets 403. It only reads the registry.
"""
from __future__ import annotations

import argparse
import secrets
import socket
from typing import Any

from lab.errors import LabError

HOST = "127.0.0.1"
NAV = {"experiments": "/", "leaderboard": "/leaderboard"}
# plotly.js builds some plots with `new Function` (regl): 'unsafe-eval'; its figure calls are inline scripts
POLICY = ("default-src 'none'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
          "form-action 'self' http://127.0.0.1:*; frame-ancestors 'none'; base-uri 'none'")


def add_command(commands) -> None:
    ui = commands.add_parser("ui", help="a local read-only web page over the registry (127.0.0.1, with a token)")
    ui.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    ui.set_defaults(handler=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    from lab.registry import Registry

    Registry().check()  # an unreachable registry: one line now, not a 500 per page
    sock = listen(args.port)
    token = secrets.token_urlsafe(32)
    port = sock.getsockname()[1]
    print(f"lab ui on http://{HOST}:{port}/?token={token} (read-only; Ctrl-C stops it)", flush=True)
    serve(create_app(token, port), sock)
    return 0


def listen(port: int) -> socket.socket:
    """A socket bound to 127.0.0.1:`port` (0: a free port); LabError when the port is taken."""
    if not 0 <= port <= 65535:
        raise LabError(f"--port must be between 0 and 65535, got {port}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise LabError(f"port {port} on {HOST} is taken: choose another with --port, or leave it out") from None
    sock.listen(64)
    return sock


def serve(app, sock: socket.socket) -> None:
    """Serve until Ctrl-C, SIGTERM or SIGHUP (uvicorn shuts down, the app stops its TensorBoards), then return."""
    import signal

    import uvicorn

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):  # uvicorn raises the signal it caught again once it stopped
        signal.signal(signum, interrupt)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    print("lab ui stopped", flush=True)


# ------------------------------------------------------------------ the app
def create_app(token: str, port: int):
    """The Starlette app: GET pages only, behind `token` and a Host check (no DNS rebinding)."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.routing import Route

    from lab.registry import Registry
    from lab.ui import boards

    tensorboards = boards.Boards()

    @asynccontextmanager
    async def lifespan(_app):
        yield
        tensorboards.stop_all()

    app = Starlette(
        routes=[Route("/", experiments_page), Route("/leaderboard", leaderboard_page),
                Route("/experiments/{id:int}", report_page), Route("/compare", compare_page),
                Route("/tensorboard", tensorboard_link), Route("/plotly.min.js", plotly_js)],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=[HOST, "localhost"]),
                    Middleware(TokenGate, token=token, cookie=f"lab_ui_{port}")],
        lifespan=lifespan)
    app.state.registry = Registry()
    app.state.tensorboards = tensorboards
    return app


class TokenGate:
    """ASGI middleware: 403 unless the request carries the token (query `token=` or the cookie it sets)."""

    def __init__(self, app, token: str, cookie: str):
        self.app, self.token, self.cookie = app, token, cookie

    async def __call__(self, scope, receive, send):
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse

        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        given = request.query_params.get("token")
        cookie = request.cookies.get(self.cookie, "")
        if not any(secrets.compare_digest(v.encode(), self.token.encode()) for v in (given or "", cookie) if v):
            return await PlainTextResponse("403: this page needs the token `lab ui` printed\n", status_code=403)(
                scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", POLICY.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store")]
                if given:
                    headers.append((b"set-cookie", f"{self.cookie}={self.token}; Path=/; HttpOnly; "
                                                   "SameSite=Strict".encode()))
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


# ------------------------------------------------------------------ pages (sync: run in Starlette's threads)
def _html(body: str, status: int = 200):
    from starlette.responses import HTMLResponse

    return HTMLResponse(body, status_code=status)


def _problem(message: str, status: int = 400):
    from lab.results.pages.render import render

    return _html(render("problem.html", nav=NAV, message=message), status)


def _guard(page):
    """A LabError (a bad filter, an unknown id) as a page with its one line, not a traceback."""
    from functools import wraps

    @wraps(page)
    def guarded(request):
        from lab.errors import RegistryError

        try:
            return page(request)
        except RegistryError as exc:
            return _problem(str(exc), 404 if str(exc).startswith("no experiment") else 503)
        except LabError as exc:
            return _problem(str(exc))
    return guarded


@_guard
def experiments_page(request):
    from lab.registry import display_status, views
    from lab.results.pages.render import render

    where = request.query_params.get("where", "").strip()
    tag_text = request.query_params.get("tags", "").strip()
    limit = _int(request.query_params.get("limit"), 100)
    tags = {}
    for pair in tag_text.split():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise LabError(f"tags: expected KEY=VALUE pairs separated by spaces, got {pair!r}")
        tags[key] = value
    rows = request.app.state.registry.experiments(limit=limit, where=where or None, tags=tags or None)
    for row in rows:
        row["status"] = display_status(row)
        row["best"] = row["best_max"] if row["mode"] == "max" else row["best_min"]
        row["metric_shown"], row["best"] = views.natural(str(row["metric"]), row["best"])
    return _html(render("experiments.html", nav=NAV, rows=rows, where=where, tags=tag_text, limit=limit))


@_guard
def leaderboard_page(request):
    from lab.api import leaderboard_rows
    from lab.registry import views
    from lab.results.pages.render import render

    q = request.query_params
    fields = {k: q.get(k, "").strip() for k in ("workload", "dataset", "metric", "where")}
    limit = _int(q.get("limit"), 50)
    metric, mode, rows = leaderboard_rows(**{k: v or None for k, v in fields.items()}, limit=limit)
    for row in rows:
        row["value"] = views.natural(str(metric), row["value"])[1]
    shown = views.natural(str(metric), None)[0] if metric else None
    return _html(render("leaderboard.html", nav=NAV, rows=rows, metric=shown, mode=mode, limit=limit, form=fields))


@_guard
def report_page(request):
    from lab.results.pages.render import report_html

    return _html(report_html(request.path_params["id"], plotly_src="/plotly.min.js", nav=NAV))


@_guard
def compare_page(request):
    from lab.results.pages.render import compare_html

    ids = _ids(request)
    metric = request.query_params.get("metric", "").strip() or None
    return _html(compare_html(ids, metric, plotly_src="/plotly.min.js", nav=NAV))


@_guard
def tensorboard_link(request):
    from starlette.responses import RedirectResponse

    ids = _ids(request, at_least=1)
    url = request.app.state.tensorboards.open(ids, request.app.state.registry)
    return RedirectResponse(url, status_code=303)


def plotly_js(_request):
    from starlette.responses import Response

    from lab.results.pages.render import plotly_js as code

    return Response(code(), media_type="text/javascript; charset=utf-8")


def _ids(request, at_least: int = 2) -> list[int]:
    values = [v for item in request.query_params.getlist("ids") for v in item.replace(",", " ").split()]
    try:
        ids = list(dict.fromkeys(int(v) for v in values))
    except ValueError:
        raise LabError("ids must be experiment numbers") from None
    if len(ids) < at_least:
        raise LabError(f"select at least {at_least} experiment{'s' if at_least > 1 else ''}")
    return ids


def _int(text: Any, default: int) -> int:
    try:
        return max(1, min(int(text), 10_000))
    except (TypeError, ValueError):
        return default
