"""``convscope predict`` on what people feed it: photos and scans of digits (grey gradients,
noise, shadows, tilted sheets with white corners, transparent PNGs, EXIF-rotated JPEGs,
16-bit PNGs), clothing-like images that must not be treated as digits, folders, scripts."""

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from convscope import optim
from convscope.cli import main
from convscope.data import DataLoader, Dataset, load_user_splits
from convscope.data.photos import KINDS, digit_ink, font_paths, photo, write_photo
from convscope.data.preprocess import load_image, mnist_style, preparation, preprocess_image
from convscope.inference import predict
from convscope.io import save_model
from convscope.models import lenet5
from convscope.train import fit


@pytest.fixture(scope="module")
def font_digit_model(tmp_path_factory):
    """A LeNet-5 trained for a few seconds on font digits prepared MNIST-style, saved as a
    digit model file: (path, meta)."""
    rng, fonts = np.random.default_rng(0), font_paths()
    images, labels = [], []
    for i in range(600):
        digit = i % 10
        ink = digit_ink(digit, fonts[(i // 10) % len(fonts)], (48, 48), rng)
        images.append(mnist_style(ink * 255, []).round().astype(np.uint8))
        labels.append(digit)
    data = Dataset(np.stack(images), np.array(labels), [str(k) for k in range(10)], name="font-digits")
    model = lenet5(rng=np.random.default_rng(1))
    fit(model, DataLoader(data, batch_size=32, shuffle=True, rng=rng), optim.Adam(model.parameters(), lr=3e-3), 6)
    path = tmp_path_factory.mktemp("model") / "font-digits.safetensors"
    save_model(path, model, class_names=data.class_names, input_shape=(1, 28, 28), mean=data.mean, std=data.std,
               dataset="font-digits", preprocess="digit")
    from convscope.io import load_model
    return path, load_model(path)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_photo_is_read_right(font_digit_model, tmp_path, kind):
    path, (model, meta) = font_digit_model
    rng, fonts = np.random.default_rng(KINDS.index(kind) + 10), font_paths()
    right = 0
    for digit in range(10):
        image = write_photo(tmp_path / f"{kind}-{digit}", digit, kind, rng, fonts[digit % len(fonts)])
        x, notes = preprocess_image(image, meta)
        right += int(predict(model, x)[0].argmax() == digit)
    assert right >= 9, f"{kind}: {right}/10"


def test_reading_says_what_it_did(tmp_path):
    rng = np.random.default_rng(0)
    notes = []
    load_image(write_photo(tmp_path / "e", 4, "exif_rotated", rng), 1, notes)
    assert any("EXIF orientation" in n for n in notes)
    upright, _ = photo(4, "clean", np.random.default_rng(5))
    stored = np.asarray(Image.open(write_photo(tmp_path / "e2", 4, "exif_rotated", np.random.default_rng(5))))
    assert stored.shape == upright.size  # stored sideways (W, H)...
    assert load_image(tmp_path / "e2.jpg", 1).shape[:2] == (upright.size[1], upright.size[0])  # ...read upright
    notes = []
    gray = load_image(write_photo(tmp_path / "t", 4, "transparent", rng), 1, notes)
    assert any("transparent image on white" in n for n in notes) and gray[0, 0, 0] == 255
    notes = []
    gray = load_image(write_photo(tmp_path / "s", 4, "sixteen_bit", rng), 1, notes)
    assert any("16-bit" in n for n in notes) and 150 < np.median(gray) < 240  # the paper, not clipped white


def test_blank_and_non_regular_files_are_refused(tmp_path):
    Image.fromarray(np.full((40, 40), 200, np.uint8)).save(tmp_path / "paper.png")
    meta = {"input_shape": [1, 28, 28], "preprocess": "digit"}
    with pytest.raises(ValueError, match="blank: no digit found"):
        preprocess_image(tmp_path / "paper.png", meta)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        preprocess_image(tmp_path / "folder.png", meta)


def test_preparation_comes_from_the_model_file():
    assert preparation({"input_shape": [1, 28, 28], "preprocess": "resize"}) == "resize"
    assert preparation({"input_shape": [1, 28, 28], "dataset": "fashion-mnist"}) == "resize"
    assert preparation({"input_shape": [1, 28, 28], "dataset": "digits"}) == "digit"
    assert preparation({"input_shape": [1, 28, 28]}) == "digit"  # an older file that names no dataset
    assert preparation({"input_shape": [3, 32, 32]}) == "resize"


def clothing(n, seed):
    """Fashion-MNIST-like uint8 images (n, 1, 28, 28): a light garment-like shape on black, one
    of four outlines, and the class."""
    rng = np.random.default_rng(seed)
    images, labels = np.zeros((n, 1, 28, 28), np.uint8), rng.integers(0, 4, n)
    ys, xs = np.indices((28, 28))
    for k, label in enumerate(labels):
        cy, cx, r = 14 + rng.integers(-2, 3), 14 + rng.integers(-2, 3), rng.uniform(7, 10)
        shapes = [(abs(ys - cy) < r) & (abs(xs - cx) < r / 2),                 # trousers-like
                  ((ys - cy) ** 2 + (xs - cx) ** 2) < r ** 2,                  # a bag
                  (abs(ys - cy) < r / 2) & (abs(xs - cx) < r),                 # a shoe
                  (abs(ys - cy) < r) & (abs(xs - cx) < r) & (ys > cy - r / 3)]  # a shirt
        images[k, 0][shapes[label]] = rng.integers(120, 255)
    noise = rng.integers(0, 30, images.shape)
    return np.clip(images + noise * (images > 0), 0, 255).astype(np.uint8), labels


def test_predict_on_saved_pngs_equals_evaluate_on_the_arrays(tmp_path, capsys):
    images, labels = clothing(400, 0)
    np.savez(tmp_path / "clothes.npz", images=images, labels=labels)
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "clothes.npz"), "--epochs", "2", "--out", str(out),
                 "--no-report", "--no-augment", "--batch-size", "32"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.safetensors"), "--split", "val"]) == 0
    accuracy = float(capsys.readouterr().out.split("accuracy ")[1].split("%")[0]) / 100
    [val] = load_user_splits(tmp_path / "clothes.npz", ("val",), size=(28, 28), channels=1)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(val.images):
        Image.fromarray(image[0]).save(folder / f"{i:03d}.png")  # real PNG files, as a user has them
    assert main(["predict", str(out), str(folder), "--format", "json", "--top-k", "1"]) == 0
    results = json.loads(capsys.readouterr().out)
    right = sum(r["predicted"] == val.class_names[val.labels[int(r["path"][-7:-4])]] for r in results)
    assert len(results) == len(val) and right / len(val) == pytest.approx(accuracy, abs=1e-4)
    assert all("used as it is" in r["notes"][-1] for r in results)  # never cropped like a digit


def test_many_images_one_bad_file_and_csv(font_digit_model, tmp_path, capsys):
    path, _ = font_digit_model
    rng = np.random.default_rng(3)
    good = [write_photo(tmp_path / f"d{k}", k, "clean", rng) for k in (2, 7)]
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert main(["predict", str(path), str(good[0]), str(tmp_path / "broken.png"), str(good[1]),
                 "--format", "csv", "--top-k", "2"]) == 1
    captured = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(captured.out)))
    assert rows[0] == ["path", "predicted", "probability", "top2_class", "top2_probability", "error"]
    assert [r[1] for r in rows[1:]] == ["2", "", "7"] and "not a readable image" in rows[2][-1]
    assert "broken.png: not a readable image" in captured.err and "1 of 3 images could not be read" in captured.err
    assert "Traceback" not in captured.err


def test_low_confidence_is_flagged(font_digit_model, tmp_path, capsys):
    path, _ = font_digit_model
    Image.fromarray((np.random.default_rng(0).random((60, 60)) * 255).astype(np.uint8)).save(tmp_path / "noise.png")
    main(["predict", str(path), str(tmp_path / "noise.png"), "--warn-below", "1.0"])
    assert "low confidence" in capsys.readouterr().out


def test_an_image_too_large_to_open_safely(tmp_path, capsys, font_digit_model):
    from PIL import Image as PILImage
    path, _ = font_digit_model
    limit = PILImage.MAX_IMAGE_PIXELS
    PILImage.new("L", (300, 300), 255).save(tmp_path / "big.png")
    try:
        PILImage.MAX_IMAGE_PIXELS = 20_000  # 90,000 pixels is then a "decompression bomb"
        assert main(["predict", str(path), str(tmp_path / "big.png")]) == 1
    finally:
        PILImage.MAX_IMAGE_PIXELS = limit
    captured = capsys.readouterr()
    assert "big.png: too large to open safely" in captured.err and "Traceback" not in captured.err
