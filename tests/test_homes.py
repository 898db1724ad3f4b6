"""One home per idea: metrics, inference, the normaliser, the atomic write, the model loader;
and the invariance study's error for a model it cannot study (was a NameError)."""

import os

import numpy as np
import pytest

from convscope import nn
from convscope.cli import main
from convscope.data import DataLoader, Dataset, normalise
from convscope.files import write_atomic
from convscope.inference import predict, top_k
from convscope.io import ModelFileError, load_any, save_model
from convscope.metrics import accuracy, confusion_matrix, precision_recall_f1, top_k_accuracy
from convscope.models import lenet5
from convscope.viz.invariance import invariance_study


def test_metrics_by_hand():
    labels, predicted = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0])
    confusion = confusion_matrix(labels, predicted, 4)
    np.testing.assert_array_equal(confusion[:3, :3], [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    precision, recall, f1 = precision_recall_f1(confusion)
    np.testing.assert_allclose(precision, [1 / 2, 1 / 2, 1, 0])
    np.testing.assert_allclose(recall, [1 / 2, 1, 2 / 3, 0])
    np.testing.assert_allclose(f1, [1 / 2, 2 / 3, 0.8, 0])  # class 3: never seen nor predicted
    assert accuracy(predicted, labels) == pytest.approx(4 / 6)
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])
    assert top_k_accuracy(probs, np.array([1, 1, 1]), k=2) == pytest.approx(2 / 3)  # ties: lower class first


def test_predict_in_batches_equals_all_at_once_and_restores_mode():
    model = lenet5(rng=np.random.default_rng(0)).train()
    x = np.random.default_rng(1).random((7, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(predict(model, x, batch_size=3), predict(model, x), rtol=1e-6)
    assert model.training
    assert top_k(np.array([0.1, 0.6, 0.3]), 2) == [(1, 0.6), (2, 0.3)]


def test_normalise_is_the_loaders_arithmetic():
    rng = np.random.default_rng(0)
    images = (rng.random((5, 3, 4, 4)) * 255).astype(np.uint8)
    data = Dataset(images, np.arange(5))
    x, _ = next(iter(DataLoader(data, batch_size=5)))
    np.testing.assert_array_equal(normalise(images, data.mean, data.std), x)  # bit for bit
    assert normalise(images, data.mean, data.std).dtype == np.float32


def test_write_atomic_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    write_atomic(path, b"first")
    assert path.read_bytes() == b"first"

    with pytest.raises(TypeError):  # the write fails half way: not bytes
        write_atomic(path, 12345)
    assert path.read_bytes() == b"first" and os.listdir(path.parent) == ["f.bin"]  # no temporary left
    old = os.umask(0o022)
    try:
        write_atomic(path, b"third")
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_load_any_takes_a_file_a_run_folder_or_a_zoo_name(tmp_path):
    model = lenet5(rng=np.random.default_rng(3))
    save_model(tmp_path / "model.safetensors", model, input_shape=(1, 28, 28))
    from_file, _ = load_any(tmp_path / "model.safetensors")
    from_folder, _ = load_any(tmp_path)
    zoo, meta = load_any("lenet5")
    np.testing.assert_array_equal(from_file[0].weight.data, model[0].weight.data)
    np.testing.assert_array_equal(from_folder[0].weight.data, model[0].weight.data)
    assert meta["model"] == "lenet5" and meta["input_shape"] == [1, 28, 28] and not zoo.training
    with pytest.raises(ModelFileError, match="'nope' is not a model file, a run folder or a zoo name"):
        load_any("nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="holds no model.safetensors"):
        load_any(tmp_path / "empty")


def test_invariance_study_explains_what_a_model_lacks(tmp_path, capsys):
    dense = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10, rng=np.random.default_rng(0)))
    with pytest.raises(ValueError, match="needs a conv layer and a pooling layer.*Flatten, Linear"):
        invariance_study(dense, np.zeros((1, 1, 28, 28), np.float32))
    save_model(tmp_path / "dense.safetensors", dense, class_names=[str(k) for k in range(10)],
               input_shape=(1, 28, 28))
    from PIL import Image
    stroke = np.zeros((28, 28), np.uint8)
    stroke[5:23, 12:16] = 255
    Image.fromarray(stroke).save(tmp_path / "d.png")
    code = main(["invariance", str(tmp_path / "dense.safetensors"), str(tmp_path / "d.png"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "needs a conv layer and a pooling layer" in err and "Traceback" not in err
