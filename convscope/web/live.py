"""The live views, the ones a drawing asks for many times a second (an update, a cell's
arithmetic, saliency, pooling), answered in worker processes.

A request's body goes to a worker as bytes and comes back as ``(status, JSON bytes)``:
the worker parses it, prepares the input, traces the model and encodes the answer, so the
server process only moves bytes, and the work of several clients runs on several cores at
once (one Python process runs one request's NumPy-and-Python work at a time). With
``workers=0`` the same function runs in a thread of the server process (tests, one core).
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from starlette.concurrency import run_in_threadpool

from . import views
from .catalog import Catalog
from .errors import WebError
from .inputs import Samples, prepare

log = logging.getLogger("convscope.web")
VIEWS = {"update": (views.update, False), "cell": (views.cell, True), "saliency": (views.saliency, False),
         "pooling": (views.pooling, True)}  # name -> (view, whether it also reads the request body)


class Explorer:
    """The models on offer and the validation samples: what every view needs."""

    def __init__(self, catalog: Catalog, samples: Samples) -> None:
        self.catalog, self.samples = catalog, samples

    def with_input(self, body: dict[str, Any], view, *extra):
        """``view(loaded, prepared input, *extra)`` for the model and input the body names."""
        loaded = self.catalog.get(body.get("model"))
        return view(loaded, prepare(body, loaded.meta, self.samples), *extra)


def parse(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or a 400 saying what it was instead."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise WebError(f"expected a JSON object, got malformed JSON ({error})") from None
    except RecursionError:
        raise WebError("expected a JSON object, got JSON nested too deeply to read") from None
    if not isinstance(value, dict):
        raise WebError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _json(status: int, value: dict[str, Any]) -> tuple[int, bytes]:
    return status, json.dumps(value, allow_nan=False).encode()


def answer(explorer: Explorer, view: str, raw: bytes) -> tuple[int, bytes]:
    """``(status, JSON)`` of one live view; ``server_ms`` in the answer is the work itself."""
    start = time.perf_counter()
    try:
        body = parse(raw)
        function, reads_body = VIEWS[view]
        result = explorer.with_input(body, function, *((body,) if reads_body else ()))
        result["server_ms"] = round((time.perf_counter() - start) * 1000, 3)
        try:
            return _json(200, result)
        except ValueError:  # NaN or infinity: JSON has no word for them
            raise WebError("the model's output is not finite (NaN or infinity) for this input", 422) from None
    except WebError as error:
        return _json(error.status, {"error": error.message})
    except Exception as error:  # noqa: BLE001  (a bug of ours: said in one line, logged in full)
        log.exception("error answering %s", view)
        return _json(500, {"error": f"the server failed on this request ({type(error).__name__}: {error}); "
                                    "it keeps serving, and the details are in its log"})


# ----- worker processes -------------------------------------------------------------------
_WORKER: Explorer | None = None


def _start(runs: str, given: str | None, data_dir: str | None) -> None:
    from ..cli.process import configure
    global _WORKER
    configure()  # one BLAS thread, freed memory kept: as in the server
    _WORKER = Explorer(Catalog(runs, given), Samples(data_dir))
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()


def _exit_with(server: int) -> None:
    """End this worker when the server is gone (even killed with no chance to say so)."""
    while os.getppid() == server:
        time.sleep(0.5)
    os._exit(0)


def _work(view: str, raw: bytes) -> tuple[int, bytes]:
    return answer(_WORKER, view, raw)


def _ready() -> bool:
    return _WORKER is not None


class Live:
    """Answers the live views: in ``workers`` processes, or (0) in a thread here."""

    def __init__(self, explorer: Explorer, workers: int, runs: str, given: str | None,
                 data_dir: str | None) -> None:
        self.explorer, self.workers, self.setup = explorer, workers, (str(runs), given, data_dir)
        self.pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the workers and wait until each has imported everything (about a second)."""
        if self.workers:
            context = multiprocessing.get_context("spawn")  # no fork of a threaded server
            self.pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start, initargs=self.setup)
            for future in [self.pool.submit(_ready) for _ in range(self.workers)]:
                future.result()

    async def __call__(self, view: str, raw: bytes) -> tuple[int, bytes]:
        if self.pool is None:
            return await run_in_threadpool(answer, self.explorer, view, raw)
        pool = self.pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, _work, view, raw)
        except BrokenProcessPool:  # a worker died (killed, out of memory): start afresh
            if self.pool is pool:  # once: the other requests that were waiting on it find new workers
                log.error("a worker process stopped; starting new ones")
                self.close()
                self.start()
            return _json(503, {"error": "a worker of the server stopped while answering; please try again"})

    def close(self) -> None:
        """Stop the workers (the answers in progress are dropped)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
