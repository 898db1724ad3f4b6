"""The training loop: exact resumption after a kill, divergence handling, metrics, early stop."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from convscope import functional as F
from convscope import nn
from convscope.data import DataLoader
from convscope.io import load_checkpoint
from convscope.train import Callback, TrainingDiverged, _early_stop, evaluate, fit

SETUP = textwrap.dedent('''
    import numpy as np
    from convscope import nn, optim
    from convscope.data import DataLoader, RandomShift

    def make_run():
        """Tiny synthetic problem exercising every piece of state: dropout, augmentation,
        shuffling, momentum and a one-cycle schedule."""
        data_rng = np.random.default_rng(42)
        labels = data_rng.integers(0, 3, 96)
        images = (data_rng.random((96, 1, 10, 10)) * 60).astype(np.uint8)
        images[np.arange(96), 0, 2 + 2 * labels, 2:8] = 255
        init_rng, loader_rng = np.random.default_rng(1), np.random.default_rng(2)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=init_rng), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Dropout(0.3, rng=init_rng), nn.Linear(100, 3, rng=init_rng))
        loader = DataLoader((images, labels), batch_size=16, shuffle=True, rng=loader_rng,
                            augment=RandomShift(1))
        val = DataLoader((images[:32], labels[:32]), batch_size=32)
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        sched = optim.OneCycleLR(opt, max_lr=0.1, total_steps=4 * len(loader))
        return model, loader, val, opt, sched, {"init": init_rng, "loader": loader_rng}
''')
exec(SETUP)

KILLER = SETUP + textwrap.dedent('''
    import os, signal, sys
    from convscope.train import Callback, fit

    class Kill(Callback):
        def on_batch_end(self, epoch, batch, stats):
            if epoch == 2 and batch == 3:
                os.kill(os.getpid(), signal.SIGKILL)

    model, loader, val, opt, sched, rngs = make_run()
    fit(model, loader, opt, 4, val, scheduler=sched, callbacks=[Kill()], run_dir=sys.argv[1], rngs=rngs)
''')


def test_killed_run_resumes_to_identical_weights(tmp_path):
    model, loader, val, opt, sched, rngs = make_run()  # noqa: F821 (defined by exec)
    fit(model, loader, opt, 4, val, scheduler=sched, rngs=rngs)
    reference = {k: v.copy() for k, v in model.state_dict().items()}

    run_dir = tmp_path / "run"
    env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", ""))
    proc = subprocess.run([sys.executable, "-c", KILLER, str(run_dir)], env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr  # really killed by SIGKILL, mid-epoch 3
    with open(run_dir / "metrics.jsonl") as f:
        assert [json.loads(line)["epoch"] for line in f] == [1, 2]

    model, loader, val, opt, sched, rngs = make_run()  # noqa: F821
    history = fit(model, loader, opt, 4, val, scheduler=sched, run_dir=run_dir, rngs=rngs, resume=True)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, reference[key], err_msg=key)


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path):
    model, loader, val, opt, sched, rngs = make_run()  # noqa: F821
    calls = {"n": 0}

    def exploding_loss(logits, y):
        calls["n"] += 1
        loss = F.cross_entropy(logits, y)
        # epoch 1 makes 6 training calls and 1 validation call: call 9 is epoch 2, batch 2
        return loss * float("nan") if calls["n"] >= 9 else loss

    with pytest.raises(TrainingDiverged, match=r"became nan at epoch 2, batch 2"):
        fit(model, loader, opt, 4, val, loss_fn=exploding_loss, scheduler=sched, run_dir=tmp_path, rngs=rngs)
    fresh, _, _, opt2, sched2, rngs2 = make_run()  # noqa: F821
    progress = load_checkpoint(tmp_path / "checkpoint.safetensors", fresh, opt2, sched2, rngs2)
    assert progress["epoch"] == 1
    assert all(np.isfinite(v).all() for v in fresh.state_dict().values())


def test_metrics_log_and_callbacks(tmp_path):
    model, loader, val, opt, sched, rngs = make_run()  # noqa: F821
    seen = []

    class Record(Callback):
        def on_epoch_start(self, epoch, epochs, batches):
            seen.append(("start", epoch, epochs, batches))

        def on_epoch_end(self, epoch, record):
            seen.append(("end", epoch, record["epoch"]))

    history = fit(model, loader, opt, 2, val, scheduler=sched, callbacks=[Record()], run_dir=tmp_path, rngs=rngs)
    assert seen == [("start", 0, 2, 6), ("end", 0, 1), ("start", 1, 2, 6), ("end", 1, 2)]
    lines = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert lines == history
    assert {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s"} <= set(lines[0])
    assert history[1]["train_loss"] < history[0]["train_loss"]


def test_early_stopping_rule():
    progress = {"best_val_loss": None, "bad_epochs": 0}
    losses = [1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.76]
    stops = [_early_stop(progress, {"val_loss": v}, patience=2) for v in losses]
    assert stops == [False, False, False, True, False, False, True]
    assert progress["best_val_loss"] == 0.7


def test_evaluate_confusion_matrix():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, rng=np.random.default_rng(0)))
    images = np.random.default_rng(1).integers(0, 255, (10, 1, 2, 2)).astype(np.uint8)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    result = evaluate(model, DataLoader((images, labels), batch_size=4))
    confusion = result["confusion"]
    assert confusion.sum() == 10 and list(confusion.sum(axis=1)) == [4, 3, 3]
    assert result["accuracy"] == pytest.approx(np.trace(confusion) / 10)
    assert np.array_equal(result["predictions"], result["probabilities"].argmax(axis=1))
