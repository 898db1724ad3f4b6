"""Adding a layer is a functional op, an nn class and tests: nothing else in convscope changes.

Two layers convscope has never heard of are defined here: a spatial one (min pooling, with
its window geometry) and a pointwise one with no role (Swish). The summary, the explanation,
every picture, the report, model files and the trace all handle them as they are.
"""

import numpy as np
from helpers import gradcheck

from convscope import Tensor, nn
from convscope.data import Dataset
from convscope.explain import explain
from convscope.io import load_model, save_model
from convscope.summary import summary
from convscope.trace import trace
from convscope.viz import gallery
from convscope.viz.report import write_report
from convscope.windows import col2im, pad2d, pool_window, reduce_windows, sliding_windows


# ----- the new functional op and its layers (all a user writes) -------------------------------
def min_pool2d(x, kernel_size, stride=None):
    """Smallest value in each window; the gradient goes to the window's minimum."""
    window = pool_window(kernel_size, stride)
    out_hw, pads = window.output_hw(x.shape[2:]), window.pads(x.shape[2:])
    padded = pad2d(x.data, pads, np.inf)
    windows = sliding_windows(padded, window.kernel, window.stride, window.dilation, out_hw)
    out = reduce_windows(windows, np.minimum)

    def backward(g):
        full = col2im(lambda i, j: g * (windows[:, :, i, j] == out), padded.shape, window.kernel,
                      window.stride, window.dilation, out_hw, x.dtype)
        return (full[:, :, pads[0]:pads[0] + x.shape[2], pads[2]:pads[2] + x.shape[3]],)

    return Tensor.from_op(out, (x,), backward, "min_pool2d")


class MinPool2d(nn.Module):
    """Keep the smallest value of each window."""

    role = "pool"
    repr_always = ("kernel_size",)

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.window = pool_window(kernel_size, stride)

    def forward(self, x):
        return min_pool2d(x, self.window.kernel, self.window.stride)

    def geometry(self, in_hw):
        return self.window


class Swish(nn.Module):
    """Multiply each value by its own sigmoid, x * sigmoid(x)."""

    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = beta

    def forward(self, x):
        return x * (1 / (1 + (x * -self.beta).exp()))


def model():
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), Swish(1.5), MinPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 7 * 7, 3, rng=rng))


def image(seed=1):
    return np.random.default_rng(seed).standard_normal((1, 1, 14, 14)).astype(np.float32)


# ----- the op is right ------------------------------------------------------------------------
def test_min_pool_gradient_and_naive_reference():
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 5))
    gradcheck(lambda t: min_pool2d(t, 2), x)
    out = min_pool2d(Tensor(x), 2).data
    expected = [[[[x[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].min() for j in range(2)] for i in range(3)]
                 for c in range(3)] for n in range(2)]
    np.testing.assert_array_equal(out, expected)


# ----- and everything handles the layers without being told about them ------------------------
def test_trace_reads_the_new_geometry():
    t = trace(model(), image())
    pool = t["2"]
    assert pool.window == pool_window(2) and pool.output_shape == (1, 4, 7, 7)
    assert pool.field.rf == (4, 4) and pool.field.jump == (2, 2)
    assert t["1"].window is None and t["1"].field.rf == (3, 3)


def test_summary_shows_the_new_layers():
    text = summary(model(), (1, 14, 14))
    assert "2      MinPool2d  4x7x7" in text and "1      Swish      4x14x14" in text
    assert "2 MinPool2d: (14 + 2*0 - 2)/2 + 1 = 7" in text
    assert repr(MinPool2d(3)) == "MinPool2d(kernel_size=3)" and repr(Swish(2.0)) == "Swish(beta=2)"


def test_explain_describes_the_new_layers_in_their_own_words():
    for depth in ("concepts", "technical", "math"):
        text = explain(model(), (1, 14, 14), depth)
        assert "## Layer 2: MinPool2d (4x14x14 -> 4x7x7)" in text and "## Layer 1: Swish" in text
    assert "Keep the smallest value of each window: in each 2x2 window" in explain(model(), (1, 14, 14), "concepts")
    assert "Multiply each value by its own sigmoid, x * sigmoid(x). 4x14x14 -> 4x14x14" in \
        explain(model(), (1, 14, 14), "technical")


def test_every_picture_draws_the_new_layers():
    pictures = dict(gallery.all_pictures(model(), image(), [0.5], [0.25], ["a", "b", "c"]))
    assert {"features_01_1", "features_02_2", "pooling", "saliency", "gradcam"} <= set(pictures)
    assert all(p.dtype == np.uint8 and p.ndim == 3 for p in pictures.values())


def test_model_file_round_trip(tmp_path):
    net = model()
    save_model(tmp_path / "m.safetensors", net, input_shape=(1, 14, 14))
    loaded, _ = load_model(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(net)
    x = Tensor(image())
    np.testing.assert_array_equal(loaded(x).data, net.eval()(x).data)


def test_report(tmp_path):
    net = model()
    images = (np.random.default_rng(3).random((6, 1, 14, 14)) * 255).astype(np.uint8)
    data = Dataset(images, np.array([0, 1, 2, 0, 1, 2]), ["a", "b", "c"], name="tiny", split="val")
    meta = {"class_names": data.class_names, "input_shape": [1, 14, 14], "mean": list(data.mean),
            "std": list(data.std), "dataset": "tiny"}
    page = write_report(tmp_path, model=net, meta=meta, dataset=data).read_text()
    assert "MinPool2d" in page and "Swish" in page and page.count("<img") > 10


class MeanPool(nn.Module):
    """Average each window, written in PyTorch's habits: no geometry method of its own."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        from convscope import functional as F
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


def test_pytorch_style_window_attributes_give_the_geometry():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, rng=np.random.default_rng(0)), MeanPool(3, 2, 1))
    t = trace(net, image())
    assert t["1"].window == pool_window(3, 2, 1) and t["1"].output_shape == (1, 2, 6, 6)
    assert t["1"].field.rf == (5, 5) and t["1"].field.jump == (2, 2)  # 3 + (3-1)*1
    assert "1 MeanPool: floor((12 + 2*1 - 3)/2) + 1 = 6" in summary(net, (1, 14, 14))
