"""The grid detector: its focal loss (gradient check, a naive reference, PyTorch), the heatmap
targets and their decoding (by hand, and a perfect output decoding to the truth), the detection
task's exact epoch figures against an independent mAP, and the command line on tiny scenes."""

import json
import math

import numpy as np
import pytest
from helpers import f64, gradcheck
from PIL import Image

from convscope import functional as F
from convscope import heatmaps, models
from convscope.cli import main
from convscope.detection import COCO_IOU_THRESHOLDS, mean_average_precision
from convscope.io import load_model
from convscope.runs import RunOptions, prepare_run
from convscope.tasks import Detection, task_for, task_from_config
from convscope.tensor import Tensor
from convscope.train import Callback, StopTraining


# ----- the focal loss --------------------------------------------------------------------------------
def focal_reference(logits, target, alpha=2.0, beta=4.0):
    """CenterNet's eq. 1, one element at a time, with plain floats."""
    def log_sigmoid(z):  # log(1 / (1 + e^-z)), finite for any z
        return -(max(-z, 0.0) + math.log1p(math.exp(-abs(z))))

    total = 0.0
    for z, y in zip(np.ravel(logits), np.ravel(target)):
        p = 1 / (1 + math.exp(-z))
        if y == 1:
            total += -(1 - p) ** alpha * log_sigmoid(z)
        else:
            total += -(1 - y) ** beta * p ** alpha * log_sigmoid(-z)  # log(1 - p) = log sigmoid(-z)
    return total


def heat_like(shape, rng):
    target = rng.random(shape) * 0.9
    target.flat[rng.choice(target.size, 3, replace=False)] = 1.0
    return target


def test_focal_loss_by_hand():
    # a centre at p = 0.5: -(0.5)^2 log 0.5; background y = 0 at p = 0.5: the same; y = 0.5: times 0.5^4
    loss = F.gaussian_focal_loss(Tensor([0.0, 0.0, 0.0]), [1.0, 0.0, 0.5], reduction="none").data
    np.testing.assert_allclose(loss, [0.25 * math.log(2), 0.25 * math.log(2), 0.0625 * 0.25 * math.log(2)], rtol=1e-6)


@pytest.mark.parametrize("alpha, beta", [(2.0, 4.0), (1.0, 2.0), (3.0, 0.5)])
def test_focal_loss_matches_the_reference_even_far_out(alpha, beta):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2, 3, 4, 4)) * 5
    logits.flat[:2] = [60.0, -60.0]  # far into the tails: no overflow, no log(0)
    target = heat_like(logits.shape, rng)
    got = F.gaussian_focal_loss(f64(logits), target, alpha, beta).item()
    assert got == pytest.approx(focal_reference(logits, target, alpha, beta), rel=1e-9)


def test_focal_loss_gradients():
    rng = np.random.default_rng(2)
    target = heat_like((2, 2, 3, 3), rng)
    gradcheck(lambda z: F.gaussian_focal_loss(z, target, reduction="none"), rng.standard_normal((2, 2, 3, 3)) * 2)


def test_focal_loss_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    logits, target = rng.standard_normal((2, 3, 5, 5)), heat_like((2, 3, 5, 5), rng)
    z = torch.tensor(logits, requires_grad=True)
    y = torch.tensor(target)
    p = torch.sigmoid(z)
    centre = (y == 1).double()
    expected = (-(1 - p) ** 2 * torch.nn.functional.logsigmoid(z) * centre
                - (1 - y) ** 4 * p ** 2 * torch.nn.functional.logsigmoid(-z) * (1 - centre)).sum()
    expected.backward()
    x = f64(logits)
    loss = F.gaussian_focal_loss(x, target)
    loss.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(x.grad, z.grad.numpy(), rtol=1e-10, atol=1e-12)


