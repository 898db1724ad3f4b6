"""convscope.arithmetic: the numbers shown for one cell are the model's own, and their sum is
the layer's output. References are independent: naive padding and slicing, PyTorch's pooling
formulas written out, and the autograd for the receptive field."""

import json

import numpy as np
import pytest
from helpers import pair, same_padding, to_float64

from convscope import nn
from convscope.arithmetic import CellError, UnknownLayer, cell, field_box, layer_cells
from convscope.models import BasicBlock, SmallResNet, lenet5
from convscope.trace import Field, frozen, trace

RNG = np.random.default_rng


def traced(layers, x_shape, dtype=np.float32, seed=1, **options):
    model = nn.Sequential(*layers)
    if dtype == np.float64:
        to_float64(model)
    return model, trace(model, RNG(seed).standard_normal(x_shape).astype(dtype), **options)


def some_cells(shape, rng, count=4):
    """Corners of the map and a few random cells (c, y, x) of an output (C, H, W)."""
    c, h, w = shape
    chosen = [(0, 0, 0), (c - 1, h - 1, w - 1), (0, h - 1, 0), (c - 1, 0, w - 1)]
    return chosen + [tuple(int(rng.integers(n)) for n in shape) for _ in range(count)]


# ----- convolution ----------------------------------------------------------------------------------
def random_conv_configs(count, seed=0):
    rng, configs = RNG(seed), []
    for _ in range(count):
        groups = int(rng.integers(1, 3))
        kernel = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        config = dict(in_channels=2 * groups, out_channels=2 * groups, kernel_size=kernel, groups=groups,
                      stride=(int(rng.integers(1, 4)), int(rng.integers(1, 4))),
                      padding=(int(rng.integers(0, 3)), int(rng.integers(0, 3))),
                      dilation=(int(rng.integers(1, 3)), int(rng.integers(1, 3))), bias=bool(rng.integers(2)))
        name = (f"k{kernel[0]}x{kernel[1]}_s{config['stride'][0]}x{config['stride'][1]}_p{config['padding'][0]}x"
                f"{config['padding'][1]}_d{config['dilation'][0]}x{config['dilation'][1]}_g{groups}"
                f"{'' if config['bias'] else '_nobias'}")
        configs.append(pytest.param(config, id=name))
    return configs


SAME_CONFIGS = [  # "same" padding with an even kernel: one more row/column at the bottom/right
    pytest.param(dict(in_channels=2, out_channels=3, kernel_size=(4, 2), padding="same"), id="same_4x2"),
    pytest.param(dict(in_channels=4, out_channels=2, kernel_size=(2, 3), padding="same", dilation=(3, 1), groups=2,
                      bias=False), id="same_2x3_d3x1_g2_nobias"),
]


def naive_pads(config):
    kernel, dilation = pair(config["kernel_size"]), pair(config.get("dilation", 1))
    if config.get("padding") == "same":
        return same_padding(kernel, dilation)
    ph, pw = pair(config.get("padding", 0))
    return ph, ph, pw, pw


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("config", random_conv_configs(10) + SAME_CONFIGS)
def test_conv_cell_is_the_padded_window_times_the_filter(config, dtype):
    conv = nn.Conv2d(**config, rng=RNG(0))
    _, t = traced([conv], (2, config["in_channels"], 9, 8), dtype)
    x, (top, bottom, left, right) = t.input.data, naive_pads(config)
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    (kh, kw), (sh, sw), (dh, dw) = pair(config["kernel_size"]), pair(config.get("stride", 1)), \
        pair(config.get("dilation", 1))
    per_group = config["in_channels"] // conv.groups
    for c, y, xx in some_cells(t["0"].output_shape[1:], RNG(2)):
        got = cell(t, "0", c, y, xx, index=1)
        group = c // (conv.out_channels // conv.groups)
        rows = slice(y * sh, y * sh + (kh - 1) * dh + 1, dh)
        cols = slice(xx * sw, xx * sw + (kw - 1) * dw + 1, dw)
        window = padded[1, group * per_group:(group + 1) * per_group, rows, cols]
        real = np.pad(np.ones(x.shape[2:], bool), ((top, bottom), (left, right)))[rows, cols]
        inputs, weights, products = (np.array(got[k]) for k in ("inputs", "weights", "products"))
        assert got["kind"] == "conv" and got["channels"] == list(range(group * per_group, (group + 1) * per_group))
        np.testing.assert_array_equal(inputs, window)
        np.testing.assert_array_equal(np.array(got["padding"]), np.broadcast_to(~real, inputs.shape))
        np.testing.assert_array_equal(weights, conv.weight.data[c])
        np.testing.assert_array_equal(products, inputs * weights)
        assert got["window_origin"] == [y * sh - top, xx * sw - left]
        assert got["sum"] == pytest.approx(products.sum(), rel=1e-12, abs=1e-12)
        assert got["bias"] == (float(conv.bias.data[c]) if conv.bias is not None else 0.0)
        assert got["value"] == float(t["0"].values[1, c, y, xx])
        scale = np.abs(products).sum() + abs(got["bias"]) + 1e-3
        tolerance = (1e-6 if dtype == np.float32 else 1e-13) * scale
        assert got["sum"] + got["bias"] == pytest.approx(got["value"], abs=tolerance)


