"""Regressing a position end to end: the Positions task, the locator and the command line."""

import base64
import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from convscope import models, nn, optim
from convscope.cli import main
from convscope.data import SCENE_DATASETS, DataLoader, Dataset, load_dataset
from convscope.io import load_model, save_model
from convscope.runs import RunOptions, prepare_run
from convscope.tasks import Classification, Positions, task_for, task_from_config
from convscope.tensor import Tensor
from convscope.train import Callback, StopTraining, fit


# ----- the task on hand cases -----------------------------------------------------------------------
def test_the_model_learns_pixels_over_the_scale_and_figures_are_in_pixels():
    task = Positions(scale=64)
    outputs = np.array([[0.5, 0.25], [0.0, 1.0]])  # (32, 16) and (0, 64) px
    targets = np.array([[35.0, 20.0], [0.0, 64.0]])  # errors 5 px and 0 px
    sums = task.batch_sums(outputs, targets)
    assert task.metrics(sums, 2) == {"mpe": 2.5}
    np.testing.assert_allclose(task.predictions(outputs), [[32, 16], [0, 64]])
    loss = task.loss(Tensor(outputs), targets)  # mean squared error of the scaled values
    assert loss.item() == pytest.approx(((3 / 64) ** 2 + (4 / 64) ** 2) / 4)


def test_evaluate_gives_mean_median_and_the_fraction_within_a_pixel():
    task = Positions(scale=10)
    outputs = np.array([[0.1, 0.1], [0.2, 0.2], [0.5, 0.5], [0.0, 0.0]])
    targets = np.array([[1.0, 1.5], [2.0, 2.0], [8.0, 9.0], [0.6, 0.8]])  # errors 0.5, 0, 5, 1
    result = task.evaluate(outputs, targets)
    assert result["mean_error"] == pytest.approx(6.5 / 4) and result["median_error"] == pytest.approx(0.75)
    assert result["within_fraction"] == 0.75  # 1 px exactly counts as within
    np.testing.assert_allclose(result["positions"], [[1, 1], [2, 2], [5, 5], [0, 0]])


def test_the_task_follows_the_targets_and_round_trips_through_its_config():
    assert isinstance(task_for(np.array([0, 3, 1]), (28, 28)), Classification)
    positions = task_for(np.zeros((5, 2), np.float32), (64, 48))
    assert isinstance(positions, Positions) and positions.scale == 64
    again = task_from_config(json.loads(json.dumps(positions.config())))
    assert isinstance(again, Positions) and again.config() == positions.config()
    assert isinstance(task_from_config(None), Classification)  # files from before tasks were recorded
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        task_for(np.zeros((5, 3, 3)), (8, 8))
    with pytest.raises(ValueError, match="scale must be > 0"):
        Positions(scale=0)


# ----- the model ------------------------------------------------------------------------------------
def test_locator_shapes_and_model_file_round_trip(tmp_path):
    model = models.build("locator", rng=np.random.default_rng(0), in_channels=1, num_outputs=2)
    assert models.ZOO_INPUTS["locator"] == (1, 64, 64) and models.ZOO_TASKS["locator"] == "positions"
    x = np.random.default_rng(1).random((3, 1, 64, 64), dtype=np.float32)
    assert model(Tensor(x)).shape == (3, 2)
    save_model(tmp_path / "m.safetensors", model, input_shape=(1, 64, 64), task=Positions(64).config())
    loaded, meta = load_model(tmp_path / "m.safetensors")
    assert meta["model"] == "locator" and meta["task"] == {"kind": "positions", "scale": 64.0, "within": 1.0}
    np.testing.assert_array_equal(loaded(Tensor(x)).data, model.eval()(Tensor(x)).data)


def test_patience_watches_the_validation_loss_not_the_position_error(tmp_path):
    rng = np.random.default_rng(0)
    images = (rng.random((48, 1, 6, 6)) * 255).astype(np.uint8)
    targets = (rng.random((48, 2)) * 6).astype(np.float32)  # noise: overfits
    train = DataLoader(Dataset(images[:32], targets[:32]), batch_size=8, shuffle=True, rng=rng)
    val = DataLoader(Dataset(images[32:], targets[32:]), batch_size=8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 64, rng=rng), nn.ReLU(), nn.Linear(64, 2, rng=rng))
    history = fit(model, train, optim.Adam(model.parameters(), lr=0.03), 40, val, patience=2,
                  task=Positions(scale=6))
    last = history[-1]
    assert last["stopped_early"] and "val_mpe" in last and "train_mpe" in last
    best = min(history, key=lambda r: r["val_loss"])
    assert last["best_epoch"] == best["epoch"] and last["epoch"] == best["epoch"] + 2