# ----- targets and decoding ----------------------------------------------------------------------------
def test_a_box_becomes_a_peak_with_its_offset_and_log_size():
    boxes, classes = np.array([[[4, 8, 12, 24], [0, 0, 0, 0]]]), np.array([[3, -1]])
    heat, regression, mask = heatmaps.encode(boxes, classes, num_classes=5, grid=(8, 8), stride=4)
    # centre (8, 16) px = (2, 4) cells exactly; size 8 x 16 px = 2 x 4 cells
    assert np.argwhere(heat == 1).tolist() == [[0, 3, 4, 2]] and mask.sum() == 1 and mask[0, 0, 4, 2] == 1
    np.testing.assert_allclose(regression[0, :, 4, 2], [0, 0, math.log(2), math.log(4)], rtol=1e-6)
    sx, sy = heatmaps.SPREAD * 2 / 6, heatmaps.SPREAD * 4 / 6
    assert heat[0, 3, 4, 3] == pytest.approx(math.exp(-1 / (2 * sx ** 2)), rel=1e-5)
    assert heat[0, 3, 5, 2] == pytest.approx(math.exp(-1 / (2 * sy ** 2)), rel=1e-5)
    assert heat[0, [0, 1, 2, 4]].max() == 0  # other classes untouched


def test_peaks_are_local_maxima():
    heat = np.array([[0.1, 0.9, 0.2], [0.3, 0.5, 0.4], [0.8, 0.1, 0.8]])
    assert heatmaps.peaks(heat).tolist() == [[False, True, False], [False, False, False], [True, False, True]]


