"""Readers on tiny generated files: the right arrays back, and clear errors on bad files."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convscope.data import read_cifar10_batch, read_idx, read_image_folder, read_npz

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX: 00 00 <type> <ndim>, big-endian uint32 dims, big-endian values."""
    header = bytes([0, 0, IDX_CODES[array.dtype.type], array.ndim])
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return header + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()


# ---------------------------------------------------------------- IDX

@pytest.mark.parametrize("dtype", list(IDX_CODES), ids=lambda d: d.__name__)
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_idx_round_trip(tmp_path, dtype, compress):
    offset = 0 if dtype is np.uint8 else -5  # signed types get negative values too
    array = (np.arange(24) + offset).astype(dtype).reshape(2, 3, 4)
    data = idx_bytes(array)
    path = tmp_path / "file-idx3"
    path.write_bytes(gzip.compress(data) if compress else data)
    result = read_idx(path)
    assert result.dtype == np.dtype(dtype) and result.dtype.isnative
    np.testing.assert_array_equal(result, array)
    result[0, 0, 0] = 1  # a writable copy, not a view of the file bytes


def test_idx_gzip_detected_by_magic_not_extension(tmp_path):
    labels = np.array([7, 2, 1], np.uint8)
    gz_named_raw = tmp_path / "labels.gz"
    gz_named_raw.write_bytes(idx_bytes(labels))
    raw_named_gz = tmp_path / "labels.idx1"
    raw_named_gz.write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(gz_named_raw), labels)
    np.testing.assert_array_equal(read_idx(raw_named_gz), labels)


def test_idx_truncated_payload(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(np.zeros((3, 4, 4), np.uint8))[:-5])
    with pytest.raises(ValueError, match=r"images: IDX file is truncated.*expected 48 payload bytes, got 43"):
        read_idx(path)


def test_idx_trailing_bytes(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(np.zeros((3, 4, 4), np.uint8)) + b"junk")
    with pytest.raises(ValueError, match=r"trailing bytes.*expected 48 payload bytes, got 52"):
        read_idx(path)


def test_idx_wrong_magic(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(ValueError, match=r"photo.png: not an IDX file.*got 89 50 4e 47"):
        read_idx(path)


def test_idx_unknown_type_code(tmp_path):
    path = tmp_path / "odd"
    path.write_bytes(bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(ValueError, match=r"unknown IDX type code 0x0A"):
        read_idx(path)


@pytest.mark.parametrize("data", [b"", bytes([0, 0, 8, 3, 0, 0, 0, 2]), bytes([0, 0, 8, 0])],
                         ids=["empty", "short-header", "zero-dims"])
def test_idx_bad_header(tmp_path, data):
    path = tmp_path / "bad"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"bad: "):
        read_idx(path)


def test_idx_truncated_gzip(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))[:-12])
    with pytest.raises(ValueError, match=r"cut.gz: starts like a gzip file but cannot be decompressed"):
        read_idx(path)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


# ---------------------------------------------------------------- CIFAR-10

def cifar_records(labels, rng):
    pixels = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    return np.column_stack([np.asarray(labels, np.uint8), pixels]), pixels


def test_cifar_batch(tmp_path):
    records, pixels = cifar_records([0, 9, 3], np.random.default_rng(0))
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(records.tobytes())
    images, labels = read_cifar10_batch(path)
    assert images.shape == (3, 3, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == [0, 9, 3]
    # channel-major: bytes 0..1023 red, row by row; 1024..2047 green
    assert images[1, 0, 0, 1] == pixels[1, 1] and images[1, 1, 2, 0] == pixels[1, 1024 + 64]


def test_cifar_partial_record(tmp_path):
    records, _ = cifar_records([1, 2], np.random.default_rng(0))
    path = tmp_path / "batch.bin"
    path.write_bytes(records.tobytes()[:-100])
    with pytest.raises(ValueError, match=r"batch.bin: expected a whole number of 3073-byte.*got 6046 bytes"):
        read_cifar10_batch(path)


def test_cifar_empty(tmp_path):
    path = tmp_path / "batch.bin"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="got 0 bytes"):
        read_cifar10_batch(path)


def test_cifar_label_out_of_range(tmp_path):
    records, _ = cifar_records([1, 57, 2], np.random.default_rng(0))
    path = tmp_path / "cifar100.bin"
    path.write_bytes(records.tobytes())
    with pytest.raises(ValueError, match=r"record 1 has label 57, expected 0..9"):
        read_cifar10_batch(path)


# ---------------------------------------------------------------- image folder

