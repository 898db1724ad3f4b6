"""DataLoader: batch sizes, epoch order from the rng, normalisation, augmentation order."""
import numpy as np
import pytest

from convscope.data import DataLoader, Dataset, RandomShift, channel_stats


def make_dataset(count=10, channels=1, size=4):
    """Image i is filled with the value i (so a batch's pixels say which images it holds)."""
    images = np.broadcast_to(np.arange(count, dtype=np.uint8)[:, None, None, None],
                             (count, channels, size, size)).copy()
    return Dataset(images, np.arange(count) % 3, name="toy")


def ids(x):
    """Which images a raw (normalize=False) batch holds."""
    return np.rint(x[:, 0, 0, 0] * 255).astype(int).tolist()


@pytest.mark.parametrize("count, batch_size, drop_last, sizes", [
    (10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (8, 4, True, [4, 4]),
    (3, 64, False, [3]), (3, 64, True, []),
], ids=["ragged", "drop-last", "exact", "one-small", "drop-all"])
def test_batch_sizes_and_len(count, batch_size, drop_last, sizes):
    loader = DataLoader(make_dataset(count), batch_size=batch_size, drop_last=drop_last, normalize=False)
    assert [len(y) for _, y in loader] == sizes and len(loader) == len(sizes)


def test_batches_in_order_with_dtypes():
    batches = list(DataLoader(make_dataset(10), batch_size=4, normalize=False))
    x, y = batches[0]
    assert x.dtype == np.float32 and x.shape == (4, 1, 4, 4) and x.flags.c_contiguous
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 0]
    assert [ids(x) for x, _ in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_allclose(x[1], 1 / 255)  # uint8 scaled to [0, 1]


def test_shuffle_visits_every_image_once_and_reproduces():
    data = make_dataset(10)
    rng = np.random.default_rng(42)
    state = rng.bit_generator.state  # what the training loop saves at an epoch boundary
    epoch1 = [i for x, _ in DataLoader(data, 3, shuffle=True, rng=rng, normalize=False) for i in ids(x)]
    epoch2 = [i for x, _ in DataLoader(data, 3, shuffle=True, rng=rng, normalize=False) for i in ids(x)]
    assert sorted(epoch1) == list(range(10)) and epoch1 != list(range(10)) and epoch1 != epoch2
    rng.bit_generator.state = state
    replay = [i for x, _ in DataLoader(data, 3, shuffle=True, rng=rng, normalize=False) for i in ids(x)]
    assert replay == epoch1


def test_same_loader_new_order_each_epoch():
    loader = DataLoader(make_dataset(20), 20, shuffle=True, rng=np.random.default_rng(0), normalize=False)
    first, second = (ids(next(iter(loader))[0]) for _ in range(2))
    assert sorted(first) == sorted(second) and first != second


def test_labels_follow_their_images():
    loader = DataLoader(make_dataset(12), 5, shuffle=True, rng=np.random.default_rng(1), normalize=False)
    for x, y in loader:
        assert [i % 3 for i in ids(x)] == y.tolist()


def test_normalisation_uses_dataset_statistics():
    data = make_dataset(10, channels=2)
    x = np.concatenate([x for x, _ in DataLoader(data, 4)])
    mean, std = channel_stats(data.images)
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1, atol=1e-5)
    np.testing.assert_allclose(x[3, 0, 0, 0], (3 / 255 - mean[0]) / std[0], rtol=1e-6)


def test_normalisation_with_given_statistics():
    data = Dataset(np.full((2, 1, 2, 2), 255, np.uint8), np.array([0, 1]), mean=(0.5,), std=(0.25,))
    x, _ = next(iter(DataLoader(data, 2)))
    np.testing.assert_allclose(x, 2.0)  # (1 - 0.5) / 0.25


def test_plain_arrays():
    images = np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1).repeat(2, axis=2)
    x, y = next(iter(DataLoader((images[:, 0], np.arange(6)), batch_size=6, normalize=False)))
    assert x.shape == (6, 1, 2, 1) and y.tolist() == list(range(6))


def test_float_arrays_are_used_as_they_are():
    images = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 2, 3, 3)).astype(np.float32)
    raw, _ = next(iter(DataLoader((images, np.zeros(50, int)), 50, normalize=False)))
    np.testing.assert_array_equal(raw, images)
    normed, _ = next(iter(DataLoader((images, np.zeros(50, int)), 50)))
    np.testing.assert_allclose(normed.mean(axis=(0, 2, 3)), 0, atol=1e-5)


def test_augment_runs_before_normalising_with_the_given_rng():
    data = make_dataset(6, size=5)
    rng = np.random.default_rng(9)
    x, _ = next(iter(DataLoader(data, 6, rng=rng, augment=RandomShift(2))))
    expected = RandomShift(2)(data.images.astype(np.float32) / 255, np.random.default_rng(9))
    mean, std = data.mean[0], data.std[0]
    np.testing.assert_allclose(x, (expected - mean) / std, rtol=1e-5, atol=1e-6)
    assert (x.min(axis=(1, 2, 3)) <= (0 - mean) / std + 1e-6).any()  # fill 0 became background


def test_errors():
    data = make_dataset(4)
    with pytest.raises(ValueError, match="need rng=numpy.random.Generator"):
        DataLoader(data, shuffle=True)
    with pytest.raises(ValueError, match="need rng"):
        DataLoader(data, augment=RandomShift(1))
    with pytest.raises(TypeError, match="expected rng a numpy.random.Generator, got int"):
        DataLoader(data, rng=0)
    with pytest.raises(ValueError, match="expected batch_size a positive int, got 0"):
        DataLoader(data, batch_size=0)
    with pytest.raises(TypeError, match="expected a Dataset or a tuple"):
        DataLoader(data.images)
    with pytest.raises(ValueError, match="a channel has std 0"):
        DataLoader((np.zeros((3, 1, 2, 2), np.uint8), np.zeros(3, int)))


def test_dataset_container():
    data = make_dataset(6)
    image, label = data[4]
    assert len(data) == 6 and image.shape == (1, 4, 4) and label == 1 and data.num_classes == 3
    assert data.class_names == ["0", "1", "2"]
    assert "Dataset(name='toy', images=(6, 1, 4, 4) uint8, classes=3" in repr(data)
    with pytest.raises(ValueError, match="label 2 has no class name; got 2 class names"):
        Dataset(data.images, data.labels, class_names=["a", "b"])
    with pytest.raises(ValueError, match="expected uint8 images"):
        Dataset(data.images.astype(np.float32), data.labels)
    with pytest.raises(ValueError, match=r"expected mean and std with 1 values"):
        Dataset(data.images, data.labels, mean=(0.1, 0.2), std=(1.0, 1.0))


def test_channel_stats_hand_computed():
    images = np.array([[[[0, 255]], [[51, 51]]]], np.uint8)  # one image, 2 channels, 1x2 pixels
    mean, std = channel_stats(images)
    np.testing.assert_allclose(mean, [0.5, 0.2])
    np.testing.assert_allclose(std, [0.5, 0.0], atol=1e-12)