# ----- pooling ---------------------------------------------------------------------------------
def window_bounds(out, size, kernel, stride, padding):
    """PyTorch's pooling loop for one axis: start/end of the window in padded-input terms,
    then clipped to the input."""
    start = out * stride - padding
    end = min(start + kernel, size + padding)
    return start, end, max(start, 0), min(end, size)


def naive_pool(module, plane, y, x):
    """One output of ``module`` on a 2-D ``plane``, written out as PyTorch's loops."""
    (kh, kw), (sh, sw), (ph, pw) = module.kernel_size, module.stride, module.padding
    r0, r1, rs, re = window_bounds(y, plane.shape[0], kh, sh, ph)
    c0, c1, cs, ce = window_bounds(x, plane.shape[1], kw, sw, pw)
    seen = plane[rs:re, cs:ce].astype(np.float64)
    if isinstance(module, nn.MaxPool2d):
        return seen.max()
    if isinstance(module, nn.LPPool2d):
        return (np.abs(seen) ** module.norm_type).sum() ** (1 / module.norm_type)
    divisor = (r1 - r0) * (c1 - c0) if module.count_include_pad else seen.size
    return seen.sum() / divisor


POOLS = {
    "max_k2": (nn.MaxPool2d(2), (7, 6)),
    "max_k3_s2_p1_ceil": (nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), (6, 7)),
    "max_k2x3_s1x2_p1": (nn.MaxPool2d((2, 3), (1, 2), padding=1), (5, 6)),
    "avg_k3_s2_p1_with_pad_ceil": (nn.AvgPool2d(3, 2, padding=1, ceil_mode=True), (6, 7)),
    "avg_k3_s2_p1_without_pad_ceil": (nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False), (6, 7)),
    "avg_k2_ceil_odd": (nn.AvgPool2d(2, ceil_mode=True), (5, 5)),
    "lp2_k3_s2_p1_ceil": (nn.LPPool2d(2, 3, stride=2, ceil_mode=True, padding=1), (6, 7)),
    "lp3_k2": (nn.LPPool2d(3, 2), (6, 6)),
}


@pytest.mark.parametrize("module, hw", list(POOLS.values()), ids=list(POOLS))
def test_pool_cell_equals_the_trace_and_a_naive_window(module, hw):
    _, t = traced([module], (2, 3) + hw)
    plane_of = t.input.data[1]
    for c, y, x in np.ndindex(t["0"].output_shape[1:]):
        got = cell(t, "0", c, y, x, index=1)
        expected = naive_pool(module, plane_of[c], y, x)
        assert got["kind"] == "pool" and got["value"] == float(t["0"].values[1, c, y, x])
        assert got["result"] == pytest.approx(expected, rel=1e-12)
        assert got["result"] == pytest.approx(got["value"], rel=1e-6, abs=1e-7)
        rows, cols, padding = got["rows"], got["cols"], np.array(got["padding"])
        for (i, r), (j, q) in ((a, b) for a in enumerate(rows) for b in enumerate(cols)):
            inside = 0 <= r < hw[0] and 0 <= q < hw[1]
            assert padding[i, j] == (not inside)
            shown = got["values"][i][j]
            assert shown == (float(plane_of[c, r, q]) if inside else (None if got["op"] == "max" else 0.0))
        if got["op"] == "max":
            i, j = got["winner"]
            assert got["values"][i][j] == got["result"] and got["winner_at"] == [rows[i], cols[j]]
        json.dumps(got, allow_nan=False)


