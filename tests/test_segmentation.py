"""Segmentation end to end: the task's exact epoch figures, the U-Net, and the command line
on tiny fake digit-masks scenes made from the fake digits cache (nothing is downloaded)."""

import dataclasses
import html
import json

import numpy as np
import pytest
from helpers import gradcheck_module
from PIL import Image

from convscope import metrics, models
from convscope.cli import main
from convscope.data import Dataset
from convscope.io import load_model, save_model
from convscope.runs import RunOptions, prepare_run
from convscope.runs import _check_fits as check_fits
from convscope.tasks import Segmentation, task_for, task_from_config
from convscope.tensor import ShapeError, Tensor
from convscope.train import Callback, StopTraining
from convscope.viz import masks
from convscope.viz.report import EXPLANATIONS


def logits_for(predicted, classes):
    """(N, K, H, W) logits whose argmax is the label map ``predicted`` (N, H, W)."""
    return np.moveaxis(np.eye(classes)[np.asarray(predicted)], -1, 1)


# ----- the task -----------------------------------------------------------------------------------
def test_a_hand_made_case():
    predicted, truth = np.array([[[0, 0], [1, 2]]]), np.array([[[0, 1], [1, 1]]])
    task = Segmentation(4)
    figures = task.metrics(task.batch_sums(logits_for(predicted, 4), truth), 1)
    # class 0: 1 hit of union 2; class 1: 1 of 3; class 2: 0 of 1; class 3 absent (left out)
    assert figures == {"acc": 0.5, "miou": pytest.approx((1 / 2 + 1 / 3 + 0) / 3)}
    assert figures["miou"] == pytest.approx(metrics.mean_iou(predicted, truth, 4))


def test_epoch_sums_give_the_figures_of_the_whole_split():
    rng = np.random.default_rng(0)
    predicted, truth = rng.integers(0, 3, (6, 5, 4)), rng.integers(0, 3, (6, 5, 4))
    task, logits = Segmentation(3), logits_for(predicted, 3)
    halves = [task.batch_sums(logits[s], truth[s]) for s in (slice(0, 2), slice(2, 6))]
    summed = {"confusion": halves[0]["confusion"] + halves[1]["confusion"]}
    figures = task.metrics(summed, 6)
    assert figures["acc"] == pytest.approx(metrics.pixel_accuracy(predicted, truth))
    assert figures["miou"] == pytest.approx(metrics.mean_iou(predicted, truth, 3))
    result = task.evaluate(logits, truth)
    np.testing.assert_allclose(result["iou_per_class"], metrics.iou_per_class(predicted, truth, 3))
    assert result["mean_iou"] == pytest.approx(figures["miou"])


def test_the_loss_is_per_pixel_cross_entropy_with_class_weights():
    logits, truth = np.random.default_rng(1).standard_normal((2, 3, 4, 4)), np.zeros((2, 4, 4), np.int64)
    truth[:, :2] = 2
    plain = Segmentation(3).loss(Tensor(logits), truth).item()
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert plain == pytest.approx(-np.take_along_axis(log_p, truth[:, None], 1).mean())
    weighted = Segmentation(3, weight=[1.0, 1.0, 0.0]).loss(Tensor(logits), truth).item()
    assert weighted == pytest.approx(-log_p[:, 0][truth == 0].mean())  # class 2 weighs nothing


def test_the_targets_choose_the_task():
    assert isinstance(task_for(np.zeros((4, 8, 8), np.uint8), (8, 8), 11), Segmentation)
    assert type(task_for(np.zeros(4, np.int64), (8, 8), 10)).__name__ == "Classification"
    assert type(task_for(np.zeros((4, 2), np.float32), (8, 8))).__name__ == "Positions"
    with pytest.raises(ValueError, match="expected integer class labels, integer masks"):  # float boxes
        task_for(np.zeros((4, 4, 5), np.float32), (64, 64), 11)
    again = task_from_config(json.loads(json.dumps(Segmentation(11).config())))
    assert isinstance(again, Segmentation) and again.num_classes == 11
    assert task_from_config("segmentation", 11).config() == {"kind": "segmentation", "num_classes": 11}  # bare kind
    with pytest.raises(ValueError, match="3 class weights, got 2"):
        Segmentation(3, weight=[1, 2])


# ----- the U-Net ----------------------------------------------------------------------------------
@pytest.mark.parametrize("channels, classes, depth, size",
                         [(1, 11, 3, (64, 64)), (3, 2, 2, (8, 12)), (1, 4, 1, (6, 2))],
                         ids=["digit-masks", "rgb", "one-level"])
def test_unet_keeps_the_image_size(channels, classes, depth, size):
    model = models.build("unet", rng=np.random.default_rng(0), in_channels=channels, num_classes=classes, width=4,
                         depth=depth)
    out = model(Tensor(np.zeros((2, channels, *size), np.float32)))
    assert out.shape == (2, classes, *size)


def test_unet_says_what_input_it_expects():
    model = models.UNet(1, 3, width=2, depth=2)
    with pytest.raises(ShapeError, match=r"multiples of 4, got shape \(1, 1, 6, 8\)"):
        model(Tensor(np.zeros((1, 1, 6, 8), np.float32)))


def test_unet_gradients():
    model = models.UNet(1, 3, width=2, depth=2, batch_norm=False, rng=np.random.default_rng(0))
    gradcheck_module(model, np.random.default_rng(1).standard_normal((1, 1, 4, 4)), rtol=1e-5, atol=1e-6)


