"""Latency of the explorer's live update (``POST /api/update``) while clients draw.

Starts ``convscope serve`` in its own process on 127.0.0.1, then runs 1 client and then
``--clients`` clients at once (threads of this process, one HTTP connection each). Each client
behaves as the page does while a learner draws: a stroke grows point by point on a 280x280
white canvas, sent at 112x112 as the page sends it (rendered to PNG here), one update in flight at a
time, the next sent when the answer is back, at least ``--interval`` ms after the last one was
sent and ``--backoff`` times the last round trip (the page's pace: a busy server gets fewer
updates from each page). Prints, per setting, p50 / p95 / max of the server's own work per
update (its ``server_ms``: from the parsed request to the answer, including any wait for the
model) and of the whole round trip seen by the client, and the updates per second served.

    python benchmarks/serve_latency.py [MODEL] [--clients 20] [--seconds 10] [--interval 60] [--backoff 3]

MODEL defaults to runs/lenet5-digits if it exists, else the zoo's (untrained) lenet5: the
work per update is the same for trained and untrained weights.
"""

import argparse
import base64
import http.client
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
from PIL import Image, ImageDraw

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SEND_SIDE = 112  # the page sends its drawing at 112x112


def strokes(seed: int, frames: int = 60) -> list[str]:
    """Data URIs of a digit being drawn: a ring, then a tail, growing a few points per frame."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, frames // 2)
    cx, cy, rx, ry = 140 + rng.integers(-30, 30), 120 + rng.integers(-20, 20), 50, 60
    points = [(cx + rx * np.sin(a), cy - ry * np.cos(a)) for a in angles]
    points += [(cx + rx - k * 3, cy + k * 8) for k in range(frames - len(points))]
    image, bodies = Image.new("L", (280, 280), 255), []
    draw = ImageDraw.Draw(image)
    for a, b in zip(points, points[1:]):
        draw.line([a, b], fill=0, width=20)
        buffer = io.BytesIO()
        image.resize((SEND_SIDE, SEND_SIDE), Image.LANCZOS).save(buffer, format="PNG")  # as the page sends it
        bodies.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return bodies


def client(address, model, uris, interval, backoff, stop, server_ms, round_ms):
    """One drawing client on one kept-alive connection. The answer is read whole but not
    parsed (the page's work, not the server's); the server's time is in its Server-Timing."""
    connection = http.client.HTTPConnection(*address, timeout=30)
    bodies = [json.dumps({"model": model, "image": uri}).encode() for uri in uris]
    k = 0
    while not stop.is_set():
        sent = time.perf_counter()
        connection.request("POST", "/api/update", body=bodies[k % len(bodies)],
                           headers={"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        done = time.perf_counter()
        if answer.status == 200:
            server_ms.append(float(answer.getheader("Server-Timing").split("dur=")[1]))
            round_ms.append((done - sent) * 1000)
        k += 1
        pace = max(interval / 1000, backoff * (done - sent))  # as the page paces itself
        time.sleep(max(0.0, pace - (time.perf_counter() - sent)))
    connection.close()


def measure(address, model, clients, seconds, interval, backoff, warmup=1.0):
    pictures = [strokes(seed) for seed in range(clients)]
    stop, server_ms, round_ms = threading.Event(), [], []
    threads = [threading.Thread(target=client, args=(address, model, pictures[i], interval, backoff, stop,
                                                      server_ms, round_ms))
               for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    del server_ms[:], round_ms[:]  # connections opened, caches warm
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return np.array(server_ms), np.array(round_ms)


def start_server(model):
    command = [sys.executable, "-m", "convscope.cli", "serve", model, "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=os.getcwd())
    line = process.stdout.readline()
    found = re.search(r"http://([\d.]+):(\d+)/", line)
    if not found:
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return process, found.group(0), (found.group(1), int(found.group(2)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default="runs/lenet5-digits" if os.path.isdir("runs/lenet5-digits")
                        else "lenet5")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=60.0, help="least ms between a client's updates (page: 60)")
    parser.add_argument("--backoff", type=float, default=3.0,
                        help="a client waits this many times its last round trip before the next update "
                             "(page: 3; 0: a fixed pace, however busy the server)")
    args = parser.parse_args(argv)
    process, url, address = start_server(args.model)
    try:
        with urllib.request.urlopen(url + "api/models", timeout=30) as answer:
            listing = json.loads(answer.read())
        model = listing["current"]
        threads = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
        print(f"model {model}; server {url}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; {threads}")
        print(f"pace: at least {args.interval:g} ms between a client's updates, and {args.backoff:g}x its last "
              f"round trip")
        print(f"{'clients':>7}  {'server p50':>10}  {'p95':>7}  {'max':>7}  {'round p50':>9}  {'p95':>7}  "
              f"{'updates/s':>9}  {'per client':>10}")
        for clients in (1, args.clients):
            work, trip = measure(address, model, clients, args.seconds, args.interval, args.backoff)
            p = lambda a, q: float(np.percentile(a, q))  # noqa: E731
            print(f"{clients:>7}  {p(work, 50):>8.1f}ms  {p(work, 95):>5.1f}ms  {work.max():>5.1f}ms  "
                  f"{p(trip, 50):>7.1f}ms  {p(trip, 95):>5.1f}ms  {len(work) / args.seconds:>9.1f}  "
                  f"{len(work) / args.seconds / clients:>10.1f}")
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