@pytest.mark.parametrize("out, hw", [((3, 2), (7, 5)), (1, (5, 6)), ((4, 6), (3, 4))],
                         ids=["7x5_to_3x2", "global", "upsample_3x4_to_4x6"])
def test_adaptive_pool_cell_averages_its_bin(out, hw):
    _, t = traced([nn.AdaptiveAvgPool2d(out)], (1, 2) + hw)
    (oh, ow), (h, w) = pair(out), hw
    for c, y, x in np.ndindex(t["0"].output_shape[1:]):
        got = cell(t, "0", c, y, x)
        rows = slice(y * h // oh, -(-(y + 1) * h // oh))
        cols = slice(x * w // ow, -(-(x + 1) * w // ow))
        assert got["result"] == pytest.approx(t.input.data[0, c, rows, cols].astype(np.float64).mean(), rel=1e-12)
        assert got["result"] == pytest.approx(got["value"], rel=1e-6, abs=1e-7)


# ----- fully connected, softmax, batch norm, activations -------------------------------------------------
@pytest.fixture(scope="module")
def lenet_trace():
    return trace(lenet5(rng=RNG(0)), RNG(1).random((2, 1, 28, 28), dtype=np.float32))


@pytest.mark.parametrize("top", [0, 10, 1000])
def test_linear_cell_sums_every_product_and_maps_back_through_flatten(lenet_trace, top):
    t, fc = lenet_trace, lenet_trace["7"].module  # LeNet-5: 5 pool, 6 flatten, 7 Linear(400, 120), 8 ReLU
    got = cell(t, "7", 17, index=1, top=top)
    products = t["5"].values[1].reshape(-1).astype(np.float64) * fc.weight.data[17]
    assert got["kind"] == "linear" and got["inputs_count"] == 400 and got["input_layer"] == "6"
    assert got["sum"] == pytest.approx(products.sum(), rel=1e-12)
    shown = got["contributions"]
    assert len(shown) == min(top, 400)
    assert [abs(c["product"]) for c in shown] == sorted(np.abs(products), reverse=True)[:len(shown)]
    total = sum(c["product"] for c in shown) + got["rest"] + got["bias"]
    assert total == pytest.approx(got["value"], abs=1e-6) and got["sum"] + got["bias"] == pytest.approx(total)
    for c in shown:
        assert c["input"] == float(t["5"].values[(1, *c["source"])])  # (c, y, x) of the pooled map
        assert c["product"] == c["input"] * c["weight"] and c["weight"] == float(fc.weight.data[17, c["index"]])
    assert got["flattened_from"] == {"layer": "6", "map_layer": "5", "shape": [16, 5, 5]}
    assert got["then"]["layer"] == "8" and got["then"]["value"] == float(t["8"].values[1, 17])


def test_last_layer_shows_the_softmax_of_the_models_output(lenet_trace):
    t = lenet_trace
    for index in (0, 1):
        got = cell(t, "11", 4, index=index)["softmax"]
        np.testing.assert_allclose(got["probabilities"], t.probabilities()[index], rtol=1e-6)
        np.testing.assert_array_equal(got["logits"], t.output.data[index])
        np.testing.assert_allclose(got["exps"], np.exp(np.array(got["logits"]) - got["max"]), rtol=1e-15)
        assert got["sum"] == pytest.approx(sum(got["exps"])) and got["predicted"] == t.predicted(index)
        assert got["probability"] == got["probabilities"][4] and got["cls"] == 4
    assert "softmax" not in cell(t, "9", 4)


def test_softmax_layer_cell():
    _, t = traced([nn.Linear(5, 4, rng=RNG(0)), nn.Softmax(dim=1)], (3, 5))
    got = cell(t, "1", 2, index=2)
    assert got["kind"] == "softmax" and got["logits"] == t["0"].values[2].astype(np.float64).tolist()
    assert got["probabilities"][2] == pytest.approx(got["value"], rel=1e-6)


def test_batchnorm_cell_uses_the_running_statistics():
    bn = nn.BatchNorm2d(3)
    rng = RNG(0)
    bn.running_mean[:], bn.running_var[:] = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    bn.weight.data[:], bn.bias.data[:] = rng.standard_normal(3), rng.standard_normal(3)
    _, t = traced([bn], (2, 3, 4, 4))
    for c, y, x in some_cells((3, 4, 4), RNG(1)):
        got = cell(t, "0", c, y, x, index=1)
        assert got["kind"] == "batchnorm" and got["x"] == float(t.input.data[1, c, y, x])
        assert (got["mean"], got["var"], got["eps"]) == (float(bn.running_mean[c]), float(bn.running_var[c]), 1e-5)
        assert (got["gamma"], got["beta"]) == (float(bn.weight.data[c]), float(bn.bias.data[c]))
        expected = (got["x"] - got["mean"]) / np.sqrt(got["var"] + got["eps"]) * got["gamma"] + got["beta"]
        assert got["normalized"] * got["gamma"] + got["beta"] == pytest.approx(expected, rel=1e-12)
        assert expected == pytest.approx(got["value"], rel=1e-5, abs=1e-6)


FUNCTIONS = {"LeakyReLU": lambda v: v if v > 0 else 0.1 * v, "Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
             "Tanh": np.tanh, "ReLU": lambda v: max(v, 0.0)}


def test_activation_cells_and_the_activation_that_follows():
    conv = nn.Conv2d(1, 2, 3, rng=RNG(0))
    _, t = traced([conv, nn.LeakyReLU(0.1), nn.Sigmoid(), nn.Tanh(), nn.ReLU()], (1, 1, 6, 6))
    for c, y, x in some_cells((2, 4, 4), RNG(1)):
        then = cell(t, "0", c, y, x)["then"]
        assert (then["layer"], then["function"], then["value"]) == ("1", "LeakyReLU", float(t["1"].values[0, c, y, x]))
        for name in "1234":
            got, before = cell(t, name, c, y, x), str(int(name) - 1)
            assert got["kind"] == "activation" and got["input"] == float(t[before].values[0, c, y, x])
            assert got["value"] == pytest.approx(FUNCTIONS[got["function"]](got["input"]), rel=1e-6, abs=1e-7)
            assert got["input_layer"] == before


# ----- the receptive field, checked by the gradient -----------------------------------------------------
def gradient_of_cell(t, name, pos):
    t.input.grad = None
    with frozen(t.model):
        t[name].output[pos].backward()
    return np.abs(t.input.grad[pos[0]]).sum(axis=0)


def outside_box(grad, box):
    inside = np.zeros(grad.shape, bool)
    inside[box["top"]:box["bottom"] + 1, box["left"]:box["right"] + 1] = True
    return grad[~inside]


def spatial_cells(t, rng, count=3):
    for layer in t.layers:
        if len(layer.output_shape) == 4:
            for c, y, x in some_cells(layer.output_shape[1:], rng, count)[1::2]:
                yield layer.name, (0, c, y, x)


@pytest.mark.parametrize("model, shape", [
    pytest.param(lenet5(rng=RNG(0)), (1, 1, 28, 28), id="lenet5"),
    pytest.param(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=RNG(0)), BasicBlock(4, 8, stride=2, rng=RNG(1)),
                               BasicBlock(8, 8, rng=RNG(2))), (1, 3, 17, 15), id="resnet_blocks"),
])
def test_field_box_holds_every_input_pixel_the_cell_depends_on(model, shape):
    t = trace(model, RNG(3).standard_normal(shape).astype(np.float32), gradients=True)
    for name, pos in spatial_cells(t, RNG(4)):
        box = cell(t, name, *pos[1:])["field"]
        assert not outside_box(gradient_of_cell(t, name, pos), box).any(), (name, pos, box)


