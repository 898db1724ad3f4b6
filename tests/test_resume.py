"""Runs that tell the truth: --resume refuses other settings before writing anything, more
epochs only with --extend (saying what the schedule does), and early stopping keeps the best
epoch's weights and says which."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from convscope import nn, optim
from convscope.cli import main
from convscope.data import DataLoader, Dataset
from convscope.train import Callback, fit

BASE = ["train", "--epochs", "2", "--batch-size", "32", "--no-report", "--no-augment"]


def files_of(run):
    return {path.name: path.read_bytes() for path in sorted(run.iterdir())}


@pytest.fixture
def run(cache, capsys):
    """A finished 2-epoch run in ``cache/run``."""
    out = cache / "run"
    assert main(BASE + ["--out", str(out)]) == 0
    capsys.readouterr()
    return out


@pytest.mark.parametrize("extra, message", [
    (["--model", "vgg"], "--model vgg (the run used lenet5)"),
    (["--optimizer", "sgd"], "--optimizer sgd (the run used adamw)"),
    (["--lr", "0.1"], "--lr 0.1 (the run used 0.003)"),
    (["--batch-size", "16"], "--batch-size 16 (the run used 32)"),
    (["--seed", "3"], "--seed 3 (the run used 0)"),
    (["--epochs", "3"], "was set up for 2 epochs; to train it on to 3, pass --extend"),
], ids=["model", "optimizer", "lr", "batch", "seed", "more_epochs"])
def test_resume_with_other_settings_is_refused_before_writing(run, capsys, extra, message):
    before = files_of(run)
    assert main(["train", "--out", str(run), "--resume", "--no-report"] + extra) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert files_of(run) == before  # run.json, checkpoint, metrics and model untouched


def test_resume_on_another_dataset_is_refused(run, capsys, tmp_path):
    images = (np.random.default_rng(0).random((40, 1, 28, 28)) * 255).astype(np.uint8)
    np.savez(tmp_path / "other.npz", images=images, labels=np.arange(40) % 4)
    before = files_of(run)
    assert main(["train", "--out", str(run), "--resume", "--data", str(tmp_path / "other.npz")]) == 1
    assert "(the run used digits)" in capsys.readouterr().err and files_of(run) == before


def test_resume_of_a_finished_run_trains_nothing_and_says_so(run, capsys):
    before = load_file(run / "model.safetensors")
    assert main(["train", "--out", str(run), "--resume", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "resuming" in err and "from epoch 2 of 2" in err and "already finished (2 of 2 epochs)" in err
    after = load_file(run / "model.safetensors")
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_extend_trains_on_and_says_how_the_schedule_changes(run, capsys):
    assert main(["train", "--out", str(run), "--resume", "--extend", "--epochs", "3", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "resuming" in err and "from epoch 2 of 3" in err
    assert "extending the run from 2 to 3 epochs: its onecycle schedule now spans 3 epochs" in err
    assert "already finished" not in err
    assert json.load(open(run / "run.json"))["epochs"] == 3
    assert [json.loads(line)["epoch"] for line in open(run / "metrics.jsonl")] == [1, 2, 3]


def test_an_interrupted_run_resumes_without_repeating_its_options(cache, capsys):
    out = cache / "interrupted"
    assert main(BASE + ["--out", str(out), "--lr", "0.002"]) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--no-report"]) == 0  # its own lr, batch, epochs
    assert "already finished" in capsys.readouterr().err


def test_extend_needs_resume(cache, capsys):
    assert main(BASE + ["--out", str(cache / "new"), "--extend"]) == 1
    assert "pass --resume with it" in capsys.readouterr().err


class Snapshots(Callback):
    """The weights at the end of each epoch, as the loop leaves them."""

    def __init__(self, model):
        self.model, self.weights = model, {}

    def on_epoch_end(self, epoch, record):
        self.weights[epoch + 1] = [p.data.copy() for p in self.model.parameters()]


def test_early_stopping_keeps_the_best_epochs_weights(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = (rng.random((64, 1, 6, 6)) * 255).astype(np.uint8), rng.integers(0, 4, 64)  # noise: overfits
    train = DataLoader(Dataset(images[:48], labels[:48]), batch_size=16, shuffle=True, rng=rng)
    val = DataLoader(Dataset(images[48:], labels[48:]), batch_size=16)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 64, rng=rng), nn.ReLU(), nn.Linear(64, 4, rng=rng))
    snapshots = Snapshots(model)
    history = fit(model, train, optim.Adam(model.parameters(), lr=0.01), 30, val, patience=2,
                  callbacks=[snapshots], run_dir=tmp_path, rngs={"loader": rng})
    last = history[-1]
    assert last["stopped_early"] and last["epoch"] < 30
    best = min(history, key=lambda r: r["val_loss"])
    assert last["best_epoch"] == best["epoch"] and last["epoch"] == best["epoch"] + 2
    final = [p.data for p in model.parameters()]
    assert all(np.array_equal(a, b) for a, b in zip(final, snapshots.weights[last["epoch"]]))  # what was saved
    resumed = nn.Sequential(nn.Flatten(), nn.Linear(36, 64, rng=rng), nn.ReLU(), nn.Linear(64, 4, rng=rng))
    assert fit(resumed, train, optim.Adam(resumed.parameters(), lr=0.01), 30, val, patience=2, run_dir=tmp_path,
               rngs={"loader": rng}, resume=True) == history  # a stopped run stays stopped
    np.testing.assert_array_equal(resumed[1].weight.data, model[1].weight.data)


def test_early_stopping_weights_are_those_of_the_best_epoch():
    rng = np.random.default_rng(1)
    images, labels = (rng.random((64, 1, 6, 6)) * 255).astype(np.uint8), rng.integers(0, 4, 64)
    train = DataLoader(Dataset(images[:48], labels[:48]), batch_size=16, shuffle=True, rng=rng)
    val = DataLoader(Dataset(images[48:], labels[48:]), batch_size=16)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 64, rng=rng), nn.ReLU(), nn.Linear(64, 4, rng=rng))

    class Record(Callback):
        def __init__(self):
            self.by_epoch = {}

        def on_epoch_end(self, epoch, record):
            if not record.get("stopped_early"):
                self.by_epoch[epoch + 1] = [p.data.copy() for p in model.parameters()]

    recorder = Record()
    history = fit(model, train, optim.Adam(model.parameters(), lr=0.01), 30, val, patience=2, callbacks=[recorder])
    kept = history[-1]["best_epoch"]
    assert all(np.array_equal(a, b) for a, b in zip([p.data for p in model.parameters()], recorder.by_epoch[kept]))


def test_the_command_says_it_stopped_early(cache, capsys):
    out = cache / "patient"
    assert main(["train", "--epochs", "12", "--lr", "0.05", "--patience", "1", "--out", str(out), "--no-report",
                 "--no-augment", "--batch-size", "32"]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert records[-1]["stopped_early"] and records[-1]["epoch"] == 2  # lr 0.05: the validation loss jumps
    kept = records[-1]["best_epoch"]
    assert kept == 1
    assert "stopped early after epoch 2: the validation loss had not improved for 1 epoch;" in captured.err
    assert f"kept the weights of epoch {kept}" in captured.err and f"weights of epoch {kept}" in captured.out


@pytest.mark.parametrize("damage, message", [
    (lambda config: {k: v for k, v in config.items() if k not in ("epochs", "seed")}, "does not record seed, epochs"),
    (lambda config: [1, 2], "does not record model"),
], ids=["missing_keys", "not_an_object"])
def test_a_damaged_run_json_is_refused_clearly(run, capsys, damage, message):
    config = json.load(open(run / "run.json"))
    (run / "run.json").write_text(json.dumps(damage(config)))
    before = files_of(run)
    assert main(["train", "--out", str(run), "--resume", "--no-report"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and files_of(run) == before


def test_patience_is_part_of_the_run_and_a_stopped_run_is_not_extended(cache, capsys):
    out = cache / "patient"
    assert main(BASE[:2] + ["12", "--lr", "0.05", "--patience", "1"] + BASE[3:] + ["--out", str(out)]) == 0
    assert json.load(open(out / "run.json"))["patience"] == 1
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--patience", "4", "--no-report"]) == 1
    assert "--patience 4 (the run used 1)" in capsys.readouterr().err
    before = files_of(out)
    assert main(["train", "--out", str(out), "--resume", "--extend", "--epochs", "20", "--no-report"]) == 1
    assert "stopped early at epoch 2" in capsys.readouterr().err and files_of(out) == before
