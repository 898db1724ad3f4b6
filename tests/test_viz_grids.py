"""convscope.viz.grids and render: documented sizes, tiles in the right places, PNGs that open."""

import numpy as np
import pytest
from PIL import Image

from convscope import nn
from convscope.models import SmallResNet, lenet5
from convscope.viz import gallery, grids, render
from convscope.viz.activations import capture_activations

VERTICAL = np.array([[-1.0, 0.0, 1.0]] * 3)  # responds to a dark-to-bright vertical edge


def edge_model():
    """Conv2d(1, 2, 3) + ReLU with hand-set filters: 0 vertical edge, 1 horizontal edge."""
    conv = nn.Conv2d(1, 2, 3, bias=False, rng=np.random.default_rng(0))
    conv.weight.data[:] = np.stack([VERTICAL, VERTICAL.T])[:, None].astype(np.float32)
    return nn.Sequential(conv, nn.ReLU())


def bar(vertical, size=12):
    """A bright bar across the whole image (so it has no ends, which are edges of the other kind)."""
    x = np.zeros((1, 1, size, size), np.float32)
    if vertical:
        x[0, 0, :, 5:7] = 1.0
    else:
        x[0, 0, 5:7, :] = 1.0
    return x


@pytest.mark.parametrize("n, h, w, ncols, pad, scale", [
    (6, 5, 5, None, 1, 2), (1, 3, 4, None, 0, 1), (16, 8, 8, 4, 2, 3), (7, 2, 9, 3, 1, 1)],
    ids=["6-square", "single", "4x4", "ragged"])
def test_grid_size_matches_formula(n, h, w, ncols, pad, scale):
    out = grids.tile(np.zeros((n, h, w)), ncols=ncols, pad=pad, scale=scale)
    cols = ncols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    assert out.shape == (rows * (h * scale + pad) + pad, cols * (w * scale + pad) + pad, 3)
    assert out.dtype == np.uint8


def test_each_tile_sits_in_its_box():
    values = np.linspace(0.1, 0.9, 7)
    images = values[:, None, None] * np.ones((7, 3, 4))
    out = grids.tile(images, ncols=3, pad=2, scale=2)
    for i, v in enumerate(values):
        top, left, bottom, right = grids.tile_box(i, (3, 4), 3, pad=2, scale=2)
        assert (out[top:bottom, left:right] == round(v * 255)).all()
        assert (out[top - 1, left:right] == grids.SEPARATOR).all()


def test_first_layer_filter_tiles_show_each_filter():
    weight = edge_model()[0].weight.data
    out = grids.filter_grid(weight, mode="input", scale=1, pad=1)
    first = grids.tile_box(0, (3, 3), 2)
    second = grids.tile_box(1, (3, 3), 2)
    tile0 = out[first[0]:first[2], first[1]:first[3], 0]
    tile1 = out[second[0]:second[2], second[1]:second[3], 0]
    blue, white, red = grids.to_uint8(grids.diverging(np.array([0.0, 0.5, 1.0])))[:, 0]
    np.testing.assert_array_equal(tile0, [[blue, white, red]] * 3)  # -1 blue, 0 white, +1 red
    np.testing.assert_array_equal(tile1, np.array([[blue, white, red]] * 3).T)


def test_channel_filter_grid_puts_filter_o_in_column_o():
    weight = np.zeros((3, 2, 3, 3))
    weight[2, 1] = 1.0  # only filter 2, input channel 1
    out = grids.filter_grid(weight, mode="channels", scale=1)
    for c in range(2):
        for o in range(3):
            top, left, bottom, right = grids.tile_box(c * 3 + o, (3, 3), 3)
            red = (o, c) == (2, 1)
            assert (out[top:bottom, left:right] == grids.to_uint8(grids.diverging(1.0 if red else 0.5))).all()


def test_filter_modes():
    assert grids.filter_mode(np.zeros((6, 1, 5, 5)), True) == "input"
    assert grids.filter_mode(np.zeros((16, 6, 5, 5)), False) == "channels"
    assert grids.filter_mode(np.zeros((32, 16, 3, 3)), False) == "norm"  # over 256 tiles
    assert grids.filter_mode(np.zeros((64, 64, 3, 3)), False) == "norm"
    norm = grids.filter_grid(np.ones((4, 64, 3, 3)), mode="norm", scale=1)
    assert norm.shape == (2 * 4 + 1, 2 * 4 + 1, 3)


