"""SIGKILL at any point of a run, then ``--resume``: the run ends with the weights of an
uninterrupted one, bit for bit, its model file matches its checkpoint, and no temporary
file is left.

Every run is a real ``convscope train`` in a child process forked from a server that has
the package imported already (multiprocessing's forkserver), so a run costs a fraction of
a second. Targeted kills are armed in the child by wrapping ``os.fdopen``, ``os.fsync`` and
``os.replace``: the child kills itself half-way through writing a file, after writing it but
before its rename, or right after the rename, for each file the loop writes, at every
epoch. Random kills come from the parent at times drawn from a seeded Generator.
"""

import hashlib
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from convscope.files import TEMPORARY
from convscope.run_model import model_mismatch

EPOCHS = 2
BASE = ["train", "--epochs", str(EPOCHS), "--batch-size", "16", "--no-report", "--seed", "0"]
FILES = ("checkpoint.safetensors", "metrics.jsonl", "model.safetensors")
PHASES = ("half", "written", "renamed")  # half-way through the data, before the rename, after it
TARGETED = [(name, phase, epoch) for name in FILES for phase in PHASES for epoch in range(1, EPOCHS + 1)]
TARGETED += [("run.json", "written", 1), ("run.json", "renamed", 1)]
RANDOM_KILLS = 8
pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir() or "forkserver" not in
                                multiprocessing.get_all_start_methods(), reason="needs Linux's /proc and a fork server")


# ----- in the child -------------------------------------------------------------------------------
def _killed():
    os.kill(os.getpid(), signal.SIGKILL)


def _temporary_of(fd, name):
    """Whether ``fd`` is open on a temporary file write_atomic makes for ``name``."""
    try:
        opened = Path(os.readlink(f"/proc/self/fd/{fd}")).name
    except OSError:
        return False
    return opened.startswith(f".{name}.") and TEMPORARY.fullmatch(opened) is not None


def _arm(name, phase, occurrence):
    """Kill this process at the ``occurrence``-th write of ``name``, at ``phase``."""
    seen = [0]

    def hit():
        seen[0] += 1
        return seen[0] == occurrence

    fdopen, replace = os.fdopen, os.replace
    if phase == "half":
        def half_fdopen(fd, *args, **kwargs):
            out = fdopen(fd, *args, **kwargs)
            if _temporary_of(fd, name) and hit():
                write = out.write
                out.write = lambda data: (write(data[:len(data) // 2]), out.flush(), _killed())
            return out
        os.fdopen = half_fdopen
    elif phase == "written":
        os.fsync = lambda fd: _temporary_of(fd, name) and hit() and _killed()
    else:
        os.replace = lambda src, dst: (replace(src, dst), Path(dst).name == name and hit() and _killed())[0]


def _train(argv, data_dir, log, kill):
    """One ``convscope train`` (with a kill armed, or None); its output goes to ``log``."""
    os.environ["CONVSCOPE_DATA"] = data_dir
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.fsync = lambda fd: None  # a kill loses no written data (a power cut would): spare the disk
    if kill is not None:
        _arm(*kill)
    from convscope.cli import main
    sys.exit(main(argv))


# ----- in the test --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def forks():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["convscope.cli", "convscope.cli.train", "convscope.cli.inspect",
                                     "convscope.cli.serve", "convscope.runs", "test_kill_campaign"])
    return context


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A tiny `digits` cache: 40 images (32 train, 8 val) whose class is a bright bar's row."""
    root = tmp_path_factory.mktemp("cache")
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 10
    images = (rng.random((40, 1, 28, 28)) * 40).astype(np.uint8)
    for k in range(10):
        images[labels == k, 0, 4 + 2 * k, 6:22] = 255
    (root / "digits").mkdir()
    np.savez(root / "digits" / "digits.npz", images=images, labels=labels, is_val=np.arange(40) % 5 == 0)
    return str(root)


def train(forks, data_dir, out, kill=None, kill_after=None):
    """Run ``convscope train`` into ``out`` (resuming if it holds a run); its exit code and log.
    ``kill_after`` (seconds): the parent sends SIGKILL then, if it still runs."""
    log = out.parent / f"{out.name}.log"
    child = forks.Process(target=_train, args=(BASE + ["--out", str(out), "--resume"], data_dir, str(log), kill))
    child.start()
    child.join(kill_after)
    if child.exitcode is None:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
    return child.exitcode, log.read_text() if log.exists() else ""


def digests(run):
    """sha256 of every tensor of the run's model file, by name."""
    return {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
            for k, v in load_file(run / "model.safetensors").items()}


def temporaries(run):
    return sorted(p.name for p in run.iterdir() if TEMPORARY.fullmatch(p.name))


def records(run):
    """The run's metrics log without its timings (which differ between runs)."""
    drop = ("seconds", "images_per_s")
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in open(run / "metrics.jsonl")]


def finish(forks, data_dir, out, reference):
    """Resume ``out`` to the end; check it against the uninterrupted ``reference`` run."""
    code, said = train(forks, data_dir, out)
    assert code == 0, said
    assert digests(out) == digests(reference), f"{out.name}: final weights differ from the uninterrupted run"
    assert model_mismatch(out / "model.safetensors", out / "checkpoint.safetensors") is None
    assert records(out) == records(reference), f"{out.name}: the metrics log differs from the uninterrupted run's"
    assert temporaries(out) == [], f"{out.name}: temporary files left: {temporaries(out)}"
    return said


def test_sigkill_anywhere_then_resume_gives_the_uninterrupted_weights(forks, data_dir, tmp_path):
    reference = tmp_path / "reference"
    code, said = train(forks, data_dir, reference)
    assert code == 0, said
    start = time.perf_counter()  # a run's length, once the fork server is up: where random kills fall
    assert train(forks, data_dir, tmp_path / "timed")[0] == 0
    seconds = time.perf_counter() - start
    killed = 0
    for name, phase, epoch in TARGETED:
        out = tmp_path / f"{name}-{phase}-{epoch}"
        code, _ = train(forks, data_dir, out, kill=(name, phase, epoch))
        assert code == -signal.SIGKILL, f"{out.name}: the kill point was never reached (exit {code})"
        killed += 1
        said = finish(forks, data_dir, out, reference)
        if name == "checkpoint.safetensors" and phase == "renamed":  # the model file was one epoch behind
            why = "it is missing" if epoch == 1 else f"it holds epoch {epoch - 1} but the checkpoint epoch {epoch}"
            assert f"repaired {out / 'model.safetensors'}: {why}" in said, said
    rng = np.random.default_rng(14)
    for k, delay in enumerate(rng.uniform(0.0, seconds, RANDOM_KILLS)):
        out = tmp_path / f"random-{k}"
        code, _ = train(forks, data_dir, out, kill_after=delay)
        killed += code == -signal.SIGKILL
        finish(forks, data_dir, out, reference)
    assert killed >= len(TARGETED) + 1  # at least one random kill landed too


def test_a_kill_during_the_repair_is_repaired_again(forks, data_dir, tmp_path):
    reference, out = tmp_path / "reference", tmp_path / "twice"
    assert train(forks, data_dir, reference)[0] == 0
    assert train(forks, data_dir, out, kill=("checkpoint.safetensors", "renamed", EPOCHS))[0] == -signal.SIGKILL
    code, said = train(forks, data_dir, out, kill=("model.safetensors", "half", 1))  # the repair's write
    assert code == -signal.SIGKILL and "repaired" not in said
    said = finish(forks, data_dir, out, reference)
    assert "repaired" in said and f"already finished ({EPOCHS} of {EPOCHS} epochs)" in said
