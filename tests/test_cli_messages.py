"""Messages that say what went wrong and what to do, for the cases users hit; help that
states every default; invariance text that tells what its own table shows."""

import argparse
import subprocess
import sys

import numpy as np
import pytest

from convscope.cli import build_parser, main
from convscope.io import save_model
from convscope.models import lenet5
from convscope.viz.invariance import ShiftResult, invariance_summary


def test_every_option_states_its_default():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and "default" in action.help.lower(), f"{name} {action.option_strings}"


@pytest.mark.parametrize("argv, message", [
    (["summary", "missing.safetensors"], "missing.safetensors: no such file or folder"),
    (["summary", "nolayer"], "'nolayer' is not a model file, a run folder or a zoo name"),
    (["invariance", "lenet5", "--pixels", "20"], "--pixels must be at least 1 and less than half the image"),
    (["invariance", "lenet5", "--pixels", "0"], "--pixels must be at least 1"),
], ids=["missing_path", "unknown_name", "pixels_big", "pixels_zero"])
def test_clear_messages(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_file_that_is_not_safetensors(tmp_path, capsys):
    (tmp_path / "notes.safetensors").write_bytes(np.random.default_rng(0).bytes(100))
    assert main(["summary", str(tmp_path / "notes.safetensors")]) == 1
    assert "truncated or not a safetensors file; expected a .safetensors model file" in capsys.readouterr().err


def test_report_given_the_model_file(tmp_path, capsys):
    save_model(tmp_path / "model.safetensors", lenet5(rng=np.random.default_rng(0)), input_shape=(1, 28, 28))
    assert main(["report", str(tmp_path / "model.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "report takes the run folder, not a file" in err and f"try: convscope report {tmp_path}" in err


def test_a_closed_pipe_ends_quietly():
    code = "import sys; from convscope.cli import main; sys.exit(main(['explain', 'lenet5', '--depth', 'math']))"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.read(10)  # like `| head -c 10`: read a little, then go away
    process.stdout.close()
    err = process.stderr.read().decode()
    process.wait()
    assert "Traceback" not in err and "error" not in err


def shift(dy, dx, predicted, aligned=0.9, unaligned=0.2):
    return ShiftResult(dy, dx, aligned, unaligned, 0.5, 0.3, predicted, 0.9)


def test_invariance_summary_tells_what_the_table_shows():
    stays = [shift(0, 0, 3, 1, 1), shift(2, 0, 3), shift(0, 2, 3)]
    assert invariance_summary(stays).endswith("The prediction stayed 3 for every shift.")
    changes = stays + [shift(2, 2, 5, 0.1, 0.3)]
    text = invariance_summary(changes, [str(k) for k in range(10)])
    assert "stayed 3 for 2 of 3 shifts and changed for 1: (+2,+2) -> 5." in text
    assert "moved with the image in 2 of 3 shifts" in text


def colour_folder(root, counts, colour=True):
    """An image folder with one subfolder per class of ``counts`` 12x12 images."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for k, count in enumerate(counts):
        (root / f"class{k}").mkdir(parents=True)
        for i in range(count):
            pixels = (rng.random((12, 12, 3)) * 255).astype(np.uint8)
            pixels[..., 0] = 40 * k  # classes differ in red
            image = Image.fromarray(pixels if colour else pixels[..., 1])
            image.save(root / f"class{k}" / f"{i}.png")


def test_a_colour_folder_trains_in_colour_and_says_so(tmp_path, capsys):
    colour_folder(tmp_path / "pics", [20, 20, 5])
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "pics"), "--epochs", "1", "--out", str(out), "--no-report",
                 "--batch-size", "16"]) == 0
    err = capsys.readouterr().err
    assert "45 images in 3 classes, read as colour and resized to 28x28" in err
    assert "1 class with fewer than 10 images get no validation image" in err and "class2" in err
    from convscope.io import load_model
    assert load_model(out / "model.safetensors")[1]["input_shape"] == [3, 28, 28]


def test_a_grey_folder_and_a_single_class(tmp_path, capsys):
    colour_folder(tmp_path / "one", [30], colour=False)
    assert main(["train", "--data", str(tmp_path / "one"), "--epochs", "1", "--out", str(tmp_path / "r"),
                 "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "read as grey" in err and "only one class ('class0')" in err
