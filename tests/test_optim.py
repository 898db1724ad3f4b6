"""Optimizers and schedules: update rules by hand, validation, and exact checkpoint resumption."""

import io
import json
import math

import numpy as np
import pytest

from convscope import Tensor, optim
from convscope import functional as F
from convscope.models import LeNet5
from convscope.nn import Parameter

RNG = np.random.default_rng


def param_with_grad(values, grad):
    p = Parameter(np.array(values, dtype=np.float64), dtype=np.float64)
    p.grad = np.array(grad, dtype=np.float64)
    return p


# ----- update rules by hand -------------------------------------------------------------------------
def test_sgd_plain_step():
    p = param_with_grad([1.0, -2.0], [0.5, 1.0])
    optim.SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, -2.1])


def test_sgd_weight_decay_adds_to_gradient():
    p = param_with_grad([1.0, -2.0], [0.5, 1.0])
    optim.SGD([p], lr=0.1, weight_decay=0.1).step()  # grad + 0.1 * p = [0.6, 0.8]
    np.testing.assert_allclose(p.data, [0.94, -2.08])


def test_sgd_momentum_two_steps():
    p = param_with_grad([0.0], [1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.step()  # v = 1
    opt.step()  # v = 0.9 + 1 = 1.9
    np.testing.assert_allclose(p.data, [-0.1 - 0.19])


def test_sgd_dampening():
    p = param_with_grad([0.0], [1.0])
    opt = optim.SGD([p], lr=1.0, momentum=0.5, dampening=0.5)
    opt.step()  # v = g (first step, as PyTorch)
    opt.step()  # v = 0.5 * 1 + 0.5 * 1 = 1
    np.testing.assert_allclose(p.data, [-2.0])


def test_sgd_nesterov_two_steps():
    p = param_with_grad([0.0], [1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    opt.step()  # v = 1, step g + 0.9 v = 1.9
    opt.step()  # v = 1.9, step 1 + 0.9 * 1.9 = 2.71
    np.testing.assert_allclose(p.data, [-0.19 - 0.271])


def test_adam_first_step_is_lr_times_sign():
    p = param_with_grad([1.0, 1.0, 1.0], [3.0, -0.01, 0.0])
    optim.Adam([p], lr=0.1).step()  # m_hat = g, v_hat = g^2 -> step lr * g / (|g| + eps)
    np.testing.assert_allclose(p.data, [0.9, 1.1, 1.0], rtol=1e-6)


def test_adam_two_steps_by_formula():
    p = param_with_grad([0.5], [0.2])
    opt = optim.Adam([p], lr=0.01, betas=(0.8, 0.9), eps=1e-3)
    opt.step()
    p.grad = np.array([-0.4])
    opt.step()
    m1, v1 = 0.2 * 0.2, 0.1 * 0.04
    step1 = 0.01 * (m1 / 0.2) / (math.sqrt(v1 / 0.1) + 1e-3)
    m2, v2 = 0.8 * m1 + 0.2 * -0.4, 0.9 * v1 + 0.1 * 0.16
    step2 = 0.01 * (m2 / (1 - 0.64)) / (math.sqrt(v2 / (1 - 0.81)) + 1e-3)
    np.testing.assert_allclose(p.data, [0.5 - step1 - step2], rtol=1e-12)


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW], ids=["adam", "adamw"])
def test_adam_bias_correction_counts_each_parameters_own_updates(cls):
    # a parameter whose first gradient arrives at the optimizer's 2nd step still starts from
    # zero moments: its first update must be the first-step update lr * sign(g), as in PyTorch
    early, late = param_with_grad([1.0], [0.5]), Parameter(np.array([1.0]), dtype=np.float64)
    opt = cls([early, late], lr=0.1, weight_decay=0.0)
    opt.step()
    late.grad = np.array([0.5])
    opt.step()
    np.testing.assert_allclose(late.data, [0.9], rtol=1e-6)


def test_adam_weight_decay_is_l2_but_adamw_decouples_it():
    a, w = param_with_grad([2.0], [0.0]), param_with_grad([2.0], [0.0])
    optim.Adam([a], lr=0.1, weight_decay=0.5).step()   # gradient becomes 1.0 -> Adam step 0.1
    optim.AdamW([w], lr=0.1, weight_decay=0.5).step()  # p *= 1 - 0.05, then a zero-gradient step
    np.testing.assert_allclose(a.data, [1.9], rtol=1e-6)
    np.testing.assert_allclose(w.data, [1.9], rtol=1e-12)
    assert optim.AdamW([w]).weight_decay == 0.01


def test_parameters_without_gradient_are_skipped_and_zero_grad_clears():
    p, q = param_with_grad([1.0], [1.0]), Parameter(np.array([5.0]))
    opt = optim.SGD([p, q], lr=0.1, momentum=0.9)
    opt.step()
    assert q.data.item() == 5.0 and opt.state[1] == {}
    opt.zero_grad()
    assert p.grad is None


def test_float32_parameters_stay_float32():
    model = LeNet5(rng=RNG(0))
    x = Tensor(RNG(1).standard_normal((2, 1, 28, 28)), dtype=np.float32)
    F.cross_entropy(model(x), [1, 2]).backward()
    for opt in (optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4),
                optim.Adam(model.parameters()), optim.AdamW(model.parameters())):
        opt.step()
        assert all(p.dtype == np.float32 for p in model.parameters())
        assert all(v.dtype == np.float32 for s in opt.state for k, v in s.items() if k != "step")


@pytest.mark.parametrize("make, match", [
    (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda p: optim.SGD(p, lr=0.0), "lr must be > 0"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), "betas"),
    (lambda p: optim.AdamW(p, lr=-1.0), "lr must be > 0"),
    (lambda p: optim.OneCycleLR(optim.SGD(p, lr=0.1), max_lr=1.0, total_steps=1), "total_steps"),
], ids=["empty", "lr_zero", "nesterov_no_momentum", "nesterov_dampening", "beta_1", "adamw_lr", "onecycle_steps"])
def test_optimizer_validation(make, match):
    with pytest.raises(ValueError, match=match):
        make([Parameter(np.zeros(2))])


