"""Augmentations: hand-checked geometry, exact flips, shapes kept, reproducible from the seed."""
import numpy as np
import pytest

from convscope.data.augment import (
    Compose,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation,
    RandomShift,
    crop,
    rotate,
    translate,
)


def dot_batch(count=4, channels=2, size=7, y=3, x=3):
    """Images with a single bright pixel at (y, x) in every channel."""
    batch = np.zeros((count, channels, size, size), np.float32)
    batch[:, :, y, x] = 1.0
    return batch


def dot_position(image):
    return tuple(int(v) for v in np.argwhere(image == 1.0)[0])


# ---------------------------------------------------------------- translate and RandomShift

def test_translate_moves_a_known_pixel():
    out = translate(dot_batch(count=3), dy=np.array([1, -2, 0]), dx=np.array([2, 0, -3]))
    assert [dot_position(out[b, 0]) for b in range(3)] == [(4, 5), (1, 3), (3, 0)]
    assert out.sum() == 3 * 2  # nothing duplicated, both channels moved alike


def test_translate_fills_uncovered_pixels():
    out = translate(np.ones((1, 1, 3, 3), np.float32), np.array([1]), np.array([-1]), fill=0.5)
    np.testing.assert_array_equal(out[0, 0], [[0.5, 0.5, 0.5], [1, 1, 0.5], [1, 1, 0.5]])


def test_translate_off_the_image_leaves_fill_only():
    out = translate(dot_batch(count=1), np.array([10]), np.array([0]))
    assert out.shape == (1, 2, 7, 7) and not out.any()


def test_random_shift_within_bounds_and_reproducible():
    batch = dot_batch(count=50)
    out1 = RandomShift(max_shift=2)(batch, np.random.default_rng(7))
    out2 = RandomShift(max_shift=2)(batch, np.random.default_rng(7))
    np.testing.assert_array_equal(out1, out2)
    assert out1.shape == batch.shape and out1.dtype == np.float32
    moves = np.array([dot_position(out1[b, 0]) for b in range(50)]) - 3
    assert np.abs(moves).max() == 2 and len({tuple(m) for m in moves}) > 5
    assert (batch[:, :, 3, 3] == 1).all()  # the input is untouched


def test_random_shift_zero_is_identity():
    batch = np.random.default_rng(0).random((3, 1, 5, 5), dtype=np.float32)
    np.testing.assert_array_equal(RandomShift(0)(batch, np.random.default_rng(0)), batch)


# ---------------------------------------------------------------- crop and RandomCrop

def test_crop_cuts_per_image_windows():
    batch = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    out = crop(batch, top=np.array([0, 2]), left=np.array([1, 0]), height=2, width=3)
    np.testing.assert_array_equal(out[0, 0], batch[0, 0, 0:2, 1:4])
    np.testing.assert_array_equal(out[1, 0], batch[1, 0, 2:4, 0:3])


def test_random_crop_with_padding():
    batch = np.random.default_rng(1).random((16, 3, 8, 8), dtype=np.float32) + 1  # all >= 1
    out = RandomCrop(8, padding=2)(batch, np.random.default_rng(3))
    assert out.shape == (16, 3, 8, 8)
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for b in range(16):  # every output is some 8x8 window of its padded input
        windows = [padded[b, :, top:top + 8, left:left + 8] for top in range(5) for left in range(5)]
        assert any(np.array_equal(out[b], w) for w in windows)


