"""Weights trained in PyTorch (test-only; skipped without it), saved with safetensors, imported into
convscope by names and shapes: the same predictions, every mismatch reported at once, and the
``convscope import-torch`` command end to end."""

import numpy as np
import pytest
from PIL import Image

from convscope.cli import main
from convscope.data import load_dataset, normalise
from convscope.interop import WeightsMismatch, import_torch_state, load_torch_weights
from convscope.io import ModelFileError, load_model, write_safetensors
from convscope.models import build, lenet5
from convscope.tensor import Tensor, no_grad

RNG = np.random.default_rng


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors.torch")
    torch.set_num_threads(1)  # NumPy's BLAS and torch's threads would fight for the cores
    return torch


def torch_lenet(torch):
    """LeNet-5 written in PyTorch, layer for layer as convscope's (so the state-dict keys match)."""
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def train_a_few_steps(torch, model, input_shape, classes=10, steps=5):
    """SGD with momentum on random images and labels; returns the losses."""
    torch.manual_seed(0)
    x = torch.randn(32, *input_shape)
    y = torch.randint(0, classes, (32,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def save_torch(torch, model, path):
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))  # as a PyTorch user does


def torch_outputs(torch, model, x):
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def convscope_outputs(model, x):
    with no_grad():
        return model.eval()(Tensor(x)).data


def test_lenet_trained_in_torch_gives_torchs_predictions(torch, tmp_path):
    reference = torch_lenet(torch)
    initial = {k: v.clone() for k, v in reference.state_dict().items()}
    losses = train_a_few_steps(torch, reference, (1, 28, 28))
    assert losses[-1] < losses[0]  # it did learn
    assert not torch.equal(initial["0.weight"], reference.state_dict()["0.weight"])
    save_torch(torch, reference, tmp_path / "lenet.safetensors")
    model = lenet5(rng=RNG(5))
    assert load_torch_weights(model, tmp_path / "lenet.safetensors") == []
    for batch in (1, 7):
        x = RNG(batch).standard_normal((batch, 1, 28, 28)).astype(np.float32)
        ours, theirs = convscope_outputs(model, x), torch_outputs(torch, reference, x)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
        assert (ours.argmax(1) == theirs.argmax(1)).all()


