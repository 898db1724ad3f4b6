"""Segmentation metrics from label maps and the position error, by hand and against pixel loops."""

import numpy as np
import pytest

from convscope.metrics import confusion_matrix, iou_per_class, mean_iou, mean_position_error, pixel_accuracy

RNG = np.random.default_rng

# true classes per pixel, and a prediction; 4 classes, class 3 in neither
LABELS = np.array([[0, 1, 1], [1, 2, 0]])
PREDICTED = np.array([[0, 0, 1], [1, 2, 2]])


def test_iou_per_class_by_hand():
    # class 0: 1 pixel right, 2 predicted, 2 true: 1 / (2 + 2 - 1); class 1: 2 / (2 + 3 - 2);
    # class 2: 1 / (2 + 1 - 1); class 3: absent from both, nan
    np.testing.assert_allclose(iou_per_class(PREDICTED, LABELS, 4), [1 / 3, 2 / 3, 1 / 2, np.nan])
    assert mean_iou(PREDICTED, LABELS, 4) == pytest.approx(1 / 2)  # (1/3 + 2/3 + 1/2) / 3: class 3 left out
    assert pixel_accuracy(PREDICTED, LABELS) == pytest.approx(4 / 6)


def test_a_class_only_predicted_counts_as_zero():
    predicted = np.array([[0, 3], [1, 1]])
    labels = np.array([[0, 0], [1, 1]])
    np.testing.assert_allclose(iou_per_class(predicted, labels, 4), [1 / 2, 1, np.nan, 0])
    assert mean_iou(predicted, labels, 4) == pytest.approx(1.5 / 3)


def test_ignored_pixels_are_left_out():
    labels = np.where(np.eye(2, 3, dtype=bool), 255, LABELS)  # pixels (0, 0) and (1, 1) ignored
    assert pixel_accuracy(PREDICTED, labels, ignore_index=255) == pytest.approx(2 / 4)
    np.testing.assert_allclose(iou_per_class(PREDICTED, labels, 3, ignore_index=255), [0, 2 / 3, 0])
    with pytest.raises(ValueError, match="labels must lie in \\[0, 2\\], got values 0..255"):
        iou_per_class(PREDICTED, labels, 3)


def test_batch_of_label_maps_matches_pixel_loop():
    predicted, labels = RNG(0).integers(0, 5, (3, 6, 7)), RNG(1).integers(0, 4, (3, 6, 7))
    expected = []
    for k in range(5):
        inter = sum(p == k and t == k for p, t in zip(predicted.flat, labels.flat))
        union = sum(p == k or t == k for p, t in zip(predicted.flat, labels.flat))
        expected.append(inter / union)
    np.testing.assert_allclose(iou_per_class(predicted, labels, 6), expected + [np.nan])
    assert mean_iou(predicted, labels, 6) == pytest.approx(np.mean(expected))
    assert pixel_accuracy(predicted, labels) == pytest.approx(np.mean(predicted == labels))


def test_label_map_edge_cases_and_errors():
    assert pixel_accuracy(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0
    assert np.isnan(mean_iou(np.zeros((0, 3), dtype=int), np.zeros((0, 3), dtype=int), 2))
    with pytest.raises(ValueError, match="label maps of one shape, got \\(2, 3\\) and \\(3, 2\\)"):
        mean_iou(PREDICTED, LABELS.T, 4)
    with pytest.raises(ValueError, match="predicted must lie in \\[0, 1\\], got values 0..2"):
        confusion_matrix([0, 1], [0, 2], 2)


def test_mean_position_error_by_hand():
    # distances 5 (a 3-4-5 triangle), 0 and 1
    assert mean_position_error([[0, 0], [2, 2], [1, 0]], [[3, 4], [2, 2], [1, 1]]) == pytest.approx(2.0)
    assert np.isnan(mean_position_error(np.zeros((0, 2)), np.zeros((0, 2))))
    with pytest.raises(ValueError, match="one shape \\(N, D\\), got \\(2, 2\\) and \\(2, 3\\)"):
        mean_position_error(np.zeros((2, 2)), np.zeros((2, 3)))
