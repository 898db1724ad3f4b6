"""Valid seed files for every reader, made here, and the mutations that break them.

Byte mutations (:func:`mutate_bytes`) work on any file: bit flips, bytes set, truncations,
deletions, insertions, duplicated runs, 4- and 8-byte fields overwritten with huge or
negative values, trailing bytes. Format-aware mutations build what bytes rarely reach:
IDX headers declaring huge shapes, gzip and zip bombs built small, .npz members with other
compression methods or an encryption flag, PNG headers declaring huge images, and model
files whose JSON header is edited field by field and framed again so the edit reaches the
schema instead of the framing check.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image

from convscope import models, nn
from convscope.io import save_checkpoint, save_model
from convscope.optim import SGD

HUGE = (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 10**9, 2**63, 2**64 - 1, 0)


# ----- seeds ---------------------------------------------------------------------------
def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of ``array`` (uint8, int8, int16, int32, float32 or float64)."""
    codes = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
    code = codes[array.dtype.str[1:]]
    head = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(array.dtype.newbyteorder(">")).tobytes()


def npz_bytes(compressed: bool = False, **arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def image_bytes(kind: str, rng: np.random.Generator) -> bytes:
    """A small image file: "png", "png16" (16-bit grey), "jpeg", "gif", "bmp" or "rgba"."""
    buffer = io.BytesIO()
    if kind == "png16":
        Image.fromarray((rng.random((9, 7)) * 65535).astype(np.uint16)).save(buffer, format="PNG")
    elif kind == "rgba":
        Image.fromarray((rng.random((8, 8, 4)) * 255).astype(np.uint8), mode="RGBA").save(buffer, format="PNG")
    else:
        Image.fromarray((rng.random((8, 10, 3)) * 255).astype(np.uint8)).save(
            buffer, format={"png": "PNG", "jpeg": "JPEG", "gif": "GIF", "bmp": "BMP"}[kind])
    return buffer.getvalue()


def tiny_model() -> nn.Sequential:
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3, rng=rng))


def model_seeds(folder) -> dict[str, bytes]:
    """Bytes of a LeNet-5 model file, a small layer-list model file and a checkpoint."""
    files = {}
    save_model(folder / "lenet.safetensors", models.lenet5(rng=np.random.default_rng(0)),
               [str(k) for k in range(10)], (1, 28, 28), [0.13], [0.31])
    model = tiny_model()
    save_model(folder / "tiny.safetensors", model, ["a", "b", "c"], (1, 8, 8), [0.5], [0.25])
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    save_checkpoint(folder / "tiny.ckpt.safetensors", model, optimizer, None,
                    {"loader": np.random.default_rng(3)},
                    {"epoch": 1, "history": [{"epoch": 1, "loss": 0.5}], "best_val_loss": None, "bad_epochs": 0})
    for name in ("lenet", "tiny", "tiny.ckpt"):
        files[name] = (folder / f"{name}.safetensors").read_bytes()
    return files


# ----- byte mutations ---------------------------------------------------------------------
def mutate_bytes(data: bytes, rng: np.random.Generator, steps: int = 0) -> bytes:
    """``data`` with 1 to 4 random byte-level mutations."""
    out = bytearray(data)
    for _ in range(steps or int(rng.integers(1, 5))):
        n = len(out)
        if n == 0:
            out += rng.bytes(int(rng.integers(1, 16)))
            continue
        at = int(rng.integers(0, n))
        kind = int(rng.integers(0, 9))
        if kind == 0:
            out[at] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            out[at] = int(rng.choice([0, 0xFF, 0x7F, 0x80, int(rng.integers(0, 256))]))
        elif kind == 2:
            del out[int(rng.integers(0, n)):]
        elif kind == 3:
            del out[at:at + int(rng.integers(1, 64))]
        elif kind == 4:
            out[at:at] = rng.bytes(int(rng.integers(1, 32)))
        elif kind == 5:
            out[at:at] = out[at:at + int(rng.integers(1, 64))]
        elif kind == 6:
            value = int(rng.choice(HUGE)) & 0xFFFFFFFF
            out[at:at + 4] = struct.pack(rng.choice([">I", "<I"]), value)
        elif kind == 7:
            out[at:at + 8] = struct.pack(rng.choice([">Q", "<Q"]), int(rng.choice(HUGE)) & (2**64 - 1))
        else:
            out += rng.bytes(int(rng.integers(1, 64)))
    return bytes(out)


