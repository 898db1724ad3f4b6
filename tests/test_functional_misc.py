"""Non-windowed ops: hand-computed values, NumPy references, running statistics and validation."""

import numpy as np
import pytest
from helpers import f64, randn

from convscope import Tensor
from convscope import functional as F

RNG = np.random.default_rng


# ----- NumPy references written from the definitions ------------------------------------------------
def ref_log_softmax(z, axis):
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def ref_cross_entropy(logits, target, reduction="mean", label_smoothing=0.0):
    """Per item: -sum_k q_k log p_k with q = (1-e) * onehot + e / C; classes on axis 1."""
    log_p = ref_log_softmax(logits, axis=1)
    classes = logits.shape[1]
    q = np.moveaxis(np.eye(classes)[target], -1, 1) * (1 - label_smoothing) + label_smoothing / classes
    losses = -(q * log_p).sum(axis=1)
    return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]


def ref_cross_entropy_grad(logits, target, label_smoothing=0.0):
    """d(sum of losses)/d logits = softmax - q."""
    classes = logits.shape[1]
    q = np.moveaxis(np.eye(classes)[target], -1, 1) * (1 - label_smoothing) + label_smoothing / classes
    return np.exp(ref_log_softmax(logits, axis=1)) - q


def ref_batch_norm_train(x, weight, bias, eps=1e-5):
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight.reshape(shape) + bias.reshape(shape)


# ----- linear and activations --------------------------------------------------------------------
def test_linear_by_hand():
    x = Tensor([[1.0, 2.0]])
    w = Tensor([[1.0, 0.0], [0.5, -1.0], [2.0, 3.0]])
    out = F.linear(x, w, Tensor([0.0, 1.0, -1.0]))
    np.testing.assert_allclose(out.data, [[1.0, -0.5, 7.0]])


def test_linear_rejects_wrong_features():
    with pytest.raises(ValueError, match="expected input with 3 features in its last axis, got shape \\(2, 4\\)"):
        F.linear(Tensor(np.zeros((2, 4))), Tensor(np.zeros((5, 3))))


def test_activations_by_hand():
    x = Tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(F.relu(x).data, [0, 0, 0, 0.5, 2])
    np.testing.assert_allclose(F.leaky_relu(x, 0.1).data, [-0.2, -0.05, 0, 0.5, 2])
    np.testing.assert_allclose(F.sigmoid(x).data, 1 / (1 + np.exp(-x.data)), rtol=1e-6)
    np.testing.assert_allclose(F.tanh(x).data, np.tanh(x.data), rtol=1e-6)
    assert F.sigmoid(Tensor([0.0])).item() == 0.5


def test_relu_gradient_is_zero_at_zero():
    x = Tensor([-1.0, 0.0, 1.0], requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 0, 1])


def test_sigmoid_does_not_overflow():
    x = Tensor([-1000.0, 1000.0], requires_grad=True)
    with np.errstate(over="raise", invalid="raise"):
        out = F.sigmoid(x)
        out.sum().backward()
    np.testing.assert_array_equal(out.data, [0.0, 1.0])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax_match_reference(dim):
    z = randn(3, 4, 5) * 3
    np.testing.assert_allclose(F.log_softmax(f64(z), dim).data, ref_log_softmax(z, dim), rtol=1e-12)
    p = F.softmax(f64(z), dim).data
    np.testing.assert_allclose(p, np.exp(ref_log_softmax(z, dim)), rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=dim), 1.0, rtol=1e-12)


def test_softmax_is_stable_for_huge_logits():
    z = Tensor([[1000.0, 1001.0, -1000.0]])
    np.testing.assert_allclose(F.softmax(z).data, [[1 / (1 + np.e), np.e / (1 + np.e), 0]], rtol=1e-6)
    assert np.all(np.isfinite(F.log_softmax(z).data))


# ----- losses --------------------------------------------------------------------------------------------
def test_cross_entropy_by_hand():
    # uniform logits over 4 classes: every loss is log 4; the gradient is (1/4 - onehot) / N
    logits = Tensor(np.zeros((2, 4)), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([1, 3]))
    assert loss.item() == pytest.approx(np.log(4))
    loss.backward()
    np.testing.assert_allclose(logits.grad, [[0.125, -0.375, 0.125, 0.125], [0.125, 0.125, 0.125, -0.375]])


