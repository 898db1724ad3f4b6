"""ONNX export against onnxruntime (both test-only; skipped without them): every zoo model and a
table of small layer configurations give convscope's outputs within 1e-5, for a few batch sizes,
and pass ``onnx.checker`` with ``full_check=True``."""

import json
import sys

import numpy as np
import pytest

from convscope import functional as F
from convscope import nn
from convscope.cli import main
from convscope.interop import ExportError, export_onnx, onnx_model
from convscope.io import save_model
from convscope.models import ZOO, ZOO_INPUTS, build
from convscope.tensor import Tensor, no_grad
from convscope.windows import output_size

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng
BATCHES = (1, 2, 5)


def session(proto):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def randomise_statistics(model, rng):
    """Batch norm with running statistics and affine weights far from their defaults."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean[...] = rng.standard_normal(module.num_features)
            module.running_var[...] = rng.uniform(0.3, 3.0, module.num_features)
            if module.affine:
                module.weight.data[...] = rng.uniform(0.5, 1.5, module.num_features)
                module.bias.data[...] = rng.standard_normal(module.num_features)
    return model


def assert_runs_alike(model, input_shape, batches=BATCHES, seed=0):
    """onnxruntime and convscope agree within 1e-5 on random float32 inputs (eval mode)."""
    model = randomise_statistics(model, RNG(seed + 100)).eval()
    proto = onnx_model(model, input_shape)
    onnx.checker.check_model(proto, full_check=True)
    run = session(proto)
    for batch in batches:
        x = RNG(seed + batch).standard_normal((batch, *input_shape)).astype(np.float32)
        with no_grad():
            ours = model(Tensor(x)).data
        [theirs] = run.run(None, {"input": x})
        assert theirs.shape == ours.shape
        np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5, err_msg=f"batch {batch}")
    return proto


# ----- the zoo: every model registered, so a new one is covered ------------------------------------
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_runs_in_onnxruntime_as_in_convscope(name):
    assert_runs_alike(build(name, rng=RNG(0)), ZOO_INPUTS[name], batches=(1, 3))


def test_exported_file_is_stamped_opset_18_ir_8_with_a_free_batch_axis(tmp_path):
    summary = export_onnx(build("resnet", rng=RNG(0)), tmp_path / "resnet.onnx", (3, 32, 32))
    proto = onnx.load(tmp_path / "resnet.onnx")
    assert (proto.ir_version, [(o.domain, o.version) for o in proto.opset_import]) == (8, [("", 18)])
    assert summary["input"] == ["N", 3, 32, 32] and summary["output"] == ["N", 10]
    assert [v.name for v in proto.graph.input] == ["input"] and [v.name for v in proto.graph.output] == ["output"]
    assert summary["nodes"]["Add"] == 3 and summary["nodes"]["Conv"] == 9  # 3 blocks, two 1x1 shortcuts
    weights = {init.name for init in proto.graph.initializer}
    assert "stages.1.shortcut.0.weight" in weights and "fc.bias" in weights  # the state dict's names


# ----- one layer at a time, small random configurations -------------------------------------------
LAYER_CASES = {
    "conv_stride2_pad1": (lambda r: nn.Conv2d(3, 4, 3, stride=2, padding=1, rng=r), (3, 9, 9)),
    "conv_groups2_dilation2": (lambda r: nn.Conv2d(4, 6, 3, dilation=2, groups=2, padding=2, rng=r), (4, 9, 8)),
    "conv_depthwise_nonsquare": (lambda r: nn.Conv2d(3, 3, (3, 2), stride=(2, 1), padding=(1, 0), groups=3, rng=r),
                                 (3, 7, 6)),
    "conv_same_even_no_bias": (lambda r: nn.Conv2d(2, 3, 4, padding="same", bias=False, rng=r), (2, 7, 6)),
    "conv_transpose_output_padding": (lambda r: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1,
                                                                   rng=r), (4, 5, 6)),
    "conv_transpose_groups_dilation": (lambda r: nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, dilation=2, rng=r),
                                       (4, 4, 5)),
    "max_pool_k3_s2_p1": (lambda r: nn.MaxPool2d(3, 2, 1), (2, 7, 6)),
    "max_pool_ceil_would_start_in_pad": (lambda r: nn.MaxPool2d(2, 2, 1, ceil_mode=True), (1, 5, 7)),
    "avg_pool_pad_counted": (lambda r: nn.AvgPool2d(3, 1, 1), (2, 5, 5)),
    "avg_pool_ceil_overhang_pad_counted": (lambda r: nn.AvgPool2d(3, 2, 1, ceil_mode=True), (2, 6, 6)),
    "avg_pool_ceil_overhang_pad_excluded": (lambda r: nn.AvgPool2d(3, 2, 1, ceil_mode=True,
                                                                   count_include_pad=False), (2, 6, 6)),
    "avg_pool_ceil_nonsquare": (lambda r: nn.AvgPool2d((2, 3), 2, ceil_mode=True), (1, 5, 8)),
    "lp_pool_p2_ceil": (lambda r: nn.LPPool2d(2, 2, 2, ceil_mode=True), (2, 5, 5)),
    "lp_pool_p3_padded": (lambda r: nn.LPPool2d(3, 3, 2, padding=1), (1, 6, 7)),
    "lp_pool_p1_nonsquare": (lambda r: nn.LPPool2d(1, (2, 3), (2, 1)), (2, 6, 7)),
    "adaptive_avg_global": (lambda r: nn.AdaptiveAvgPool2d(1), (3, 5, 6)),
    "adaptive_avg_even_bins": (lambda r: nn.AdaptiveAvgPool2d((2, 3)), (2, 6, 6)),
    "upsample_nearest_x2": (lambda r: nn.Upsample(scale_factor=2), (2, 3, 4)),
    "upsample_nearest_x3_x1.5": (lambda r: nn.Upsample(scale_factor=(3, 1.5)), (1, 4, 5)),
    "upsample_nearest_size": (lambda r: nn.Upsample(size=(7, 10)), (1, 5, 4)),
    "upsample_bilinear_x2": (lambda r: nn.Upsample(scale_factor=2, mode="bilinear"), (2, 4, 3)),
    "upsample_bilinear_size_down_w": (lambda r: nn.Upsample(size=(9, 5), mode="bilinear"), (1, 4, 6)),
    "upsample_bilinear_align_corners": (lambda r: nn.Upsample(size=(7, 9), mode="bilinear", align_corners=True),
                                        (2, 4, 5)),
    "batch_norm": (lambda r: nn.BatchNorm2d(3), (3, 4, 4)),
    "batch_norm_no_affine_eps": (lambda r: nn.BatchNorm2d(3, eps=1e-3, affine=False), (3, 4, 4)),
    "relu": (lambda r: nn.ReLU(), (2, 3, 3)),
    "leaky_relu": (lambda r: nn.LeakyReLU(0.2), (2, 3, 3)),
    "sigmoid": (lambda r: nn.Sigmoid(), (2, 3, 3)),
    "tanh": (lambda r: nn.Tanh(), (2, 3, 3)),
    "softmax_classes": (lambda r: nn.Softmax(1), (4, 2, 3)),
    "softmax_last_axis": (lambda r: nn.Softmax(-1), (4, 2, 3)),
    "linear_on_maps_matmul": (lambda r: nn.Linear(6, 4, rng=r), (2, 5, 6)),
    "flatten_partial_reshape": (lambda r: nn.Flatten(2), (2, 3, 4)),
    "flatten_linear_gemm_no_bias": (lambda r: nn.Sequential(nn.Flatten(), nn.Linear(24, 5, bias=False, rng=r)),
                                    (2, 3, 4)),
    "dropout_is_identity": (lambda r: nn.Sequential(nn.Conv2d(2, 3, 3, rng=r), nn.Dropout(0.5, rng=r), nn.ReLU()),
                            (2, 5, 5)),
}


@pytest.mark.parametrize("make, input_shape", LAYER_CASES.values(), ids=LAYER_CASES.keys())
def test_layer_runs_in_onnxruntime_as_in_convscope(make, input_shape):
    assert_runs_alike(make(RNG(0)), input_shape)


class Gated(nn.Module):
    """Operations between layers: ``conv(x) * sigmoid(gate(x)) - x``, then ``cat`` with ``tanh(x)``."""

    def __init__(self, rng):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1, rng=rng)
        self.gate = nn.Conv2d(2, 2, 1, rng=rng)

    def forward(self, x):
        y = self.conv(x) * F.sigmoid(self.gate(x)) - x
        return F.relu(F.cat([y, F.tanh(x)], dim=1))


class GridHead(nn.Module):
    """A detection-style head: per-cell scores moved last, then one row of them per image."""

    def __init__(self, rng):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, stride=2, rng=rng)

    def forward(self, x):
        cells = self.conv(x).permute(0, 2, 3, 1)
        return cells.reshape(x.shape[0], -1, 3)


def test_transpose_and_reshape_between_layers_export():
    proto = assert_runs_alike(GridHead(RNG(0)), (2, 9, 7))
    assert {"Transpose", "Reshape"} <= {n.op_type for n in proto.graph.node}


def test_operations_between_layers_export():
    proto = assert_runs_alike(Gated(RNG(0)), (2, 5, 6))
    assert {"Mul", "Sigmoid", "Neg", "Add", "Concat", "Tanh", "Relu"} <= {n.op_type for n in proto.graph.node}


def test_ceil_mode_shapes_come_from_convscope_formula():
    # onnx's own shape inference gives 4 x 5 here: the last window would start in the padding
    proto = onnx_model(nn.MaxPool2d(2, 2, 1, ceil_mode=True), (1, 5, 7))
    dims = [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["N", 1, output_size(5, 2, 2, 1, ceil_mode=True), output_size(7, 2, 2, 1, ceil_mode=True)]
    assert dims[2:] == [3, 4]


# ----- what cannot be exported says what -----------------------------------------------------------
class Swish(nn.Module):
    """A layer of one's own, with no ONNX converter."""

    def forward(self, x):
        return x * F.sigmoid(x)


