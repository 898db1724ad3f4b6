"""PyTorch as a further oracle (skipped without torch): same tables, float32, forward and gradients.

Every comparison uses ``rtol=1e-5`` with ``atol = 1e-5 * max|torch|`` so values near zero in a
large array are judged against the array's scale.
"""

import numpy as np
import pytest
from helpers import ADAPTIVE_CASES, CONV_CASES, POOL_CASES, UNDILATED_POOL_CASES, cases, distinct, randn

from convscope import Tensor, nn, optim
from convscope import functional as F
from convscope.models import LeNet5

torch = pytest.importorskip("torch")
# On a small machine torch's OpenMP pool and NumPy's OpenBLAS pool fight for the cores (both
# spin while waiting), slowing NumPy matrix products a hundredfold; these checks need no threads.
torch.set_num_threads(1)
TF = torch.nn.functional
RNG = np.random.default_rng


def close(ours, theirs, rtol=1e-5, what=""):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert np.shape(ours) == theirs.shape, f"{what}: shape {np.shape(ours)} vs torch {theirs.shape}"
    scale = float(np.abs(theirs).max()) if theirs.size else 0.0
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-5 * scale + 1e-12, err_msg=what)


def compare(our_fn, torch_fn, *arrays, seed=0):
    """Run both on the same float32 inputs; compare outputs and every input's gradient."""
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    ours = [Tensor(a, requires_grad=True, dtype=np.float32) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = our_fn(*ours), torch_fn(*theirs)
    assert out.dtype == np.float32
    close(out.data, ref, what="output")
    g = RNG(seed).standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    ref.backward(torch.tensor(g))
    for k, (a, b) in enumerate(zip(ours, theirs)):
        close(a.grad, b.grad, what=f"gradient of input {k}")


# ----- windowed ops over the shared tables -------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("case", cases(CONV_CASES))
def test_conv2d(case, bands):
    arrays = [randn(*case.x, seed=1), randn(*case.w, seed=2)] + ([randn(case.w[0], seed=3)] if case.bias else [])
    compare(lambda x, w, b=None: F.conv2d(x, w, b, **case.kwargs),
            lambda x, w, b=None: TF.conv2d(x, w, b, **case.kwargs), *arrays)


def torch_pool_args(case):
    stride = case.kernel if case.stride is None else case.stride
    return dict(kernel_size=case.kernel, stride=stride, padding=case.padding, ceil_mode=case.ceil_mode)


@pytest.mark.parametrize("case", cases(POOL_CASES))
def test_max_pool2d(case):
    compare(lambda x: F.max_pool2d(x, **case.kwargs_dilated),
            lambda x: TF.max_pool2d(x, **torch_pool_args(case), dilation=case.dilation), distinct(case.x))


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["count_pad", "exclude_pad"])
@pytest.mark.parametrize("case", cases(UNDILATED_POOL_CASES))
def test_avg_pool2d(case, count_include_pad):
    compare(lambda x: F.avg_pool2d(x, **case.kwargs, count_include_pad=count_include_pad),
            lambda x: TF.avg_pool2d(x, **torch_pool_args(case), count_include_pad=count_include_pad),
            randn(*case.x))


# torch's lp_pool2d has no padding, and in ceil_mode it rescales partial windows (it is an
# average times kH*kW), so only windows that lie fully inside the input are comparable.
LP_CASES = {k: c for k, c in UNDILATED_POOL_CASES.items() if c.padding == 0 and not c.ceil_mode}


@pytest.mark.parametrize("p", [1, 2, 3], ids=["p1", "p2", "p3"])
@pytest.mark.parametrize("case", cases(LP_CASES))
def test_lp_pool2d_on_non_negative_input(case, p):
    x = RNG(0).uniform(0.1, 1.5, case.x)
    compare(lambda t: F.lp_pool2d(t, p, **case.kwargs),
            lambda t: TF.lp_pool2d(t, p, case.kernel, stride=case.stride), x)


@pytest.mark.parametrize("case", cases(ADAPTIVE_CASES))
def test_adaptive_avg_pool2d(case):
    shape, size = case
    compare(lambda x: F.adaptive_avg_pool2d(x, size), lambda x: TF.adaptive_avg_pool2d(x, size), randn(*shape))


# ----- dense ops, activations, losses -----------------------------------------------------------------
def test_linear():
    compare(F.linear, TF.linear, randn(3, 5, seed=1), randn(4, 5, seed=2), randn(4, seed=3))


