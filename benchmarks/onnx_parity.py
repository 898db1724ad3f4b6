"""Every zoo model exported to ONNX and run in onnxruntime beside convscope: the largest
difference of their outputs, the file size and the time to export.

    python benchmarks/onnx_parity.py [--batches 1,8,32] [--seed 0]

Batch norm gets random running statistics and affine weights first (an untrained model's are
0 / 1), so every layer's numbers matter. Needs onnx and onnxruntime.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort

from convscope import nn
from convscope.interop import onnx_model
from convscope.interop.onnx_export import require_onnx
from convscope.models import ZOO, ZOO_INPUTS, build
from convscope.tensor import Tensor, no_grad


def randomised(model, rng):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean[...] = rng.standard_normal(module.num_features)
            module.running_var[...] = rng.uniform(0.3, 3.0, module.num_features)
            module.weight.data[...] = rng.uniform(0.5, 1.5, module.num_features)
            module.bias.data[...] = rng.standard_normal(module.num_features)
    return model.eval()


def measure(name, batches, seed):
    rng = np.random.default_rng(seed)
    model = randomised(build(name, rng=rng), rng)
    start = time.perf_counter()
    proto = onnx_model(model, ZOO_INPUTS[name])
    seconds = time.perf_counter() - start
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    worst, scale = 0.0, 0.0
    for batch in batches:
        x = rng.standard_normal((batch, *ZOO_INPUTS[name])).astype(np.float32)
        with no_grad():
            ours = model(Tensor(x)).data
        theirs = session.run(None, {"input": x})[0]
        worst, scale = max(worst, float(np.abs(theirs - ours).max())), max(scale, float(np.abs(ours).max()))
    return (f"{name:8} {len(proto.graph.node):5d} nodes {len(proto.SerializeToString()) / 1e6:7.2f} MB  "
            f"export {seconds:5.2f} s  max |onnxruntime - convscope| {worst:.2e} (outputs up to {scale:.2f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,8,32", help="batch sizes (default 1,8,32)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    require_onnx()  # imported once, outside the timings
    print(f"onnxruntime {ort.__version__}, batches {batches}, seed {args.seed}")
    for name in sorted(ZOO):
        print(measure(name, batches, args.seed))


if __name__ == "__main__":
    main()