def test_label_smoothing_by_hand():
    # q = 0.9 * onehot + 0.1 / 2 for two classes: loss = -(0.95 log p_t + 0.05 log p_other)
    logits = Tensor([[0.0, np.log(3.0)]])  # p = (1/4, 3/4)
    loss = F.cross_entropy(logits, [1], label_smoothing=0.1)
    assert loss.item() == pytest.approx(-(0.95 * np.log(0.75) + 0.05 * np.log(0.25)), rel=1e-6)


CE_CASES = {"NC": ((6, 5), (6,)), "NCHW": ((2, 3, 4, 5), (2, 4, 5)), "NCL": ((3, 4, 2), (3, 2))}


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2], ids=["hard", "smoothed"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shapes", CE_CASES.values(), ids=CE_CASES.keys())
def test_cross_entropy_matches_numpy_reference(shapes, reduction, label_smoothing):
    logits_shape, target_shape = shapes
    z, target = randn(*logits_shape) * 2, RNG(1).integers(0, logits_shape[1], target_shape)
    logits = f64(z)
    out = F.cross_entropy(logits, target, reduction, label_smoothing)
    np.testing.assert_allclose(out.data, ref_cross_entropy(z, target, reduction, label_smoothing), rtol=1e-12)
    out.sum().backward()
    expected = ref_cross_entropy_grad(z, target, label_smoothing)
    if reduction == "mean":
        expected = expected / target.size
    np.testing.assert_allclose(logits.grad, expected, rtol=1e-10, atol=1e-14)


def test_cross_entropy_accepts_integer_valued_float_targets():
    z = randn(3, 4)
    a = F.cross_entropy(f64(z), np.array([0.0, 3.0, 1.0])).item()
    b = F.cross_entropy(f64(z), Tensor([0, 3, 1])).item()
    assert a == pytest.approx(ref_cross_entropy(z, np.array([0, 3, 1])), rel=1e-12)
    assert b == pytest.approx(a, rel=1e-12)


@pytest.mark.parametrize("target, kwargs, match", [
    ([0, 4], {}, "targets must lie in \\[0, 3\\]"),
    ([0, -1], {}, "targets must lie"),
    ([0.5, 1.0], {}, "integer class indices"),
    ([0, 1, 2], {}, "expected logits \\(N, C, ...\\) and class indices"),
    ([0, 1], dict(reduction="avg"), "reduction"),
    ([0, 1], dict(label_smoothing=1.0), "label_smoothing"),
], ids=["too_large", "negative", "fractional", "wrong_count", "bad_reduction", "smoothing_1"])
def test_cross_entropy_rejects_bad_input(target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        F.cross_entropy(Tensor(np.zeros((2, 4))), np.array(target), **kwargs)


def test_nll_loss_picks_the_target_entries():
    log_probs = Tensor([[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]], requires_grad=True)
    loss = F.nll_loss(log_probs, [2, 0])
    assert loss.item() == pytest.approx(3.5)  # (3 + 4) / 2
    loss.backward()
    np.testing.assert_allclose(log_probs.grad, [[0, 0, -0.5], [-0.5, 0, 0]])
    np.testing.assert_allclose(F.nll_loss(log_probs, [2, 0], reduction="none").data, [3.0, 4.0])


def test_nll_loss_on_image_shaped_input_keeps_the_spatial_shape():
    # like cross_entropy and torch: reduction="none" gives one loss per pixel, shape (N, H, W)
    z, target = randn(2, 3, 4, 5), RNG(1).integers(0, 3, (2, 4, 5))
    expected = -np.take_along_axis(z, target[:, None], axis=1)[:, 0]
    np.testing.assert_allclose(F.nll_loss(f64(z), target, reduction="none").data, expected)


def test_mse_loss_by_hand():
    a = Tensor([1.0, 2.0, 4.0], requires_grad=True)
    loss = F.mse_loss(a, np.array([1.0, 0.0, 1.0]))
    assert loss.item() == pytest.approx(13 / 3)
    loss.backward()
    np.testing.assert_allclose(a.grad, [0, 4 / 3, 2.0], rtol=1e-6)
    assert F.mse_loss(a, [1.0, 0.0, 1.0], reduction="sum").item() == pytest.approx(13)
    with pytest.raises(ValueError, match="differs from target shape"):
        F.mse_loss(a, np.zeros(2))


def ref_weighted_cross_entropy(logits, target, weight, ignore_index, reduction, label_smoothing=0.0):
    """One item at a time: -(1-e) w_t log p_t - (e/C) sum_c w_c log p_c; "mean" over kept weight."""
    moved = np.moveaxis(logits, 1, -1).reshape(-1, logits.shape[1])
    losses, total = [], 0.0
    for z, t in zip(moved, np.ravel(target)):
        if t == ignore_index:
            losses.append(0.0)
            continue
        log_p = z - np.log(np.sum(np.exp(z - z.max()))) - z.max()
        losses.append(-(1 - label_smoothing) * weight[t] * log_p[t]
                      - label_smoothing / len(z) * np.sum(weight * log_p))
        total += weight[t]
    losses = np.array(losses)
    return {"mean": losses.sum() / total, "sum": losses.sum(), "none": losses.reshape(np.shape(target))}[reduction]


def test_weighted_cross_entropy_with_ignored_target_by_hand():
    # p = (1/4, 3/4) on every row; weight (1, 3); the third row is ignored
    logits = Tensor(np.tile([0.0, np.log(3.0)], (3, 1)), requires_grad=True, dtype=np.float64)
    loss = F.cross_entropy(logits, [0, 1, -100], weight=[1.0, 3.0])
    assert loss.item() == pytest.approx((np.log(4) + 3 * np.log(4 / 3)) / 4)  # divided by 1 + 3
    loss.backward()  # row i: w_t * (p - onehot) / 4
    np.testing.assert_allclose(logits.grad, [[-0.1875, 0.1875], [0.1875, -0.1875], [0, 0]])
    none = F.cross_entropy(logits, [0, 1, -100], reduction="none", weight=[1.0, 3.0])
    np.testing.assert_allclose(none.data, [np.log(4), 3 * np.log(4 / 3), 0])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2], ids=["hard", "smoothed"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_segmentation_cross_entropy_matches_loop_reference(reduction, label_smoothing):
    # (N, C, H, W) logits, (N, H, W) targets with some pixels set to ignore_index 255
    z, target = randn(2, 3, 4, 5) * 2, RNG(1).integers(0, 3, (2, 4, 5))
    target[RNG(2).random(target.shape) < 0.3] = 255
    weight = np.array([0.5, 2.0, 1.5])
    out = F.cross_entropy(f64(z), target, reduction, label_smoothing, weight=weight, ignore_index=255)
    expected = ref_weighted_cross_entropy(z, target, weight, 255, reduction, label_smoothing)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


def test_cross_entropy_with_every_target_ignored():
    # as PyTorch: the mean divides 0 by a total weight of 0 (nan); the sum is 0
    assert np.isnan(F.cross_entropy(f64(randn(2, 3)), [-100, -100]).item())
    assert F.cross_entropy(f64(randn(2, 3)), [-100, -100], reduction="sum").item() == 0


@pytest.mark.parametrize("target, kwargs, match", [
    ([0, 1], dict(weight=[1.0, 2.0]), "weight must hold one value per class \\(4,\\), got shape \\(2,\\)"),
    ([0, -1], dict(ignore_index=-100), "or equal ignore_index=-100\\), got values -1..0"),
], ids=["weight_shape", "negative_not_ignored"])
def test_cross_entropy_rejects_bad_weight_or_target(target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        F.cross_entropy(Tensor(np.zeros((2, 4))), np.array(target), **kwargs)


def test_weighted_nll_loss_by_hand():
    log_probs = Tensor([[-1.0, -2.0], [-3.0, -4.0], [-5.0, -6.0]], requires_grad=True)
    loss = F.nll_loss(log_probs, [1, 0, 1], weight=[2.0, 0.5], ignore_index=0)
    assert loss.item() == pytest.approx((2 * 2 + 2 * 6) / 4)  # rows 0 and 2 kept, weight 2 each
    loss.backward()
    np.testing.assert_allclose(log_probs.grad, [[0, -0.5], [0, 0], [0, -0.5]])


def ref_bce_with_logits(x, y, weight=1.0, pos_weight=1.0):
    """From the definition, with sigmoid and logs written out (only for moderate logits)."""
    p = 1 / (1 + np.exp(-x))
    return -weight * (pos_weight * y * np.log(p) + (1 - y) * np.log(1 - p))


def test_bce_with_logits_by_hand():
    x = Tensor([0.0, 0.0, 2.0], requires_grad=True, dtype=np.float64)
    loss = F.binary_cross_entropy_with_logits(x, [1.0, 0.0, 1.0], reduction="none")
    np.testing.assert_allclose(loss.data, [np.log(2), np.log(2), np.log(1 + np.exp(-2))], rtol=1e-12)
    loss.sum().backward()  # sigmoid(x) - y, also at x = 0 exactly
    np.testing.assert_allclose(x.grad, [-0.5, 0.5, 1 / (1 + np.exp(-2)) - 1], rtol=1e-12)
    weighted = F.binary_cross_entropy_with_logits(x, [1.0, 0.0, 1.0], weight=[1.0, 2.0, 0.0], pos_weight=3.0)
    assert weighted.item() == pytest.approx((3 * np.log(2) + 2 * np.log(2)) / 3)


def test_bce_with_logits_is_stable_for_huge_logits():
    x = Tensor([1000.0, -1000.0, 1000.0], requires_grad=True, dtype=np.float64)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = F.binary_cross_entropy_with_logits(x, [0.0, 1.0, 1.0], reduction="sum")
        loss.backward()
    assert loss.item() == 2000.0  # two confident mistakes cost |x| each, the right one 0
    np.testing.assert_array_equal(x.grad, [1.0, -1.0, 0.0])


def test_bce_with_logits_matches_definition_with_class_weights():
    # pos_weight has one value per class (the last axis); weight broadcasts over the batch
    x, y = randn(4, 3) * 2, RNG(1).random((4, 3))
    weight, pos_weight = RNG(2).random((4, 1)), np.array([0.5, 1.0, 4.0])
    out = F.binary_cross_entropy_with_logits(f64(x), y, weight, pos_weight, reduction="none")
    np.testing.assert_allclose(out.data, ref_bce_with_logits(x, y, weight, pos_weight), rtol=1e-12)


@pytest.mark.parametrize("target, kwargs, match", [
    (np.zeros(2), {}, "input shape \\(2, 3\\) differs from target shape \\(2,\\)"),
    (np.zeros((2, 3)), dict(pos_weight=np.ones(2)), "pos_weight of shape \\(2,\\) does not broadcast"),
    (np.zeros((2, 3)), dict(weight=np.ones((3, 3))), "weight of shape \\(3, 3\\) does not broadcast"),
    (np.zeros((2, 3)), dict(reduction="avg"), "reduction"),
], ids=["target_shape", "pos_weight_shape", "weight_shape", "reduction"])
def test_bce_with_logits_rejects_bad_input(target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        F.binary_cross_entropy_with_logits(Tensor(np.zeros((2, 3))), target, **kwargs)


def test_huber_and_smooth_l1_by_hand():
    a = Tensor([0.5, 2.0, -3.0], requires_grad=True, dtype=np.float64)
    zeros = np.zeros(3)
    huber = F.huber_loss(a, zeros, reduction="none")  # 0.5 d^2 inside |d| < 1, else |d| - 0.5
    np.testing.assert_allclose(huber.data, [0.125, 1.5, 2.5])
    huber.sum().backward()
    np.testing.assert_allclose(a.grad, [0.5, 1.0, -1.0])
    np.testing.assert_allclose(F.huber_loss(a, zeros, "none", delta=2.5).data, [0.125, 2.0, 2.5 * (3 - 1.25)])
    np.testing.assert_allclose(F.smooth_l1_loss(a, zeros, "none", beta=2.5).data, [0.05, 0.8, 3 - 1.25])
    np.testing.assert_allclose(F.smooth_l1_loss(a, zeros, "none", beta=0.0).data, [0.5, 2.0, 3.0])
    assert F.smooth_l1_loss(a, zeros).item() == pytest.approx((0.125 + 1.5 + 2.5) / 3)


@pytest.mark.parametrize("call, match", [
    (lambda a: F.huber_loss(a, np.zeros(3), delta=0.0), "huber_loss: delta must be positive, got 0.0"),
    (lambda a: F.smooth_l1_loss(a, np.zeros(3), beta=-1.0), "smooth_l1_loss: beta must be >= 0, got -1.0"),
    (lambda a: F.smooth_l1_loss(a, np.zeros(2)), "smooth_l1_loss: input shape \\(3,\\) differs"),
    (lambda a: F.huber_loss(a, np.zeros(3), reduction="avg"), "reduction"),
], ids=["delta_0", "beta_negative", "target_shape", "reduction"])
def test_huber_and_smooth_l1_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(Tensor(np.zeros(3)))


# ----- shape utilities ----------------------------------------------------------------------------
def test_pad_like_torch_order_by_hand():
    x = Tensor(np.arange(1.0, 5.0).reshape(1, 1, 2, 2))
    out = F.pad(x, (1, 0, 0, 1), value=9.0)  # (left, right, top, bottom)
    np.testing.assert_array_equal(out.data[0, 0], [[9, 1, 2], [9, 3, 4], [9, 9, 9]])


@pytest.mark.parametrize("widths, mode, match", [
    ((1,), "constant", "pairs"),
    ((1, 1) * 5, "constant", "pairs"),
    ((-1, 1), "constant", "negative"),
    ((1, 1), "reflect", "constant"),
], ids=["odd_length", "too_many_axes", "negative", "reflect_mode"])
def test_pad_rejects_bad_arguments(widths, mode, match):
    with pytest.raises(ValueError, match=match):
        F.pad(Tensor(np.zeros((2, 2, 2, 2))), widths, mode=mode)


def test_cat_and_flatten_by_hand():
    a, b = Tensor(np.zeros((2, 1))), Tensor(np.ones((2, 2)))
    np.testing.assert_array_equal(F.cat([a, b], dim=1).data, [[0, 1, 1], [0, 1, 1]])
    assert F.flatten(Tensor(np.zeros((2, 3, 4, 5)))).shape == (2, 60)
    assert F.flatten(Tensor(np.zeros((2, 3, 4, 5))), 1, 2).shape == (2, 12, 5)


# ----- dropout ---------------------------------------------------------------------------------------
def test_dropout_statistics_and_scaling():
    x = Tensor(np.ones((200, 500), dtype=np.float32))
    out = F.dropout(x, 0.3, training=True, rng=RNG(0)).data
    kept = out != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    assert out.dtype == np.float32


def test_dropout_is_reproducible_and_gradient_uses_the_mask():
    x = Tensor(np.ones((4, 5)), requires_grad=True)
    out = F.dropout(x, 0.5, rng=RNG(3))
    np.testing.assert_array_equal(out.data, F.dropout(x, 0.5, rng=RNG(3)).data)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, out.data)


def test_dropout_identity_cases_and_errors():
    x = Tensor(np.ones(3))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, rng=RNG(0)) is x
    with pytest.raises(ValueError, match="Generator"):
        F.dropout(x, 0.5)
    for p in (-0.1, 1.0):
        with pytest.raises(ValueError, match="p must be in"):
            F.dropout(x, p, rng=RNG(0))


# ----- batch norm --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4, 5)], ids=["NC", "NCHW"])
def test_batch_norm_training_matches_reference_and_updates_running_stats(shape):
    x, w, b = randn(*shape, seed=1) * 2 + 1, randn(3, seed=2), randn(3, seed=3)
    running_mean, running_var = np.full(3, 0.5), np.full(3, 2.0)
    out = F.batch_norm(f64(x), running_mean, running_var, f64(w), f64(b), training=True, momentum=0.2)
    np.testing.assert_allclose(out.data, ref_batch_norm_train(x, w, b), rtol=1e-10, atol=1e-12)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    np.testing.assert_allclose(running_mean, 0.8 * 0.5 + 0.2 * x.mean(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(running_var, 0.8 * 2.0 + 0.2 * x.var(axis=axes, ddof=1), rtol=1e-12)


def test_batch_norm_training_output_is_standardised():
    out = F.batch_norm(f64(randn(8, 2, 3, 3) * 5 + 3), np.zeros(2), np.ones(2), training=True).data
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-4)  # eps shrinks it slightly


def test_batch_norm_eval_uses_running_stats_by_hand():
    x = Tensor(np.array([[1.0, 2.0], [3.0, 6.0]]))
    out = F.batch_norm(x, np.array([1.0, 2.0]), np.array([4.0, 16.0]), Tensor([2.0, 1.0]), Tensor([0.0, 1.0]),
                       training=False, eps=0.0)
    np.testing.assert_allclose(out.data, [[0.0, 1.0], [2.0, 2.0]])  # (x - mean) / std * w + b


def test_batch_norm_eval_leaves_running_stats_alone():
    running_mean, running_var = np.zeros(2), np.ones(2)
    F.batch_norm(f64(randn(4, 2)), running_mean, running_var, training=False)
    np.testing.assert_array_equal(running_mean, [0, 0])
    np.testing.assert_array_equal(running_var, [1, 1])


def test_batch_norm_rejects_bad_input():
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(Tensor(np.zeros((1, 3))), np.zeros(3), np.ones(3), training=True)
    with pytest.raises(ValueError, match="expected \\(N, 3\\) or \\(N, 3, H, W\\)"):
        F.batch_norm(Tensor(np.zeros((2, 4, 2, 2))), np.zeros(3), np.ones(3))
