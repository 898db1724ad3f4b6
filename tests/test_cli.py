"""The convscope command: train / evaluate / predict end to end on a tiny synthetic cache."""

import json

import numpy as np
import pytest
from PIL import Image

from convscope.cli import main
from convscope.data.preprocess import mnist_style, preprocess_image


def test_train_evaluate_predict(cache, capsys):
    out = cache / "run"
    assert main(["train", "--model", "lenet5", "--data", "digits", "--epochs", "2", "--batch-size", "32",
                 "--out", str(out), "--no-report", "--no-augment"]) == 0
    trained = capsys.readouterr()
    assert "epoch  2/2" in trained.err and "validation" in trained.err
    history = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["epoch"] for r in history] == [1, 2]
    assert json.load(open(out / "run.json"))["optimizer"] == "adamw"

    assert main(["evaluate", str(out / "model.safetensors")]) == 0
    report = capsys.readouterr().out
    assert f"accuracy {history[-1]['val_acc']:.2%}" in report  # same figure as training printed
    assert "confusion matrix" in report and "precision" in report

    image = np.zeros((60, 40), np.uint8) + 230
    image[20:26, 5:35] = 10  # a dark bar on a light background, in a larger image
    Image.fromarray(image).save(cache / "bar.png")
    assert main(["predict", str(out / "model.safetensors"), str(cache / "bar.png"), "--top-k", "2"]) == 0
    said = capsys.readouterr().out
    assert "inverted colours" in said and "centred by mass" in said
    assert len([line for line in said.splitlines() if "%" in line and "#" in line]) == 2  # one bar per class


def test_existing_run_is_not_overwritten(cache, capsys):
    out = cache / "run"
    args = ["train", "--epochs", "1", "--out", str(out), "--no-report", "--no-augment"]
    assert main(args) == 0
    before = (out / "checkpoint.safetensors").read_bytes()
    assert main(args) == 1
    assert "already holds a training run" in capsys.readouterr().err
    assert (out / "checkpoint.safetensors").read_bytes() == before
    assert main(args[:2] + ["2"] + args[3:] + ["--resume", "--extend"]) == 0  # more epochs: asked for
    assert len(open(out / "metrics.jsonl").readlines()) == 2


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "missing.safetensors"], "no such file"),
    (["train", "--epochs", "0", "--no-report"], "epochs and batch size must be >= 1"),
    (["train", "--model", "lenet5", "--data", "mnist", "--data-dir", "nowhere"], "mnist"),
])
def test_bad_input_exits_nonzero_with_a_reason(cache, capsys, argv, message, monkeypatch):
    monkeypatch.chdir(cache)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"convscope {argv[0]}: error:") and message in err


def test_predict_rejects_a_non_image(cache, capsys):
    out = cache / "run"
    main(["train", "--epochs", "1", "--out", str(out), "--no-report", "--no-augment"])
    (cache / "notes.txt").write_text("not an image")
    assert main(["predict", str(out / "model.safetensors"), str(cache / "notes.txt")]) == 1
    assert "not a readable image" in capsys.readouterr().err


def test_mnist_style_preprocessing_centres_and_scales():
    canvas = np.full((100, 80), 255.0)
    canvas[10:50, 50:60] = 0.0  # dark stroke, 40 tall and 10 wide, off-centre
    notes = []
    field = mnist_style(canvas, notes)
    assert field.shape == (28, 28) and field.max() == pytest.approx(255)
    ink = np.argwhere(field > 128)
    assert ink[:, 0].max() - ink[:, 0].min() + 1 in (19, 20, 21)  # longest side fits 20 px
    ys, xs = np.indices(field.shape)
    assert abs((ys * field).sum() / field.sum() - 13.5) <= 1 and abs((xs * field).sum() / field.sum() - 13.5) <= 1
    assert any("inverted" in n for n in notes)


def test_preprocess_plain_resize_for_colour_models(tmp_path):
    Image.fromarray(np.full((50, 70, 3), 255, np.uint8)).save(tmp_path / "white.png")
    meta = {"input_shape": [3, 32, 32], "mean": [0.5] * 3, "std": [0.5] * 3}
    x, notes = preprocess_image(tmp_path / "white.png", meta)
    assert x.shape == (1, 3, 32, 32) and x.dtype == np.float32
    np.testing.assert_allclose(x, 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="blank"):
        Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "black.png")
        preprocess_image(tmp_path / "black.png", {"input_shape": [1, 28, 28]})


def test_train_on_an_image_folder_and_an_npz(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for k, name in enumerate(["circle", "square"]):
        (tmp_path / "shapes" / name).mkdir(parents=True)
        for i in range(20):
            image = (rng.random((40, 40)) * 50).astype(np.uint8)
            image[10 + 10 * k:20 + 10 * k, 10:30] = 255
            Image.fromarray(image).save(tmp_path / "shapes" / name / f"{i:02d}.png")
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "shapes"), "--epochs", "1", "--out", str(out),
                 "--no-report", "--no-augment"]) == 0
    assert "36 train / 4 val images" in capsys.readouterr().err  # every 10th per class validates
    assert main(["evaluate", str(out)]) == 0
    assert "circle" in capsys.readouterr().out

    images = rng.integers(0, 255, (30, 1, 28, 28)).astype(np.uint8)
    np.savez(tmp_path / "mine.npz", images=images, labels=np.arange(30) % 3)
    assert main(["train", "--data", str(tmp_path / "mine.npz"), "--epochs", "1", "--out", str(tmp_path / "r2"),
                 "--no-report", "--no-augment"]) == 0
    assert main(["train", "--data", str(tmp_path / "nothing_here"), "--out", str(tmp_path / "r3")]) == 1
    assert "neither a dataset" in capsys.readouterr().err


def test_resnet_on_cifar10_binary_batches(tmp_path, capsys):
    """The CIFAR-10 path end to end on small fake batches: reader, crop+flip, SGD recipe."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar"
    folder.mkdir()
    for name, count in [(f"data_batch_{k}.bin", 1010) for k in range(1, 6)] + [("test_batch.bin", 20)]:
        records = rng.integers(0, 256, (count, 3073), dtype=np.uint8)
        records[:, 0] = np.arange(count) % 10
        (folder / name).write_bytes(records.tobytes())
    out = tmp_path / "run"
    assert main(["train", "--model", "resnet", "--data", "cifar10", "--data-dir", str(folder), "--epochs", "1",
                 "--out", str(out), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "50 train / 5000 val images, sgd lr 0.1" in err and "'crop': 4, 'flip': True" in err
    assert main(["evaluate", str(out), "--data-dir", str(folder), "--split", "test"]) == 0
    assert "(test, 20 images)" in capsys.readouterr().out
