"""The look-inside commands through ``convscope.cli.main``: summary, explain, viz, report, invariance."""

import json

import numpy as np
import pytest
from PIL import Image

from convscope.cli import main
from convscope.io import save_model
from convscope.models import lenet5


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "run" / "model.safetensors"
    path.parent.mkdir()
    save_model(path, lenet5(rng=np.random.default_rng(0)), [str(k) for k in range(10)], [1, 28, 28],
               [0.13], [0.31], dataset="digits")
    return path


@pytest.fixture
def digit_png(tmp_path):
    pixels = np.full((56, 40), 255, np.uint8)
    pixels[8:48, 18:24] = 0  # a dark "1" on white paper
    Image.fromarray(pixels).save(tmp_path / "one.png")
    return tmp_path / "one.png"


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCOPE_DATA", str(tmp_path / "empty-cache"))


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("spec", ["lenet5", "file"])
def test_summary(spec, model_file, capsys):
    code, out, _ = run(["summary", model_file if spec == "file" else spec], capsys)
    assert code == 0 and "61,706" in out and "(28 + 2*2 - 5)/1 + 1 = 28" in out


def test_summary_input_shape_override(capsys):
    code, out, _ = run(["summary", "resnet", "--input-shape", "3,64,64"], capsys)
    assert code == 0 and "16x64x64" in out


@pytest.mark.parametrize("depth, piece", [("concepts", "pattern detectors"), ("technical", "150 weights"),
                                          ("math", "∂L/∂w")])
def test_explain(depth, piece, model_file, capsys):
    code, out, _ = run(["explain", model_file, "--depth", depth], capsys)
    assert code == 0 and piece in out and out.startswith("# LeNet5")


def test_viz_writes_pngs(model_file, digit_png, tmp_path, capsys):
    out_dir = tmp_path / "viz"
    code, out, _ = run(["viz", model_file, digit_png, "--out", out_dir], capsys)
    assert code == 0
    written = sorted(out_dir.glob("*.png"))
    names = {p.stem for p in written}
    assert {"filters_0", "filters_3", "features_00_0", "features_11_11", "topk", "saliency",
            "gradcam", "pooling", "input"} <= names
    for p in written:
        assert str(p) in out
        with Image.open(p) as image:
            assert min(image.size) > 0
    assert "prediction:" in out and "input: read" in out


def test_viz_takes_a_run_folder_and_writes_next_to_the_model(model_file, digit_png, capsys):
    code, out, _ = run(["viz", model_file.parent, digit_png], capsys)
    folder = model_file.parent / "viz"
    assert code == 0 and (folder / "filters_0.png").exists() and str(folder / "filters_0.png") in out
    assert f"wrote 19 pictures to {folder}" in out


def test_unwritable_out_is_one_plain_line(model_file, digit_png, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run(["viz", model_file, digit_png, "--out", blocker / "viz"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"convscope viz: error: cannot write to {blocker / 'viz'}: ") and "Errno" not in err


def test_folder_without_a_model_says_so(tmp_path, capsys):
    code, _, err = run(["summary", tmp_path], capsys)
    assert code == 1 and f"folder {tmp_path} holds no model.safetensors" in err


def test_viz_without_image_or_data_says_why(model_file, no_data, tmp_path, capsys):
    code, out, err = run(["viz", model_file, "--out", tmp_path / "v"], capsys)
    assert code == 1 and err.startswith("convscope viz: error: dataset 'digits' not found")


def test_invariance(model_file, digit_png, tmp_path, capsys):
    code, out, _ = run(["invariance", model_file, digit_png, "--out", tmp_path, "--pixels", "1"], capsys)
    assert code == 0 and "map corr aligned" in out and "(+1,-1)" in out
    with Image.open(tmp_path / "invariance.png") as image:
        width, height = image.size  # the figure (figsize x dpi) under its title and legend band
        assert width == round(9 * 1.4 * 100) and height > round(2.6 * 1.4 * 100)
    assert "Columns:" in out and "The prediction stayed" in out
    assert out.strip().endswith(str(tmp_path / "invariance.png"))


def test_invariance_writes_next_to_the_model_by_default(model_file, digit_png, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(["invariance", model_file, digit_png, "--pixels", "1"], capsys)
    written = model_file.parent / "viz" / "invariance.png"
    assert code == 0 and written.exists() and out.strip().endswith(str(written))
    assert not (tmp_path / "invariance.png").exists()


def test_report(model_file, no_data, capsys):
    run_dir = model_file.parent
    (run_dir / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train_loss": 0.5, "val_loss": 0.6,
                                                       "train_acc": 0.8, "val_acc": 0.7}) + "\n")
    code, out, _ = run(["report", run_dir], capsys)
    assert code == 0 and out.strip() == str(run_dir / "report.html")
    assert "<img src=\"data:image/png;base64," in (run_dir / "report.html").read_text()


@pytest.mark.parametrize("argv", [["summary", "no-such-model"], ["report", "no/such/run"],
                                  ["viz", "lenet5", "missing.png"], ["summary", "lenet5", "--input-shape", "x"]],
                         ids=["model", "run-dir", "image", "shape"])
def test_errors_are_one_line(argv, capsys):
    code, _, err = run(argv, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and err.startswith("convscope ")


@pytest.mark.parametrize("command", ["summary", "explain", "viz", "report", "invariance"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "usage: convscope " + command in capsys.readouterr().out
