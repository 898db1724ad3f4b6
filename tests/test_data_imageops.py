"""The image operations that find a digit, against their plain definitions
(``imageops_reference.py``): exactly the same values on random and awkward inputs, a few
hand-computed cases, and whole preparations of photos and drawings unchanged."""

import imageops_reference as reference
import numpy as np
import pytest

from convscope.data import imageops
from convscope.data.photos import KINDS, digit_ink, font_paths, write_photo
from convscope.data.preprocess import mnist_style, preprocess_image

SHAPES = {"1x1": (1, 1), "1x9": (1, 9), "9x1": (9, 1), "2x2": (2, 2), "3x5": (3, 5), "17x13": (17, 13),
          "40x61": (40, 61), "150x200": (150, 200)}
WINDOWS = (1, 2, 3, 4, 5, 9, 25)  # even ones too; 25 is wider than most shapes here


def images(shape, seed):
    """A few images of ``shape``: floats, small integers (many ties), a constant."""
    rng = np.random.default_rng(seed)
    return [rng.random(shape) * 255, rng.integers(0, 4, shape).astype(float), np.full(shape, 7.0)]


# ----- filters and the median -----------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("size", WINDOWS)
def test_min_max_filters_and_top_hat_equal_the_window_reductions(shape, size):
    for image in images(shape, size):
        assert np.array_equal(imageops.max_filter(image, size), reference.max_filter(image, size))
        assert np.array_equal(imageops.min_filter(image, size), reference.min_filter(image, size))
        assert np.array_equal(imageops.black_top_hat(image, size), reference.black_top_hat(image, size))


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_median3_equals_np_median_of_the_nine(shape):
    for seed in range(5):
        for image in images(shape, seed):
            assert np.array_equal(imageops.median3(image), reference.median3(image))


def test_filters_and_median_by_hand():
    assert imageops.max_filter(np.array([[0.0, 0, 0, 0, 5]]), 3).tolist() == [[0, 0, 0, 5, 5]]
    assert imageops.max_filter(np.array([[1.0, 0, 0, 0, 2]]), 2).tolist() == [[1, 1, 0, 0, 2]]  # columns x-1, x
    assert imageops.min_filter(np.array([[3.0], [1], [4], [1], [5]]), 3).tolist() == [[1], [1], [1], [1], [1]]
    speck = np.zeros((3, 3))
    speck[1, 1] = 9
    assert imageops.median3(speck).tolist() == np.zeros((3, 3)).tolist()
    assert imageops.median3(np.array([[1.0, 5, 2]])).tolist() == [[1, 2, 2]]  # {1,1,1,1,1,1,5,5,5}, ...


# ----- components -------------------------------------------------------------------------------
def snake(shape):
    """A one-pixel path that runs along every other row, joined alternately at the right and
    left ends: one component whose runs only meet far from where they start."""
    mask = np.zeros(shape, bool)
    mask[::2] = True
    mask[1::4, -1] = True
    mask[3::4, 0] = True
    return mask


def masks(shape, seed):
    rng = np.random.default_rng(seed)
    ys, xs = np.indices(shape)
    return {"empty": np.zeros(shape, bool), "full": np.ones(shape, bool),
            "checkerboard": (ys + xs) % 2 == 0,  # joined only through corners
            "stripes": (ys - xs) % 3 == 0, "anti-stripes": (ys + xs) % 4 == 0, "snake": snake(shape),
            **{f"random {p}": rng.random(shape) < p for p in (0.1, 0.3, 0.5, 0.7, 0.9)}}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_components_equal_breadth_first_search(shape):
    for seed in range(3 if np.prod(shape) < 10_000 else 1):  # the search is slow on large masks
        for name, mask in masks(shape, seed).items():
            labels, sizes = imageops.components(mask)
            expected_labels, expected_sizes = reference.components(mask)
            assert labels.dtype == expected_labels.dtype and np.array_equal(labels, expected_labels), name
            assert sizes == expected_sizes, name


def test_components_by_hand():
    mask = np.array([[0, 0, 1],
                     [1, 0, 1],
                     [1, 1, 0]], bool)  # one piece: (1, 2) touches (2, 1) at a corner
    labels, sizes = imageops.components(mask)
    assert labels.tolist() == [[0, 0, 1], [1, 0, 1], [1, 1, 0]] and sizes == [5]
    mask = np.array([[0, 0, 1, 0],
                     [1, 0, 1, 0],
                     [1, 0, 0, 0],
                     [0, 0, 1, 1]], bool)  # numbered by their first pixel, row by row
    labels, sizes = imageops.components(mask)
    assert labels.tolist() == [[0, 0, 1, 0], [2, 0, 1, 0], [2, 0, 0, 0], [0, 0, 3, 3]] and sizes == [2, 2, 2]
    labels, sizes = imageops.components(np.array([[1, 0, 1], [1, 1, 1]], bool))  # a U: two runs joined below
    assert labels.tolist() == [[1, 0, 1], [1, 1, 1]] and sizes == [5]
    labels, sizes = imageops.components(np.zeros((2, 3), bool))
    assert labels.tolist() == [[0, 0, 0], [0, 0, 0]] and sizes == []


# ----- whole preparations ---------------------------------------------------------------------
DIGIT_MODEL = {"input_shape": [1, 28, 28], "preprocess": "digit", "mean": [0.13], "std": [0.31]}


def same_preparation(path):
    """preprocess_image today and the old way: the same array and notes, or the same error."""
    try:
        expected = reference.reference_preprocess_image(path, DIGIT_MODEL)
    except ValueError as error:
        with pytest.raises(ValueError, match=str(error)):
            preprocess_image(path, DIGIT_MODEL)
        return
    x, notes = preprocess_image(path, DIGIT_MODEL)
    assert x.dtype == expected[0].dtype and np.array_equal(x, expected[0]), path
    assert notes == expected[1], path


@pytest.mark.parametrize("kind", KINDS)
def test_photos_are_prepared_exactly_as_before(tmp_path, kind):
    rng, fonts = np.random.default_rng(KINDS.index(kind)), font_paths()
    for i in range(4):
        same_preparation(write_photo(tmp_path / f"{kind}-{i}", (3 * i + 1) % 10, kind, rng, fonts[i % len(fonts)]))


def test_drawings_are_prepared_exactly_as_before(tmp_path):
    rng = np.random.default_rng(0)
    for i, (side, width, ink, paper) in enumerate([(280, 18, 255, 0), (280, 10, 255, 0), (280, 24, 0, 255),
                                                   (280, 6, 30, 220), (150, 12, 255, 0), (40, 3, 255, 0)]):
        path = tmp_path / f"drawing-{i}.png"
        reference.drawing(rng, side, strokes=1 + i % 4, width=width, ink=ink, paper=paper).save(path)
        same_preparation(path)
    blank = tmp_path / "blank.png"
    reference.drawing(rng, strokes=0).save(blank)
    same_preparation(blank)


def test_font_digits_are_prepared_exactly_as_before():
    rng, fonts = np.random.default_rng(1), font_paths()
    for digit in range(10):
        ink = digit_ink(digit, fonts[digit % len(fonts)], (48, 48), rng) * 255
        notes, expected_notes = [], []
        today = mnist_style(ink, notes)
        with reference.old_preparation():
            expected = mnist_style(ink, expected_notes)
        assert np.array_equal(today, expected) and notes == expected_notes