def torch_resnet(torch, width=4):
    """convscope's SmallResNet in PyTorch, with the same attribute names."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1, self.relu = nn.BatchNorm2d(c_out), nn.ReLU()
            self.conv2, self.bn2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out)
            self.shortcut = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                             if stride != 1 or c_in != c_out else nn.Sequential())

        def forward(self, x):
            return torch.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
            self.stages = nn.Sequential(Block(width, width, 1), Block(width, 2 * width, 2),
                                        Block(2 * width, 4 * width, 2))
            self.pool, self.flatten, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, 10)

        def forward(self, x):
            return self.fc(self.flatten(self.pool(self.stages(self.stem(x)))))

    return ResNet()


def test_resnet_with_batch_norm_statistics_imports(torch, tmp_path):
    reference = torch_resnet(torch)
    train_a_few_steps(torch, reference, (3, 16, 16), steps=3)  # moves the running statistics
    save_torch(torch, reference, tmp_path / "resnet.safetensors")
    model = build("resnet", width=4, rng=RNG(0))
    skipped = load_torch_weights(model, tmp_path / "resnet.safetensors")
    norms = [name for name, m in reference.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert sorted(skipped) == sorted(f"{name}.num_batches_tracked" for name in norms)  # torch's counters
    x = RNG(1).standard_normal((3, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(convscope_outputs(model, x), torch_outputs(torch, reference, x), rtol=1e-5, atol=1e-5)


# ----- mismatches: all of them, at once, nothing copied ------------------------------------------------
def test_every_mismatch_is_reported_at_once_and_nothing_is_copied():
    model = lenet5(rng=RNG(0))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = {k: np.ones_like(v) for k, v in before.items()}
    del state["0.bias"], state["11.weight"]
    state["7.weight"] = np.ones((120, 256), np.float32)
    state["3.bias"] = np.ones(15, np.float32)
    state["classifier.weight"] = np.ones((10, 84), np.float32)
    with pytest.raises(WeightsMismatch) as caught:
        import_torch_state(model, state, source="w.safetensors")
    error = caught.value
    assert error.missing == ["0.bias", "11.weight"] and error.unexpected == ["classifier.weight"]
    assert error.wrong_shape == {"3.bias": ((15,), (16,)), "7.weight": ((120, 256), (120, 400))}
    for text in ("w.safetensors", "LeNet5", "0.bias", "11.weight", "classifier.weight", "(120, 256) given"):
        assert text in str(error)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_a_different_architecture_lists_every_key_at_fault():
    state = build("vgg", width=4, rng=RNG(0)).state_dict()
    with pytest.raises(WeightsMismatch) as caught:
        import_torch_state(lenet5(rng=RNG(0)), state)
    error = caught.value
    assert len(error.missing) + len(error.unexpected) + len(error.wrong_shape) > 20
    for key in [*error.missing, *error.unexpected, *error.wrong_shape]:
        assert key in str(error)


def test_values_that_are_not_finite_are_refused():
    model = lenet5(rng=RNG(0))
    state = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    state["9.bias"][3] = np.nan
    with pytest.raises(ModelFileError, match="9.bias"):
        import_torch_state(model, state)


def test_bfloat16_weights_are_refused_with_what_to_do(tmp_path):
    header = b'{"0.bias":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]}}'
    (tmp_path / "bf16.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(6))
    with pytest.raises(ModelFileError, match=r"bf16.safetensors: holds BF16 tensors.*float32"):
        load_torch_weights(lenet5(rng=RNG(0)), tmp_path / "bf16.safetensors")


# ----- the command line ---------------------------------------------------------------------------------
def test_cli_import_writes_a_model_file_that_evaluates_and_predicts_as_torch(torch, cache, tmp_path, capsys):
    reference = torch_lenet(torch)
    train_a_few_steps(torch, reference, (1, 28, 28), steps=2)
    save_torch(torch, reference, tmp_path / "w.safetensors")
    out = tmp_path / "lenet.safetensors"
    assert main(["import-torch", str(tmp_path / "w.safetensors"), "--model", "lenet5", "--classes", "10",
                 "--input", "1x28x28", "--mean", "0.13", "--std", "0.31", "--dataset", "digits",
                 "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    model, meta = load_model(out)
    assert meta["model"] == "lenet5" and meta["input_shape"] == [1, 28, 28] and meta["mean"] == [0.13]
    assert main(["evaluate", str(out)]) == 0  # the fake digits cache's validation split
    val = load_dataset("digits", split="val")
    right = int((torch_outputs(torch, reference, normalise(val.images, [0.13], [0.31])).argmax(1) == val.labels).sum())
    assert f"({right}/{len(val.labels)})" in capsys.readouterr().out  # torch's own count of right answers
    x = RNG(2).standard_normal((4, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(convscope_outputs(model, x), torch_outputs(torch, reference, x), rtol=1e-5, atol=1e-5)
    Image.fromarray((RNG(3).uniform(0, 255, (28, 28))).astype(np.uint8)).save(tmp_path / "digit.png")
    assert main(["predict", str(out), str(tmp_path / "digit.png")]) == 0
    assert "digit.png" in capsys.readouterr().out


def one_line_error(capsys, *names):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("convscope import-torch: error: ")
    for name in names:
        assert name in err, err
    return err


def test_cli_import_bad_files_end_in_one_line(tmp_path, capsys):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    args = ["--model", "lenet5", "--out", str(tmp_path / "m.safetensors")]
    assert main(["import-torch", str(garbage), *args]) == 1
    one_line_error(capsys, "garbage.safetensors")
    assert main(["import-torch", str(tmp_path / "absent.safetensors"), *args]) == 1
    one_line_error(capsys, "absent.safetensors", "no such file")
    state = {k: v for k, v in lenet5(rng=RNG(0)).state_dict().items() if k != "0.weight"}
    write_safetensors(tmp_path / "short.safetensors", state, {})
    assert main(["import-torch", str(tmp_path / "short.safetensors"), "--classes", "5", *args]) == 1
    one_line_error(capsys, "short.safetensors", "missing 0.weight", "11.weight: (10, 84) given, (5, 84) expected")
    assert main(["import-torch", str(tmp_path / "short.safetensors"), "--model", "lenet5", "--input", "28x28",
                 "--out", str(tmp_path / "m.safetensors")]) == 1
    one_line_error(capsys, "CxHxW")
    assert not (tmp_path / "m.safetensors").exists()
