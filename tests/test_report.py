"""The HTML run report: self-contained, every image decodes, opens in headless Chromium."""

import base64
import html
import io
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from convscope.data import Dataset
from convscope.io import save_model
from convscope.models import lenet5
from convscope.viz.report import EXPLANATIONS, confident_mistakes, confusion_matrix, write_report

META = {"model": "lenet5", "config": {}, "class_names": [str(k) for k in range(10)],
        "input_shape": [1, 28, 28], "mean": [0.2], "std": [0.3], "dataset": "digits"}


@pytest.fixture
def run_dir(tmp_path):
    """A run folder as training writes it: model file, metrics.jsonl, run.json."""
    model = lenet5(rng=np.random.default_rng(0))
    save_model(tmp_path / "model.safetensors", model, META["class_names"], META["input_shape"],
               META["mean"], META["std"], dataset="digits")
    with open(tmp_path / "metrics.jsonl", "w") as f:
        for epoch in range(1, 4):
            f.write(json.dumps({"epoch": epoch, "train_loss": 1 / epoch, "train_acc": 1 - 0.3 / epoch,
                                "val_loss": 1.1 / epoch, "val_acc": 1 - 0.35 / epoch, "lr": 0.01,
                                "seconds": 2.0, "images_per_s": 900.0}) + "\n")
    (tmp_path / "run.json").write_text(json.dumps({"model": "lenet5", "data": "digits", "epochs": 3, "seed": 0}))
    return tmp_path


def small_dataset(n=60):
    rng = np.random.default_rng(0)
    return Dataset(rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8), np.arange(n) % 10,
                   name="digits", split="val")


def image_sources(text):
    return re.findall(r'<img src="([^"]*)"', text)


def test_report_is_self_contained(run_dir):
    model = lenet5(rng=np.random.default_rng(0))
    path = write_report(run_dir, model, META, small_dataset())
    text = path.read_text()
    assert path == run_dir / "report.html"
    for heading in ("Training curves", "Confusion matrix", "Most confidently misclassified",
                    "Filters", "Feature maps"):
        assert heading in text
    sources = image_sources(text)
    assert len(sources) >= 2 + 2 + 3 * 3  # curves, confusion, filters, 3 samples x (input + 2 convs)
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            assert image.size[0] > 0 and image.size[1] > 0
    assert "http://" not in text and "https://" not in text


def test_report_explains_every_section_and_shows_saliency_gradcam_pooling(run_dir):
    text = write_report(run_dir, lenet5(rng=np.random.default_rng(0)), META, small_dataset()).read_text()
    for heading, words in EXPLANATIONS.items():
        if heading != "Segmentation":  # a classifier's report (test_segmentation checks that one)
            assert f'<p class="explain">{html.escape(words)}</p>' in text, heading
    for sample in (0, 1, 2):  # the first image of each of the first 3 classes
        assert f'alt="saliency of image {sample}"' in text and f'alt="gradcam of image {sample}"' in text
    assert "Where the network looks: saliency and Grad-CAM" in text
    assert "Pooling compared: max, average and L2" in text and 'alt="pooling"' in text
    assert len(image_sources(text)) >= 2 + 2 + 3 * 3 + 3 * 2 + 1  # ... + saliency and Grad-CAM x3 + pooling


@pytest.mark.parametrize("optimizer, shown", [("adamw", False), ("adam", False), ("sgd", True)])
def test_run_table_hides_settings_the_optimizer_ignores(run_dir, optimizer, shown):
    config = {"model": "lenet5", "data": "digits", "optimizer": optimizer, "lr": 0.003, "momentum": 0.9,
              "schedule": "onecycle", "augment": {"shift": 1}}
    (run_dir / "run.json").write_text(json.dumps(config))
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 4, "train_loss": 0.1, "val_acc": 0.9873, "lr": 1.2e-08}) + "\n")
    text = write_report(run_dir, lenet5(rng=np.random.default_rng(0)), META, small_dataset(20)).read_text()
    assert ("<th>momentum</th>" in text) == shown
    assert "<td>1.20e-08 (set by the onecycle schedule; starting / peak lr 0.003)</td>" in text
    assert "<td>98.73%</td>" in text and "<td>shift=1</td>" in text


def test_report_loads_the_model_and_explains_missing_data(run_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCOPE_DATA", str(tmp_path / "empty-cache"))
    text = write_report(run_dir, out=tmp_path / "r.html").read_text()
    assert "validation data not available" in text and "Filters" in text
    assert "Training curves" in text and len(image_sources(text)) == 3  # curves + 2 filter grids


def test_confusion_and_mistakes():
    labels = np.array([0, 1, 1, 2])
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.05, 0.9, 0.05]])
    np.testing.assert_array_equal(confusion_matrix(labels, probs.argmax(1), 3), [[1, 0, 0], [1, 1, 0], [0, 1, 0]])
    assert list(confident_mistakes(probs, labels)) == [3, 2]


def chromium_page():
    playwright = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return playwright.sync_playwright, executable


def test_report_opens_in_headless_chromium(run_dir, tmp_path):
    sync_playwright, executable = chromium_page()
    path = write_report(run_dir, lenet5(rng=np.random.default_rng(0)), META, small_dataset())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True,
                                    args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(path.resolve().as_uri())
            page.wait_for_load_state("load")
            widths = page.evaluate("Array.from(document.images).map(img => img.complete ? img.naturalWidth : 0)")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert len(widths) == len(image_sources(path.read_text())) and all(w > 0 for w in widths)
    with Image.open(tmp_path / "report.png") as shot:
        assert shot.size[0] == 1200 and shot.size[1] > 900
