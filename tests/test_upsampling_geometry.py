"""Transposed convolution and upsampling in the geometry: windows, receptive fields (checked
against the gradient of one output cell), the summary, the explanation and model files."""

import numpy as np
import pytest
from helpers import to_float64

from convscope import Tensor, nn
from convscope import functional as F
from convscope.arithmetic import field_box
from convscope.explain import explain
from convscope.io import load_model, save_model
from convscope.summary import summary
from convscope.trace import INPUT_FIELD, Field, next_field, trace
from convscope.windows import Window, conv_transpose_window

RNG = np.random.default_rng


# ----- the windows --------------------------------------------------------------------------------
def test_transposed_window_by_hand():
    w = conv_transpose_window((4, 3), stride=2, padding=1, output_padding=(1, 0))
    assert w == Window((4, 3), (2, 2), (1, 1), (1, 1, 1, 1), False, True, (1, 0))
    assert w.output_hw((14, 14)) == (29, 27)  # (14-1)*2 - 2 + 3 + 1 + 1, (14-1)*2 - 2 + 2 + 1


def test_layer_geometry_is_its_output_size():
    for seed in range(10):
        rng = RNG(seed)
        s, d = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        layer = nn.ConvTranspose2d(2, 3, int(rng.integers(1, 5)), stride=s, padding=int(rng.integers(0, 2)),
                                   output_padding=int(rng.integers(0, max(s, d))), dilation=d, rng=rng)
        out = layer(Tensor(np.zeros((1, 2, 5, 6), np.float32)))
        assert layer.geometry((5, 6)).output_hw((5, 6)) == out.shape[2:], repr(layer)


@pytest.mark.parametrize("layer, window", [
    (nn.Upsample(scale_factor=2), conv_transpose_window(2, 2)),
    (nn.Upsample(size=(21, 14)), conv_transpose_window((3, 2), (3, 2))),
    (nn.Upsample(scale_factor=2, mode="bilinear"), conv_transpose_window(4, 2, 1)),
    (nn.Upsample(scale_factor=3, mode="bilinear"), conv_transpose_window(5, 3, 1)),
    (nn.Upsample(scale_factor=2.5), None),
    (nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), None),
], ids=["nearest_x2", "nearest_size", "bilinear_x2", "bilinear_x3", "fraction", "align_corners"])
def test_upsample_geometry_is_the_equal_transposed_conv(layer, window):
    assert layer.geometry((7, 7)) == window


def test_nearest_upsampling_is_a_transposed_conv_with_ones():
    x = Tensor(RNG(0).standard_normal((2, 3, 4, 5)))
    ones = Tensor(np.ones((3, 1, 2, 3)))  # depthwise: groups = channels
    np.testing.assert_array_equal(F.interpolate(x, scale_factor=(2, 3)).data,
                                  F.conv_transpose2d(x, ones, stride=(2, 3), groups=3).data)


def test_bilinear_x2_is_a_transposed_conv_with_a_tent_away_from_the_borders():
    x = Tensor(RNG(1).standard_normal((1, 2, 5, 6)))
    tent = np.array([0.25, 0.75, 0.75, 0.25])
    kernel = Tensor(np.broadcast_to(np.outer(tent, tent), (2, 1, 4, 4)).copy())
    ours = F.interpolate(x, scale_factor=2, mode="bilinear").data
    painted = F.conv_transpose2d(x, kernel, stride=2, padding=1, groups=2).data
    np.testing.assert_allclose(ours[:, :, 1:-1, 1:-1], painted[:, :, 1:-1, 1:-1], atol=1e-12)  # edges repeat there


# ----- receptive fields ---------------------------------------------------------------------------
def test_field_formulas_by_hand():
    up = next_field(INPUT_FIELD, conv_transpose_window(4, 2, 1), (1, 1, 7, 7), (1, 1, 14, 14))
    assert up == Field((2.5, 2.5), (0.5, 0.5), (-0.25, -0.25))  # 1 + 3*0.5; 0 + (1 - 1.5)*0.5
    conv = next_field(Field((3, 3), (2, 2), (1.0, 1.0)), conv_transpose_window(3, 2, 1), (1, 1, 7, 7), (1, 1, 13, 13))
    assert conv == Field((5, 5), (1, 1), (1.0, 1.0)) and isinstance(conv.rf[0], int)
    assert next_field(up, None, (1, 1, 14, 14), (1, 1, 21, 21)) is None  # a resize with no window


def test_field_box_of_a_fractional_field():
    assert field_box(Field((2.5, 2.5), (0.5, 0.5), (-0.25, -0.25)), 1, 3, (7, 7)) == \
        {"top": 0, "left": 1, "bottom": 1, "right": 2}  # centres 0.25 and 1.25, reach 0.75