@pytest.mark.parametrize("vertical", [True, False], ids=["vertical-bar", "horizontal-bar"])
def test_edge_filter_lights_up_on_matching_bar(vertical):
    acts = capture_activations(edge_model(), bar(vertical))
    out = grids.feature_grid(acts["1"][0], scale=1, pad=1)  # shared scale for the layer
    boxes = [grids.tile_box(i, (10, 10), 2) for i in range(2)]
    energy = [out[top:bottom, left:right].astype(float).mean() for top, left, bottom, right in boxes]
    lit, dark = (0, 1) if vertical else (1, 0)
    assert energy[lit] > 20 and energy[dark] == 0


def test_feature_grid_of_a_vector():
    out = grids.feature_grid(np.arange(10.0), scale=2, pad=1)
    assert out.shape == (3 * 2 + 2, 4 * 2 + 2, 3)  # 10 values, 4 to a row: 3 rows


def test_colour_maps_and_resize():
    assert np.allclose(grids.diverging(np.array([0.5]))[0], 1.0)
    assert np.allclose(grids.heat(np.array([0.0, 1.0])), [[0, 0, 0], [1, 1, 1]])
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(grids.resize(a, (3, 4)), a)
    assert grids.resize(a, (6, 8)).shape == (6, 8)
    assert grids.overlay(np.zeros((6, 8, 3)), np.ones((3, 4))).shape == (6, 8, 3)


def test_titled_png_has_documented_size_and_tiles(tmp_path):
    acts = capture_activations(edge_model(), bar(True))
    grid = grids.feature_grid(acts["1"][0], scale=3, pad=1)
    title, note = "Layer 1 (ReLU): the same 2 maps of 10x10", "a note long enough to wrap " * 5
    band = render.title_band(title, note, grid.shape[1])
    path = render.save_png(tmp_path / "features.png", render.titled(grid, title, note))
    with Image.open(path) as image:
        assert image.size == (max(grid.shape[1], render.title_width(title), render.NOTE_WIDTH),
                              grid.shape[0] + band.shape[0])
        pixels = np.asarray(image.convert("RGB"))
    assert band.shape[0] > render.TITLE_SIZE + 2 * render.NOTE_SIZE  # the note wrapped onto 2+ lines
    top, left, bottom, right = grids.tile_box(0, (10, 10), 2, pad=1, scale=3)
    np.testing.assert_array_equal(pixels[top + band.shape[0]:bottom + band.shape[0], left:right],
                                  grid[top:bottom, left:right])


@pytest.mark.parametrize("make, shape", [(lambda: lenet5(rng=np.random.default_rng(0)), (1, 1, 28, 28)),
                                         (lambda: SmallResNet(width=4, rng=np.random.default_rng(0)), (1, 3, 32, 32))],
                         ids=["lenet5", "resnet"])
def test_all_pictures_open_as_pngs(make, shape, tmp_path):
    model = make()
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    pictures = gallery.all_pictures(model, x, [0.5] * shape[1], [0.25] * shape[1])
    stems = [stem for stem, _ in pictures]
    assert {"topk", "saliency", "gradcam", "pooling", "input"} <= set(stems)
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert sum(s.startswith("filters_") for s in stems) == len(convs)
    assert sum(s.startswith("features_") for s in stems) == len(capture_activations(model, x))
    for stem, image in pictures:
        path = render.save_png(tmp_path / f"{stem}.png", image)
        with Image.open(path) as png:
            assert png.size == (image.shape[1], image.shape[0])
    for stem, image in pictures:
        if stem.startswith(("filters_", "features_", "saliency", "gradcam", "pooling")):
            assert image.shape[0] >= 100 and image.shape[1] >= render.NOTE_WIDTH, stem
    top_k = dict(pictures)["topk"]
    assert top_k.shape == (260, 400, 3)  # figsize (4.0, 2.6) at 100 dpi


def test_resize_places_a_layer_map_over_the_pixels_it_sees():
    cam = np.zeros((10, 10))
    cam[0, 0] = 1.0  # LeNet-5 conv "3": output (0, 0) is centred on input pixel (4.5, 4.5), jump 2
    placed = grids.resize(cam, (28, 28), start=(4.5, 4.5), step=(2, 2))
    assert (placed[:5, :5] == 1).all()  # up to the centre, and the edge value continues outwards
    assert placed[5, 5] == pytest.approx(0.75 * 0.75) and placed[6, 6] == pytest.approx(0.25 * 0.25)
    assert placed[7:].max() == 0 and placed[:, 7:].max() == 0
    assert grids.resize(cam, (28, 28))[6, 6] == 0  # a plain stretch would put it too far up-left
