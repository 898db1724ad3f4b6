"""The command line on broken files: ``convscope evaluate``, ``predict`` and ``summary``, each in
its own process, must exit 1 with exactly one line on stderr that names the file, and no
traceback.

:func:`commands` turns the broken files of a campaign (the ones the library refuses) into
command lines, with good companions (a model file for a broken dataset, a dataset for a
broken model); :func:`run_command` runs one and sorts the outcome.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from fuzz_seeds import idx_bytes, image_bytes

from convscope import models, nn
from convscope.io import save_model

ROOT = Path(__file__).parents[2]
CLI_SECONDS = 120
T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR_FILES = [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]


def companions(folder: Path) -> dict[str, Path]:
    """Good files to pair with a broken one: models for 1x5x5, 1x6x6 and 3x32x32 images,
    an .npz of 1x5x5 images and a PNG."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    small = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.ReLU(), nn.Flatten(), nn.Linear(18, 2, rng=rng))
    save_model(folder / "m5.safetensors", small, ["0", "1"], (1, 5, 5), [0.5], [0.25])
    idx = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.ReLU(), nn.Flatten(), nn.Linear(32, 10, rng=rng))
    save_model(folder / "m6.safetensors", idx, [str(k) for k in range(10)], (1, 6, 6), [0.5], [0.25])
    save_model(folder / "cifar.safetensors", models.SmallResNet(rng=rng, width=4),
               [str(k) for k in range(10)], (3, 32, 32), [0.5] * 3, [0.25] * 3)
    for side in (5, 8, 28):  # data for m5, and for the seeds of the model campaign (tiny, lenet)
        np.savez(folder / f"good{side}.npz", x=(rng.random((40, side, side)) * 255).astype(np.uint8),
                 y=np.arange(40) % (2 if side == 5 else 3))
    (folder / "good.png").write_bytes(image_bytes("png", rng))
    return {"m5": folder / "m5.safetensors", "m6": folder / "m6.safetensors", "cifar": folder / "cifar.safetensors",
            "npz": folder / "good5.npz", "tiny": folder / "good8.npz", "lenet": folder / "good28.npz",
            "png": folder / "good.png"}


def _complete_idx_folder(folder: Path) -> None:
    """Add the test-split files an MNIST-like folder needs (valid; the train files are the case's)."""
    rng = np.random.default_rng(1)
    for name in os.listdir(folder):
        if not name.endswith(".gz"):
            (folder / name).rename(folder / (name + ".gz"))  # raw files keep working under .gz names
    (folder / T10K[0]).write_bytes(gzip.compress(idx_bytes((rng.random((4, 6, 6)) * 255).astype(np.uint8))))
    (folder / T10K[1]).write_bytes(gzip.compress(idx_bytes(np.arange(4, dtype=np.uint8))))


def commands(reader: str, case: Path, good: dict[str, Path]) -> list[tuple[list[str], str]]:
    """(argv after ``convscope``, the file the error must name) for one broken case."""
    if reader.startswith("IDX"):
        _complete_idx_folder(case)
        return [(["evaluate", str(good["m6"]), "--data", "mnist", "--data-dir", str(case)], case.name)]
    if reader.startswith("CIFAR"):
        folder = case.with_suffix("")
        folder.mkdir()
        shutil.move(case, folder / CIFAR_FILES[0])
        record = bytes([3]) + bytes(3072)
        for name in CIFAR_FILES[1:]:
            (folder / name).write_bytes(record)
        return [(["evaluate", str(good["cifar"]), "--data", "cifar10", "--data-dir", str(folder)], CIFAR_FILES[0])]
    if reader.startswith(".npz"):
        return [(["evaluate", str(good["m5"]), "--data", str(case)], case.name)]
    if reader.startswith("image"):
        return [(["predict", str(good["m5"]), str(case)], case.name),
                (["evaluate", str(good["m5"]), "--data", str(case.parent.parent)], case.name)]
    data = good["lenet" if ".lenet." in case.name else "tiny"]
    return [(["summary", str(case)], case.name), (["predict", str(case), str(good["png"])], case.name),
            (["evaluate", str(case), "--data", str(data)], case.name)]


def run_command(argv: list[str], names: str) -> tuple[str, str]:
    """("clean" | "traceback" | "not one line" | "no file named" | "exit N" | "hang", stderr)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    try:
        done = subprocess.run([sys.executable, "-m", "convscope.cli", *argv], capture_output=True, text=True,
                              timeout=CLI_SECONDS, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        return "hang", ""
    return classify(done.returncode, done.stderr, names), done.stderr.strip()


def classify(returncode: int, stderr: str, names: str) -> str:
    """What a command's exit code and stderr say: "clean" only for exit 1 with one line naming ``names``."""
    err = stderr.strip()
    if "Traceback" in err:
        return "traceback"
    if returncode != 1:
        return f"exit {returncode}"
    if len(err.splitlines()) != 1:
        return "not one line"
    return "clean" if names in err else "no file named"