def test_random_crop_smaller_output_and_errors():
    assert RandomCrop((5, 3))(dot_batch(), np.random.default_rng(0)).shape == (4, 2, 5, 3)
    with pytest.raises(ValueError, match=r"crop larger than the padded image \(7, 7\)"):
        RandomCrop(9)(dot_batch(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="RandomCrop: expected size"):
        RandomCrop(0)


# ---------------------------------------------------------------- flips

def test_flip_always_and_never():
    batch = np.random.default_rng(0).random((3, 2, 4, 5), dtype=np.float32)
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(batch, np.random.default_rng(0)),
                                  batch[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(batch, np.random.default_rng(0)), batch)


def test_flip_is_per_image_and_exact():
    batch = np.random.default_rng(0).random((64, 1, 3, 3), dtype=np.float32)
    out = RandomHorizontalFlip(0.5)(batch, np.random.default_rng(5))
    flipped = np.array([np.array_equal(o, b[..., ::-1]) for o, b in zip(out, batch)])
    kept = np.array([np.array_equal(o, b) for o, b in zip(out, batch)])
    assert (flipped ^ kept).all() and 10 < flipped.sum() < 54


# ---------------------------------------------------------------- rotations

def test_rotate_zero_is_identity():
    batch = np.random.default_rng(0).random((2, 3, 6, 9), dtype=np.float32)
    np.testing.assert_allclose(rotate(batch, [0, 0]), batch, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 1, 5, 5), (1, 3, 6, 6)], ids=["odd", "even"])
def test_rotate_90_is_rot90(shape):
    batch = np.random.default_rng(0).random(shape, dtype=np.float32)
    expected = np.rot90(batch, k=1, axes=(2, 3))  # counter-clockwise
    np.testing.assert_allclose(rotate(batch, [90] * shape[0]), expected, atol=1e-5)
    np.testing.assert_allclose(rotate(batch, [-90] * shape[0]), np.rot90(batch, k=-1, axes=(2, 3)),
                               atol=1e-5)


def test_rotate_90_known_pattern():
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 1, 2] = 1  # right of the centre
    out = rotate(x, [90])[0, 0].round(5)
    assert dot_position(out) == (0, 1)  # turned counter-clockwise: now above the centre


def test_rotate_180_non_square_and_fill():
    batch = np.random.default_rng(0).random((1, 1, 4, 6), dtype=np.float32)
    np.testing.assert_allclose(rotate(batch, [180]), batch[:, :, ::-1, ::-1], atol=1e-5)
    corners = rotate(np.ones((1, 1, 9, 9), np.float32), [45], fill=0.0)[0, 0]
    assert corners[0, 0] == 0 and corners[4, 4] == pytest.approx(1)


def test_random_rotation_reproducible_and_bounded():
    batch = dot_batch(count=8, size=15, y=7, x=12)
    out1 = RandomRotation(10)(batch, np.random.default_rng(11))
    out2 = RandomRotation(10)(batch, np.random.default_rng(11))
    np.testing.assert_array_equal(out1, out2)
    assert out1.shape == batch.shape and out1.dtype == np.float32
    mass_y = (out1[:, 0] * np.arange(15)[:, None]).sum(axis=(1, 2)) / out1[:, 0].sum(axis=(1, 2))
    assert np.all(np.abs(mass_y - 7) <= 5 * np.sin(np.deg2rad(10)) + 0.01)  # radius 5, at most 10 degrees
    assert not np.allclose(out1[0], out1[1])  # each image gets its own angle


# ---------------------------------------------------------------- Compose and checks

def test_compose_applies_in_order():
    batch = dot_batch(count=1)
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    out = Compose([RandomShift(2), RandomHorizontalFlip(1.0)])(batch, rng_a)
    expected = RandomHorizontalFlip(1.0)(RandomShift(2)(batch, rng_b), rng_b)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("augment", [RandomShift(1), RandomCrop(3), RandomRotation(5),
                                     RandomHorizontalFlip()], ids=lambda a: type(a).__name__)
def test_rejects_non_batches(augment):
    with pytest.raises(ValueError, match=r"expected a float batch of shape \(B, C, H, W\), got shape \(7, "):
        augment(np.zeros((7, 7), np.float32), np.random.default_rng(0))


@pytest.mark.parametrize("make", [lambda: RandomShift(-1), lambda: RandomShift(1.5),
                                  lambda: RandomRotation(200), lambda: RandomHorizontalFlip(2)],
                         ids=["shift-negative", "shift-float", "rotation", "flip-p"])
def test_constructor_validation(make):
    with pytest.raises(ValueError, match="expected"):
        make()