def random_boxes(rng, n, size=64, most=4):
    """Boxes (n, most, 5) whose centres lie in distinct stride-4 cells, some rows padding."""
    targets = np.full((n, most, 5), 0, np.int64)
    targets[..., 4] = -1
    for i in range(n):
        cells = rng.choice(256, rng.integers(1, most + 1), replace=False)
        for j, cell in enumerate(cells):
            w, h = rng.integers(4, 28, 2)
            cx, cy = (cell % 16) * 4 + 2, (cell // 16) * 4 + 2
            x0, y0 = np.clip([cx - w // 2, cy - h // 2], 0, None)
            targets[i, j] = [x0, y0, min(x0 + w, size), min(y0 + h, size), rng.integers(0, 10)]
    return targets


def perfect_output(targets, num_classes=10, grid=(16, 16), stride=4):
    """The output a perfect detector would give: the targets' heatmaps as logits, their regression."""
    heat, regression, _ = heatmaps.encode(targets[..., :4], targets[..., 4], num_classes, grid, stride)
    heat = np.clip(heat, 1e-6, 1 - 1e-6)
    return np.concatenate([np.log(heat / (1 - heat)), regression], axis=1)


def truths_of(targets):
    return [{"boxes": t[t[:, 4] >= 0, :4], "labels": t[t[:, 4] >= 0, 4]} for t in targets]


def test_a_perfect_output_decodes_to_the_true_boxes():
    targets = random_boxes(np.random.default_rng(4), 12)
    found = Detection(10, (64, 64)).detections(perfect_output(targets))
    for image, truth in zip(found, truths_of(targets)):
        order = np.lexsort(truth["boxes"].T[::-1])
        mine = np.lexsort(np.round(image["boxes"], 3).T[::-1])
        np.testing.assert_allclose(image["boxes"][mine], truth["boxes"][order], atol=1e-4)
        assert image["labels"][mine].tolist() == truth["labels"][order].tolist()
        assert np.all(image["scores"] > 0.99)


def test_decode_refuses_an_output_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"expected a grid detector's output \(N, 14, Gh, Gw\) for 10 classes, "
                                         r"got shape \(2, 13, 16, 16\)"):
        heatmaps.decode(np.zeros((2, 13, 16, 16)), 10, 4, (64, 64))


# ----- the task --------------------------------------------------------------------------------------
def noisy_output(targets, rng):
    """A perfect output with its regression jittered and false alarms added: mAP between 0 and 1."""
    output = perfect_output(targets)
    output[:, 10:] += rng.normal(0, 0.25, output[:, 10:].shape)
    alarms = rng.random(output[:, :10].shape) < 0.01
    output[:, :10][alarms] = rng.normal(0, 2, alarms.sum())
    return output


def test_epoch_figures_are_the_exact_map_of_the_whole_split():
    rng = np.random.default_rng(5)
    targets = random_boxes(rng, 30)
    output, task = noisy_output(targets, rng), Detection(10, (64, 64))
    parts = [task.batch_sums(output[s], targets[s]) for s in (slice(0, 7), slice(7, 30))]
    summed = {k: parts[0][k] + parts[1][k] for k in parts[0]}
    figure = task.metrics(summed, 30)["map50"]
    independent = mean_average_precision(task.detections(output), truths_of(targets), (0.5,))
    assert 0.3 < figure < 0.99 and figure == pytest.approx(independent, abs=1e-12)
    result = task.evaluate(output, targets)
    assert result["map50"] == pytest.approx(independent, abs=1e-12)
    assert result["map"] == pytest.approx(mean_average_precision(task.detections(output), truths_of(targets),
                                                                 COCO_IOU_THRESHOLDS))
    assert result["map"] < result["map50"]
    present = ~np.isnan(result["ap50_per_class"])
    assert np.nanmean(result["ap50_per_class"]) == pytest.approx(independent)
    for curve, ok in zip(result["curves"], present):
        assert (curve is not None) == ok
        if ok:
            assert np.all(np.diff(curve["recall"]) >= 0) and curve["recall"][-1] <= 1


def test_a_perfect_output_scores_one_and_the_loss_is_low():
    targets = random_boxes(np.random.default_rng(6), 8)
    task = Detection(10, (64, 64))
    output = perfect_output(targets)
    assert task.metrics(task.batch_sums(output, targets), 8) == {"map50": 1.0}
    worse = output.copy()
    worse[:, 10:] += 0.5
    assert task.loss(Tensor(output), targets).item() < task.loss(Tensor(worse), targets).item()


def test_the_loss_is_focal_plus_l1_at_the_centres_per_object():
    rng = np.random.default_rng(7)
    targets, output = random_boxes(rng, 3), rng.standard_normal((3, 14, 16, 16))
    heat, regression, mask = heatmaps.encode(targets[..., :4], targets[..., 4], 10, (16, 16), 4)
    expected = (focal_reference(output[:, :10], heat) + np.sum(np.abs(output[:, 10:] - regression) * mask)) / mask.sum()
    assert Detection(10, (64, 64)).loss(f64(output), targets).item() == pytest.approx(expected, rel=1e-9)
    gradcheck(lambda z: Detection(10, (16, 16)).loss(z, targets[:1] // 4), rng.standard_normal((1, 14, 4, 4)))


def test_boxes_choose_the_detection_task_and_it_round_trips():
    task = task_for(np.zeros((5, 4, 5), np.int64), (64, 64), 10)
    assert isinstance(task, Detection) and task.config()["image_size"] == [64, 64]
    again = task_from_config(json.loads(json.dumps(task.config())))
    assert again.config() == task.config()
    with pytest.raises(ValueError, match="need the number of classes"):
        task_for(np.zeros((5, 4, 5), np.int64), (64, 64))
    with pytest.raises(ValueError, match=r"expected a grid output \(N, 14, Gh, Gw\) for \(64, 64\) images"):
        task.stride((1, 14, 16, 15))


def test_the_detector_keeps_a_stride_4_grid():
    model = models.Detector(in_channels=3, num_classes=2, width=8, rng=np.random.default_rng(0))
    assert model(Tensor(np.zeros((1, 3, 32, 48), np.float32))).shape == (1, 6, 8, 12)


# ----- the command line --------------------------------------------------------------------------------
def test_train_evaluate_resume_predict(scenes, capsys):
    out = scenes / "run"
    train = ["train", "--model", "detector", "--data", "digit-scenes", "--batch-size", "8", "--out", str(out)]
    assert main([*train, "--epochs", "1", "--no-report"]) == 0
    said = capsys.readouterr()
    assert "epoch  1/1" in said.err and "map50" in said.err
    [record] = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert {"train_map50", "val_map50"} <= set(record)

    assert main(["evaluate", str(out / "model.safetensors")]) == 0
    report = capsys.readouterr().out
    assert f"mAP@0.5 {record['val_map50']:.4f}" in report and "mAP@0.5:0.95" in report

    assert main([*train, "--epochs", "2", "--resume", "--extend"]) == 0  # then the report, with its curves
    page = (out / "report.html").read_text()
    assert "Detection (validation)" in page and "precision-recall" in page

    scene = np.zeros((64, 64), np.uint8)
    scene[20:40, 10:30] = 255
    Image.fromarray(scene).save(scenes / "scene.png")
    capsys.readouterr()
    assert main(["predict", str(out), str(scenes / "scene.png"), "--format", "json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["path"].endswith("scene.png") and result["boxes_png"].endswith("scene.boxes.png")
    assert all(len(box["box"]) == 4 and 0 <= box["score"] <= 1 for box in result["objects"])
    assert Image.open(scenes / "scene.boxes.png").size == (256, 256)


class StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, epoch, record):
        raise StopTraining


def test_an_interrupted_run_resumes_exactly(scenes):
    args = ["train", "--model", "detector", "--data", "digit-scenes", "--batch-size", "8", "--epochs", "2",
            "--no-report"]
    assert main([*args, "--out", str(scenes / "whole")]) == 0
    options = RunOptions(model="detector", data="digit-scenes", batch_size=8, epochs=2, out=str(scenes / "split"))
    assert len(prepare_run(options).train([StopAfterFirstEpoch()])) == 1
    assert main([*args, "--resume", "--out", str(scenes / "split")]) == 0
    whole, _ = load_model(scenes / "whole")
    split, _ = load_model(scenes / "split")
    for (name, a), b in zip(whole.state_dict().items(), split.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_the_explorer_draws_a_detectors_boxes(scenes):
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    import base64

    from starlette.testclient import TestClient

    from convscope.data import load_dataset
    from convscope.web import create_app

    run = scenes / "runs" / "det"
    assert main(["train", "--model", "detector", "--data", "digit-scenes", "--epochs", "1", "--batch-size", "8",
                 "--no-report", "--out", str(run)]) == 0
    val = load_dataset("digit-scenes", "val")
    Image.fromarray(val.images[0, 0]).save(scenes / "scene.png")
    uri = "data:image/png;base64," + base64.b64encode((scenes / "scene.png").read_bytes()).decode()
    with TestClient(create_app(runs=scenes / "runs"), base_url="http://127.0.0.1") as client:
        for model in ("zoo:detector", str(run)):
            answer = client.post("/api/update", json={"model": model, "image": uri})
            assert answer.status_code == 200, answer.text
            prediction = answer.json()["prediction"]
            assert prediction["per_object"] and len(prediction["probabilities"]) == 10
            assert all(0.3 <= b["score"] <= 1 and len(b["box"]) == 4 for b in prediction["boxes"])
            text = client.get("/api/explain", params={"model": model, "depth": "math"}).json()["markdown"]
            assert "heatmap:" in text and "cell (i, j) of 16x16" in text
        samples = client.get("/api/samples", params={"model": str(run)})
        assert samples.status_code == 200, samples.text
        answer = client.post("/api/update", json={"model": str(run), "sample": {"label": 0, "n": 0}})
        assert answer.status_code == 200, answer.text


def test_augmentation_is_refused_for_targets_it_would_not_move():
    from convscope.data import DataLoader, RandomShift
    boxes = (np.zeros((4, 1, 8, 8), np.uint8), np.zeros((4, 2, 5), np.int64))
    with pytest.raises(ValueError, match=r"needs one class label per image; got targets of shape \(2, 5\)"):
        DataLoader(boxes, batch_size=2, rng=np.random.default_rng(0), augment=RandomShift(1))
    assert len(DataLoader(boxes, batch_size=2, normalize=False)) == 2


@pytest.mark.parametrize("name, said", [("detector", "0 objects of score 0.3 or more"), ("unet", "classes "),
                                        ("locator", "centre (x, y) = (")])
def test_viz_draws_what_applies_to_models_that_are_not_classifiers(name, said, tmp_path, capsys):
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "blank.png")
    assert main(["viz", name, str(tmp_path / "blank.png"), "--out", str(tmp_path / "viz")]) == 0
    out = capsys.readouterr().out
    assert f"prediction: {said}" in out
    written = {p.stem for p in (tmp_path / "viz").iterdir()}
    assert "input" in written and "pooling" in written and any(s.startswith("filters") for s in written)
    assert not {"topk", "saliency", "gradcam"} & written