class SumOut(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, rng=rng)

    def forward(self, x):
        return self.conv(x).sum(axis=(2, 3))


class AddsConstant(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, rng=rng)

    def forward(self, x):
        return self.conv(x) + Tensor(np.ones((1, 2, 1, 1), np.float32))


class MergesBatch(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, rng=rng)

    def forward(self, x):
        return self.conv(x).reshape(-1)


@pytest.mark.parametrize("model, input_shape, words", [
    (nn.Sequential(nn.Conv2d(1, 2, 3, rng=RNG(0)), Swish()), (1, 6, 6), ["1 (Swish)", "no ONNX equivalent"]),
    (nn.LPPool2d(2.5, 2), (1, 4, 4), ["LPPool2d", "whole-number p", "2.5"]),
    (nn.AdaptiveAvgPool2d((3, 2)), (1, 7, 5), ["AdaptiveAvgPool2d", "uneven", "7x5"]),
    (nn.Flatten(0), (2, 3, 3), ["Flatten", "start_dim=0", "batch axis"]),
    (SumOut(RNG(0)), (1, 5, 5), ["operation 'sum'", "no ONNX equivalent"]),
    (AddsConstant(RNG(0)), (1, 5, 5), ["operation 'add'", "not computed from the input", "(1, 2, 1, 1)"]),
    (nn.Sequential(nn.Dropout(0.2)), (1, 3, 3), ["Sequential", "nothing to export"]),
    (MergesBatch(RNG(0)), (1, 3, 3), ["reshape", "batch axis"]),
], ids=["own_layer", "lp_fractional_p", "adaptive_uneven", "flatten_batch", "tensor_reduction", "constant",
        "identity", "reshape_batch"])