@pytest.mark.parametrize("ours, theirs", [
    (F.relu, TF.relu), (lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1)),
    (F.sigmoid, torch.sigmoid), (F.tanh, torch.tanh),
    (lambda x: F.softmax(x, 1), lambda x: TF.softmax(x, 1)),
    (lambda x: F.log_softmax(x, 1), lambda x: TF.log_softmax(x, 1)),
    (lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1)),
    (lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), lambda x: TF.pad(x, (1, 2, 0, 1), value=0.5)),
    (lambda x: F.flatten(x, 1, 2), lambda x: torch.flatten(x, 1, 2)),
], ids=["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "log_softmax_last", "pad", "flatten"])
def test_elementwise_and_shape_ops(ours, theirs):
    compare(ours, theirs, randn(2, 3, 4, 5) * 3)


def test_cat():
    compare(lambda a, b: F.cat([a, b], dim=1), lambda a, b: torch.cat([a, b], dim=1),
            randn(2, 3, 4, seed=1), randn(2, 1, 4, seed=2))


LOSS_SHAPES = {"NC": ((6, 5), (6,)), "NCHW": ((2, 3, 4, 5), (2, 4, 5))}


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1], ids=["hard", "smoothed"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shapes", LOSS_SHAPES.values(), ids=LOSS_SHAPES.keys())
def test_cross_entropy(shapes, reduction, label_smoothing):
    target = RNG(1).integers(0, shapes[0][1], shapes[1])
    compare(lambda z: F.cross_entropy(z, target, reduction, label_smoothing),
            lambda z: TF.cross_entropy(z, torch.tensor(target), reduction=reduction, label_smoothing=label_smoothing),
            randn(*shapes[0]) * 2)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shapes", LOSS_SHAPES.values(), ids=LOSS_SHAPES.keys())
def test_nll_loss(shapes, reduction):
    target = RNG(1).integers(0, shapes[0][1], shapes[1])
    compare(lambda z: F.nll_loss(z, target, reduction),
            lambda z: TF.nll_loss(z, torch.tensor(target), reduction=reduction), randn(*shapes[0]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    compare(lambda a, b: F.mse_loss(a, b, reduction), lambda a, b: TF.mse_loss(a, b, reduction=reduction),
            randn(2, 3, 4, seed=1), randn(2, 3, 4, seed=2))



@pytest.mark.parametrize("label_smoothing", [0.0, 0.1], ids=["hard", "smoothed"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_segmentation_cross_entropy_with_weight_and_ignore_index(reduction, label_smoothing):
    target = RNG(1).integers(0, 3, (2, 4, 5))
    target[RNG(2).random(target.shape) < 0.3] = 255
    weight = np.array([0.5, 2.0, 1.5], dtype=np.float32)
    compare(lambda z: F.cross_entropy(z, target, reduction, label_smoothing, weight=weight, ignore_index=255),
            lambda z: TF.cross_entropy(z, torch.tensor(target), torch.tensor(weight), ignore_index=255,
                                       reduction=reduction, label_smoothing=label_smoothing),
            randn(2, 3, 4, 5) * 2)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_weighted_nll_loss_with_ignore_index(reduction):
    target = np.array([[0, 2, -100], [1, -100, 2]])
    weight = np.array([2.0, 0.5, 1.0], dtype=np.float32)
    compare(lambda z: F.nll_loss(z, target, reduction, weight=weight),
            lambda z: TF.nll_loss(z, torch.tensor(target), torch.tensor(weight), reduction=reduction),
            randn(2, 3, 3))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits(reduction):
    x = randn(2, 3, 4) * 4
    x[0, 0, :2] = (60.0, -60.0)
    # torch treats weight and pos_weight as constants (convscope's composition would differentiate them)
    weight, pos_weight = RNG(2).random((3, 1)).astype(np.float32), (RNG(3).random(4) + 0.5).astype(np.float32)
    compare(lambda z, y: F.binary_cross_entropy_with_logits(z, y, weight, pos_weight, reduction),
            lambda z, y: TF.binary_cross_entropy_with_logits(z, y, torch.tensor(weight), reduction=reduction,
                                                             pos_weight=torch.tensor(pos_weight)),
            x, RNG(1).random((2, 3, 4)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ours, theirs", [
    (lambda a, b, r: F.huber_loss(a, b, r), lambda a, b, r: TF.huber_loss(a, b, reduction=r)),
    (lambda a, b, r: F.huber_loss(a, b, r, 0.3), lambda a, b, r: TF.huber_loss(a, b, reduction=r, delta=0.3)),
    (lambda a, b, r: F.smooth_l1_loss(a, b, r), lambda a, b, r: TF.smooth_l1_loss(a, b, reduction=r)),
    (lambda a, b, r: F.smooth_l1_loss(a, b, r, 0.3), lambda a, b, r: TF.smooth_l1_loss(a, b, reduction=r, beta=0.3)),
    (lambda a, b, r: F.smooth_l1_loss(a, b, r, 0.0), lambda a, b, r: TF.smooth_l1_loss(a, b, reduction=r, beta=0.0)),
], ids=["huber", "huber_delta0.3", "smooth_l1", "smooth_l1_beta0.3", "smooth_l1_beta0"])
def test_huber_and_smooth_l1(ours, theirs, reduction):
    compare(lambda a, b: ours(a, b, reduction), lambda a, b: theirs(a, b, reduction),
            randn(2, 3, 4, seed=1) * 2, randn(2, 3, 4, seed=2))

# ----- batch norm ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5, 5)], ids=["NC", "NCHW"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm(training, shape):
    stats = [RNG(5).standard_normal(3).astype(np.float32), RNG(6).uniform(0.5, 2, 3).astype(np.float32)]
    ours_stats = [s.copy() for s in stats]
    torch_stats = [torch.tensor(s) for s in stats]
    compare(lambda x, w, b: F.batch_norm(x, *ours_stats, w, b, training=training, momentum=0.2, eps=1e-3),
            lambda x, w, b: TF.batch_norm(x, *torch_stats, w, b, training=training, momentum=0.2, eps=1e-3),
            randn(*shape, seed=1) * 2 + 1, 1 + randn(3, seed=2) * 0.3, randn(3, seed=3))
    close(ours_stats[0], torch_stats[0], what="running_mean")
    close(ours_stats[1], torch_stats[1], what="running_var")


def test_batchnorm2d_layer_over_steps_then_eval():
    ours, theirs = nn.BatchNorm2d(3, momentum=0.3), torch.nn.BatchNorm2d(3, momentum=0.3)
    for k in range(3):
        x = (randn(4, 3, 5, 5, seed=k) * (k + 1) + k).astype(np.float32)
        close(ours(Tensor(x)).data, theirs(torch.tensor(x)), what=f"train step {k}")
    close(ours.running_mean, theirs.running_mean, what="running_mean")
    close(ours.running_var, theirs.running_var, what="running_var")
    x = randn(2, 3, 5, 5, seed=9).astype(np.float32)
    close(ours.eval()(Tensor(x)).data, theirs.eval()(torch.tensor(x)), what="eval")


# ----- LeNet-5: forward, gradients and optimizer steps ------------------------------------------------
def torch_lenet():
    t = torch.nn
    return t.Sequential(t.Conv2d(1, 6, 5, padding=2), t.ReLU(), t.MaxPool2d(2), t.Conv2d(6, 16, 5), t.ReLU(),
                        t.MaxPool2d(2), t.Flatten(), t.Linear(400, 120), t.ReLU(), t.Linear(120, 84), t.ReLU(),
                        t.Linear(84, 10))


def twin_lenets():
    ours = LeNet5(rng=RNG(0))
    for name, p in ours.named_parameters():
        if name.endswith("bias"):  # biases start at zero; make them matter
            p.data[...] = RNG(len(name)).uniform(-0.1, 0.1, p.shape)
    theirs = torch_lenet()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return ours, theirs


def lenet_batch(seed):
    rng = RNG(100 + seed)
    return rng.standard_normal((8, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 8)


def backward_both(ours, theirs, seed):
    x, y = lenet_batch(seed)
    loss = F.cross_entropy(ours(Tensor(x)), y)
    ref = TF.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
    loss.backward()
    ref.backward()
    return loss, ref


def test_lenet5_forward_and_gradients():
    ours, theirs = twin_lenets()
    loss, ref = backward_both(ours, theirs, 0)
    close(loss.data, ref, what="loss")
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        close(p.grad, q.grad, what=f"gradient of {name}")


def assert_same_weights(ours, theirs, when):
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        close(p.data, q, what=f"{name} {when}")


SGD_CONFIGS = {
    "plain": dict(lr=0.05),
    "momentum": dict(lr=0.05, momentum=0.9),
    "momentum_weight_decay": dict(lr=0.05, momentum=0.9, weight_decay=5e-3),
    "nesterov_weight_decay": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-3),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.3),
}


@pytest.mark.parametrize("config", SGD_CONFIGS.values(), ids=SGD_CONFIGS.keys())
def test_lenet5_sgd_steps(config):
    ours, theirs = twin_lenets()
    opt, ref = optim.SGD(ours.parameters(), **config), torch.optim.SGD(theirs.parameters(), **config)
    for step in range(3):  # later steps exercise the momentum buffer
        opt.zero_grad()
        ref.zero_grad()
        backward_both(ours, theirs, step)
        opt.step()
        ref.step()
        assert_same_weights(ours, theirs, f"after step {step + 1}")


ADAM_CONFIGS = {
    "adam": (optim.Adam, torch.optim.Adam, dict(lr=1e-3)),
    "adam_betas_weight_decay": (optim.Adam, torch.optim.Adam, dict(lr=2e-3, betas=(0.8, 0.99), weight_decay=1e-2)),
    "adamw": (optim.AdamW, torch.optim.AdamW, dict(lr=1e-3)),
    "adamw_strong_decay": (optim.AdamW, torch.optim.AdamW, dict(lr=1e-3, weight_decay=0.1, eps=1e-6)),
}


@pytest.mark.parametrize("ours_cls, torch_cls, config", ADAM_CONFIGS.values(), ids=ADAM_CONFIGS.keys())
def test_lenet5_adam_steps(ours_cls, torch_cls, config):
    # Adam divides by sqrt(v) + eps, so where |grad| ~ eps float32 rounding in the gradient
    # grows by up to lr/eps in the step: both optimizers get torch's gradients (gradient parity
    # is checked above), and the comparison isolates the update rule.
    ours, theirs = twin_lenets()
    opt, ref = ours_cls(ours.parameters(), **config), torch_cls(theirs.parameters(), **config)
    for step in range(3):
        opt.zero_grad()
        ref.zero_grad()
        backward_both(ours, theirs, step)
        for p, q in zip(ours.parameters(), theirs.parameters()):
            p.grad = q.grad.numpy().copy()
        opt.step()
        ref.step()
        assert_same_weights(ours, theirs, f"after step {step + 1}")


def test_adam_parameter_that_starts_late():
    # a parameter without a gradient at the first step (a frozen or unused branch) keeps its
    # own step count for bias correction in torch
    ours, theirs = [nn.Parameter(np.ones(3)) for _ in range(2)], [torch.ones(3, requires_grad=True) for _ in range(2)]
    opt, ref = optim.Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    for step in range(3):
        for k in range(2 if step else 1):
            g = RNG(step * 2 + k).standard_normal(3).astype(np.float32)
            ours[k].grad, theirs[k].grad = g.copy(), torch.tensor(g)
        opt.step()
        ref.step()
    for p, q in zip(ours, theirs):
        close(p.data, q)


# ----- learning-rate schedules ----------------------------------------------------------------------------------
def schedules(make_ours, make_theirs, steps, optimizer="sgd"):
    """lr and momentum (SGD) or beta1 (Adam) sequences of both, starting before the first step."""
    if optimizer == "sgd":
        opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=0.1, momentum=0.9)
        ref = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    else:
        opt = optim.Adam([nn.Parameter(np.zeros(1))], lr=0.1)
        ref = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.1)
    ours, theirs = make_ours(opt), make_theirs(ref)

    def momentum(o, group=None):
        if group is not None:
            return group["momentum"] if "momentum" in group else group["betas"][0]
        return o.momentum if hasattr(o, "momentum") else o.betas[0]

    seq, ref_seq = [(opt.lr, momentum(opt))], [(ref.param_groups[0]["lr"], momentum(None, ref.param_groups[0]))]
    for _ in range(steps):
        ref.step()
        ours.step()
        theirs.step()
        seq.append((opt.lr, momentum(opt)))
        ref_seq.append((ref.param_groups[0]["lr"], momentum(None, ref.param_groups[0])))
    return np.array(seq), np.array(ref_seq)


@pytest.mark.parametrize("step_size, gamma", [(1, 0.9), (3, 0.5), (10, 0.1)])
def test_step_lr(step_size, gamma):
    seq, ref = schedules(lambda o: optim.StepLR(o, step_size, gamma),
                         lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma), 25)
    np.testing.assert_allclose(seq, ref, rtol=1e-12)


@pytest.mark.parametrize("T_max, eta_min", [(10, 0.0), (7, 1e-3), (1, 0.01)])
def test_cosine_annealing_lr_up_to_T_max(T_max, eta_min):
    # torch keeps following the cosine back up after T_max; convscope stays at eta_min
    seq, ref = schedules(lambda o: optim.CosineAnnealingLR(o, T_max, eta_min),
                         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max, eta_min), T_max)
    np.testing.assert_allclose(seq, ref, rtol=1e-9, atol=1e-15)


ONE_CYCLE = {
    "defaults": dict(max_lr=0.1, total_steps=20),
    "short_warmup": dict(max_lr=0.5, total_steps=13, pct_start=0.15, div_factor=10.0, final_div_factor=100.0),
    "long_warmup_momenta": dict(max_lr=1.0, total_steps=30, pct_start=0.6, base_momentum=0.8, max_momentum=0.9),
}


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("config", ONE_CYCLE.values(), ids=ONE_CYCLE.keys())
def test_one_cycle_lr_and_momentum(config, optimizer):
    seq, ref = schedules(lambda o: optim.OneCycleLR(o, **config),
                         lambda o: torch.optim.lr_scheduler.OneCycleLR(o, **config),
                         config["total_steps"] - 1, optimizer)
    np.testing.assert_allclose(seq, ref, rtol=1e-9, atol=1e-15)
