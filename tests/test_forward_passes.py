"""All of ``convscope viz``'s pictures for one image cost one forward pass and one backward pass
(before the trace: 8 forward passes and 2 backward passes for the same 19 pictures)."""

import importlib

import numpy as np
import pytest

from convscope.cli import main
from convscope.io import save_model
from convscope.models import LeNet5, SmallResNet, lenet5
from convscope.viz import gallery

engine = importlib.import_module("convscope.tensor")


@pytest.fixture
def passes(monkeypatch):
    """Counts of root-model forward passes and of backward passes while the test runs."""
    counts = {"forward": 0, "backward": 0}
    for cls in (LeNet5, SmallResNet):
        def forward(self, x, original=cls.forward):
            counts["forward"] += 1
            return original(self, x)
        monkeypatch.setattr(cls, "forward", forward)
    original_backward = engine.Tensor.backward

    def backward(self, *args, **kwargs):
        counts["backward"] += 1
        return original_backward(self, *args, **kwargs)

    monkeypatch.setattr(engine.Tensor, "backward", backward)
    return counts


@pytest.mark.parametrize("make, shape", [(lambda: lenet5(rng=np.random.default_rng(0)), (1, 1, 28, 28)),
                                         (lambda: SmallResNet(rng=np.random.default_rng(0)), (1, 3, 32, 32))],
                         ids=["lenet5", "resnet"])
def test_all_pictures_cost_one_forward_and_one_backward(passes, make, shape):
    model, x = make(), np.random.default_rng(1).random(shape, dtype=np.float32)
    pictures = gallery.all_pictures(model, x, [0.1] * shape[1], [0.3] * shape[1], [str(k) for k in range(10)])
    assert len(pictures) >= 19 and {"saliency", "gradcam", "topk", "pooling"} <= {s for s, _ in pictures}
    assert passes == {"forward": 1, "backward": 1}


def test_the_viz_command_runs_the_model_once(passes, tmp_path, capsys):
    path = tmp_path / "model.safetensors"
    save_model(path, lenet5(rng=np.random.default_rng(0)), class_names=[str(k) for k in range(10)],
               input_shape=(1, 28, 28), mean=[0.1], std=[0.3])
    from PIL import Image
    Image.fromarray((np.random.default_rng(2).random((40, 30)) * 255).astype(np.uint8)).save(tmp_path / "d.png")
    assert main(["viz", str(path), str(tmp_path / "d.png"), "--out", str(tmp_path / "viz")]) == 0
    assert "prediction:" in capsys.readouterr().out
    assert passes == {"forward": 1, "backward": 1}