def test_field_box_is_tight_for_a_linear_stack():
    """No ReLU or max: every pixel of an unclipped field reaches the cell, so the box is the
    gradient's bounding box. (Near the edges, padding inside the stack can leave a cell
    depending on fewer pixels than its clipped field.)"""
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1, rng=RNG(0)),
                          nn.Conv2d(2, 2, 2, dilation=2, rng=RNG(1)), nn.AvgPool2d(3, 2, padding=1),
                          nn.Conv2d(2, 1, (1, 3), padding=(0, 2), rng=RNG(2)))
    t = trace(model, RNG(3).standard_normal((1, 1, 26, 24)).astype(np.float32), gradients=True)
    checked = set()
    for layer in t.layers:
        for c, y, x in np.ndindex(layer.output_shape[1:]):
            box = cell(t, layer.name, c, y, x)["field"]
            if (box["bottom"] - box["top"] + 1, box["right"] - box["left"] + 1) != layer.field.rf:
                continue  # clipped at the edge
            rows, cols = np.nonzero(gradient_of_cell(t, layer.name, (0, c, y, x)))
            assert box == {"top": rows.min(), "left": cols.min(), "bottom": rows.max(), "right": cols.max()}
            checked.add(layer.name)
    assert checked == {"0", "1", "2", "3"}


