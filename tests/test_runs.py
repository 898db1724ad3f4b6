"""convscope.runs: the run the command line trains, set up and found from Python."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from convscope import nn, optim
from convscope.cli import main
from convscope.data import DataLoader, Dataset
from convscope.io import checkpoint_progress
from convscope.runs import RunInfo, RunOptions, find_runs, load_data, prepare_run
from convscope.train import Callback, StopTraining, fit

BASE = ["train", "--epochs", "2", "--batch-size", "32", "--no-report", "--no-augment"]
SMALL = dict(epochs=2, batch_size=32, augment=False)


def weights(run_dir):
    return load_file(run_dir / "model.safetensors")


def same_weights(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def without_timings(run_dir):
    drop = ("seconds", "images_per_s")
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in open(run_dir / "metrics.jsonl")]


class StopAt(Callback):
    """Raise StopTraining after batch ``batch`` of epoch ``epoch`` (both from 0)."""

    def __init__(self, epoch, batch):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, epoch, batch, stats):
        if (epoch, batch) == (self.epoch, self.batch):
            raise StopTraining


@pytest.fixture
def finished(cache):
    """A finished 2-epoch run in ``cache/finished``, trained through the library."""
    out = cache / "finished"
    prepare_run(RunOptions(out=str(out), **SMALL)).train()
    return out


def test_prepare_and_train_write_what_the_command_writes(cache, capsys):
    assert main(BASE + ["--out", str(cache / "cli")]) == 0
    said = capsys.readouterr().err
    run = prepare_run(RunOptions(out=str(cache / "lib"), **SMALL))
    assert run.notes == [f"training lenet5 on digits: 240 train / 60 val images, adamw lr 0.003 onecycle, "
                         f"batch 32, 2 epochs, augment none -> {cache / 'lib'}"]
    assert said.startswith(run.notes[0].replace("lib", "cli") + "\n")
    assert (run.name, run.data, run.done, run.epochs, len(run.train_set), len(run.val_set)) == \
        ("lenet5", "digits", 0, 2, 240, 60)
    history = run.train()
    assert [r["epoch"] for r in history] == [1, 2]
    names = sorted(p.name for p in (cache / "cli").iterdir())
    assert names == sorted(p.name for p in (cache / "lib").iterdir()) == \
        ["checkpoint.safetensors", "metrics.jsonl", "model.safetensors", "run.json", "training.lock"]
    assert (cache / "cli" / "run.json").read_bytes() == (cache / "lib" / "run.json").read_bytes()
    assert without_timings(cache / "cli") == without_timings(cache / "lib")
    assert same_weights(weights(cache / "cli"), weights(cache / "lib"))


@pytest.mark.parametrize("options, message", [
    (dict(), "already holds a training run; pass --resume"),
    (dict(resume=True, lr=0.1), "cannot resume {out} with other settings than its own: --lr 0.1 (the run used 0.003)"),
    (dict(resume=True, epochs=3), "{out} was set up for 2 epochs; to train it on to 3, pass --extend"),
    (dict(extend=True, epochs=3), "--extend continues a finished or interrupted run: pass --resume with it"),
], ids=["existing", "other_lr", "more_epochs", "extend_alone"])
def test_refusals_raise_before_writing(finished, options, message):
    before = {p.name: p.read_bytes() for p in finished.iterdir()}
    with pytest.raises(ValueError) as error:
        prepare_run(RunOptions(out=str(finished), **{**SMALL, **options}))
    assert message.format(out=finished) in str(error.value)
    assert {p.name: p.read_bytes() for p in finished.iterdir()} == before


def test_resume_with_the_runs_own_settings_is_not_refused(finished):
    run = prepare_run(RunOptions(out=str(finished), resume=True))  # augment=True means "the run's"
    assert run.notes[0] == f"resuming {finished} from epoch 2 of 2" and run.done == 2
    assert run.config["augment"] == {} and run.train()[-1]["epoch"] == 2


def test_a_damaged_run_json_is_refused_on_resume(finished):
    (finished / "run.json").write_text('{"model": "lenet5"}')
    with pytest.raises(ValueError, match="its run.json does not record data, seed, epochs"):
        prepare_run(RunOptions(out=str(finished), resume=True))


def test_stop_mid_epoch_keeps_the_last_epoch_and_the_command_resumes_it_exactly(cache, capsys):
    whole, stopped = cache / "whole", cache / "stopped"
    prepare_run(RunOptions(out=str(whole), **dict(SMALL, epochs=3))).train()
    history = prepare_run(RunOptions(out=str(stopped), **dict(SMALL, epochs=3))).train([StopAt(1, 2)])
    assert [r["epoch"] for r in history] == [1]
    assert checkpoint_progress(stopped / "checkpoint.safetensors")["epoch"] == 1
    assert len(open(stopped / "metrics.jsonl").readlines()) == 1
    assert not same_weights(weights(stopped), weights(whole))
    assert main(["train", "--out", str(stopped), "--resume", "--no-report"]) == 0
    assert "resuming" in capsys.readouterr().err
    assert same_weights(weights(stopped), weights(whole))
    assert without_timings(stopped) == without_timings(whole)


def test_stop_at_an_epochs_end_lets_the_other_callbacks_hear_of_it(tmp_path):
    rng = np.random.default_rng(0)
    data = Dataset((rng.random((32, 1, 4, 4)) * 255).astype(np.uint8), rng.integers(0, 2, 32))
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2, rng=rng))

    class Stop(Callback):
        def on_epoch_end(self, epoch, record):
            raise StopTraining

    class Heard(Callback):
        def __init__(self):
            self.epochs = []

        def on_epoch_end(self, epoch, record):
            self.epochs.append(epoch)

    heard = Heard()
    history = fit(model, DataLoader(data, 8), optim.SGD(model.parameters(), lr=0.1), 5,
                  callbacks=[Stop(), heard], run_dir=tmp_path)
    assert [r["epoch"] for r in history] == [1] and heard.epochs == [0]
    assert checkpoint_progress(tmp_path / "checkpoint.safetensors")["epoch"] == 1


def test_find_runs_lists_each_run_and_says_what_is_wrong(finished):
    root = finished.parent
    prepare_run(RunOptions(out=str(root / "paused"), **dict(SMALL, epochs=3))).train([StopAt(1, 0)])
    (root / "damaged").mkdir()
    (root / "damaged" / "run.json").write_text("{not json")
    (root / "broken").mkdir()
    (root / "broken" / "checkpoint.safetensors").write_bytes(b"\x01\x02")
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a run")
    (root / "loose.txt").write_text("a file")
    runs = {info.path.name: info for info in find_runs(root)}
    assert list(runs) == ["broken", "damaged", "finished", "paused"]  # sorted; cache/, notes/, loose.txt skipped
    assert runs["finished"] == RunInfo(finished, "lenet5", "digits", 2, 2, finished=True, has_model=True)
    assert runs["paused"] == RunInfo(root / "paused", "lenet5", "digits", 3, 1, has_model=True, resumable=True)
    assert runs["damaged"].problem.startswith("its run.json (what the run was trained with) cannot be read")
    assert not runs["damaged"].resumable and runs["damaged"].model is None
    assert "its checkpoint cannot be read" in runs["broken"].problem and "too short" in runs["broken"].problem
    assert find_runs(root / "nowhere") == []


def test_find_runs_sees_a_run_that_stopped_early(cache):
    out = cache / "patient"
    prepare_run(RunOptions(out=str(out), epochs=12, lr=0.05, patience=1, batch_size=32, augment=False)).train()
    [info] = find_runs(cache)
    assert (info.done, info.epochs, info.stopped_early, info.finished, info.resumable) == (2, 12, True, True, False)


def test_load_data_by_name_or_folder(cache, tmp_path):
    [val] = load_data("digits", ("val",))
    assert len(val) == 60 and val.images.shape[1:] == (1, 28, 28)
    images = (np.random.default_rng(0).random((30, 1, 20, 20)) * 255).astype(np.uint8)
    np.savez(tmp_path / "mine.npz", images=images, labels=np.arange(30) % 3)
    notes = []
    train, val = load_data(str(tmp_path / "mine.npz"), ("train", "val"), notes=notes)
    assert (len(train), len(val), notes) == (27, 3, [])
    with pytest.raises(ValueError, match="'nowhere' is neither a dataset"):
        load_data("nowhere", ("val",))


def test_one_process_trains_a_folder_at_a_time(cache):
    """While a run trains, a second start on its folder is refused before anything is written;
    find_runs says it is training (and not resumable); afterwards it may be trained again."""
    from convscope.locks import FolderBusy, is_locked
    out = cache / "busy"
    first = prepare_run(RunOptions(epochs=1, out=str(out), augment=False))
    assert is_locked(out) and find_runs(cache)[0].training and not find_runs(cache)[0].resumable
    before = (out / "run.json").read_bytes()
    with pytest.raises(FolderBusy, match="being trained right now"):
        prepare_run(RunOptions(epochs=1, out=str(out), resume=True))
    assert (out / "run.json").read_bytes() == before
    first.train()
    assert not is_locked(out) and not find_runs(cache)[0].training
    assert main(["train", "--resume", "--out", str(out), "--no-report"]) == 0  # free again
