"""``convscope serve``: the live explorer in the browser (:mod:`convscope.web`)."""

from __future__ import annotations

import argparse
import os
import socket
import sys

MAX_WORKERS = 64


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="live explorer in the browser: draw, watch the network, train",
                              description="Serve the explorer page: draw a digit and watch every layer, click a "
                                          "cell to see its arithmetic, look at filters, saliency and pooling, "
                                          "train a model and watch its filters form. Works offline.")
    p.add_argument("model", nargs="?", metavar="MODEL | RUN_DIR",
                   help="model file, run folder or zoo name to open first (default: offer the run folders "
                        "found in --runs and the zoo)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0 shares it on "
                        "your network, on purpose)")
    p.add_argument("--runs", default="runs", help="folder of training runs to offer and to train into (default runs)")
    p.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, MAX_WORKERS),
                   help="processes that answer the live views, so several learners draw at once "
                        f"(default: one per core, at most {MAX_WORKERS}; 0 answers in the server process)")
    p.add_argument("--data-dir",
                   help="folder holding dataset files, searched before the cache (default: the cache only)")
    p.set_defaults(run=run_serve)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # answers go out at once: without it, a kept-alive connection waits ~40 ms per answer
    # (Nagle's algorithm meeting the browser's delayed ACK); accepted sockets inherit it
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # from now on a browser's connection waits for the server instead of being refused
    except OSError as error:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {error.strerror or error} "
                         "(another server there? pass --port with another number)") from None
    return sock


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..web import WebError, create_app
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be 0-65535, got {args.port}")
    if not 0 <= args.workers <= MAX_WORKERS:
        raise ValueError(f"--workers must be 0-{MAX_WORKERS}, got {args.workers}")
    app = create_app(args.model, runs=args.runs, data_dir=args.data_dir, workers=args.workers, host=args.host)
    catalog = app.state.explorer.catalog
    listing = catalog.listing()
    if args.model is not None:
        try:
            catalog.get(listing["current"])
        except WebError as error:
            raise ValueError(error.message) from None
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    runs = [r["name"] for r in listing["runs"] if r["has_model"]]
    print(f"models: {', '.join(runs) or f'no trained runs in {args.runs} yet'}; zoo: "
          + ", ".join(m["id"][4:] for m in listing["models"] if m["kind"] == "zoo"), file=sys.stderr)
    print(f"convscope explorer: http://{shown}:{port}/  (Ctrl-C stops it)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
    return 0
