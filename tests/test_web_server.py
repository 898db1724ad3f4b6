"""The explorer's server parts without HTTP: the states of a training job under its buttons,
the worker pool's restart, the folders the page may train on, the default worker count."""

import asyncio
import threading
import time
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("starlette")

from convscope.cli import build_parser  # noqa: E402
from convscope.train import StopTraining  # noqa: E402
from convscope.web import WebError  # noqa: E402
from convscope.web.jobs import Job, Trainer  # noqa: E402
from convscope.web.live import Live  # noqa: E402


class FakeRun:
    """A run of one epoch of ``batches`` batches (a millisecond each) that waits for ``go``
    after the last one (the validation pass), so a test can press buttons at each point of
    its life. Like ``fit``, it returns when a callback raises StopTraining."""

    out, name, data, config, notes, done, epochs, train_loader = "runs/fake", "lenet5", "digits", {}, [], 0, 1, [0, 0]
    val_set = train_set = SimpleNamespace(images=np.zeros((1, 1, 4, 4), np.uint8), mean=[0.0], std=[1.0])

    def __init__(self, batches=2):
        self.batches, self.go, self.validating = batches, threading.Event(), threading.Event()

    def train(self, callbacks):
        [watcher] = callbacks
        watcher.on_epoch_start(0, 1, self.batches)
        try:
            for batch in range(self.batches):
                time.sleep(0.001)
                watcher.on_batch_end(0, batch, {"loss": 1.0})
        except StopTraining:
            return []
        self.validating.set()
        self.go.wait(10)
        return []

    def close(self):  # a real Run lets go of its folder's lock here
        self.closed = True


@pytest.fixture
def job(request, monkeypatch):
    """A started Job of a FakeRun; ``job.reporting`` holds "writing the report" until set."""
    monkeypatch.setattr(Job, "draw", lambda self: None)
    reporting, written = threading.Event(), []

    def write_report(out, dataset):
        written.append(out)
        reporting.wait(10)
    monkeypatch.setattr("convscope.viz.report.write_report", write_report)
    job = Job(FakeRun(batches=getattr(request, "param", 2)))
    job.reporting, job.written = reporting, written
    job.trainer = Trainer()
    job.trainer.job = job
    yield job
    job.run.go.set(), reporting.set()
    if job.thread.ident is not None:
        job.thread.join(10)


def wait_state(job, state):
    deadline = time.monotonic() + 10
    while job.status()["state"] != state:
        assert time.monotonic() < deadline, f"{job.status()['state']} is not {state}"
        time.sleep(0.005)


def test_stop_while_writing_the_report_is_refused_and_the_run_finishes(job):
    job.thread.start()
    job.run.go.set()
    wait_state(job, "writing the report")
    for press in (job.trainer.stop, job.trainer.pause, job.trainer.resume):
        with pytest.raises(WebError, match="it is writing the report") as refused:
            press()
        assert refused.value.status == 409
    assert job.status()["state"] == "writing the report"
    job.reporting.set()
    job.thread.join(10)
    assert job.status()["state"] == "finished" and job.written == ["runs/fake"]


def test_a_button_pressed_as_the_run_ends_leaves_its_last_state(job, monkeypatch):
    job.thread.start()
    job.run.go.set(), job.reporting.set()
    job.thread.join(10)
    monkeypatch.setattr(Job, "alive", True)  # the press was let through just before the thread ended
    for press in (job.trainer.stop, job.trainer.pause, job.trainer.resume):
        with pytest.raises(WebError, match="it is finished"):
            press()
    assert job.status()["state"] == "finished"  # not "stopping" for ever


def test_a_stop_after_the_last_batch_still_finishes_the_run(job):
    job.thread.start()
    assert job.run.validating.wait(10)
    job.trainer.stop()  # the loop has no batch left to stop at
    job.run.go.set(), job.reporting.set()
    job.thread.join(10)
    assert job.status()["state"] == "finished" and job.written == ["runs/fake"]


@pytest.mark.parametrize("job", [10_000], indirect=True)
def test_pause_resume_and_stop_while_paused(job, monkeypatch):
    release = threading.Event()
    original = Job.wait_while_paused

    def held(self):  # the first batch waits until the test has pressed pause
        release.wait(10)
        original(self)
    monkeypatch.setattr(Job, "wait_while_paused", held)
    job.thread.start()
    assert job.trainer.pause()["state"] == "pausing"
    release.set()
    wait_state(job, "paused")
    with pytest.raises(WebError, match="cannot pause the run: it is paused"):
        job.trainer.pause()
    assert job.trainer.resume()["state"] == "running"
    job.trainer.pause()
    wait_state(job, "paused")
    assert job.trainer.stop()["state"] == "stopping"
    job.thread.join(10)
    assert job.status()["state"] == "stopped" and job.written == []


def test_the_page_may_train_on_folders_inside_the_working_folder_only(tmp_path, monkeypatch):
    (tmp_path / "here" / "mine").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "here" / "link").symlink_to(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path / "here")
    trainer = Trainer(tmp_path / "here" / "runs")
    assert trainer._data({"data": "mine"}) == "mine"
    assert trainer._data({"data": str(tmp_path / "here" / "mine")}) == str(tmp_path / "here" / "mine")
    assert trainer._data({"data": "mnist"}) == "mnist" and trainer._data({}) == "digits"
    for data in ("link", "../elsewhere", str(tmp_path / "elsewhere"), "/", "mine\x00"):
        with pytest.raises(WebError, match="folder inside the folder the server was started in") as refused:
            trainer._data({"data": data})
        assert refused.value.status == 403


class Stub(Executor):
    """An executor whose futures the test ends by hand."""

    def __init__(self):
        self.futures = []

    def submit(self, fn, *args):
        self.futures.append(Future())
        return self.futures[-1]

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def test_a_dead_worker_restarts_the_pool_once(monkeypatch):
    live = Live(None, workers=1, runs="runs", given=None, data_dir=None)
    starts = []
    monkeypatch.setattr(live, "start", lambda: (starts.append(1), setattr(live, "pool", Stub())))
    live.pool = broken = Stub()

    async def three_requests():
        asked = [asyncio.ensure_future(live("update", b"{}")) for _ in range(3)]
        await asyncio.sleep(0.01)  # all three are waiting on the pool when it breaks
        for future in broken.futures:
            future.set_exception(BrokenProcessPool("a worker died"))
        return await asyncio.gather(*asked)

    answers = asyncio.run(three_requests())
    assert [status for status, _ in answers] == [503, 503, 503]
    assert len(starts) == 1 and live.pool is not broken


def test_the_default_worker_count_passes_its_own_check(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 128)  # a big server: one worker per core would be refused
    args = build_parser().parse_args(["serve"])
    assert args.workers == 64
