"""The explorer's HTTP face: Starlette routes that decode a request, call :mod:`.views`
(the live ones through :mod:`.live`, in worker processes) or :mod:`.jobs`, and answer JSON.

Every failure answers ``{"error": sentence}`` with a 4xx status (5xx only for a bug of
ours, without a traceback) and the server keeps serving. Requests are bounded:
``MAX_BODY`` bytes at most, read before parsing. Only the server's own page is answered
(:class:`SameOrigin`): another site's page in the learner's browser can neither start a
training run nor read an answer.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..data import DATASETS
from . import views
from .catalog import Catalog
from .errors import WebError
from .inputs import Samples
from .jobs import Trainer
from .live import VIEWS, Explorer, Live, parse

STATIC = Path(__file__).parent / "static"
MAX_BODY = 16 * 2**20  # an image file of up to about 12 MB, as a base64 data URI; more is refused unread
log = logging.getLogger("convscope.web")


async def read_body(request: Request) -> bytes:
    """The request's body, refused (413) past MAX_BODY bytes, before or while reading it."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise WebError(f"request of {declared} bytes refused: at most {MAX_BODY // 2**20} MiB are accepted (an image "
                       f"file of up to about {MAX_BODY * 3 // 4 // 10**6} MB, sent as text)", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise WebError(f"request refused: larger than {MAX_BODY // 2**20} MiB", 413)
    return bytes(body)


def loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is this computer only: 127.x, ::1, localhost."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def foreign(headers: Headers, local: bool) -> str | None:
    """Why a request is not from this server's own page (None if it is): an ``Origin`` that
    is not the ``Host`` asked (another site's page posting here), or, when the server listens
    on this computer only, a ``Host`` that is not a loopback name (another site's page that
    renamed itself to 127.0.0.1 by DNS rebinding, to read the answers)."""
    host, origin = headers.get("host", ""), headers.get("origin")
    try:
        name = urlsplit("//" + host).hostname or ""
    except ValueError:
        name = ""
    if local and not loopback(name):
        return (f"request for host {host!r} refused: this server answers only the addresses of this computer "
                "(127.0.0.1, localhost, [::1]); start it with --host to share it")
    if origin is not None and origin.lower() != f"http://{host}".lower():
        return (f"request from the page {origin!r} refused: only this server's own page (http://{host}) may "
                "use it")
    return None


class SameOrigin:
    """ASGI middleware: a 403 JSON error for a request :func:`foreign` refuses."""

    def __init__(self, app, host: str = "127.0.0.1") -> None:
        self.app, self.local = app, loopback(host)

    async def __call__(self, scope, receive, send) -> None:
        problem = foreign(Headers(scope=scope), self.local) if scope["type"] == "http" else None
        if problem is None:
            return await self.app(scope, receive, send)
        await JSONResponse({"error": problem}, status_code=403)(scope, receive, send)


def _routes(explorer: Explorer, live: Live, trainer: Trainer) -> list:
    def query_model(request):
        return explorer.catalog.get(request.query_params.get("model"))

    def get(fn):
        async def endpoint(request):
            return JSONResponse(await run_in_threadpool(fn, request))
        return endpoint

    def post(fn):
        async def endpoint(request):
            body = parse(await read_body(request))
            return JSONResponse(await run_in_threadpool(fn, body))
        return endpoint

    def live_view(view):
        async def endpoint(request):
            raw = await read_body(request)
            start = time.perf_counter()
            status, payload = await live(view, raw)
            total = (time.perf_counter() - start) * 1000  # the work, with any wait for a free worker
            return Response(payload, status, media_type="application/json",
                            headers={"Server-Timing": f"work;dur={total:.3f}"})
        return endpoint

    return [
        Route("/", lambda request: FileResponse(STATIC / "index.html")),
        Route("/api/models", get(lambda r: explorer.catalog.listing())),
        Route("/api/config", get(lambda r: {"datasets": sorted(DATASETS), "version": __version__})),
        Route("/api/network", get(lambda r: views.network(query_model(r)))),
        Route("/api/samples", get(lambda r: explorer.samples.counts(query_model(r).meta))),
        Route("/api/filters", get(lambda r: views.filters(query_model(r)))),
        Route("/api/explain", get(lambda r: views.explanation(query_model(r), r.query_params.get("depth",
                                                                                              "technical")))),
        *[Route(f"/api/{view}", live_view(view), methods=["POST"]) for view in VIEWS],
        Route("/api/train", get(lambda r: trainer.status(r.query_params.get("since")))),
        Route("/api/train", post(trainer.start), methods=["POST"]),
        Route("/api/train/pause", post(lambda b: trainer.pause()), methods=["POST"]),
        Route("/api/train/resume", post(lambda b: trainer.resume()), methods=["POST"]),
        Route("/api/train/stop", post(lambda b: trainer.stop()), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


async def _web_error(request: Request, error: WebError) -> JSONResponse:
    return JSONResponse({"error": error.message}, status_code=error.status)


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    reasons = {404: f"no such page or endpoint: {request.url.path}",
               405: f"{request.method} is not accepted by {request.url.path}"}
    return JSONResponse({"error": reasons.get(error.status_code, str(error.detail))}, status_code=error.status_code)


async def _bug(request: Request, error: Exception) -> JSONResponse:
    log.exception("error answering %s %s", request.method, request.url.path)
    return JSONResponse({"error": f"the server failed on this request ({type(error).__name__}: {error}); "
                                  "it keeps serving, and the details are in its log"}, status_code=500)


def create_app(model: str | None = None, runs: str | os.PathLike = "runs",
               data_dir: str | os.PathLike | None = None, workers: int = 0, host: str = "127.0.0.1") -> Starlette:
    """The explorer for ``model`` (a model file, run folder or zoo name; default: what is
    found in ``runs`` and the zoo), training new runs into ``runs``. ``workers``: processes
    answering the live views (0: a thread of this process). ``host``: the address the server
    listens on (a loopback one: requests must name it, see :func:`foreign`)."""
    data_dir = None if data_dir is None else str(data_dir)
    explorer = Explorer(Catalog(runs, model), Samples(data_dir))
    live = Live(explorer, workers, str(runs), model, data_dir)
    trainer = Trainer(runs, data_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await run_in_threadpool(live.start)
        try:
            yield
        finally:
            live.close()

    app = Starlette(routes=_routes(explorer, live, trainer), lifespan=lifespan,
                    middleware=[Middleware(SameOrigin, host=host)],
                    exception_handlers={WebError: _web_error, HTTPException: _http_error, Exception: _bug})
    app.state.explorer, app.state.trainer, app.state.live = explorer, trainer, live
    return app
