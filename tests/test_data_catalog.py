"""Named datasets: where files are looked for, how splits are cut, what a missing dataset says.

Everything runs on tiny generated files in tmp_path; nothing touches the network or the
user's cache (CONVSCOPE_DATA points into tmp_path for every test).
"""
import dataclasses
import gzip
import hashlib
import io
import struct
import tarfile

import numpy as np
import pytest

from convscope.data import (
    DatasetNotFoundError,
    catalog,
    channel_stats,
    load_dataset,
    load_splits,
    sha256_file,
    verify_sha256,
)
from convscope.data.download import download, extract_members

N_TRAIN = catalog.HOLDOUT + 10  # the smallest training file that leaves a train split


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Point the default cache into tmp_path and hide the system Fashion-MNIST folder."""
    monkeypatch.setenv("CONVSCOPE_DATA", str(tmp_path / "cache"))
    fashion = dataclasses.replace(catalog.DATASETS["fashion-mnist"], system_folders=(tmp_path / "debian",))
    monkeypatch.setitem(catalog.DATASETS, "fashion-mnist", fashion)
    return tmp_path / "cache"


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder, n_test=20, gz=True, first_pixel=0):
    """Four IDX files; image i has pixel (0, 0) = first_pixel and label i % 10."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", N_TRAIN), ("t10k", n_test)):
        images = np.zeros((count, 28, 28), np.uint8)
        images[:, 0, 0] = first_pixel
        images[:, 14, 14] = np.arange(count) % 256
        for kind, array in (("images-idx3", images), ("labels-idx1", np.arange(count) % 10)):
            data = idx_bytes(array)
            name = f"{prefix}-{kind}-ubyte"
            (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data, 1) if gz else data)


# ---------------------------------------------------------------- splits

def test_mnist_splits_and_statistics(tmp_path):
    write_mnist(tmp_path / "mine")
    train, val, test = (load_dataset("mnist", s, root=tmp_path / "mine") for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (10, catalog.HOLDOUT, 20)
    assert train.images.shape == (10, 1, 28, 28) and train.images.dtype == np.uint8
    assert val.images[0, 0, 14, 14] == 10 and val.labels[0] == 0  # val = the last 5000 of the file
    assert train.mean == val.mean == test.mean == channel_stats(train.images)[0]
    assert train.std == test.std and train.class_names == [str(k) for k in range(10)]
    assert (train.name, train.split, test.split) == ("mnist", "train", "test")
    together = load_splits("mnist", ("test", "train"), root=tmp_path / "mine")  # one read, same datasets
    for one, other in zip(together, (test, train)):
        np.testing.assert_array_equal(one.images, other.images)
        assert (one.split, one.mean, one.std) == (other.split, other.mean, other.std)


def test_fashion_class_names_and_gunzipped_files(tmp_path):
    write_mnist(tmp_path / "raw", gz=False)
    data = load_dataset("fashion-mnist", "test", root=tmp_path / "raw")
    assert len(data) == 20 and data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"


def test_cifar10_splits(tmp_path):
    folder = tmp_path / "data" / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, count in [(f"data_batch_{k}.bin", N_TRAIN // 5) for k in range(1, 6)] + [("test_batch.bin", 7)]:
        records = rng.integers(0, 256, size=(count, 3073), dtype=np.uint8)
        records[:, 0] %= 10
        (folder / name).write_bytes(records.tobytes())
    train = load_dataset("cifar10", "train", root=tmp_path / "data")
    test = load_dataset("cifar10", "test", root=tmp_path / "data")
    assert train.images.shape == (10, 3, 32, 32) and len(test) == 7
    assert len(train.mean) == 3 and train.class_names[:2] == ["airplane", "automobile"]


def test_too_few_training_images_for_the_holdout(tmp_path):
    folder = tmp_path / "small"
    write_mnist(folder)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((3, 28, 28)))))
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(3))))
    with pytest.raises(ValueError, match=r"expected more than 5000 training images.*got 3"):
        load_dataset("mnist", root=folder)


def test_label_count_mismatch(tmp_path):
    write_mnist(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(5))))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz: expected 20 labels"):
        load_dataset("mnist", "test", root=tmp_path / "m")


# ---------------------------------------------------------------- where files are found

def test_root_then_root_name_then_cache(tmp_path, private_cache):
    write_mnist(private_cache / "mnist", n_test=30)
    assert len(load_dataset("mnist", "test")) == 30  # cache from $CONVSCOPE_DATA
    write_mnist(tmp_path / "root" / "mnist", n_test=25)
    assert len(load_dataset("mnist", "test", root=tmp_path / "root")) == 25  # root/<name>
    write_mnist(tmp_path / "root", n_test=21)
    assert len(load_dataset("mnist", "test", root=tmp_path / "root")) == 21  # root itself first
    assert len(load_dataset("mnist", "test", root=tmp_path / "nothing-here")) == 30


def test_explicit_cache_dir(tmp_path):
    write_mnist(tmp_path / "elsewhere" / "mnist", n_test=12)
    assert len(load_dataset("mnist", "test", cache_dir=tmp_path / "elsewhere")) == 12


