"""Detection: IoU, NMS and average precision by hand, against simply written loops, and against
torchvision where it is installed."""

import numpy as np
import pytest

from convscope.detection import (
    COCO_IOU_THRESHOLDS,
    average_precision,
    average_precision_per_class,
    batched_nms,
    box_area,
    box_iou,
    match_detections,
    mean_average_precision,
    nms,
    precision_recall,
)

RNG = np.random.default_rng


def random_boxes(n, seed, size=20.0):
    """Boxes (n, 4) with corners in [0, size) and sides from 1 to size / 2: many overlap."""
    rng = RNG(seed)
    corner = rng.uniform(0, size, (n, 2))
    return np.concatenate([corner, corner + rng.uniform(1, size / 2, (n, 2))], axis=1)


# ----- a plain reference: one pair of boxes at a time ---------------------------------------------------
def iou_of_pair(a, b):
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def naive_nms(boxes, scores, threshold):
    """Repeat: take the best remaining box (lowest index among equal scores), drop all it covers."""
    remaining, keep = list(range(len(boxes))), []
    while remaining:
        best = max(remaining, key=lambda i: (scores[i], -i))
        keep.append(best)
        remaining = [i for i in remaining if i != best and iou_of_pair(boxes[best], boxes[i]) <= threshold]
    return keep


# ----- IoU ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b, iou", [
    ((0, 0, 2, 2), (1, 0, 3, 2), 1 / 3),  # half of each overlaps: 2 / (4 + 4 - 2)
    ((0, 0, 2, 2), (0, 0, 2, 1), 0.5),  # the lower half of a box: 2 / 4
    ((0, 0, 3, 2), (1, 0, 4, 2), 0.5),  # two 3x2 boxes sharing a 2x2 square: 4 / (6 + 6 - 4)
    ((0, 0, 1, 1), (2, 2, 3, 3), 0.0),  # disjoint
    ((0, 0, 1, 1), (1, 0, 2, 1), 0.0),  # touching edges: x1 is exclusive, no shared area
    ((0, 0, 4, 4), (1, 1, 3, 3), 0.25),  # nested: 4 / 16
    ((1, 2, 5, 7), (1, 2, 5, 7), 1.0),  # identical
], ids=["third", "half", "half_shifted", "disjoint", "touching", "nested", "identical"])
def test_box_iou_by_hand(a, b, iou):
    assert box_iou([a], [b])[0, 0] == pytest.approx(iou, abs=1e-15)
    assert box_iou([b], [a])[0, 0] == pytest.approx(iou, abs=1e-15)


def test_box_iou_matches_pairwise_loop_and_shapes():
    a, b = random_boxes(7, seed=1), random_boxes(5, seed=2)
    expected = [[iou_of_pair(x, y) for y in b] for x in a]
    np.testing.assert_allclose(box_iou(a, b), expected, rtol=1e-12)
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 5) and box_iou(a, []).shape == (7, 0)
    np.testing.assert_array_equal(box_area([[0, 0, 10, 5], [1, 1, 1, 3]]), [50, 0])
    assert box_iou([[1, 1, 1, 1]], [[1, 1, 1, 1]])[0, 0] == 0  # zero areas: 0, not nan


@pytest.mark.parametrize("boxes, match", [
    (np.zeros((2, 3)), "expected boxes \\(N, 4\\) as \\(x0, y0, x1, y1\\), got shape \\(2, 3\\)"),
    ([[0, 0, 2, 2], [3, 0, 1, 2]], "expected x0 <= x1 and y0 <= y1, got box \\[3.0, 0.0, 1.0, 2.0\\]"),
], ids=["shape", "corners_swapped"])
def test_box_iou_rejects_bad_boxes(boxes, match):
    with pytest.raises(ValueError, match="boxes1: " + match):
        box_iou(boxes, [[0, 0, 1, 1]])


# ----- NMS -----------------------------------------------------------------------------------------------
def test_nms_by_hand():
    boxes = [[0, 0, 2, 2], [0, 0, 2, 1], [0, 0, 2, 2], [5, 5, 6, 6]]
    # box 2 repeats box 0 with the same score: the lower index wins; box 1 has IoU exactly 0.5 with it
    np.testing.assert_array_equal(nms(boxes, [0.9, 0.8, 0.9, 0.1], 0.5), [0, 1, 3])
    np.testing.assert_array_equal(nms(boxes, [0.9, 0.8, 0.9, 0.1], 0.4), [0, 3])
    np.testing.assert_array_equal(nms(boxes, [0.1, 0.8, 0.9, 0.2], 0.4), [2, 3])
    assert nms(np.zeros((0, 4)), [], 0.5).dtype == np.int64
    with pytest.raises(ValueError, match="expected scores \\(4,\\), one per box, got shape \\(3,\\)"):
        nms(boxes, [0.9, 0.8, 0.7], 0.5)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7])
