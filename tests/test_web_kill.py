"""Killing ``convscope serve`` in the middle of a training run loses nothing: the run folder
holds the last finished epoch, the next server offers the run for resuming, and the command
line finishes it."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")

from convscope.cli import main  # noqa: E402
from convscope.web.catalog import Catalog  # noqa: E402


def call(url, body=None):
    """GET (or POST ``body`` as JSON to) ``url``; the answer's JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def alive(pid):
    """Whether process ``pid`` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def test_a_killed_server_leaves_a_resumable_run(cache, monkeypatch):
    monkeypatch.chdir(cache)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    server = subprocess.Popen([sys.executable, "-m", "convscope.cli", "serve", "--port", "0", "--runs", "runs",
                               "--workers", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        url = re.search(r"http://[\d.]+:\d+/", server.stdout.readline()).group(0)
        started = call(url + "api/train", {"epochs": 4, "batch_size": 4, "out": "killed"})
        assert started["state"] == "running", started
        deadline = time.monotonic() + 120
        while not call(url + "api/train")["history"]:  # the first epoch is checkpointed
            assert time.monotonic() < deadline
            time.sleep(0.05)
        tasks = Path(f"/proc/{server.pid}/task")  # Linux lists each thread's children
        workers = [int(p) for t in tasks.glob("*/children") for p in t.read_text().split()]
        assert workers or not tasks.exists()
        server.send_signal(signal.SIGKILL)  # no chance to clean up
        server.wait(10)
    finally:
        server.kill()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers):  # its worker processes notice and end too
        assert time.monotonic() < deadline, "worker processes outlived the killed server"
        time.sleep(0.1)
    run = next(r for r in Catalog(cache / "runs").runs() if r["name"] == "killed")
    assert run["resumable"] and run["state"] == "interrupted" and 1 <= run["epochs_done"] < 4
    saved = json.loads((cache / "runs" / "killed" / "run.json").read_text())
    assert saved["epochs"] == 4 and saved["batch_size"] == 4
    assert main(["train", "--resume", "--out", str(cache / "runs" / "killed"), "--no-report"]) == 0
    epochs = [json.loads(line)["epoch"] for line in open(cache / "runs" / "killed" / "metrics.jsonl")]
    assert epochs == [1, 2, 3, 4]