def test_field_box_by_hand():
    assert field_box(Field((6, 6), (2, 2), (0.5, 0.5)), 13, 0, (28, 28)) == \
        {"top": 24, "left": 0, "bottom": 28 - 1, "right": 3}
    assert field_box(None, 0, 0, (28, 28)) is None


# ----- every layer of the zoo models, and what the web asks first -------------------------------------------
@pytest.mark.parametrize("model, shape", [(lenet5(rng=RNG(0)), (2, 1, 28, 28)),
                                          (SmallResNet(rng=RNG(0)), (2, 3, 32, 32))], ids=["lenet5", "resnet"])
def test_every_layer_of_the_zoo_models(model, shape):
    t = trace(model, RNG(1).standard_normal(shape).astype(np.float32))
    listing = layer_cells(t)
    assert [row["name"] for row in listing] == [layer.name for layer in t.layers]
    kinds = set()
    for row, layer in zip(listing, t.layers):
        assert row["clickable"] and row["shape"] == list(layer.output_shape[1:])
        last = [n - 1 for n in row["shape"]]
        got = cell(t, row["name"], *last, index=1)
        json.dumps(got, allow_nan=False)  # plain Python only
        assert got["kind"] == row["kind"] and got["value"] == float(layer.values[(1, *last)]) and got["text"]
        kinds.add(got["kind"])
    assert kinds >= {"conv", "pool", "linear", "activation", "other"}
    assert listing[0]["input_layer"] == "input"


def test_resnet_inputs_are_followed_by_identity():
    t = trace(SmallResNet(rng=RNG(0)), RNG(1).standard_normal((1, 3, 32, 32)).astype(np.float32))
    names = {row["name"]: row["input_layer"] for row in layer_cells(t)}
    assert names["stages.0.conv1"] == "stem.2" and names["stages.1.shortcut.0"] == "stages.0"
    assert names["stages.1.conv1"] == "stages.0" and names["fc"] == "flatten"
    got = cell(t, "stages.1.shortcut.0", 5, 3, 4)
    np.testing.assert_array_equal(np.array(got["inputs"])[:, 0, 0], t["stages.0"].values[0, :, 6, 8])


def test_not_clickable_without_outputs():
    t = trace(lenet5(rng=RNG(0)), np.zeros((1, 1, 28, 28), np.float32), keep_outputs=False)
    assert not any(row["clickable"] for row in layer_cells(t))
    with pytest.raises(CellError, match="layer '0' kept no output"):
        cell(t, "0", 0, 0, 0)


@pytest.mark.parametrize("args, kwargs, error, message", [
    (("conv9", 0, 0, 0), {}, UnknownLayer, r"^layer 'conv9' is not in this trace; layers: 0, 1, 2, .*, 11$"),
    ((0, 0, 0, 0), {}, UnknownLayer, r"layer 0 is not in this trace"),
    (("0", 3, 40, 2), {}, CellError, r"cell \(3, 40, 2\) is outside the output of layer '0', of shape \(6, 28, 28\)"),
    (("0", -1, 0, 0), {}, CellError, r"cell \(-1, 0, 0\) is outside"),
    (("7", 120), {}, CellError, r"cell 120 is outside the output of layer '7', of shape \(120,\)"),
    (("0", 0, 0, 0), {"index": 2}, CellError, r"image 2 is outside the batch of 1 image"),
    (("0", 0), {}, CellError, r"layer '0' has an output of shape \(6, 28, 28\): give channel, y and x, got y=None"),
    (("7", 0, 1, 1), {}, CellError, r"give a unit \(channel\) only, got y=1, x=1"),
    (("0", 0.5, 0, 0), {}, CellError, r"channel must be an int, got 0.5"),
    (("7", 0), {"top": -1}, CellError, r"top must be >= 0, got -1"),
])
def test_bad_requests_say_what_was_asked_and_what_exists(args, kwargs, error, message):
    t = trace(lenet5(rng=RNG(0)), np.zeros((1, 1, 28, 28), np.float32))
    with pytest.raises(error, match=message):
        cell(t, *args, **kwargs)