# ----- format-aware mutations ---------------------------------------------------------------
def gzip_bomb(head: bytes, zeros: int) -> bytes:
    """A gzip stream of ``head`` then ``zeros`` zero bytes, compressed piece by piece (small)."""
    packer, chunk = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(2**20)
    parts = [packer.compress(head)]
    for start in range(0, zeros, len(chunk)):
        parts.append(packer.compress(chunk[:min(len(chunk), zeros - start)]))
    return b"".join(parts) + packer.flush()


def idx_mutations(rng: np.random.Generator, seed: bytes, gz: bool) -> bytes:
    """An IDX file with its header edited (type, ndim, huge dims), a bomb, or byte mutations."""
    kind = int(rng.integers(0, 5))
    data = bytearray(seed)
    if kind == 0:
        data[2] = int(rng.choice([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]))
    elif kind == 1:
        data[3] = int(rng.integers(0, 256))
    elif kind == 2:
        at = 4 + 4 * int(rng.integers(0, max(1, data[3])))
        data[at:at + 4] = struct.pack(">I", int(rng.choice(HUGE)) & 0xFFFFFFFF)
    elif kind == 3:  # a bomb: a header declaring a large shape, then zeros; inside or past the limit
        count = int(rng.choice([1000, 60_000, 10**6]))
        side = int(rng.choice([8, 28, 100]))
        head = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", count, side, side)
        return gzip_bomb(head, min(count * side * side, 80 * 2**20))
    else:
        return mutate_bytes(gzip.compress(bytes(data)) if gz else bytes(data), rng)
    return gzip.compress(bytes(data)) if gz else bytes(data)


def zip_member_edit(archive: bytes, rng: np.random.Generator) -> bytes:
    """An .npz whose first member's local and central headers say another compression method,
    the encryption flag, or a huge size; or a zip bomb of a 10^12-element header."""
    kind = int(rng.integers(0, 4))
    data = bytearray(archive)
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    if kind == 0 and local >= 0 and central >= 0:
        method = int(rng.choice([1, 9, 12, 14, 93, 99]))
        data[local + 8:local + 10] = struct.pack("<H", method)
        data[central + 10:central + 12] = struct.pack("<H", method)
    elif kind == 1 and local >= 0 and central >= 0:
        data[local + 6] |= 1
        data[central + 8] |= 1
    elif kind == 2 and central >= 0:
        data[central + 24:central + 28] = struct.pack("<I", int(rng.choice(HUGE)) & 0xFFFFFFFF)
    else:
        shape = rng.choice(["(1000000, 1000000)", "(10, 28, 28)", "(-1, 5)", "(99999999999999999999,)"])
        header = "{'descr': '|u1', 'fortran_order': False, 'shape': %s, }" % shape
        header = header.ljust(118) + "\n"
        npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("x.npy", npy + bytes(int(rng.choice([0, 7840, 4 * 2**20]))))
            z.writestr("y.npy", npy[:int(rng.integers(1, len(npy)))])
        return buffer.getvalue()
    return bytes(data)


def png_size_edit(png: bytes, rng: np.random.Generator) -> bytes:
    """A PNG whose IHDR declares another (often huge) size, its CRC fixed or left wrong."""
    data = bytearray(png)
    width, height = (int(v) for v in rng.choice([1, 0, 65535, 100_000, 2**31 - 1], 2))
    data[16:24] = struct.pack(">II", width, height)
    if rng.random() < 0.7:
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)