def save_image(path: Path, pixels: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_image_folder_gray(tmp_path):
    save_image(tmp_path / "b_dog" / "1.png", np.full((8, 8), 200, np.uint8))
    save_image(tmp_path / "a_cat" / "2.png", np.full((8, 8), 10, np.uint8))
    save_image(tmp_path / "a_cat" / "1.PNG", np.full((8, 8), 20, np.uint8))
    (tmp_path / "a_cat" / "notes.txt").write_text("not an image")
    images, labels, names = read_image_folder(tmp_path, size=(8, 8), mode="L")
    assert names == ["a_cat", "b_dog"]
    assert images.shape == (3, 1, 8, 8) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 1]
    assert images[:, 0, 4, 4].tolist() == [20, 10, 200]  # sorted file names: 1.PNG, 2.png


def test_image_folder_rgb_jpeg_resized(tmp_path):
    pixels = np.zeros((20, 10, 3), np.uint8)
    pixels[..., 0] = 250  # pure red
    save_image(tmp_path / "red" / "x.jpg", pixels)
    images, labels, names = read_image_folder(tmp_path, size=(6, 4), mode="RGB")
    assert images.shape == (1, 3, 6, 4) and names == ["red"]
    assert images[0, 0].min() > 200 and images[0, 1].max() < 40  # JPEG is lossy, roughly red


def test_image_folder_gray_from_rgb(tmp_path):
    save_image(tmp_path / "c" / "x.png", np.full((4, 4, 3), 255, np.uint8))
    images, _, _ = read_image_folder(tmp_path, size=(4, 4))
    assert images.shape == (1, 1, 4, 4) and (images == 255).all()


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="it does not exist"):
        read_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="found no subfolders"):
        read_image_folder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match=r"empty_class: class folder holds no"):
        read_image_folder(tmp_path)


def test_image_folder_unreadable_image(tmp_path):
    save_image(tmp_path / "a" / "good.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "a" / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match=r"broken.png: not a readable image"):
        read_image_folder(tmp_path, size=(4, 4))


@pytest.mark.parametrize("kwargs", [{"mode": "CMYK"}, {"size": 28}, {"size": (0, 4)}],
                         ids=["mode", "size-int", "size-zero"])
def test_image_folder_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError, match="read_image_folder: expected"):
        read_image_folder(tmp_path, **kwargs)


# ---------------------------------------------------------------- npz

@pytest.mark.parametrize("keys", [("x", "y"), ("images", "labels")])
def test_npz_keys_and_channel_axis(tmp_path, keys):
    path = tmp_path / "data.npz"
    np.savez(path, **{keys[0]: np.ones((3, 5, 5), np.uint8), keys[1]: np.array([2, 0, 1], np.int32)})
    images, labels = read_npz(path)
    assert images.shape == (3, 1, 5, 5) and labels.dtype == np.int64 and labels.tolist() == [2, 0, 1]


def test_npz_nchw_kept(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros((2, 3, 4, 4), np.uint8), y=np.array([0, 1]))
    assert read_npz(path)[0].shape == (2, 3, 4, 4)


def test_npz_object_array_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.zeros((2, 4, 4), np.uint8), y=np.array([0, {"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"evil.npz: array 'y' holds Python objects .* cannot be read without pickle"):
        read_npz(path)


def test_pickle_file_refused(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(b"\x80\x04K\x01.")  # a pickle (of the number 1): must never be loaded
    with pytest.raises(ValueError, match=r"data.npz: not a readable .npz \(zip\) archive"):
        read_npz(path)


@pytest.mark.parametrize("arrays, message", [
    ({"a": np.zeros(2), "b": np.zeros(2)}, r"expected arrays named \('x', 'y'\).*got \['a', 'b'\]"),
    ({"x": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, 1, 2])}, r"one label per image \(2\), got 3"),
    ({"x": np.zeros((2, 4, 4), np.float32), "y": np.array([0, 1])}, r"expected uint8 images.*float32"),
    ({"x": np.zeros((2, 28, 28, 1), np.uint8), "y": np.array([0, 1])}, r"look channels-last"),
    ({"x": np.zeros((2, 4), np.uint8), "y": np.array([0, 1])}, r"expected images of shape"),
    ({"x": np.zeros((2, 4, 4), np.uint8), "y": np.array([0.0, 1.0])}, r"1-D integer array"),
    ({"x": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, -1])}, r"labels >= 0, got -1"),
], ids=["keys", "count", "float", "channels-last", "ndim", "float-labels", "negative"])
def test_npz_validation(tmp_path, arrays, message):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message):
        read_npz(path)


def test_npy_instead_of_npz(tmp_path):
    path = tmp_path / "single.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="is a single .npy array, expected an .npz archive"):
        read_npz(path)


def test_truncated_npz(tmp_path):
    path = tmp_path / "cut.npz"
    np.savez(path, x=np.zeros((4, 8, 8), np.uint8), y=np.arange(4))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cut.npz: "):
        read_npz(path)


# ---------------------------------------------------------------- the real thing, if installed

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (DEBIAN / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_test_set():
    images = read_idx(DEBIAN / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(DEBIAN / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
