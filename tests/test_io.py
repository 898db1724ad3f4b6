"""Model files and checkpoints: round trips, the safetensors contiguity trap, bad files."""

import json
import struct

import numpy as np
import pytest

from convscope import Tensor, models, nn, no_grad, optim
from convscope.io import (
    ModelFileError,
    architecture_of,
    build_architecture,
    load_checkpoint,
    load_model,
    save_checkpoint,
    save_model,
    write_safetensors,
)


def _outputs(model, shape, seed=1):
    x = np.random.default_rng(seed).standard_normal((2,) + shape).astype(np.float32)
    with no_grad():
        return model.eval()(Tensor(x)).data


@pytest.mark.parametrize("name, shape", [("lenet5", (1, 28, 28)), ("vgg", (1, 28, 28)), ("resnet", (3, 32, 32))])
def test_zoo_model_round_trip(tmp_path, name, shape):
    model = models.build(name, rng=np.random.default_rng(0), in_channels=shape[0], num_classes=10)
    if name != "lenet5":  # give batch-norm buffers non-default values
        model.train()(Tensor(np.random.default_rng(2).standard_normal((4,) + shape).astype(np.float32)))
    path = tmp_path / "m.safetensors"
    save_model(path, model, class_names=list("abcdefghij"), input_shape=shape, mean=[0.5] * shape[0],
               std=[0.25] * shape[0], dataset="toy", training={"epochs": 3})
    loaded, meta = load_model(path)
    np.testing.assert_array_equal(_outputs(loaded, shape), _outputs(model, shape))
    assert meta["model"] == name and meta["class_names"] == list("abcdefghij")
    assert meta["input_shape"] == list(shape) and meta["std"] == [0.25] * shape[0]
    assert meta["training"] == {"epochs": 3} and meta["format_version"] == 1


def test_sequential_of_layers_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(3, 4, (3, 2), stride=2, padding="valid", dilation=1, groups=1, rng=rng),
                          nn.LeakyReLU(0.2), nn.LPPool2d(2, 2, ceil_mode=True), nn.AvgPool2d(1),
                          nn.Flatten(), nn.Linear(4 * 2 * 2, 3, bias=False, rng=rng), nn.Softmax(dim=1))
    save_model(tmp_path / "s.safetensors", model)
    loaded, meta = load_model(tmp_path / "s.safetensors")
    assert repr(loaded) == repr(model)
    assert meta["model"] is None
    np.testing.assert_array_equal(_outputs(loaded, (3, 9, 9)), _outputs(model, (3, 9, 9)))


def test_non_contiguous_weights_survive(tmp_path):
    """safetensors issue #825: transposed views and strided slices must not be scrambled."""
    model = models.lenet5(rng=np.random.default_rng(0))
    linear, conv = model[7], model[0]
    linear.weight.data = np.ascontiguousarray(linear.weight.data.T).T  # a transposed view
    assert not linear.weight.data.flags.c_contiguous
    conv.weight.data = np.random.default_rng(3).standard_normal((6, 1, 5, 10)).astype(np.float32)[:, :, :, ::2]
    assert not conv.weight.data.flags.c_contiguous
    expected = {k: v.copy() for k, v in model.state_dict().items()}
    save_model(tmp_path / "t.safetensors", model)
    loaded, _ = load_model(tmp_path / "t.safetensors")
    for key, value in loaded.state_dict().items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.safetensors"
    save_model(path, models.lenet5(rng=np.random.default_rng(0)), input_shape=(1, 28, 28))
    return path


def test_truncated_file_is_reported(saved, tmp_path):
    data = saved.read_bytes()
    for cut in (4, 100, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="truncated|too short|not valid JSON"):
            load_model(bad)


def test_garbage_and_missing_files(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ModelFileError):
        load_model(junk)
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "absent.safetensors")


def test_foreign_safetensors_file(tmp_path):
    from safetensors.numpy import save_file
    save_file({"w": np.zeros(3, np.float32)}, tmp_path / "f.safetensors")
    with pytest.raises(ModelFileError, match="without convscope metadata"):
        load_model(tmp_path / "f.safetensors")


def _write_with_header(path, arrays, header):
    write_safetensors(path, arrays, header)


def test_unknown_layer_type_is_refused(tmp_path):
    header = {"format": "convscope-model", "format_version": 1,
              "architecture": {"type": "Sequential",
                               "layers": [{"type": "os.system", "config": {"command": "echo hi"}}]}}
    _write_with_header(tmp_path / "evil.safetensors", {}, header)
    with pytest.raises(ModelFileError, match="unknown layer type 'os.system'"):
        load_model(tmp_path / "evil.safetensors")