def test_fashion_falls_back_to_the_debian_folder(tmp_path, private_cache):
    write_mnist(tmp_path / "debian", n_test=11)
    assert len(load_dataset("fashion-mnist", "test")) == 11
    write_mnist(private_cache / "fashion-mnist", n_test=13)
    assert len(load_dataset("fashion-mnist", "test")) == 13  # the cache comes first


def test_download_true_fills_the_cache(tmp_path, private_cache, monkeypatch):
    fetched = []

    def fake_fetch(folder):
        fetched.append(folder)
        write_mnist(folder, n_test=9)

    patched = dataclasses.replace(catalog.DATASETS["mnist"], fetch=fake_fetch)
    monkeypatch.setitem(catalog.DATASETS, "mnist", patched)
    assert len(load_dataset("mnist", "test", download=True)) == 9
    assert fetched == [private_cache / "mnist"]
    load_dataset("mnist", "test", download=True)
    assert len(fetched) == 1  # already there: nothing fetched


def test_fetch_idx_asks_for_each_missing_file_with_its_checksum(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(catalog, "download", lambda urls, dest, sha: calls.append((urls, dest.name, sha)))
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"already here, gunzipped")
    catalog.fetch_idx(folder, catalog.MNIST_MIRRORS, catalog.MNIST_SHA256)
    assert [name for _, name, _ in calls] == list(catalog.IDX_FILES[:3])
    urls, name, sha = calls[0]
    assert urls[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
    assert sha == catalog.MNIST_SHA256[0] and len(urls) == 2


# ---------------------------------------------------------------- missing datasets explain themselves

@pytest.mark.parametrize("name, advice", [
    ("mnist", ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "--data-dir",
               "download=True", "ossci-datasets"]),
    ("fashion-mnist", ["apt-get install dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist",
                       "train-labels-idx1-ubyte.gz", "--data-dir", "download=True"]),
    ("cifar10", ["data_batch_1.bin", "test_batch.bin", "cifar-10-binary.tar.gz", "--data-dir"]),
    ("digits", ["digits.npz", "python -m convscope.data.digits", "python scripts/fetch_digits.py",
                "download=True"]),
])
def test_missing_dataset_says_how_to_provide_it(tmp_path, private_cache, name, advice):
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset(name, root=tmp_path / "mine")
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert f"dataset {name!r} not found" in message
    assert str(tmp_path / "mine") in message and str(private_cache / name) in message
    for words in advice:
        assert words in message, words


def test_unknown_name_and_split():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnits', expected one of \['cifar10', 'digits'"):
        load_dataset("mnits")
    with pytest.raises(ValueError, match=r"mnist: unknown split 'validation'"):
        load_dataset("mnist", "validation")


# ---------------------------------------------------------------- checksums, downloads, archives

def test_sha256_of_a_local_file(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    known = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2 example
    assert sha256_file(path) == known
    verify_sha256(path, known.upper())
    with pytest.raises(ValueError, match=rf"abc.txt: SHA-256 mismatch: expected {'0' * 64}, got {known}"):
        verify_sha256(path, "0" * 64)


def test_download_verifies_and_never_leaves_partial_files(tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(b"payload")
    good = hashlib.sha256(b"payload").hexdigest()
    destination = tmp_path / "out" / "file.bin"
    with pytest.raises(OSError, match=r"could not download file.bin:\n.*SHA-256 mismatch"):
        download([source.as_uri()], destination, "f" * 64)
    assert not destination.exists() and list(destination.parent.iterdir()) == []
    missing = (tmp_path / "nope").as_uri()
    assert download([missing, source.as_uri()], destination, good) == destination  # second mirror
    assert destination.read_bytes() == b"payload"


def test_download_never_writes_through_a_link_left_at_its_partial_file(tmp_path):
    source, outside = tmp_path / "served.bin", tmp_path / "precious.txt"
    source.write_bytes(b"payload")
    outside.write_bytes(b"keep me")
    destination = tmp_path / "out" / "file.bin"
    destination.parent.mkdir()
    (destination.parent / "file.bin.part").symlink_to(outside)
    download([source.as_uri()], destination, hashlib.sha256(b"payload").hexdigest())
    assert outside.read_bytes() == b"keep me" and destination.read_bytes() == b"payload"
    assert not destination.is_symlink() and sorted(p.name for p in destination.parent.iterdir()) == ["file.bin"]


def test_extract_members_reads_only_the_named_files(tmp_path):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("batches/one.bin", b"1"), ("../../evil.bin", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    extract_members(archive, ["batches/one.bin"], tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["one.bin"]
    assert not (tmp_path.parent / "evil.bin").exists()
    with pytest.raises(ValueError, match=r"expected a member named 'batches/two.bin'"):
        extract_members(archive, ["batches/two.bin"], tmp_path / "out")


# ---------------------------------------------------------------- the real thing, if installed

@pytest.mark.skipif(not (catalog.DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_debian(monkeypatch):
    monkeypatch.undo()  # the real system folder, but still an empty private cache
    monkeypatch.setenv("CONVSCOPE_DATA", "/nonexistent/convscope-cache")
    test = load_dataset("fashion-mnist", "test")
    assert test.images.shape == (10000, 1, 28, 28)
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert test.mean[0] == pytest.approx(0.286, abs=0.001) and test.std[0] == pytest.approx(0.353, abs=0.001)