# ----- the command line -----------------------------------------------------------------------------
@pytest.fixture
def centres(cache, monkeypatch):
    """digit-centres made from the fake digits cache: 48 training and 16 validation canvases."""
    small = dataclasses.replace(SCENE_DATASETS["digit-centres"], sizes=(("train", 48), ("val", 16)))
    monkeypatch.setitem(SCENE_DATASETS, "digit-centres", small)
    return cache


def test_train_evaluate_resume_and_predict_a_locator(centres, capsys):
    out = centres / "loc"
    args = ["train", "--model", "locator", "--data", "digit-centres", "--epochs", "1", "--batch-size", "16",
            "--out", str(out)]
    assert main(args) == 0
    trained = capsys.readouterr()
    assert "mpe" in trained.err and "acc" not in trained.err and "mean position error" in trained.out
    [record] = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert {"train_mpe", "val_mpe", "val_loss"} <= set(record) and "val_acc" not in record
    assert "Positions (validation)" in (out / "report.html").read_text()
    _, meta = load_model(out / "model.safetensors")
    assert meta["task"]["kind"] == "positions" and meta["input_shape"] == [1, 64, 64]

    assert main(["evaluate", str(out / "model.safetensors")]) == 0
    said = capsys.readouterr().out
    assert f"mean position error {record['val_mpe']:.3f} px" in said and "median" in said and "within 1 px" in said

    assert main(["train", "--out", str(out), "--epochs", "2", "--resume", "--extend", "--no-report"]) == 0
    capsys.readouterr()
    assert [json.loads(line)["epoch"] for line in open(out / "metrics.jsonl")] == [1, 2]

    val = load_dataset("digit-centres", "val")
    Image.fromarray(val.images[0, 0]).save(centres / "canvas.png")
    assert main(["predict", str(out), str(centres / "canvas.png")]) == 0
    assert "centre (x, y) = (" in capsys.readouterr().out
    assert main(["predict", str(out), str(centres / "canvas.png"), "--format", "json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert len(result["centre"]) == 2 and np.all(np.isfinite(result["centre"]))
    assert main(["summary", str(out)]) == 0 and "Conv2d" in capsys.readouterr().out
    assert main(["explain", str(out)]) == 0
    said = capsys.readouterr().out
    assert "No softmax" in said and "cross-entropy" not in said


def test_a_classifier_on_positions_is_refused(centres, capsys):
    assert main(["train", "--model", "lenet5", "--data", "digit-centres", "--epochs", "1", "--no-report",
                 "--out", str(centres / "x")]) == 1
    assert "lenet5 is made for classification, but digit-centres asks for positions" in capsys.readouterr().err


def test_an_interrupted_locator_run_resumes_exactly(centres):
    class StopAfterFirst(Callback):
        def on_epoch_end(self, epoch, record):
            raise StopTraining

    def options(out, **more):
        return RunOptions(model="locator", data="digit-centres", epochs=2, batch_size=16, out=str(out), **more)

    straight = prepare_run(options(centres / "straight"))
    straight.train()
    prepare_run(options(centres / "stopped")).train([StopAfterFirst()])
    resumed = prepare_run(options(centres / "stopped", resume=True))
    assert resumed.done == 1
    resumed.train()
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert (centres / "stopped" / "metrics.jsonl").read_text().count("val_mpe") == 2


def test_the_explorer_shows_a_locators_centre(centres):
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from convscope.web import create_app

    run = centres / "runs" / "loc"
    assert main(["train", "--model", "locator", "--data", "digit-centres", "--epochs", "1", "--no-report",
                 "--out", str(run)]) == 0
    val = load_dataset("digit-centres", "val")
    Image.fromarray(val.images[0, 0]).save(centres / "canvas.png")
    uri = "data:image/png;base64," + base64.b64encode((centres / "canvas.png").read_bytes()).decode()
    with TestClient(create_app(runs=centres / "runs"), base_url="http://127.0.0.1") as client:
        for model in ("zoo:locator", str(run)):
            answer = client.post("/api/update", json={"model": model, "image": uri})
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["prediction"]["centre"]) == 2
            text = client.get("/api/explain", params={"model": model, "depth": "math"}).json()["markdown"]
            assert "No softmax" in text
        samples = client.get("/api/samples", params={"model": str(run)}).json()
        assert samples["classes"] == ["all"] and samples["counts"] == [len(val)]  # no classes: one group
        answer = client.post("/api/update", json={"model": str(run), "sample": {"label": 0, "n": 0}}).json()
        x, y = val.labels[0]
        assert answer["input"]["notes"] == [f"digit-centres validation image 0 (true centre ({x:.1f}, {y:.1f}) px)"]