# ----- layers that make maps larger -------------------------------------------------------------------
def naive_transposed_terms(x, weight, groups, stride, padding, dilation, c_out, y, x_out):
    """Scatter every input value times every tap (a loop over all of them) and keep those landing on the cell."""
    c_in, h, w = x.shape
    per_in, per_out = c_in // groups, weight.shape[1]
    group, local = divmod(c_out, per_out)
    found = {}
    for c in range(group * per_in, (group + 1) * per_in):
        for i in range(h):
            for j in range(w):
                for ky in range(weight.shape[2]):
                    for kx in range(weight.shape[3]):
                        row = i * stride[0] - padding[0] + ky * dilation[0]
                        col = j * stride[1] - padding[1] + kx * dilation[1]
                        if (row, col) == (y, x_out):
                            found[(c, i, j, ky, kx)] = float(x[c, i, j]) * float(weight[c, local, ky, kx])
    return found


def random_transposed_configs(count, seed=3):
    rng, configs = RNG(seed), []
    for _ in range(count):
        groups, stride = int(rng.integers(1, 3)), (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        config = dict(in_channels=2 * groups, out_channels=groups * int(rng.integers(1, 3)),
                      kernel_size=(int(rng.integers(1, 5)), int(rng.integers(1, 5))), stride=stride,
                      padding=(int(rng.integers(0, 3)), int(rng.integers(0, 3))), groups=groups, dilation=dilation,
                      output_padding=(int(rng.integers(0, stride[0])), int(rng.integers(0, stride[1]))),
                      bias=bool(rng.integers(2)))
        configs.append(pytest.param(config, id="_".join(f"{k[:2]}{v}" for k, v in config.items() if k != "bias")))
    return configs


@pytest.mark.parametrize("config", random_transposed_configs(8))
def test_transposed_cell_sums_what_lands_on_it(config):
    model, t = traced([nn.ConvTranspose2d(**config)], (2, config["in_channels"], 5, 4), dtype=np.float64)
    m, layer = model[0], t.layers[0]
    for c, y, x in some_cells(layer.output_shape[1:], RNG(2)):
        got = cell(t, "0", c, y, x, index=1, top=1000)
        assert got["kind"] == "transposed"
        expected = naive_transposed_terms(layer.input.data[1], m.weight.data, m.groups, m.stride, m.padding,
                                          m.dilation, c, y, x)
        shown = {(*term["source"], *term["tap"]): term["product"] for term in got["terms"]}
        assert shown.keys() == expected.keys() and got["terms_count"] == len(expected)
        assert all(shown[k] == pytest.approx(v, abs=1e-12) for k, v in expected.items())
        assert got["sum"] + got["bias"] == pytest.approx(got["value"], abs=1e-10)
    few = cell(t, "0", 0, 0, 0, top=1)
    assert len(few["terms"]) == min(1, few["terms_count"])
    assert few["sum"] - few["rest"] == pytest.approx(sum(term["product"] for term in few["terms"]), abs=1e-12)


@pytest.mark.parametrize("options", [dict(scale_factor=2, mode="nearest"), dict(size=(7, 9), mode="nearest"),
                                     dict(scale_factor=2, mode="bilinear"), dict(size=(9, 7), mode="bilinear"),
                                     dict(scale_factor=1.5, mode="bilinear", align_corners=True)],
                         ids=["nearest_x2", "nearest_size", "bilinear_x2", "bilinear_size", "bilinear_corners"])
def test_upsample_cell_reads_its_inputs_with_weights_adding_to_one(options):
    model, t = traced([nn.Upsample(**options)], (1, 2, 4, 5), dtype=np.float64)
    layer = t.layers[0]
    for c, y, x in some_cells(layer.output_shape[1:], RNG(4)):
        got = cell(t, "0", c, y, x)
        assert got["kind"] == "upsample" and got["sum"] == pytest.approx(got["value"], abs=1e-12)
        assert sum(term["weight"] for term in got["terms"]) == pytest.approx(1.0, abs=1e-12)
        assert len(got["terms"]) == 1 if options["mode"] == "nearest" else 1 <= len(got["terms"]) <= 4
        for term in got["terms"]:
            assert term["input"] == layer.input.data[(0, *term["source"])]


def test_every_layer_of_the_unet_has_its_arithmetic():
    from convscope.models import UNet
    t = trace(UNet(1, 3, width=2, depth=2, rng=RNG(0)), RNG(1).standard_normal((1, 1, 8, 8)).astype(np.float32))
    kinds = {cell(t, row["name"], 0, 1, 1)["kind"] for row in layer_cells(t) if row["clickable"]}
    assert "transposed" in kinds and "other" not in kinds
