"""Stops that leave a run folder sound: a NaN validation loss, weight or optimizer state ends
the run before its checkpoint is written; SIGTERM and Ctrl-C end a command with one line
(exit 143 and 130), also during the start-up imports."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from convscope import nn, optim
from convscope.cli import main
from convscope.cli.progress import ProgressBar
from convscope.data import DataLoader, Dataset
from convscope.files import TEMPORARY
from convscope.run_model import model_mismatch
from convscope.train import Callback, TrainingDiverged, fit

BASE = ["train", "--batch-size", "32", "--no-report", "--no-augment"]


def tiny_run(tmp_path):
    rng = np.random.default_rng(0)
    data = Dataset((rng.random((32, 1, 4, 4)) * 255).astype(np.uint8), rng.integers(0, 2, 32))
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2, rng=rng))
    return model, DataLoader(data, 8), optim.AdamW(model.parameters(), lr=0.01)


class Spoil(Callback):
    """After the last batch of epoch ``epoch`` (from 0), make one array hold inf."""

    def __init__(self, epoch, array):
        self.epoch, self.array = epoch, array

    def on_batch_end(self, epoch, batch, stats):
        if epoch == self.epoch and batch == 3:
            self.array()[0] = np.inf


class NanOnSecondPass:
    """A validation loader whose second pass (epoch 2) holds a NaN image."""

    def __init__(self, loader):
        self.loader, self.passes = loader, 0

    def __iter__(self):
        self.passes += 1
        for x, y in self.loader:
            yield (np.full_like(x, np.nan) if self.passes == 2 else x), y


@pytest.mark.parametrize("what, message", [
    ("val", "the validation loss became nan at epoch 2; the checkpoint of epoch 1 is kept"),
    ("weight", "the weight 1.bias holds NaN or infinite values at epoch 2; the checkpoint of epoch 1 is kept"),
    ("optimizer", "the optimizer's state 1.m holds NaN or infinite values at epoch 2; the checkpoint of epoch 1"),
], ids=["val_loss", "weight", "optimizer_state"])
def test_a_non_finite_epoch_is_never_checkpointed(tmp_path, what, message):
    model, loader, optimizer = tiny_run(tmp_path)
    val, callbacks = loader, []
    if what == "val":
        val = NanOnSecondPass(loader)
    elif what == "weight":  # without validation, which would see a NaN loss first
        val, callbacks = None, [Spoil(1, lambda: model[1].bias.data)]
    else:
        callbacks = [Spoil(1, lambda: optimizer.state[1]["m"])]
    before = {}

    class Keep(Callback):
        def on_epoch_end(self, epoch, record):
            before.update({p.name: p.read_bytes() for p in tmp_path.iterdir()})

    with pytest.raises(TrainingDiverged, match=message):
        fit(model, loader, optimizer, 3, val, callbacks=[*callbacks, Keep()], run_dir=tmp_path)
    assert before and {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # epoch 1's, byte for byte


def test_the_command_says_a_nan_validation_loss_in_one_line(cache, capsys, monkeypatch):
    import convscope.train as train

    real = train.evaluate
    calls = {"n": 0}

    def evaluate(*args, **kwargs):
        calls["n"] += 1
        result = real(*args, **kwargs)
        return dict(result, loss=float("inf")) if calls["n"] == 2 else result

    monkeypatch.setattr(train, "evaluate", evaluate)
    assert main(BASE + ["--epochs", "3", "--out", str(cache / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("convscope train: error: the validation loss became inf at epoch 2; the checkpoint of "
                       "epoch 1 is kept; try a lower learning rate")
    assert model_mismatch(cache / "run" / "model.safetensors", cache / "run" / "checkpoint.safetensors") is None


@pytest.mark.parametrize("signum, code, said", [
    (signal.SIGTERM, 143, "convscope train: terminated (SIGTERM)"),
    (signal.SIGINT, 130, "convscope train: interrupted"),
], ids=["sigterm", "sigint"])
def test_a_signal_mid_epoch_stops_the_command_with_one_line(cache, capsys, monkeypatch, signum, code, said):
    real = ProgressBar.on_batch_end

    def on_batch_end(self, epoch, batch, stats):
        real(self, epoch, batch, stats)
        if (epoch, batch) == (1, 2):
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(ProgressBar, "on_batch_end", on_batch_end)
    handler = signal.getsignal(signal.SIGTERM)
    assert main(BASE + ["--epochs", "3", "--out", str(cache / "run")]) == code
    err = capsys.readouterr().err
    assert err.rstrip().splitlines()[-1] == said and "Traceback" not in err
    assert signal.getsignal(signal.SIGTERM) is handler  # the command's handler is gone again
    run = cache / "run"
    assert not [p for p in run.iterdir() if TEMPORARY.fullmatch(p.name)]
    assert model_mismatch(run / "model.safetensors", run / "checkpoint.safetensors") is None  # epoch 1, both
    monkeypatch.setattr(ProgressBar, "on_batch_end", real)
    assert main(["train", "--out", str(run), "--resume", "--no-report"]) == 0


def test_a_real_sigterm_ends_the_process_with_143(cache):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = cache / "run"
    child = subprocess.Popen([sys.executable, "-m", "convscope.cli"] + BASE + ["--epochs", "500", "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not (out / "metrics.jsonl").exists():  # an epoch is checkpointed
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.02)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143, err
    assert err.rstrip().splitlines()[-1] == "convscope train: terminated (SIGTERM)" and "Traceback" not in err


STARTUP = """
import sys
sys.orig_argv = [sys.executable, "-m", "convscope.cli", "train"]   # as `python -m convscope.cli train` sees it

class CtrlC:  # Ctrl-C pressed while the package imports its optimizers
    def find_spec(self, name, path=None, target=None):
        if name == "convscope.optim":
            raise KeyboardInterrupt

sys.meta_path.insert(0, CtrlC())
import convscope.cli
"""


def test_ctrl_c_during_the_start_up_imports_gives_one_line():
    child = subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True, timeout=60)
    assert child.stderr == "convscope: interrupted\n"
    assert child.returncode == -signal.SIGINT  # the shell shows 130


def test_ctrl_c_before_the_command_runs_gives_one_line(capsys, monkeypatch):
    import convscope.cli as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["train", "--epochs", "1"]) == 130
    assert capsys.readouterr().err == "convscope train: interrupted\n"
