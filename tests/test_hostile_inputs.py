"""One regression test for each kind of defect a hostile-input audit found in the readers and
loaders: every one ends in a clean ValueError that names the file, before anything large is
read, decompressed or allocated."""

import gzip
import io
import json
import os
import signal
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from convscope import models, nn
from convscope.cli import main
from convscope.data import bounded
from convscope.data.catalog import read_idx_pair
from convscope.data.preprocess import preprocess_image
from convscope.data.readers import read_cifar10_batch, read_idx, read_image_folder, read_npz
from convscope.data.user import folder_channels, load_user_data
from convscope.io import ModelFileError, load_checkpoint, load_model, save_checkpoint, save_model
from convscope.optim import SGD

META = {"input_shape": [1, 28, 28], "mean": [0.1], "std": [0.3], "preprocess": "resize"}


@pytest.fixture
def alarm():
    """Fail a test that blocks (a FIFO opened for reading waits for a writer forever)."""
    def hung(signum, frame):
        raise AssertionError("blocked for 5 s")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def peak_bytes(call):
    """The most memory Python allocated while ``call()`` ran (it must raise ValueError)."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as error:
            call()
        return tracemalloc.get_traced_memory()[1], str(error.value)
    finally:
        tracemalloc.stop()


# ----- model files -------------------------------------------------------------------------
def tiny():
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.ReLU(), nn.Flatten(), nn.Linear(72, 3, rng=rng))


def framed(path, header_text, body=b""):
    raw = header_text.encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)
    return path


def edited(source, path, **fields):
    """A copy of the model file ``source`` with convscope metadata fields replaced."""
    data = source.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    meta = json.loads(header["__metadata__"]["convscope"])
    meta.update(fields)
    header["__metadata__"]["convscope"] = fields.pop("raw", None) or json.dumps(meta)
    return framed(path, json.dumps(header), data[8 + length:])


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_model(path, tiny(), ["a", "b", "c"], (1, 8, 8), [0.5], [0.25])
    return path


@pytest.mark.parametrize("text", ["[1, 2]", "3", '"a string"', "null"])
def test_a_header_that_is_json_but_not_an_object(tmp_path, text):
    with pytest.raises(ModelFileError, match=r"m.safetensors: corrupt header: expected a JSON object"):
        load_model(framed(tmp_path / "m.safetensors", text))


@pytest.mark.parametrize("field, value", [("class_names", 5), ("class_names", [1, 2, 3]), ("input_shape", "1,8,8"),
                                          ("input_shape", [1, -8, 8]), ("mean", "0.5"), ("mean", [float("nan")]),
                                          ("std", [0.0]), ("format_version", "1"), ("task", {"kind": 3}),
                                          ("preprocess", 7)])
def test_metadata_fields_of_the_wrong_type_or_range(model_file, tmp_path, field, value):
    with pytest.raises(ModelFileError, match=rf"bad.safetensors: field '{field}' must be"):
        load_model(edited(model_file, tmp_path / "bad.safetensors", **{field: value}))


def test_deeply_nested_json_is_a_corrupt_header_not_a_recursion_error(model_file, tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ModelFileError, match="nested more than 32 levels deep; corrupt header"):
        load_model(edited(model_file, tmp_path / "deep.safetensors", raw=deep))
    with pytest.raises(ModelFileError, match="nested more than 32 levels deep"):
        load_model(framed(tmp_path / "frame.safetensors", deep))
    with pytest.raises(ModelFileError, match="nested more than"):
        load_model(edited(model_file, tmp_path / "arch.safetensors", architecture=json.loads("[" * 40 + "]" * 40)))


@pytest.mark.parametrize("architecture, message", [
    ({"type": "Parameter"}, "unknown layer type 'Parameter'"), ({"type": "Module"}, "unknown layer type 'Module'"),
    ({"type": "ReLU"}, r"gives float32 scores of shape \(1, 1, 8, 8\)"),
    ({"type": "AdaptiveAvgPool2d", "config": {"output_size": 0}}, r"gives float32 scores of shape \(1, 1, 0, 0\)"),
    ({"type": "CrossEntropyLoss"}, "cannot run on its input shape"),
    ({"type": "Sequential", "layers": []}, "gives"),
    ({"type": "zoo", "name": ["lenet5"]}, "field 'architecture name' must be a zoo model"),  # found by the fuzz
    ({"type": "zoo", "name": {"a": 1}}, "field 'architecture name' must be a zoo model"),
])
def test_allow_listed_classes_that_cannot_run_as_a_model(model_file, tmp_path, architecture, message):
    meta = {"format": "convscope-model", "format_version": 1, "architecture": architecture,
            "class_names": ["a", "b"], "input_shape": [1, 8, 8]}
    path = framed(tmp_path / "odd.safetensors", json.dumps({"__metadata__": {"convscope": json.dumps(meta)}}))
    with pytest.raises(ModelFileError, match=message):  # no weights to mismatch: the class itself is refused
        load_model(path)


def test_a_huge_num_classes_is_refused_before_the_layer_is_allocated(tmp_path):
    path = tmp_path / "lenet.safetensors"
    save_model(path, models.lenet5(rng=np.random.default_rng(0)), [str(k) for k in range(10)], (1, 28, 28))
    arch = {"type": "zoo", "name": "lenet5", "config": {"in_channels": 1, "num_classes": 10**5}}
    peak, message = peak_bytes(lambda: load_model(edited(path, tmp_path / "huge.safetensors", architecture=arch)))
    assert "asks for 8,400,000 values" in message and peak < 8 * 2**20  # the 34 MB layer never existed
    arch["config"]["num_classes"] = 10**9
    with pytest.raises(ModelFileError, match="must be a number"):  # past MAX_CONFIG_INT: refused by the schema
        load_model(edited(path, tmp_path / "huger.safetensors", architecture=arch))


@pytest.mark.parametrize("edit, message", [
    (lambda h: h.pop("optimizer"), "field 'optimizer' must be"),
    (lambda h: h["optimizer"].update(steps="3"), "field 'optimizer' must be"),
    (lambda h: h["optimizer"]["hyper"].update(lr="fast"), "field 'optimizer' must be"),
    (lambda h: h["optimizer"]["hyper"].update(momentum=[0.9]), "hyper-parameter 'momentum'"),
    (lambda h: h["rngs"]["loader"]["state"].update(state=-5), "field 'rngs' must be"),
    (lambda h: h["rngs"]["loader"].update(bit_generator="MT19937"), "random state 'loader' cannot be restored"),
    (lambda h: h["progress"].update(epoch=-1), "field 'progress' must be"),
    (lambda h: h.update(scheduler={"last_step": "x"}), "field 'scheduler' must be"),
])
def test_edited_checkpoint_metadata_is_refused_before_anything_is_restored(tmp_path, edit, message):
    model = tiny()
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model, SGD(model.parameters(), lr=0.1, momentum=0.9), None,
                    {"loader": np.random.default_rng(3)}, {"epoch": 1, "history": [], "bad_epochs": 0})
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    meta = json.loads(header["__metadata__"]["convscope"])
    edit(meta)
    header["__metadata__"]["convscope"] = json.dumps(meta)
    framed(path, json.dumps(header), data[8 + length:])
    fresh, generator = tiny(), np.random.default_rng(7)
    before = fresh.state_dict()["0.weight"].copy(), generator.bit_generator.state
    with pytest.raises(ModelFileError, match=message):
        load_checkpoint(path, fresh, SGD(fresh.parameters(), lr=0.1, momentum=0.9), None, {"loader": generator})
    np.testing.assert_array_equal(fresh.state_dict()["0.weight"], before[0])
    assert generator.bit_generator.state == before[1]


def test_the_cli_says_one_line_for_a_header_that_is_not_an_object(tmp_path, capsys):
    path = framed(tmp_path / "m.safetensors", "[]")
    assert main(["summary", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "m.safetensors: corrupt header" in err


# ----- .npz ---------------------------------------------------------------------------------
def npz_with(tmp_path, name, **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_lzma_and_encrypted_members_are_refused_by_name(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_LZMA) as z:
        z.writestr("x.npy", b"\x93NUMPY" + bytes(200))
        z.writestr("y.npy", b"\x93NUMPY" + bytes(200))
    data = bytearray(buffer.getvalue())
    data[data.find(b"PK\x03\x04") + 30 + 5:][:4] = b"\xff\xff\xff\xff"
    (tmp_path / "lzma.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"lzma.npz: array 'x' is compressed with zip method 14"):
        read_npz(tmp_path / "lzma.npz")
    plain = bytearray(npz_with(tmp_path, "p.npz", x=np.zeros((2, 4, 4), np.uint8), y=np.arange(2)).read_bytes())
    for signature, flag in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        for at in range(len(plain)):
            at = plain.find(signature, at)
            if at < 0:
                break
            plain[at + flag] |= 1
    (tmp_path / "locked.npz").write_bytes(bytes(plain))
    with pytest.raises(ValueError, match=r"locked.npz: array 'x' is encrypted"):
        read_npz(tmp_path / "locked.npz")


def test_a_one_byte_npy_header_is_a_corrupt_header_not_a_pickle(tmp_path):
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", b"\x93")
        z.writestr("y.npy", b"\x93")
    with pytest.raises(ValueError, match=r"short.npz: array 'x': corrupt .npy header") as error:
        read_npz(path)
    assert "pickle" not in str(error.value)


def test_a_header_declaring_a_trillion_items_is_refused_before_allocation(tmp_path):
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000, 1000000), }".ljust(117) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    path = tmp_path / "claims.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", npy)
        z.writestr("y.npy", npy)
    peak, message = peak_bytes(lambda: read_npz(path))
    assert "declares 1,000,000,000,000 bytes" in message and peak < 2**20


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path, monkeypatch):
    monkeypatch.setattr(bounded, "MAX_ARRAY_BYTES", 2**20)
    path = npz_with(tmp_path, "bomb.npz", x=np.zeros((64, 256, 256), np.uint8), y=np.zeros(64, np.int64))
    packed = tmp_path / "packed.npz"
    np.savez_compressed(packed, x=np.zeros((64, 256, 256), np.uint8), y=np.zeros(64, np.int64))
    assert packed.stat().st_size < 100_000 < path.stat().st_size
    peak, message = peak_bytes(lambda: read_npz(packed))
    assert "packed.npz: array 'x' declares 4,194,432 bytes" in message and peak < 2**20


def test_a_huge_label_is_refused_instead_of_naming_a_billion_classes(tmp_path):
    path = npz_with(tmp_path, "labels.npz", x=np.zeros((20, 4, 4), np.uint8), y=np.array([0] * 19 + [10**9]))
    peak, message = peak_bytes(lambda: load_user_data(path))
    assert "expected class labels 0..9999, got 1000000000" in message and peak < 2**20


def test_uint64_labels_do_not_wrap_negative(tmp_path):
    path = npz_with(tmp_path, "u64.npz", x=np.zeros((2, 4, 4), np.uint8), y=np.array([1, 2**64 - 1], np.uint64))
    with pytest.raises(ValueError, match="got 18446744073709551615"):
        read_npz(path)


def test_object_arrays_are_the_only_pickle_message(tmp_path):
    path = npz_with(tmp_path, "o.npz", x=np.zeros((2, 4, 4), np.uint8), y=np.array([0, None], dtype=object))
    with pytest.raises(ValueError, match="holds Python objects .*cannot be read without pickle"):
        read_npz(path)


# ----- IDX and CIFAR --------------------------------------------------------------------------
def idx(array):
    codes = {"u1": 0x08, "f4": 0x0D}
    head = bytes([0, 0, codes[array.dtype.str[1:]], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_a_gzip_bomb_is_refused_from_its_header_before_it_is_inflated(tmp_path):
    head = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 100_000, 100, 100)  # 1 GB of pixels declared
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = packer.compress(head) + b"".join(packer.compress(bytes(2**20)) for _ in range(16)) + packer.flush()
    (tmp_path / "bomb.gz").write_bytes(data)
    assert len(data) < 50_000 and bounded.MAX_ARRAY_BYTES >= 10**9
    peak, message = peak_bytes(lambda: read_idx(tmp_path / "bomb.gz"))
    assert "truncated" in message and "got 16777216" in message and peak < 40 * 2**20  # 16 MB there, not 1 GB


def test_a_declared_size_past_the_limit_is_refused_without_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(bounded, "MAX_ARRAY_BYTES", 10**6)
    head = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 60_000, 28, 28)
    (tmp_path / "big.gz").write_bytes(gzip.compress(head + bytes(47_040_000)))
    peak, message = peak_bytes(lambda: read_idx(tmp_path / "big.gz"))
    assert "declares 47,040,000 bytes, more than the 1,000,000" in message and peak < 2**20


def test_float_idx_labels_are_refused_not_truncated(tmp_path):
    (tmp_path / "i-idx3-ubyte").write_bytes(idx(np.zeros((3, 4, 4), np.uint8)))
    (tmp_path / "l-idx1-ubyte").write_bytes(idx(np.array([0.0, 1.7, 2.2], np.float32)))
    with pytest.raises(ValueError, match="l-idx1-ubyte: expected labels as a 1-D integer array.*float32"):
        read_idx_pair(tmp_path, "i-idx3-ubyte", "l-idx1-ubyte")


def test_a_cifar_file_is_size_checked_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(bounded, "MAX_ARRAY_BYTES", 3073 * 10)
    (tmp_path / "batch.bin").write_bytes(bytes(3073 * 100))
    peak, message = peak_bytes(lambda: read_cifar10_batch(tmp_path / "batch.bin"))
    assert "declares 307,300 bytes" in message and peak < 100_000


# ----- images -------------------------------------------------------------------------------
def class_folder(tmp_path, data, name="x.png"):
    for cls in ("a", "b"):
        (tmp_path / "set" / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "set" / cls / "0.png")
    (tmp_path / "set" / "b" / name).write_bytes(data)
    return tmp_path / "set"


def test_a_fifo_named_like_an_image_is_refused_not_waited_on(tmp_path, alarm):
    root = class_folder(tmp_path, b"")
    os.remove(root / "b" / "x.png")
    os.mkfifo(root / "b" / "x.png")
    assert folder_channels(root) == 1
    with pytest.raises(ValueError, match=r"x.png: not a regular file \(a named pipe\)"):
        read_image_folder(root)
    with pytest.raises(ValueError, match=r"x.png: not a regular file"):
        preprocess_image(root / "b" / "x.png", META)


def png(array, **chunks):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return bytearray(buffer.getvalue())


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    data = png(np.zeros((4, 4), np.uint8))
    data[16:24] = struct.pack(">II", 60_000, 60_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    root = class_folder(tmp_path, bytes(data))
    for call in (lambda: read_image_folder(root), lambda: preprocess_image(root / "b" / "x.png", META)):
        with pytest.raises(ValueError, match=r"x.png: (is 60000x60000 pixels|too large to open safely)"):
            call()


def test_broken_png_chunks_are_unreadable_images(tmp_path):
    data = png((np.arange(64).reshape(8, 8) * 4).astype(np.uint8))
    data[37:41] = b"\xff\xff\xff\xff"  # the IDAT chunk's length
    root = class_folder(tmp_path, bytes(data))
    for call in (lambda: read_image_folder(root), lambda: preprocess_image(root / "b" / "x.png", META)):
        with pytest.raises(ValueError, match=r"x.png: not a readable image"):
            call()


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    values = np.array([[0, 16384, 32768, 65535]] * 4, np.uint16)
    root = class_folder(tmp_path, bytes(png(values)))
    images, labels, _ = read_image_folder(root, size=(4, 4))
    np.testing.assert_array_equal(images[labels == 1][-1, 0, 0], [0, 64, 128, 255])


def test_a_bomb_header_warns_nothing_before_its_one_line(tmp_path, recwarn):
    data = png(np.zeros((4, 4), np.uint8))
    data[16:24] = struct.pack(">II", 11_000, 11_000)  # past Pillow's warning size, under its error size
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    (tmp_path / "w.png").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"w.png: is 11000x11000 pixels"):
        preprocess_image(tmp_path / "w.png", META)
    assert len(recwarn) == 0
