"""convscope.viz.gallery and captions: big labelled tiles, colour keys, plain-words titles,
bar charts for 1-D outputs with the logits named after the classes."""

import numpy as np
import pytest

from convscope.models import lenet5
from convscope.summary import summarize
from convscope.viz import captions, gallery, grids, render
from convscope.viz.activations import capture_activations

NAMES = list("abcdefghij")


@pytest.fixture(scope="module")
def lenet():
    return lenet5(rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).standard_normal((1, 1, 28, 28)).astype(np.float32)


def find(image, patch):
    """(row, column) of the first place where ``patch`` sits in ``image``, else None."""
    first = patch[0].tobytes()
    for r in range(image.shape[0] - patch.shape[0] + 1):
        at = image[r].tobytes().find(first)
        while at >= 0:
            if at % 3 == 0 and (image[r:r + patch.shape[0], at // 3:at // 3 + patch.shape[1]] == patch).all():
                return r, at // 3
            at = image[r].tobytes().find(first, at + 1)
    return None


def grid_top(picture_note_title, width):
    """Height of the title band above a gallery picture's grid."""
    title, note = picture_note_title
    return render.title_band(title, note, width).shape[0]


def test_label_bands_are_white_and_sized_as_documented():
    out = grids.tile(np.zeros((5, 4, 4)), ncols=3, pad=1, scale=2, label=10)
    assert out.shape == (2 * (10 + 8 + 1) + 1, 3 * (8 + 1) + 1, 3)
    for i in range(5):
        top, left, bottom, right = grids.label_box(i, (4, 4), 3, 1, 2, 10)
        assert (out[top:bottom, left:right] == 255).all()
        assert (out[bottom:bottom + 8, left:right] == 0).all()  # the tile sits right under its label


def test_first_layer_filters_are_big_labelled_and_in_order(lenet):
    weight = lenet[0].weight.data
    picture = gallery.filter_picture("0", weight, first_layer=True)
    scale = gallery.grid_scale((5, 5), 3)
    assert 5 * scale >= 64  # the brief: 5x5 filters at least 64 pixels tall
    tiles, _ = grids.filter_tiles(weight, "input")
    grid = grids.tile(tiles, ncols=3, scale=scale, label=render.LABEL_HEIGHT)
    top = grid_top(captions.filter_title("0", weight, "input"), grid.shape[1])
    shown = picture[top:top + grid.shape[0], :grid.shape[1]]
    for o in range(6):  # tile o is filter o, in the layer's blue-white-red scale
        y0, x0, y1, x1 = grids.tile_box(o, (5, 5), 3, 1, scale, render.LABEL_HEIGHT)
        expected = grids.to_uint8(grids.diverging(grids.signed_unit(weight[o, 0], np.abs(weight).max())))
        np.testing.assert_array_equal(shown[y0:y1:scale, x0:x1:scale], expected)
        lt, ll, lb, lr = grids.label_box(o, (5, 5), 3, 1, scale, render.LABEL_HEIGHT)
        assert (shown[lt:lb, ll:lr] < 100).any(), f"no label text over filter {o}"
    assert find(picture, grids.colour_ramp(grids.diverging)) is not None  # the colour key


def test_channel_tiles_show_filter_by_input_channel(lenet):
    weight = np.zeros((16, 6, 5, 5), np.float32)
    weight[2, 1] = 1.0  # only filter 2 reads input channel 1
    picture = gallery.filter_picture("3", weight, first_layer=False)
    scale = gallery.grid_scale((5, 5), 16)
    assert 5 * scale >= 64 and 16 * (5 * scale + 1) + 1 <= gallery.MAX_WIDTH + 1
    assert grids.filter_labels(weight, "channels")[1 * 16 + 2] == "f2 c1"
    grid_width = 16 * (5 * scale + 1) + 1
    top = grid_top(captions.filter_title("3", weight, "channels"), grid_width)
    red = grids.to_uint8(grids.diverging(1.0))
    for c in range(6):
        for o in range(16):
            y0, x0, y1, x1 = grids.tile_box(c * 16 + o, (5, 5), 16, 1, scale, render.LABEL_HEIGHT)
            lit = (picture[top + y0:top + y1, x0:x1] == red).all(axis=-1).all()
            assert lit == ((o, c) == (2, 1))


def test_feature_maps_are_big_with_a_grey_key(lenet, x):
    pictures = dict(gallery.feature_pictures(lenet, x))
    for stem in ("features_00_0", "features_02_2", "features_05_5"):
        assert find(pictures[stem], grids.colour_ramp(grids.gray)) is not None
    for h, ncols in ((28, 3), (14, 3), (10, 4), (5, 4)):
        assert h * gallery.grid_scale((h, h), ncols) >= 64


def test_vector_outputs_are_bar_charts_and_logits_carry_class_names(lenet, x, monkeypatch):
    calls = []
    real = render.plot_bars

    def recording(values, names=None, highlight=None, ylabel="value", size=(9.0, 2.6)):
        calls.append((len(values), names, highlight))
        return real(values, names, highlight, ylabel, size)

    monkeypatch.setattr(render, "plot_bars", recording)
    pictures = dict(gallery.feature_pictures(lenet, x, class_names=NAMES))
    assert [n for n, _, _ in calls] == [400, 120, 120, 84, 84, 10]  # Flatten, Linear/ReLU pairs, logits
    assert all(names is None for _, names, _ in calls[:-1])
    logits = capture_activations(lenet, x)["11"][0]
    assert calls[-1] == (10, NAMES, int(logits.argmax()))
    assert pictures["features_11_11"].shape[0] >= 260 and pictures["features_11_11"].shape[1] >= 900


def test_titles_are_plain_words_with_shapes(lenet):
    rows = summarize(lenet, (1, 28, 28))
    assert captions.output_title(rows[5]) == ("Layer 5 (MaxPool2d): 16 pooled maps of 5x5 — each keeps the "
                                              "strongest response in every 2x2 window")
    assert captions.output_title(rows[0]) == "Layer 0 (Conv2d): 6 feature maps of 28x28, one per learned 5x5 filter"
    assert captions.output_title(rows[6]) == "Layer 6 (Flatten): the 16x5x5 maps lined up as one list of 400 numbers"
    assert "class scores (logits)" in captions.output_title(rows[11], last=True)
    title, _ = captions.filter_title("0", lenet[0].weight.data, "input")
    assert title == "Layer 0 (Conv2d): the 6 learned 5x5 filters, one per feature map"
    assert "red = positive weight, blue = negative weight, white = 0" in captions.WEIGHT_KEY
    assert "dark = low, bright = high activation" in captions.ACTIVATION_KEY


def test_saliency_gradcam_and_pooling_have_heat_or_grey_keys(lenet, x):
    pictures = dict(gallery.saliency_pictures(lenet, x, [0.5], [0.25], NAMES)
                    + gallery.pooling_picture(lenet, x))
    for stem in ("saliency", "gradcam"):
        assert find(pictures[stem], grids.colour_ramp(grids.heat)) is not None
    assert find(pictures["pooling"], grids.colour_ramp(grids.gray)) is not None