# ----- exact resumption from a saved state ------------------------------------------------------------
def batches():
    rng = RNG(10)
    while True:
        yield Tensor(rng.standard_normal((4, 1, 28, 28)), dtype=np.float32), rng.integers(0, 10, 4)


def train(model, opt, data, steps):
    for _ in range(steps):
        x, y = next(data)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def save(model, opt):
    """Write model and optimizer state as a file would hold them (npz arrays, JSON numbers)."""
    state = opt.state_dict()
    buffer = io.BytesIO()
    np.savez(buffer, **{f"model/{k}": v for k, v in model.state_dict().items()},
             **{f"optim/{k}": v for k, v in state["state"].items()})
    meta = json.dumps({"hyper": state["hyper"], "steps": state["steps"]})
    return buffer.getvalue(), meta


def load(blob, meta, model, opt):
    arrays = np.load(io.BytesIO(blob))
    model.load_state_dict({k[6:]: arrays[k] for k in arrays.files if k.startswith("model/")})
    opt.load_state_dict(dict(json.loads(meta), state={k[6:]: arrays[k] for k in arrays.files
                                                      if k.startswith("optim/")}))


OPTIMIZERS = {
    "sgd_momentum_wd": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda ps: optim.Adam(ps, lr=1e-3, betas=(0.8, 0.99), weight_decay=1e-3),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-3, weight_decay=0.05),
}


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_state_dict_round_trip_resumes_exactly(make):
    model = LeNet5(rng=RNG(0))
    opt, data = make(model.parameters()), batches()
    train(model, opt, data, 3)
    blob, meta = save(model, opt)
    train(model, opt, data, 2)

    fresh = LeNet5(rng=RNG(99))
    fresh_opt = make(fresh.parameters())
    load(blob, meta, fresh, fresh_opt)
    resumed_data = batches()
    for _ in range(3):
        next(resumed_data)
    train(fresh, fresh_opt, resumed_data, 2)
    for (name, p), (_, q) in zip(model.named_parameters(), fresh.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_load_state_dict_rejects_mismatched_state():
    opt = optim.SGD([Parameter(np.zeros(3))], lr=0.1, momentum=0.9)
    bad = {"hyper": {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0}, "steps": 1,
           "state": {"0.velocity": np.zeros(4)}}
    with pytest.raises(ValueError, match="0.velocity"):
        opt.load_state_dict(bad)
    bad["state"] = {"1.velocity": np.zeros(3)}
    with pytest.raises(ValueError, match="1.velocity"):
        opt.load_state_dict(bad)


# ----- schedules by hand -------------------------------------------------------------------------------
def lrs(scheduler, steps):
    seen = [scheduler.optimizer.lr]
    for _ in range(steps):
        scheduler.step()
        seen.append(scheduler.get_last_lr()[0])
    return seen


def sgd(lr=1.0, momentum=0.9):
    return optim.SGD([Parameter(np.zeros(1))], lr=lr, momentum=momentum)


def test_step_lr_by_hand():
    np.testing.assert_allclose(lrs(optim.StepLR(sgd(0.1), step_size=2, gamma=0.5), 5),
                               [0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_cosine_by_hand():
    seen = lrs(optim.CosineAnnealingLR(sgd(1.0), T_max=4, eta_min=0.2), 4)
    expected = [0.2 + 0.8 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(5)]
    np.testing.assert_allclose(seen, expected)
    assert seen[2] == pytest.approx(0.6) and seen[4] == pytest.approx(0.2)


def test_one_cycle_endpoints_and_peak():
    opt = sgd(1.0)
    seen = lrs(optim.OneCycleLR(opt, max_lr=0.5, total_steps=10, pct_start=0.3), 9)  # peak at step 2
    assert seen[0] == pytest.approx(0.5 / 25)
    assert max(seen) == seen[2] == pytest.approx(0.5)
    assert seen[-1] == pytest.approx(0.5 / 25 / 1e4)
    assert opt.momentum == pytest.approx(0.95)  # momentum is back at its maximum at the end


def test_one_cycle_cycles_adam_beta1_opposite_to_lr():
    opt = optim.Adam([Parameter(np.zeros(1))], lr=1.0, betas=(0.9, 0.99))
    sched = optim.OneCycleLR(opt, max_lr=0.1, total_steps=10, pct_start=0.3)
    assert opt.betas == pytest.approx((0.95, 0.99))
    for _ in range(2):
        sched.step()
    assert opt.lr == pytest.approx(0.1) and opt.betas[0] == pytest.approx(0.85)


def test_one_cycle_leaves_momentum_free_sgd_alone():
    opt = sgd(1.0, momentum=0.0)
    optim.OneCycleLR(opt, max_lr=0.1, total_steps=10).step()
    assert opt.momentum == 0.0


def test_scheduler_state_dict_resumes():
    first = optim.StepLR(sgd(0.1), step_size=2, gamma=0.5)
    for _ in range(3):
        first.step()
    second = optim.StepLR(sgd(0.1), step_size=2, gamma=0.5)
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert second.optimizer.lr == first.optimizer.lr
    first.step()
    second.step()
    assert second.optimizer.lr == first.optimizer.lr == pytest.approx(0.025)