@pytest.mark.parametrize("seed", range(4))
def test_nms_matches_naive_loop(seed, threshold):
    boxes = random_boxes(40, seed)
    scores = np.round(RNG(seed + 10).random(40), 1)  # one decimal: many equal scores
    assert nms(boxes, scores, threshold).tolist() == naive_nms(boxes, scores, threshold)


@pytest.mark.parametrize("seed", range(3))
def test_batched_nms_matches_nms_per_class(seed):
    boxes, scores = random_boxes(40, seed), np.round(RNG(seed + 10).random(40), 1)
    classes = RNG(seed + 20).integers(0, 3, 40)
    kept = [int(i) for c in range(3) for i in np.flatnonzero(classes == c)[naive_nms(
        boxes[classes == c], scores[classes == c], 0.5)]]
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == sorted(kept, key=lambda i: (-scores[i], i))


def test_batched_nms_never_suppresses_across_classes():
    boxes = [[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 2, 2]]
    np.testing.assert_array_equal(batched_nms(boxes, [0.5, 0.9, 0.7], [0, 1, 0], 0.5), [1, 2])


@pytest.mark.parametrize("seed", range(3))
def test_nms_matches_torchvision(seed):
    ops = pytest.importorskip("torchvision.ops")
    torch = pytest.importorskip("torch")
    boxes, scores = random_boxes(60, seed), RNG(seed + 10).random(60)
    classes = RNG(seed + 20).integers(0, 4, 60)
    theirs = ops.nms(torch.tensor(boxes), torch.tensor(scores), 0.5).numpy()
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), theirs)
    theirs = ops.batched_nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(classes), 0.5).numpy()
    np.testing.assert_array_equal(batched_nms(boxes, scores, classes, 0.5), theirs)


# ----- matching ------------------------------------------------------------------------------------------
def test_match_detections_by_hand():
    truth = [[0, 0, 2, 2], [10, 0, 12, 2]]
    half = [[0, 0, 2, 1]]  # IoU exactly 0.5 with the first true box: a hit at 0.5 (>=), not above
    assert match_detections(half, [0.9], truth, 0.5).tolist() == [True]
    assert match_detections(half, [0.9], truth, 0.55).tolist() == [False]
    # the lower-scored copy of a found object is a false positive, wherever it comes in the list
    assert match_detections([[0, 0, 2, 2], [0, 0, 2, 2]], [0.3, 0.9], truth).tolist() == [False, True]
    # both detections overlap the first true box most (IoU 1 and 0.91); the second, ranked lower,
    # takes the best box still free (IoU 0.73 with the wider one)
    found = [[0, 0, 2, 2], [0, 0, 2.2, 2]]
    assert match_detections(found, [0.9, 0.8], [[0, 0, 2, 2], [0, 0, 3, 2]], 0.6).tolist() == [True, True]
    assert match_detections(found, [0.9, 0.8], [[0, 0, 2, 2], [0, 0, 3, 2]], 0.75).tolist() == [True, False]
    assert match_detections(np.zeros((0, 4)), [], truth).shape == (0,)
    assert match_detections(half, [0.9], np.zeros((0, 4))).tolist() == [False]


# ----- average precision of a known precision-recall curve --------------------------------------------------
# five detections ranked hit, miss, hit, miss, hit; four true objects (one never found):
#   rank       1     2     3     4     5
#   precision  1    1/2   2/3   1/2   3/5
#   recall    1/4   1/4   1/2   1/2   3/4
#   envelope   1    2/3   2/3   3/5   3/5    (best precision at this recall or beyond)
HITS, SCORES = [True, False, True, False, True], [0.9, 0.8, 0.7, 0.6, 0.5]


def test_precision_recall_curve_by_hand():
    # ranked 0.9 (hit), 0.8 (miss), 0.7 (hit), 0.6 (hit), 0.5 (miss), of 4 true objects
    recall, precision = precision_recall([0.6, 0.8, 0.9, 0.5, 0.7], [True, False, True, False, True], 4)
    np.testing.assert_allclose(recall, [1 / 4, 1 / 4, 2 / 4, 3 / 4, 3 / 4])
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3, 3 / 4, 3 / 5])
    with pytest.raises(ValueError, match="at least one true object"):
        precision_recall([0.5], [True], 0)


