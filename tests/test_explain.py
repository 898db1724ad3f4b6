"""convscope.explain: three depths with different content, each with the model's own numbers."""

import numpy as np
import pytest

from convscope.explain import DEPTHS, explain
from convscope.models import SmallResNet, SmallVGG, lenet5

MATH_SIGNS = ("∂", "Σ", "```")


@pytest.fixture(scope="module")
def lenet_texts():
    model = lenet5(rng=np.random.default_rng(0))
    return {d: explain(model, (1, 28, 28), d) for d in DEPTHS}


@pytest.fixture(scope="module")
def vgg_texts():
    model = SmallVGG(width=8, rng=np.random.default_rng(0))
    return {d: explain(model, (1, 28, 28), d, class_names=list("abcdefghij")) for d in DEPTHS}


def test_depths_differ(lenet_texts, vgg_texts):
    for texts in (lenet_texts, vgg_texts):
        assert len(set(texts.values())) == 3
        for sign in MATH_SIGNS:
            assert sign not in texts["concepts"] and sign not in texts["technical"]
            assert sign in texts["math"]
        assert "H_out = floor(" in texts["technical"] and "H_out" not in texts["concepts"]
    assert lenet_texts["technical"] != vgg_texts["technical"]


def test_concepts_use_plain_words_and_real_numbers(lenet_texts, vgg_texts):
    lenet, vgg = lenet_texts["concepts"], vgg_texts["concepts"]
    assert "Slides 6 small 5x5 pattern detectors" in lenet
    assert "Slides 16 small 5x5 pattern detectors (filters) over its 6-channel input" in lenet
    assert "61,706" in lenet
    assert "strongest response in each 2x2 window" in lenet
    assert "Slides 8 small 3x3 pattern detectors" in vgg and "Slides 16 small 3x3" in vgg
    assert "silences a random 30%" in vgg
    assert "(a, b, c, d, e, f, g, h, i, j)" in vgg


def test_technical_has_shapes_parameters_and_arithmetic(lenet_texts, vgg_texts):
    lenet, vgg = lenet_texts["technical"], vgg_texts["technical"]
    assert "6 filters x (1 x 5x5) = 150 weights + 6 biases = 156" in lenet
    assert "16 filters x (6 x 5x5) = 2,400 weights + 16 biases = 2,416" in lenet
    assert "`(28 + 2*2 - 5)/1 + 1 = 28`" in lenet
    assert "`6 + (5-1)*1*2 = 14`" in lenet  # receptive field of the second conv
    assert "Receptive field grows to 16x16 pixels" in lenet
    assert "weight 120x400 = 48,000 + 120 biases = 48,120" in lenet
    assert "16x5x5 -> 400" in lenet
    assert "`(28 + 2*1 - 3)/1 + 1 = 28`" in vgg
    assert "8 filters x (1 x 3x3) = 72 weights (no bias)" in vgg
    assert "8 scales + 8 shifts = 16 parameters" in vgg


def test_math_has_equations_and_gradients(lenet_texts, vgg_texts):
    lenet, vgg = lenet_texts["math"], vgg_texts["math"]
    assert "Σ_(c=0..5) Σ_(u=0..4) Σ_(v=0..4) w[o, c, u, v]" in lenet  # second conv, 6 input channels
    assert "∂L/∂w[o,c,u,v]" in lenet and "∂L/∂b[o]" in lenet
    for pooling in ("max:", "average: y[n,c,i,j] = (1/4)", "L2:      y[n,c,i,j] = sqrt("):
        assert pooling in lenet
    assert "∂L/∂x = ∂L/∂y · [x > 0]" in lenet
    assert "W: 120x400" in lenet
    assert "p_k = exp(z_k) / Σ_(j=0..9) exp(z_j)" in lenet
    assert "L = -log p_y" in lenet and "∂L/∂z_k = p_k - [k = y]" in lenet
    assert "x̂ = (x - μ_c) / sqrt(σ²_c + 1e-05)" in vgg and "(c = 0..7)" in vgg
    assert "Σ_(c=0..7) Σ_(u=0..2)" in vgg and "b[o] +" not in vgg.split("\n## Layer")[1]


def test_every_layer_has_a_section(lenet_texts):
    for text in lenet_texts.values():
        assert text.count("\n## ") == 12 + 1  # 12 layers and the output section


def test_residual_blocks_are_explained():
    texts = {d: explain(SmallResNet(rng=np.random.default_rng(0)), (3, 32, 32), d) for d in DEPTHS}
    assert "A residual block" in texts["concepts"]
    assert "the shortcut is a 1x1 convolution" in texts["technical"]
    assert "the longer branch's, 13x13 pixels" in texts["technical"]
    assert "z = F(x) + S(x)" in texts["math"]


def test_unknown_depth():
    with pytest.raises(ValueError, match="depth"):
        explain(lenet5(rng=np.random.default_rng(0)), (1, 28, 28), "poetry")


def test_headings_name_the_layer_once(lenet_texts):
    text = lenet_texts["technical"]
    assert "\n## Layer 0: Conv2d (1x28x28 -> 6x28x28)\n" in text
    assert "\n## Layer 5: MaxPool2d (16x10x10 -> 16x5x5)\n" in text
    assert "## 1." not in text and "`0`" not in text


def test_weight_sharing_compares_weights_with_weights(lenet_texts):
    """explain and summary give the same numbers: weights only, biases left out on both sides."""
    concepts, technical = lenet_texts["concepts"], lenet_texts["technical"]
    assert "needs only 150 weights where a fully connected layer would need 3,687,936" in concepts
    assert "156 numbers where" not in concepts
    assert "would need 3,687,936 weights, 24,586 times the 150 here" in technical
    assert "biases are not counted on either side" in concepts and "biases are not counted on either side" in technical
    from convscope.summary import summary
    text = summary(lenet5(rng=np.random.default_rng(0)), (1, 28, 28))
    assert "0: 150 shared weights vs 3,687,936" in text and "weights only, biases not counted" in text