def random_stack(rng):
    """Conv -> ConvTranspose -> Upsample (-> Conv), random windows, smooth activations."""
    s1, s2 = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    d2 = int(rng.integers(1, 3))
    mode = str(rng.choice(["nearest", "bilinear"]))
    layers = [nn.Conv2d(1, 2, int(rng.integers(1, 4)), stride=s1, padding=int(rng.integers(0, 2)), rng=rng),
              nn.Tanh(),
              nn.ConvTranspose2d(2, 2, int(rng.integers(1, 5)), stride=s2, padding=int(rng.integers(0, 2)),
                                 output_padding=int(rng.integers(0, max(s2, d2))), dilation=d2, rng=rng),
              nn.Upsample(scale_factor=int(rng.integers(2, 4)) if mode == "nearest" else 2, mode=mode)]
    if rng.random() < 0.5:
        layers.append(nn.Conv2d(2, 1, int(rng.integers(1, 4)), padding=1, rng=rng))
    return to_float64(nn.Sequential(*layers))


@pytest.mark.parametrize("seed", range(16))
def test_the_gradient_of_one_cell_stays_inside_its_predicted_field(seed):
    rng = RNG(seed)
    model = random_stack(rng)
    x = Tensor(rng.standard_normal((1, 1, 9, 8)), requires_grad=True, dtype=np.float64)
    out = model(x)
    field = trace(model, x.data).layers[-1].field
    assert field is not None
    tight = 0
    for y, xo in [(0, 0), (out.shape[2] // 2, out.shape[3] // 3), (out.shape[2] - 1, out.shape[3] - 1)]:
        x.grad = None
        out[0, 0, y, xo].backward()
        seen = np.abs(x.grad[0, 0]) > 1e-9 * max(np.abs(x.grad).max(), 1e-300)
        rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
        box = field_box(field, y, xo, x.shape[2:])
        if rows.size:
            assert box["top"] <= rows.min() and rows.max() <= box["bottom"], (seed, y, box, rows)
            assert box["left"] <= cols.min() and cols.max() <= box["right"], (seed, xo, box, cols)
            tight = max(tight, rows.max() - rows.min() + 1)
    assert tight <= np.floor(field.rf[0])  # an output sees at most floor(rf) pixels along an axis


# ----- summary, explanation, model files ------------------------------------------------------------
def decoder(rng=None):
    rng = RNG(0) if rng is None else rng
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1, rng=rng), nn.ReLU(),
                         nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, rng=rng),
                         nn.Upsample(scale_factor=2, mode="bilinear"), nn.Upsample(size=(84, 70)))


def test_summary_rows_and_arithmetic():
    text = summary(decoder(), (1, 28, 28))
    assert "2      ConvTranspose2d  2x28x28      74     14,112    5     1" in text
    assert "3      Upsample         2x56x56       0          0  6.5   0.5" in text
    assert "4      Upsample         2x84x70       0          0  all   all" in text
    assert "2 ConvTranspose2d: (14 - 1)*2 - 2*1 + (3-1) + 1 + 1 = 28" in text
    assert "3 Upsample: bilinear: floor(28*2) = 56" in text
    assert "4 Upsample: H: nearest: size 84 (1.5x);  W: nearest: size 70 (1.25x)" in text
    assert "transposed: H_out = (H - 1)*stride - 2*padding + dilation*(k-1) + output_padding + 1" in text


def test_explain_has_words_for_both():
    concepts = explain(decoder(), (1, 28, 28), "concepts")
    assert "## Layer 2: ConvTranspose2d (4x14x14 -> 2x28x28)" in concepts
    assert "paints a 3x3 patch" in concepts and "blends the four nearest input values" in concepts
    technical = explain(decoder(), (1, 28, 28), "technical")
    assert "weight 4x2x3x3 (input channel first) = 72 + 2 biases = 74" in technical
    assert "`rf_in + (3-1)*1*1 = 5` input pixels" in technical and "jump 0.5" in technical
    math = explain(decoder(), (1, 28, 28), "math")
    assert "y_full[n, o, 2·i + 1·u, 2·j + 1·v] += w[c, o, u, v] · x[n, c, i, j]" in math
    assert "y[.., a] = (1 - l)·x[.., i0] + l·x[.., i1]" in math and "floor(a·scale_h)" in math


def test_model_file_round_trip(tmp_path):
    net = decoder()
    save_model(tmp_path / "m.safetensors", net, input_shape=(1, 28, 28))
    loaded, _ = load_model(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(net)
    x = Tensor(RNG(2).standard_normal((2, 1, 28, 28)).astype(np.float32))
    np.testing.assert_array_equal(loaded(x).data, net.eval()(x).data)


def test_roles_are_registered():
    assert {"conv_transpose", "upsample"} <= set(nn.module.ROLES)
    assert nn.LAYERS["ConvTranspose2d"] is nn.ConvTranspose2d and nn.LAYERS["Upsample"] is nn.Upsample
    assert trace(decoder(), np.zeros((1, 1, 28, 28), np.float32)).first("upsample").name == "3"
