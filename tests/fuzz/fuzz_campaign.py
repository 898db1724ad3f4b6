"""The fuzz campaign: broken files for every reader, run in forked memory-capped children.

    python tests/fuzz/fuzz_campaign.py 5000          # 5000 cases per reader, prints the table
    CONVSCOPE_FUZZ_EXAMPLES=5000 python -m pytest tests/fuzz -q   # the same through the tests

Each reader's cases are made from valid seed files (fuzz_seeds, fuzz_models) by a seeded
numpy Generator, so a run is reproducible from its seed.
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[2])]  # these helpers, this checkout

import fuzz_models  # noqa: E402
import fuzz_seeds as seeds  # noqa: E402
from fuzz_engine import problems, run_cases, tally  # noqa: E402

from convscope.data.catalog import read_idx_pair  # noqa: E402
from convscope.data.preprocess import preprocess_image  # noqa: E402
from convscope.data.readers import read_cifar10_batch, read_image_folder, read_npz  # noqa: E402
from convscope.data.scene_sets import read_scenes  # noqa: E402
from convscope.data.user import folder_channels, load_user_splits  # noqa: E402
from convscope.io import checkpoint_progress, load_best, load_checkpoint, load_model  # noqa: E402
from convscope.optim import SGD  # noqa: E402

IMAGE_KINDS = ("png", "png16", "jpeg", "gif", "bmp", "rgba")
IMAGES_FILE, LABELS_FILE = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"


# ----- case makers: (rng, folder, seeds) -> the case (paths the runner reads) ----------------
def idx_case(rng, folder, seed, broken=True):
    """A folder with an IDX image file and its label file, one of them broken, raw or gzip."""
    folder.mkdir()
    images = (rng.random((12, 6, 6)) * 255).astype(np.uint8)
    labels = rng.integers(0, 10, 12).astype(rng.choice(["u1", "i4", "f4", "f8", "i1"]) if broken else "u1")
    gz = rng.random() < 0.5
    files = {IMAGES_FILE: seeds.idx_bytes(images), LABELS_FILE: seeds.idx_bytes(labels)}
    which = IMAGES_FILE if rng.random() < 0.5 else LABELS_FILE
    if broken:
        files[which] = seeds.idx_mutations(rng, files[which], gz)
    for name, data in files.items():  # the broken file is compressed by its mutation (or not, to test raw)
        (folder / (name + (".gz" if gz else ""))).write_bytes(data if (name == which and broken) or not gz
                                                             else gzip.compress(data))
    return folder


def run_idx(folder):
    read_idx_pair(folder, IMAGES_FILE + ".gz", LABELS_FILE + ".gz")


def cifar_case(rng, folder, seed, broken=True):
    records = np.concatenate([rng.integers(0, 10, (3, 1)), rng.integers(0, 256, (3, 3072))], axis=1)
    data = records.astype(np.uint8).tobytes()
    path = folder.with_suffix(".bin")
    if broken:
        data = seeds.mutate_bytes(data, rng) if rng.random() < 0.9 else data[:3073] * 2 + b"\x0a"
    path.write_bytes(data)
    return path


def npz_case(rng, folder, seed, broken=True):
    n = int(rng.choice([40, 60]))
    arrays = {"x": (rng.random((n, 5, 5)) * 255).astype(np.uint8),
              "y": (np.arange(n) % 2).astype(rng.choice(["i8", "u8", "i1", "f4"]) if broken else "i8")}
    data = seeds.npz_bytes(bool(rng.random() < 0.5), **arrays)
    if broken and rng.random() < 0.1:
        data = seeds.npz_bytes(False, x=arrays["x"], y=np.array([2**64 - 1] * n, np.uint64))
    if broken:
        data = seeds.zip_member_edit(data, rng) if rng.random() < 0.4 else seeds.mutate_bytes(data, rng)
    path = folder.with_suffix(".npz")
    path.write_bytes(data)
    return path


def run_npz(path):
    read_npz(path)
    load_user_splits(path, ("train", "val"))
    read_scenes(path, "{}")  # the scene cache: None or scenes, never an error


def image_case(rng, folder, seed, broken=True):
    """A class-per-folder dataset of three images, one of them broken (or a FIFO named like one)."""
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        (folder / name / "1.png").write_bytes(seeds.image_bytes("png", rng))
        (folder / name / "0.png").write_bytes(seeds.image_bytes("png16", rng))
    kind = IMAGE_KINDS[int(rng.integers(0, len(IMAGE_KINDS)))]
    target = folder / "b" / f"2.{'jpg' if kind == 'jpeg' else 'png'}"
    if broken and rng.random() < 0.03:
        os.mkfifo(target)
        return target
    data = seeds.image_bytes(kind, rng)
    if broken:
        data = seeds.png_size_edit(data, rng) if kind == "png" and rng.random() < 0.3 else seeds.mutate_bytes(data, rng)
    target.write_bytes(data)
    return target


def run_image(target):
    folder_channels(target.parent.parent)
    read_image_folder(target.parent.parent, (8, 8), "L")
    preprocess_image(target, {"input_shape": [1, 28, 28], "mean": [0.1], "std": [0.3], "preprocess": "resize"})


def model_case(rng, folder, seed, broken=True):
    kind = rng.choice(["lenet", "tiny", "tiny.ckpt"])
    data = seed[kind]
    mutate = rng.random() if broken else None
    if broken:
        data = (fuzz_models.edit_header(data, rng) if mutate < 0.55 else fuzz_models.edit_framing(data, rng)
                if mutate < 0.75 else seeds.mutate_bytes(data, rng))
    path = folder.with_name(f"{folder.name}.{kind}.safetensors")
    path.write_bytes(data)
    return path


def run_model(path):
    if not path.name.endswith(".ckpt.safetensors"):
        load_model(path)
        return
    model = seeds.tiny_model()
    load_checkpoint(path, model, SGD(model.parameters(), lr=0.1, momentum=0.9), None,
                    {"loader": np.random.default_rng(0)})
    checkpoint_progress(path)
    load_best(path)


READERS = {"IDX reader (raw, .gz)": (idx_case, run_idx), "CIFAR reader": (cifar_case, read_cifar10_batch),
           ".npz reader": (npz_case, run_npz), "image folder": (image_case, run_image),
           "model loader": (model_case, run_model)}


def make_cases(name: str, count: int, root: Path, seed: int = 0, broken: bool = True) -> list:
    """``count`` broken files for reader ``name`` under ``root`` (a seeded Generator makes them);
    ``broken=False``: the valid seed files they are made from."""
    make = READERS[name][0]
    rng = np.random.default_rng([seed, list(READERS).index(name)])
    model_files = seeds.model_seeds(root) if name == "model loader" else None
    return [make(rng, root / f"case{i}", model_files, broken) for i in range(count)]


def campaign(count: int, root: Path, seed: int = 0) -> dict[str, list[dict]]:
    """Every reader on ``count`` broken files: {reader: records} (see fuzz_engine)."""
    results = {}
    for name, (_, run) in READERS.items():
        folder = root / name.split()[0].strip(".")
        folder.mkdir()
        cases = make_cases(name, count, folder, seed)
        results[name] = run_cases(run, cases)
    return results


def table(results: dict[str, list[dict]]) -> str:
    lines = ["| entry point | cases | clean error | accepted | unhandled | hang | blow-up |", "|---" * 7 + "|"]
    for name, records in results.items():
        t = tally(records)
        lines.append(f"| {name} | {len(records)} | {t['clean']} | {t['accepted']} | {t['unhandled']} | "
                     f"{t['hang']} | {t['blowup']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = campaign(count, Path(tmp), seed=int(os.environ.get("CONVSCOPE_FUZZ_SEED", "0")))
    print(table(results))
    print(f"{count} cases per reader in {time.perf_counter() - start:.0f} s")
    for name, records in results.items():
        for record in problems(records)[:20]:
            print(name, record)