def test_bad_config_and_shape_mismatch(tmp_path):
    header = {"format": "convscope-model", "format_version": 1,
              "architecture": {"type": "Conv2d", "config": {"in_channels": 1, "bogus": 3}}}
    _write_with_header(tmp_path / "cfg.safetensors", {}, header)
    with pytest.raises(ModelFileError, match="Conv2d takes no argument 'bogus'"):
        load_model(tmp_path / "cfg.safetensors")
    header["architecture"] = {"type": "Linear", "config": {"in_features": 4, "out_features": 2}}
    _write_with_header(tmp_path / "shape.safetensors", {"weight": np.zeros((3, 4), np.float32),
                                                        "bias": np.zeros(2, np.float32)}, header)
    with pytest.raises(ModelFileError, match=r"\(3, 4\).*\(2, 4\)"):
        load_model(tmp_path / "shape.safetensors")


def test_newer_format_version_and_wrong_kind(tmp_path, saved):
    header = {"format": "convscope-model", "format_version": 99, "architecture": {"type": "ReLU"}}
    _write_with_header(tmp_path / "new.safetensors", {}, header)
    with pytest.raises(ModelFileError, match="newer"):
        load_model(tmp_path / "new.safetensors")
    model = models.lenet5(rng=np.random.default_rng(0))
    with pytest.raises(ModelFileError, match="'convscope-model' file, expected 'convscope-checkpoint'"):
        load_checkpoint(saved, model, optim.SGD(model.parameters(), lr=0.1))


def test_header_length_lies(tmp_path, saved):
    data = bytearray(saved.read_bytes())
    data[:8] = struct.pack("<Q", 10 ** 9)
    bad = tmp_path / "lie.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="truncated or not a safetensors file"):
        load_model(bad)


def test_checkpoint_round_trip_restores_everything(tmp_path):
    rng = np.random.default_rng(0)
    model = models.lenet5(rng=rng)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    sched = optim.OneCycleLR(opt, max_lr=1e-2, total_steps=10)
    x = Tensor(np.random.default_rng(1).standard_normal((4, 1, 28, 28)).astype(np.float32))
    from convscope import functional as F
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), [0, 1, 2, 3]).backward()
        opt.step()
        sched.step()
    loader_rng = np.random.default_rng(5)
    loader_rng.random(7)
    save_checkpoint(tmp_path / "c.safetensors", model, opt, sched, {"loader": loader_rng}, {"epoch": 3})
    model2 = models.lenet5(rng=np.random.default_rng(9))
    opt2 = optim.Adam(model2.parameters(), lr=1.0)
    sched2 = optim.OneCycleLR(opt2, max_lr=1e-2, total_steps=10)
    rng2 = np.random.default_rng(123)
    progress = load_checkpoint(tmp_path / "c.safetensors", model2, opt2, sched2, {"loader": rng2})
    assert progress == {"epoch": 3}
    assert opt2.lr == opt.lr and opt2.betas == opt.betas and opt2.steps == 3 and sched2.last_step == 3
    assert rng2.random() == loader_rng.random()
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    for s1, s2 in zip(opt.state, opt2.state):
        np.testing.assert_array_equal(s1["m"], s2["m"])
        np.testing.assert_array_equal(s1["v"], s2["v"])


class Scale(nn.Module):
    """Multiply by a fixed factor (a layer defined outside convscope)."""

    def __init__(self, factor=2.0, shape=(1,)):
        super().__init__()
        self.factor, self.shape = factor, shape

    def forward(self, x):
        return x * self.factor


def test_architecture_describes_any_module_by_its_constructor_arguments(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=np.random.default_rng(0)), Scale(0.5, shape=(2, 3)))
    spec = architecture_of(model)
    assert spec["layers"][1] == {"type": "test_io.Scale", "config": {"factor": 0.5, "shape": [2, 3]}}
    save_model(tmp_path / "m.safetensors", model, input_shape=(1, 5, 5))
    loaded, _ = load_model(tmp_path / "m.safetensors")
    assert isinstance(loaded[1], Scale) and loaded[1].factor == 0.5 and loaded[1].shape == [2, 3]
    x = Tensor(np.random.default_rng(1).random((2, 1, 5, 5), dtype=np.float32))
    np.testing.assert_array_equal(loaded(x).data, model(x).data)
    assert json.dumps(architecture_of(models.lenet5(rng=np.random.default_rng(0))))


def test_architecture_refuses_arguments_that_are_not_json():
    with pytest.raises(ModelFileError, match="cannot save Scale: its constructor arguments are not plain JSON"):
        architecture_of(Scale(factor=np.ones(3)))


def test_an_unknown_layer_type_in_a_file_is_refused_with_the_known_ones():
    with pytest.raises(ModelFileError, match="unknown layer type 'os.system'.*Conv2d"):
        build_architecture({"type": "os.system", "config": {}})


def test_run_folder_and_nan_weights(tmp_path, saved):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(saved.read_bytes())
    model, meta = load_model(folder)
    assert meta["model"] == "lenet5"
    with pytest.raises(ModelFileError, match=r"not a regular file \(a folder\)"):
        load_model(tmp_path)
    bad = models.lenet5(rng=np.random.default_rng(0))
    bad[0].weight.data[0, 0, 0, 0] = np.nan
    save_model(tmp_path / "nan.safetensors", bad)
    with pytest.raises(ModelFileError, match="0.weight hold NaN or infinite values"):
        load_model(tmp_path / "nan.safetensors")