def test_what_has_no_equivalent_fails_naming_it(model, input_shape, words):
    with pytest.raises(ExportError) as error:
        onnx_model(model, input_shape)
    for word in words:
        assert word in str(error.value)


def test_without_onnx_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install convscope\[onnx\]"):
        onnx_model(nn.ReLU(), (1, 2, 2))


# ----- the command line -------------------------------------------------------------------------------
def test_cli_export_writes_a_model_onnxruntime_runs(tmp_path, capsys):
    model = randomise_statistics(build("vgg", width=4, rng=RNG(1)), RNG(2)).eval()
    save_model(tmp_path / "vgg.safetensors", model, class_names=list("abcdefghij"), input_shape=(1, 28, 28),
               mean=[0.1], std=[0.3])
    assert main(["export", str(tmp_path / "vgg.safetensors"), "--onnx", str(tmp_path / "vgg.onnx")]) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "vgg.onnx") in printed and "opset 18" in printed
    proto = onnx.load(tmp_path / "vgg.onnx")
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["class_names"]) == list("abcdefghij") and json.loads(props["mean"]) == [0.1]
    x = RNG(3).standard_normal((4, 1, 28, 28)).astype(np.float32)
    with no_grad():
        ours = model(Tensor(x)).data
    np.testing.assert_allclose(session(proto).run(None, {"input": x})[0], ours, rtol=1e-5, atol=1e-5)


def test_cli_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.safetensors"), "--onnx", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.safetensors" in err and "Traceback" not in err
    save_model(tmp_path / "lp.safetensors", nn.Sequential(nn.LPPool2d(2.5, 2), nn.Flatten()), input_shape=(1, 4, 4))
    assert main(["export", str(tmp_path / "lp.safetensors"), "--onnx", str(tmp_path / "lp.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lp.safetensors" in err and "whole-number p" in err
    assert not (tmp_path / "lp.onnx").exists()
