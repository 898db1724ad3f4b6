"""The explorer's HTTP face: Starlette routes that decode a request, call :mod:`.views`
(or :mod:`.jobs`) in a worker thread, and answer JSON.

Every failure answers ``{"error": sentence}`` with a 4xx status (5xx only for a bug of
ours, without a traceback) and the server keeps serving. Requests are bounded:
``MAX_BODY`` bytes at most, read before parsing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..data import DATASETS
from . import views
from .catalog import Catalog
from .errors import WebError
from .inputs import Samples, prepare
from .jobs import Trainer

STATIC = Path(__file__).parent / "static"
MAX_BODY = 8 * 2**20  # a phone photo as a base64 data URI fits; more is refused unread
log = logging.getLogger("convscope.web")


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object, refused (413) past MAX_BODY bytes or (400) if not an object."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise WebError(f"request of {declared} bytes refused: at most {MAX_BODY // 2**20} MiB are accepted", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise WebError(f"request refused: larger than {MAX_BODY // 2**20} MiB", 413)
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise WebError(f"expected a JSON object, got malformed JSON ({error})") from None
    if not isinstance(value, dict):
        raise WebError(f"expected a JSON object, got {type(value).__name__}")
    return value


class Explorer:
    """What the routes share: the model catalog, the validation samples and the trainer."""

    def __init__(self, catalog: Catalog, samples: Samples, trainer: Trainer) -> None:
        self.catalog, self.samples, self.trainer = catalog, samples, trainer

    def with_input(self, body: dict[str, Any], view, *extra):
        """``view(loaded, prepared input, *extra)`` for the model and input the body names."""
        loaded = self.catalog.get(body.get("model"))
        return view(loaded, prepare(body, loaded.meta, self.samples), *extra)


def _routes(explorer: Explorer) -> list:
    def query_model(request):
        return explorer.catalog.get(request.query_params.get("model"))

    def get(fn):
        async def endpoint(request):
            return JSONResponse(await run_in_threadpool(fn, request))
        return endpoint

    def post(fn):
        async def endpoint(request):
            body = await read_json(request)
            start = time.perf_counter()
            answer = await run_in_threadpool(fn, body)
            work = (time.perf_counter() - start) * 1000
            answer["server_ms"] = round(work, 3)
            return JSONResponse(answer, headers={"Server-Timing": f"work;dur={work:.3f}"})
        return endpoint

    trainer = explorer.trainer
    return [
        Route("/", lambda request: FileResponse(STATIC / "index.html")),
        Route("/api/models", get(lambda r: explorer.catalog.listing())),
        Route("/api/config", get(lambda r: {"datasets": sorted(DATASETS), "version": __version__})),
        Route("/api/network", get(lambda r: views.network(query_model(r)))),
        Route("/api/samples", get(lambda r: explorer.samples.counts(query_model(r).meta))),
        Route("/api/filters", get(lambda r: views.filters(query_model(r)))),
        Route("/api/explain", get(lambda r: views.explanation(query_model(r), r.query_params.get("depth",
                                                                                              "technical")))),
        Route("/api/update", post(lambda b: explorer.with_input(b, views.update)), methods=["POST"]),
        Route("/api/cell", post(lambda b: explorer.with_input(b, views.cell, b)), methods=["POST"]),
        Route("/api/saliency", post(lambda b: explorer.with_input(b, views.saliency)), methods=["POST"]),
        Route("/api/pooling", post(lambda b: explorer.with_input(b, views.pooling, b)), methods=["POST"]),
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
               data_dir: str | os.PathLike | None = None) -> Starlette:
    """The explorer for ``model`` (a model file, run folder or zoo name; default: what is
    found in ``runs`` and the zoo), training new runs into ``runs``."""
    catalog = Catalog(runs, model)
    explorer = Explorer(catalog, Samples(data_dir), Trainer(runs, data_dir))
    app = Starlette(routes=_routes(explorer),
                    exception_handlers={WebError: _web_error, HTTPException: _http_error, Exception: _bug})
    app.state.explorer = explorer
    return app
