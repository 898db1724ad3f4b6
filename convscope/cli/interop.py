"""Interop commands: ``export`` (a model to ONNX) and ``import-torch`` (PyTorch weights in).

    convscope export runs/lenet --onnx lenet.onnx
    convscope import-torch weights.safetensors --model lenet5 --classes 10 --input 1x28x28 --out lenet.safetensors

MODEL is a model file, a run folder holding one, or a zoo name (untrained, seed 0). Each
prints what it wrote; a bad file ends in one line naming it and exit code 1.
"""

from __future__ import annotations

import argparse
import json

from .inspect import InspectError, load, reports_errors


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="write a model as ONNX (opset 18), for onnxruntime and others",
                              description="Write MODEL as an ONNX graph (opset 18, IR version 8, a free batch "
                                          "axis) that onnxruntime runs with convscope's results. "
                                          "Needs: pip install convscope[onnx]")
    p.add_argument("model", help="model file (.safetensors), run folder or zoo name")
    p.add_argument("--onnx", required=True, metavar="PATH", help="the .onnx file to write (required, no default)")
    p.add_argument("--input-shape", metavar="C,H,W", help="input shape (default: the one the model file records)")
    p.set_defaults(run=run_export)

    p = subparsers.add_parser("import-torch", help="make a model file from PyTorch weights (safetensors)",
                              description="Build a zoo model and load a PyTorch state_dict saved with "
                                          "safetensors.torch.save_file into it, by names and shapes; write a "
                                          "model file that evaluate and predict accept.")
    p.add_argument("weights", help="the state_dict as a .safetensors file (never a pickle)")
    p.add_argument("--model", required=True,
                   help="zoo model with the same layers: lenet5, vgg, resnet... (required, no default)")
    p.add_argument("--classes", type=int, help="classes (or outputs) of the model (default: the zoo's)")
    p.add_argument("--input", default=None, metavar="CxHxW", help="input shape it was trained on (default: the zoo's)")
    p.add_argument("--config", metavar="JSON",
                   help='other constructor arguments, e.g. \'{"width": 16}\' (default: none)')
    p.add_argument("--mean", metavar="M[,M...]", help="per-channel input mean used in training (default 0)")
    p.add_argument("--std", metavar="S[,S...]", help="per-channel input std used in training (default 1)")
    p.add_argument("--dataset", help="dataset it was trained on, evaluate's --data (default: none)")
    p.add_argument("--out", required=True, help="the model file to write, .safetensors (required, no default)")
    p.set_defaults(run=run_import_torch)


@reports_errors
def run_export(args: argparse.Namespace) -> int:
    from ..interop import ExportError, export_onnx
    model, meta = load(args.model, args.input_shape)
    metadata = {key: json.dumps(meta.get(key)) for key in ("class_names", "input_shape", "mean", "std", "task")
                if meta.get(key) is not None}
    try:
        summary = export_onnx(model, args.onnx, meta["input_shape"], metadata)
    except ExportError as error:
        raise InspectError(f"{args.model}: {error}") from None
    nodes = ", ".join(f"{op} {count}" for op, count in summary["nodes"].items())
    shape = " x ".join(map(str, summary["input"])), " x ".join(map(str, summary["output"]))
    print(f"wrote {summary['path']} (ONNX opset {summary['opset']}, IR version {summary['ir_version']}, "
          f"{summary['bytes'] / 1e6:.2f} MB)")
    print(f"  input {shape[0]} -> output {shape[1]}; {sum(summary['nodes'].values())} nodes ({nodes}), "
          f"{summary['initializers']} initializers")
    return 0


def _numbers(text, what):
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise InspectError(f"--{what} must be numbers separated by commas, got {text!r}") from None


def _shape(text, name):
    from ..models import ZOO_INPUTS
    if text is None:
        if name not in ZOO_INPUTS:
            raise InspectError(f"unknown model {name!r}; the zoo has {', '.join(sorted(ZOO_INPUTS))}")
        return list(ZOO_INPUTS[name])
    try:
        shape = [int(v) for v in text.lower().replace(",", "x").split("x")]
    except ValueError:
        shape = []
    if len(shape) != 3 or min(shape) < 1:
        raise InspectError(f"--input must look like CxHxW (e.g. 1x28x28), got {text!r}")
    return shape


def run_import_torch(args: argparse.Namespace) -> int:
    from ..interop import import_torch_model
    try:
        config = json.loads(args.config) if args.config else {}
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict):
        raise InspectError(f"--config must be a JSON object such as '{{\"width\": 16}}', got {args.config!r}")
    shape = _shape(args.input, args.model)
    mean = _numbers(args.mean, "mean") if args.mean else None
    std = _numbers(args.std, "std") if args.std else None
    for what, values in (("mean", mean), ("std", std)):
        if values is not None and len(values) != shape[0]:
            raise InspectError(f"--{what} needs {shape[0]} value(s), one per input channel, got {len(values)}")
    summary = import_torch_model(args.weights, args.out, args.model, shape, args.classes, config, mean, std,
                                 args.dataset)
    skipped = f"; skipped {len(summary['skipped'])} num_batches_tracked counters" if summary["skipped"] else ""
    print(f"wrote {summary['path']}: {summary['model']} with {summary['parameters']:,} weights from "
          f"{args.weights}{skipped}")
    return 0


run_import_torch.__name__ = "run_import-torch"  # errors read "convscope import-torch: error: ..."
run_import_torch = reports_errors(run_import_torch)