def test_unet_gradients_with_batch_norm():
    model = models.UNet(1, 2, width=2, depth=1, rng=np.random.default_rng(0))
    gradcheck_module(model, np.random.default_rng(2).standard_normal((2, 1, 4, 4)), rtol=1e-5, atol=1e-6)


def test_a_segmentation_model_file_round_trip(tmp_path):
    model = models.build("unet", rng=np.random.default_rng(3), width=4)
    save_model(tmp_path / "m.safetensors", model, class_names=["background", *"0123456789"],
               input_shape=(1, 64, 64), mean=0.1, std=0.3, dataset="digit-masks",
               task=Segmentation(11).config())
    loaded, meta = load_model(tmp_path / "m.safetensors")
    assert meta["task"] == {"kind": "segmentation", "num_classes": 11}
    assert meta["model"] == "unet" and meta["config"]["width"] == 4
    x = Tensor(np.random.default_rng(4).random((1, 1, 64, 64), np.float32))
    np.testing.assert_array_equal(loaded(x).data, model.eval()(x).data)


def test_mask_pictures():
    mask = np.array([[0, 1], [2, 1]])
    picture = masks.overlay(np.full((2, 2), 100, np.uint8), mask, alpha=1.0)
    assert picture[0, 0].tolist() == [100, 100, 100] and picture[0, 1].tolist() == masks.PALETTE[1].tolist()
    assert masks.class_areas(mask, ["bg", "a", "b"]) == [("a", 2), ("b", 1)]


# ----- the command line ---------------------------------------------------------------------------
def test_train_evaluate_resume_predict(scenes, capsys):
    out = scenes / "run"
    train = ["train", "--model", "unet", "--data", "digit-masks", "--batch-size", "8", "--out", str(out)]
    assert main([*train, "--epochs", "1", "--no-report"]) == 0
    said = capsys.readouterr()
    assert "epoch  1/1" in said.err and "miou" in said.err and "mIoU" in said.out
    [record] = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert {"train_acc", "train_miou", "val_acc", "val_miou"} <= set(record)

    assert main(["evaluate", str(out / "model.safetensors")]) == 0
    report = capsys.readouterr().out
    assert f"pixel accuracy {record['val_acc']:.2%}, mIoU {record['val_miou']:.4f}" in report
    assert "background" in report and "IoU" in report and "confusion" not in report

    assert main([*train, "--epochs", "2", "--resume", "--extend"]) == 0  # then the report, segmentation sections
    assert [json.loads(line)["epoch"] for line in open(out / "metrics.jsonl")] == [1, 2]
    page = (out / "report.html").read_text()
    assert "Segmentation (validation)" in page and "misclassified" not in page
    assert html.escape(EXPLANATIONS["Segmentation"]) in page and 'alt="scene 0: image, true mask' in page

    scene = np.zeros((64, 64), np.uint8)
    scene[20:40, 10:50] = 255
    Image.fromarray(scene).save(scenes / "scene.png")
    capsys.readouterr()
    assert main(["predict", str(out), str(scenes / "scene.png")]) == 0
    said = capsys.readouterr().out
    assert "classes found:" in said and (scenes / "scene.mask.png").is_file()
    assert Image.open(scenes / "scene.mask.png").size == (256, 256)
    (scenes / "folder").mkdir()
    Image.fromarray(scene).save(scenes / "folder" / "a.png")
    for _ in range(2):  # the second time, the folder holds a.mask.png too: not segmented again
        assert main(["predict", str(out), str(scenes / "folder"), "--format", "json"]) == 0
        [result] = json.loads(capsys.readouterr().out)
        assert result["path"].endswith("a.png") and result["mask_png"].endswith("a.mask.png")
        assert all(name in "0123456789" and pixels > 0 for name, pixels in result["classes"])


def test_a_model_that_does_not_fit_the_targets_is_refused():
    labels = Dataset(np.zeros((4, 1, 8, 8), np.uint8), np.arange(4), name="tiny")
    with pytest.raises(ValueError, match=r"class scores of shape \(3, 8, 8\) per image, but the tiny targets "
                                         r"are class labels of shape \(\) per image"):
        check_fits(models.UNet(1, 3, width=2, depth=2), "unet", labels)
    masks_set = Dataset(np.zeros((4, 1, 8, 8), np.uint8), np.zeros((4, 8, 8), np.int64), name="tiny")
    with pytest.raises(ValueError, match="targets are class masks of shape"):
        check_fits(models.LeNet5(1, 3), "lenet5", dataclasses.replace(masks_set, images=np.zeros((4, 1, 28, 28),
                                                                                                 np.uint8)))


class StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, epoch, record):
        raise StopTraining


def test_an_interrupted_run_resumes_exactly(scenes):
    args = ["train", "--model", "unet", "--data", "digit-masks", "--batch-size", "8", "--epochs", "2", "--no-report"]
    assert main([*args, "--out", str(scenes / "whole")]) == 0
    options = RunOptions(model="unet", data="digit-masks", batch_size=8, epochs=2, out=str(scenes / "split"))
    assert len(prepare_run(options).train([StopAfterFirstEpoch()])) == 1
    assert main([*args, "--resume", "--out", str(scenes / "split")]) == 0
    whole, _ = load_model(scenes / "whole")
    split, _ = load_model(scenes / "split")
    for (name, a), b in zip(whole.state_dict().items(), split.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