def test_average_precision_all_points_by_hand():
    # area under the envelope's steps: 1/4 * 1 + 1/4 * 2/3 + 1/4 * 3/5
    assert average_precision(SCORES, HITS, 4, "voc") == pytest.approx(17 / 30, abs=1e-15)


def test_average_precision_101_points_by_hand():
    # recalls 0..0.25: 26 points at 1; 0.26..0.5: 25 at 2/3; 0.51..0.75: 25 at 3/5; 0.76..1: 25 at 0
    assert average_precision(SCORES, HITS, 4, "coco") == pytest.approx((26 + 25 * 2 / 3 + 25 * 3 / 5) / 101, abs=1e-15)


def test_average_precision_ranks_by_score_and_edge_cases():
    assert average_precision(SCORES[::-1], HITS[::-1], 4, "voc") == pytest.approx(17 / 30)
    assert average_precision([], [], 3) == 0.0  # objects but no detections
    assert np.isnan(average_precision([0.5], [False], 0))  # no object of the class
    with pytest.raises(ValueError, match="interpolation must be 'coco' or 'voc', got '11point'"):
        average_precision(SCORES, HITS, 4, "11point")


# ----- mean average precision by hand -----------------------------------------------------------------------
def image(boxes, labels, scores=None):
    entry = {"boxes": np.array(boxes, dtype=float).reshape(-1, 4), "labels": np.array(labels, dtype=int)}
    if scores is not None:
        entry["scores"] = np.array(scores, dtype=float)
    return entry


TRUTH = [image([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1]), image([[5, 5, 15, 25]], [0])]


@pytest.mark.parametrize("interpolation", ["coco", "voc"])
def test_perfect_detections_give_one(interpolation):
    found = [image([[20, 20, 30, 30], [0, 0, 10, 10]], [1, 0], [0.3, 0.6]), image([[5, 5, 15, 25]], [0], [0.9])]
    assert mean_average_precision(found, TRUTH, COCO_IOU_THRESHOLDS, interpolation) == 1.0
    assert average_precision_per_class(found, TRUTH, 0.5, interpolation) == {0: 1.0, 1: 1.0}


def test_duplicate_detection_is_a_false_positive():
    # class 0: hit (0.9), duplicate of it (0.8), hit (0.7): precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    found = [image([[0, 0, 10, 10], [0, 0, 10, 9.5]], [0, 0], [0.9, 0.8]), image([[5, 5, 15, 25]], [0], [0.7])]
    aps = average_precision_per_class(found, TRUTH, 0.5, "voc")
    assert aps[0] == pytest.approx(1 / 2 + 1 / 2 * 2 / 3) and aps[1] == 0.0  # class 1 never found
    coco = average_precision_per_class(found, TRUTH, 0.5, "coco")
    assert coco[0] == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert mean_average_precision(found, TRUTH, interpolation="voc") == pytest.approx((5 / 6 + 0) / 2)


def test_wrong_class_is_a_false_positive():
    # the class-0 object of image 0 also called class 1 (0.95): a false positive for class 1, ranked first
    found = [image([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]], [1, 1, 0], [0.95, 0.8, 0.7]),
             image([[5, 5, 15, 25]], [0], [0.6])]
    for interpolation in ("coco", "voc"):  # class 1: precision 0 then 1/2 at recall 0, 1: AP 1/2 both ways
        aps = average_precision_per_class(found, TRUTH, 0.5, interpolation)
        assert aps == {0: 1.0, 1: pytest.approx(0.5)}
        assert mean_average_precision(found, TRUTH, (0.5,), interpolation) == pytest.approx(0.75)


def test_classes_without_ground_truth_are_left_out_of_the_mean():
    found = [image([[0, 0, 10, 10], [40, 40, 50, 50]], [0, 7], [0.9, 0.9]), image([[5, 5, 15, 25]], [0], [0.9])]
    assert average_precision_per_class(found, TRUTH) == {0: 1.0, 1: 0.0}  # no class 7
    assert mean_average_precision(found, TRUTH) == 0.5
    assert np.isnan(mean_average_precision([image([], [], [])], [image([], [])]))


def test_map_over_coco_thresholds_by_hand():
    # IoU 0.78: a hit at 0.5, 0.55, ..., 0.75 (6 of the 10 thresholds), a miss from 0.8 on
    truth, found = [image([[0, 0, 10, 10]], [3])], [image([[0, 0, 10, 7.8]], [3], [0.5])]
    assert mean_average_precision(found, truth, COCO_IOU_THRESHOLDS) == pytest.approx(0.6)
    assert mean_average_precision(found, truth, (0.75,)) == 1.0 and mean_average_precision(found, truth, 0.8) == 0.0


