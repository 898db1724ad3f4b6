"""Digit scenes: reproducible layouts, ground truth that matches the pixels, the overlap rule,
noise, the named datasets (train scenes from train digits only), batching and the cache.

Nothing is downloaded: the items are small arrays made here, and the `digits` cache is a fake
one written into tmp_path (CONVSCOPE_DATA points there).
"""
import dataclasses
import itertools

import numpy as np
import pytest

from convscope.data import DataLoader, load_dataset, scene_sets
from convscope.data.scene_sets import SCENE_DATASETS, box_counts, boxes_per_image
from convscope.data.scenes import SceneSettings, iou, make_scenes
from convscope.data.show_scenes import main as show_main


def blob_items(n=40, size=(28, 28), brightness=255, seed=0):
    """Items like digits (a "/" or "\\"): a bright diagonal stroke, 3 pixels wide with a dim
    rim, on a 0 background, so two boxes can overlap while the ink does not; label = index % 10."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 1, *size), np.uint8)
    for k in range(n):
        h, w = rng.integers(size[0] // 2, size[0] - 2), rng.integers(size[1] // 3, size[1] - 2)
        top, left = rng.integers(1, size[0] - h), rng.integers(1, size[1] - w)
        for r in range(h):
            c = left + round(r * (w - 3) / (h - 1)) if k % 2 else left + w - 3 - round(r * (w - 3) / (h - 1))
            images[k, 0, top + r, c - 1:c + 4] = np.maximum(images[k, 0, top + r, c - 1:c + 4], brightness // 4)
            images[k, 0, top + r, c:c + 3] = brightness
    return images, np.arange(n) % 10


def solid_items(brightness=(255,) * 10):
    """Items that are all ink: each a full 10x10 square of one brightness; label = index."""
    images = np.array(brightness, np.uint8)[:, None, None, None] * np.ones((1, 1, 10, 10), np.uint8)
    return images, np.arange(len(brightness))


def scenes_of(n=30, seed=0, **settings):
    return make_scenes(*blob_items(), n, np.random.default_rng(seed), SceneSettings(**settings))


def items_of(scenes):
    """(scene, slot) of every placed item."""
    return [(i, k) for i in range(len(scenes)) for k in range(scenes.counts[i])]


# ----- the generator --------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_scenes():
    a, b, c = scenes_of(seed=3), scenes_of(seed=3), scenes_of(seed=4)
    for name, array in a.arrays().items():
        np.testing.assert_array_equal(array, getattr(b, name), err_msg=name)
    assert not np.array_equal(a.images, c.images)


def test_counts_shapes_and_padding():
    scenes = scenes_of(count=(2, 3), size=(48, 44))
    assert scenes.images.shape == (30, 1, 48, 44) and scenes.masks.shape == (30, 48, 44)
    assert scenes.boxes.shape == (30, 3, 4) and scenes.centres.shape == (30, 3, 2)
    assert set(scenes.counts) <= {2, 3} and len(set(scenes.counts)) == 2
    padding = np.arange(3)[None] >= scenes.counts[:, None]
    assert np.all(scenes.classes[padding] == -1) and np.all(scenes.sources[padding] == -1)
    assert np.all(np.isnan(scenes.centres[padding])) and np.all(scenes.boxes[padding] == 0)


def test_boxes_are_exactly_the_ink_of_each_item():
    scenes = scenes_of(max_iou=0.0)  # boxes apart: inside a box, the mask shows only that item
    for i, k in items_of(scenes):
        x0, y0, x1, y1 = scenes.boxes[i, k]
        ys, xs = np.nonzero(scenes.masks[i] == scenes.classes[i, k] + 1)
        inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
        assert (xs[inside].min(), ys[inside].min(), xs[inside].max() + 1, ys[inside].max() + 1) == (x0, y0, x1, y1)
    ink = scenes.images[:, 0] >= SceneSettings().ink
    np.testing.assert_array_equal(ink, scenes.masks > 0)  # no noise: the mask is the ink


def test_mask_classes_match_box_classes_when_boxes_overlap():
    scenes = scenes_of(count=(3, 4), size=48)
    pairs = [itertools.combinations(scenes.boxes[i, :scenes.counts[i]], 2) for i in range(len(scenes))]
    assert max(iou(a, b) for a, b in itertools.chain(*pairs)) > 0.2  # boxes do overlap here
    for i in range(len(scenes)):
        classes = set(scenes.classes[i, :scenes.counts[i]] + 1)
        assert set(np.unique(scenes.masks[i])) - {0} == classes
        covered = np.zeros(scenes.masks[i].shape, bool)
        for x0, y0, x1, y1 in scenes.boxes[i, :scenes.counts[i]]:
            covered[y0:y1, x0:x1] = True
        assert not np.any(scenes.masks[i][~covered])  # every ink pixel lies in some box


def test_centres_are_the_inks_centre_of_mass():
    scenes = scenes_of(max_iou=0.0)
    for i, k in items_of(scenes):
        x0, y0, x1, y1 = scenes.boxes[i, k]
        ink = scenes.masks[i, y0:y1, x0:x1] == scenes.classes[i, k] + 1
        weights = np.where(ink, scenes.images[i, 0, y0:y1, x0:x1], 0).astype(float)
        rows, cols = np.indices(weights.shape)
        expected = ((weights * (cols + x0 + 0.5)).sum(), (weights * (rows + y0 + 0.5)).sum()) / weights.sum()
        np.testing.assert_allclose(scenes.centres[i, k], expected, rtol=1e-5)


def test_a_hand_made_scene():
    images, labels = solid_items((200,))
    scenes = make_scenes(images, labels, 1, np.random.default_rng(0),
                         SceneSettings(size=(10, 12), count=1, scale=1))
    x0, y0, x1, y1 = scenes.boxes[0, 0]
    assert (y0, y1, x1 - x0) == (0, 10, 10) and scenes.sources[0, 0] == 0
    np.testing.assert_allclose(scenes.centres[0, 0], (x0 + 5, 5))
    assert np.all(scenes.masks[0, :, x0:x1] == 1) and scenes.masks.sum() == 100


def test_boxes_keep_the_largest_iou_allowed():
    for max_iou in (0.0, 0.2):
        scenes = scenes_of(count=(3, 4), size=56, max_iou=max_iou)
        for i in range(len(scenes)):
            for a, b in itertools.combinations(scenes.boxes[i, :scenes.counts[i]], 2):
                assert iou(a, b) <= max_iou


def test_ink_never_overlaps_by_default_and_the_brighter_pixel_wins_when_it_may():
    images, labels = solid_items((100, 250))  # all ink: ink overlap = box overlap
    apart = make_scenes(images, labels, 20, np.random.default_rng(0), SceneSettings(size=24, count=2, scale=1))
    for i in range(20):
        assert iou(*apart.boxes[i]) == 0
    crowded = make_scenes(images, labels, 20, np.random.default_rng(0),
                          SceneSettings(size=14, count=2, scale=1, ink_overlap=True))
    overlaps = 0
    for i in range(20):
        both = np.zeros((14, 14), int)
        for x0, y0, x1, y1 in crowded.boxes[i]:
            both[y0:y1, x0:x1] += 1
        overlaps += np.count_nonzero(both == 2)
        if set(crowded.classes[i]) == {0, 1}:  # a dim and a bright square: the bright one wins
            assert np.all(crowded.masks[i][both == 2] == 2) and np.all(crowded.images[i, 0][both == 2] == 250)
    assert overlaps > 0


def test_noise_leaves_the_ground_truth_alone():
    quiet, noisy = scenes_of(n=20), scenes_of(n=20, noise=20.0)
    assert np.mean(noisy.images != quiet.images) > 0.4  # every pixel gets noise; about half of 0 stays 0
    np.testing.assert_array_equal(quiet.masks, noisy.masks)
    np.testing.assert_array_equal(quiet.boxes, noisy.boxes)
    flat = quiet.images[:, 0] == 0
    # N(0, 20) clipped at 0 has mean 20 / sqrt(2 pi) = 7.98
    assert noisy.images[:, 0][flat].mean() == pytest.approx(20 / np.sqrt(2 * np.pi), rel=0.05)


def test_any_small_labelled_items_work():
    images, labels = blob_items(12, size=(16, 12))
    scenes = make_scenes(images, labels, 5, np.random.default_rng(0), SceneSettings(size=32, scale=(1, 2)))
    assert scenes.images.shape == (5, 1, 32, 32) and scenes.masks.max() <= 10
    assert np.all(labels[scenes.sources[scenes.classes >= 0]] == scenes.classes[scenes.classes >= 0])


@pytest.mark.parametrize("settings, items, match", [
    (dict(size=40, scale=(1, 2)), None, r"a 28x28 item scaled by up to 2.0 is 56x56, larger than the canvas 40x40"),
    (dict(count=0), None, r"expected count \(fewest, most\) with 1 <= fewest <= most, got \(0, 0\)"),
    (dict(count=(3, 2)), None, r"got \(3, 2\)"),
    (dict(scale=(1.5, 0.5)), None, r"expected scale \(low, high\) with 0 < low <= high, got \(1.5, 0.5\)"),
    (dict(max_iou=2), None, "expected max_iou in"),
    (dict(noise=-1), None, "expected noise >= 0"),
    (dict(size=(10, 10), count=4, scale=1), solid_items(), "could not place 4 items on a \\(10, 10\\) canvas"),
    (dict(), (np.zeros((2, 28, 28), np.uint8), np.zeros(2, int)), r"expected items as uint8 images \(N, 1, h, w\)"),
    (dict(), (np.zeros((2, 1, 28, 28), np.uint8), np.zeros(3, int)), r"one integer label per item, shape \(2,\)"),
    (dict(), (np.zeros((2, 1, 28, 28), np.uint8), np.zeros(2, int)), "item [01] has no pixel of value >= ink=32"),
], ids=["canvas-too-small", "count-0", "count-inverted", "scale-inverted", "iou", "noise", "crowded",
        "no-channel", "labels", "blank-item"])
def test_bad_settings_and_items_say_what_was_expected(settings, items, match):
    with pytest.raises(ValueError, match=match):
        make_scenes(*(items or blob_items()), 3, np.random.default_rng(0), SceneSettings(**settings))


def test_rng_must_be_a_generator():
    with pytest.raises(TypeError, match="expected rng a numpy.random.Generator, got int"):
        make_scenes(*blob_items(), 3, 0)


# ----- the named datasets ---------------------------------------------------------------------------
@pytest.fixture
def digits_cache(tmp_path, monkeypatch):
    """A fake `digits` cache whose training digits reach 255 and whose validation digits stop
    at 200, and small sizes for the named scene datasets."""
    images, labels = blob_items(200, seed=1)
    is_val = np.arange(200) % 5 == 0
    images[is_val] = (images[is_val] * (200 / 255)).astype(np.uint8)
    folder = tmp_path / "cache" / "digits"
    folder.mkdir(parents=True)
    np.savez(folder / "digits.npz", images=images, labels=labels.astype(np.int64), is_val=is_val)
    monkeypatch.setenv("CONVSCOPE_DATA", str(tmp_path / "cache"))
    for name, recipe in SCENE_DATASETS.items():
        monkeypatch.setitem(SCENE_DATASETS, name, dataclasses.replace(recipe, sizes=(("train", 24), ("val", 12))))
    return tmp_path / "cache"


def test_train_scenes_use_train_digits_and_val_scenes_val_digits(digits_cache):
    train, val = load_dataset("digit-scenes", "train"), load_dataset("digit-scenes", "val")
    assert val.images.max() <= 200 < train.images.max()  # bilinear scaling never brightens
    assert (len(train), len(val)) == (24, 12) and val.mean == train.mean
    with np.load(digits_cache / "digit-scenes" / "val.npz", allow_pickle=False) as saved:
        assert saved["sources"].max() < 40  # indices into the 40 validation digits
    np.testing.assert_array_equal(load_dataset("digit-scenes", "test").images, val.images)


def test_the_loader_batches_every_kind_of_target(digits_cache):
    scenes = load_dataset("digit-scenes", "val")
    x, y = next(iter(DataLoader(scenes, batch_size=5)))
    assert x.shape == (5, 1, 64, 64) and x.dtype == np.float32 and y.shape == (5, 4, 5) and y.dtype == np.int64
    counts = box_counts(y)
    assert np.all(counts >= 1) and [len(b) for b, _ in boxes_per_image(y)] == counts.tolist()
    assert all(np.all(c >= 0) and b.shape == (len(c), 4) for b, c in boxes_per_image(y))
    masks = load_dataset("digit-masks", "val")
    assert masks.num_classes == 11 and masks.class_names[:2] == ["background", "0"]
    np.testing.assert_array_equal(masks.images, scenes.images)  # the same scenes, other targets
    assert next(iter(DataLoader(masks, batch_size=5)))[1].shape == (5, 64, 64)
    centres = load_dataset("digit-centres", "val")
    x, y = next(iter(DataLoader(centres, batch_size=5)))
    assert y.shape == (5, 2) and y.dtype == np.float32 and np.all((y > 0) & (y < 64))


def test_the_cache_is_reused_and_made_again_when_damaged_or_changed(digits_cache, monkeypatch):
    first = load_dataset("digit-scenes", "val")
    path = digits_cache / "digit-scenes" / "val.npz"
    made = []
    real_make = scene_sets.make_scenes
    monkeypatch.setattr(scene_sets, "make_scenes", lambda *a, **k: made.append(1) or real_make(*a, **k))
    np.testing.assert_array_equal(load_dataset("digit-scenes", "val").targets, first.targets)
    assert made == []
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    np.testing.assert_array_equal(load_dataset("digit-scenes", "val").targets, first.targets)
    assert made == [1]
    monkeypatch.setattr(scene_sets, "VERSION", 99)
    load_dataset("digit-scenes", "val")
    assert len(made) == 3  # train and val
    recipe = SCENE_DATASETS["digit-scenes"]
    monkeypatch.setitem(SCENE_DATASETS, "digit-scenes",
                        dataclasses.replace(recipe, settings=SceneSettings(noise=10.0)))
    noisy = load_dataset("digit-scenes", "val")
    assert len(made) == 5 and not np.array_equal(noisy.images, first.images)
    with np.load(path, allow_pickle=False) as saved:
        assert '"noise": 10.0' in str(saved["recipe"]) and '"version": 99' in str(saved["recipe"])


def test_show_scenes_draws_a_picture(digits_cache, tmp_path, capsys):
    assert show_main([str(tmp_path / "scenes.png"), "--count", "3"]) == 0
    assert (tmp_path / "scenes.png").read_bytes()[:4] == b"\x89PNG"
    assert "3 of the 12 val scenes of digit-scenes" in capsys.readouterr().out