@pytest.mark.parametrize("detections, truths, match", [
    ([image([], [], [])], [], "one detections dict per ground-truth dict, got 1 and 0"),
    ([image([[0, 0, 1, 1]], [0])], [image([], [])], "image 0: expected keys \\['boxes', 'scores', 'labels'\\]"),
    ([image([[0, 0, 1, 1]], [0, 1], [0.5])], [image([], [])], "image 0: expected 1 labels, one per box"),
], ids=["image_count", "missing_scores", "labels_count"])
def test_map_rejects_bad_input(detections, truths, match):
    with pytest.raises(ValueError, match=match):
        mean_average_precision(detections, truths)


# ----- mean average precision against an explicit loop on random detections ----------------------------------
def reference_map(detections, truths, thresholds, interpolation):
    """Threshold by threshold, class by class: rank every detection, match it with a loop over the
    true boxes of its image, then read precision off the recall levels."""
    classes = sorted({int(c) for t in truths for c in t["labels"]})
    per_threshold = []
    for t in thresholds:
        aps = []
        for c in classes:
            ranked = sorted(((s, i, k) for i, d in enumerate(detections) for k, s in enumerate(d["scores"])
                             if d["labels"][k] == c), key=lambda e: (-e[0], e[1], e[2]))
            num_true = sum(int(np.sum(g["labels"] == c)) for g in truths)
            taken, hits = set(), []
            for _, i, k in ranked:
                best, best_iou = None, t
                for j, (box, label) in enumerate(zip(truths[i]["boxes"], truths[i]["labels"])):
                    iou = iou_of_pair(detections[i]["boxes"][k], box)
                    if label == c and (i, j) not in taken and iou >= best_iou and (best is None or iou > best_iou):
                        best, best_iou = j, iou
                hits.append(best is not None)
                if best is not None:
                    taken.add((i, best))
            tp = np.cumsum(hits)
            precision, recall = tp / np.arange(1, len(hits) + 1), tp / num_true
            if interpolation == "coco":  # at each recall level, the best precision at that recall or beyond
                aps.append(np.mean([max([p for p, r in zip(precision, recall) if r >= level], default=0.0)
                                    for level in np.linspace(0, 1, 101)]))
            else:  # the VOC devkit's code: sentinels, a running maximum from the right, sum where recall moves
                mrec, mpre = np.concatenate([[0], recall, [1]]), np.concatenate([[0], precision, [0]])
                for m in range(len(mpre) - 2, -1, -1):
                    mpre[m] = max(mpre[m], mpre[m + 1])
                moves = np.flatnonzero(mrec[1:] != mrec[:-1])
                aps.append(np.sum((mrec[moves + 1] - mrec[moves]) * mpre[moves + 1]))
        per_threshold.append(np.mean(aps))
    return np.mean(per_threshold)


def random_scene(seed, images=4, classes=3):
    """True boxes per image; detections jitter some of them (some well, some badly), plus strays."""
    rng = RNG(seed)
    truths, detections = [], []
    for i in range(images):
        n = rng.integers(1, 6)
        boxes, labels = random_boxes(n, seed * 100 + i, size=40), rng.integers(0, classes, n)
        truths.append(image(boxes, labels))
        found = rng.random(n) < 0.8
        moved = boxes[found] + rng.normal(0, 0.8, (found.sum(), 4))
        low, high = np.minimum(moved[:, :2], moved[:, 2:]), np.maximum(moved[:, :2], moved[:, 2:])
        copies = np.concatenate([low, high], axis=1)
        strays = random_boxes(3, seed * 100 + i + 50, size=40)
        labels = np.concatenate([np.where(rng.random(found.sum()) < 0.85, labels[found], (labels[found] + 1) % 3),
                                 rng.integers(0, classes, 3)])
        all_boxes = np.concatenate([copies, strays])
        detections.append(image(all_boxes, labels, rng.random(len(all_boxes))))
    return detections, truths


@pytest.mark.parametrize("interpolation", ["coco", "voc"])
@pytest.mark.parametrize("seed", range(4))
def test_map_matches_explicit_loop_on_random_scenes(seed, interpolation):
    detections, truths = random_scene(seed)
    for thresholds in ((0.5,), COCO_IOU_THRESHOLDS):
        ours = mean_average_precision(detections, truths, thresholds, interpolation)
        assert 0 < ours < 1
        assert ours == pytest.approx(reference_map(detections, truths, thresholds, interpolation), abs=1e-12)
