"""Beyond classification, side by side: the locator, the U-Net and the grid detector trained by
convscope and by PyTorch, with the same recipe, on the same data, from the same initial weights.

    python benchmarks/tasks_vs_torch.py                          # all three tasks (about 40 min on 2 cores)
    python benchmarks/tasks_vs_torch.py --tasks detection --epochs 1

For each task, convscope trains exactly as ``convscope train --model M --data D`` does (the
model's recipe: optimizer, one-cycle schedule, batch size, epochs; the run library, in a
temporary folder). PyTorch then trains a copy of the same network, built layer for layer and
loaded with the same initial weights, on batches from convscope's DataLoader (the same batch
size, shuffled by a generator of the same seed), with the same optimizer, schedule
(``torch.optim.lr_scheduler.OneCycleLR``) and loss, written in torch. Both are scored on the validation split by
convscope's own task code (:mod:`convscope.tasks`), so the figures differ only by training.
Times are of the training epochs only (no data loading, no validation), one thread each
unless ``--threads`` says otherwise. torch is a test-only dependency: install torch==2.13.0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def _threads(argv):
    """--threads N from the command line (default 1), read before NumPy starts its BLAS."""
    for i, arg in enumerate(argv):
        if arg.startswith("--threads"):
            return arg.split("=", 1)[1] if "=" in arg else argv[i + 1]
    return "1"


os.environ["OPENBLAS_NUM_THREADS"] = os.environ.get("OPENBLAS_NUM_THREADS") or _threads(sys.argv)
import numpy as np  # noqa: E402 - after the thread setting

TASKS = {"positions": ("locator", "digit-centres"), "segmentation": ("unet", "digit-masks"),
         "detection": ("detector", "digit-scenes")}
FIGURES = {"positions": ("mpe", "mean centre error (px)"), "segmentation": ("miou", "mIoU"),
           "detection": ("map50", "mAP@0.5")}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    parser.add_argument("--epochs", type=int, help="override every recipe's epochs")
    parser.add_argument("--threads", type=int, default=1, help="threads for each framework (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    print(f"threads: {args.threads} each (OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
          f"torch {torch.__version__} set_num_threads({args.threads})); load average before: "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for task in args.tasks.split(","):
        if task not in TASKS:
            sys.exit(f"unknown task {task!r}; expected some of {', '.join(TASKS)}")
        rows.append(compare(task, args.epochs, args.seed))
    print()
    print(f"{'task':<13} {'model':<9} {'epochs':>6}  {'convscope s':>11} {'torch s':>8} {'speed':>6}  "
          f"{'figure':<22} {'convscope':>9} {'torch':>8}")
    for r in rows:
        print(f"{r['task']:<13} {r['model']:<9} {r['epochs']:>6}  {r['convscope_s']:>11.1f} {r['torch_s']:>8.1f} "
              f"{r['torch_s'] / r['convscope_s']:>6.2f}  {r['figure']:<22} {r['convscope']:>9.4f} {r['torch']:>8.4f}")
    print("speed: torch seconds / convscope seconds (above 1: convscope is faster); load average after: "
          f"{os.getloadavg()[0]:.2f}")


def compare(task_name, epochs, seed):
    """Train one task's model in both frameworks; their training seconds and validation figure."""
    from convscope.runs import RunOptions, prepare_run
    model_name, data_name = TASKS[task_name]
    with tempfile.TemporaryDirectory() as folder:
        run = prepare_run(RunOptions(model=model_name, data=data_name, epochs=epochs, seed=seed,
                                     out=os.path.join(folder, "run")))
        initial = {k: v.copy() for k, v in run.model.state_dict().items()}
        print(f"\n{task_name}: {model_name} on {data_name}, {run.epochs} epochs, convscope ...", flush=True)
        history = run.train()
        run.close()
    key, words = FIGURES[task_name]
    ours = {"s": sum(r["seconds"] for r in history), "figure": history[-1][f"val_{key}"]}
    print(f"  convscope: {ours['s']:.1f} s, {words} {ours['figure']:.4f}; torch ...", flush=True)
    theirs = train_torch(run, initial, seed)
    print(f"  torch: {theirs['s']:.1f} s, {words} {theirs['figure']:.4f}", flush=True)
    return {"task": task_name, "model": model_name, "epochs": run.epochs, "convscope_s": ours["s"],
            "torch_s": theirs["s"], "figure": words, "convscope": ours["figure"], "torch": theirs["figure"]}


def train_torch(run, initial, seed):
    """The same recipe in PyTorch on a copy of the network that starts from the same weights."""
    import torch

    from convscope.data import DataLoader
    net = torch_copy(run.model)
    missing, unexpected = net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                                               for k, v in initial.items()}, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    recipe, task = run.recipe, run.task
    optimizer = torch.optim.Adam(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    loader = DataLoader(run.train_set, batch_size=recipe.batch_size, shuffle=True, rng=np.random.default_rng(seed))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=run.epochs * len(loader))
    loss_fn, seconds = torch_loss(task), 0.0
    for _ in range(run.epochs):
        net.train()
        start = time.perf_counter()
        for x, y in loader:
            loss = loss_fn(net(torch.from_numpy(x)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        seconds += time.perf_counter() - start
    net.eval()
    val = DataLoader(run.val_set, batch_size=100)
    with torch.no_grad():
        outputs = np.concatenate([net(torch.from_numpy(x)).numpy() for x, _ in val])
    figures = task.metrics(task.batch_sums(outputs, run.val_set.targets), len(outputs))
    return {"s": seconds, "figure": figures[FIGURES[task.kind][0] if task.kind in FIGURES else "mpe"]}


def torch_loss(task):
    """The task's loss written in torch (targets prepared by convscope's numpy code)."""
    import torch
    import torch.nn.functional as TF

    from convscope import heatmaps
    if task.kind == "positions":
        return lambda out, y: TF.mse_loss(out, torch.from_numpy(np.asarray(y, np.float32) / np.float32(task.scale)))
    if task.kind == "segmentation":
        return lambda out, y: TF.cross_entropy(out, torch.from_numpy(np.asarray(y, np.int64)))

    def detection_loss(out, y):
        y, k = np.asarray(y), task.num_classes
        heat, regression, mask = (torch.from_numpy(a) for a in heatmaps.encode(
            y[..., :4], y[..., 4], k, tuple(out.shape[2:]), task.stride(tuple(out.shape))))
        z, centre = out[:, :k], (heat == 1).float()
        p = torch.sigmoid(z)
        focal = -((1 - p) ** 2 * TF.logsigmoid(z) * centre
                  + (1 - heat) ** 4 * p ** 2 * TF.logsigmoid(-z) * (1 - centre))
        box = (out[:, k:] - regression).abs() * mask
        return (focal.sum() + box.sum()) / max(float(mask.sum()), 1.0)
    return detection_loss


def torch_copy(module):
    """A torch network with the same layers, names and shapes as a convscope one."""
    from torch import nn as tnn

    from convscope import models, nn
    kind = type(module)
    if isinstance(module, models.UNet):
        return TorchUNet(module)
    if isinstance(module, nn.Sequential):
        return tnn.Sequential(*[torch_copy(child) for child in module])
    if kind is nn.Conv2d:
        return tnn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                          module.dilation, module.groups, bias=module.bias is not None)
    if kind is nn.ConvTranspose2d:
        return tnn.ConvTranspose2d(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                                   module.padding, module.output_padding, module.groups, module.bias is not None,
                                   module.dilation)
    if kind is nn.BatchNorm2d:
        return tnn.BatchNorm2d(module.num_features, module.eps, module.momentum)
    if kind is nn.MaxPool2d:
        return tnn.MaxPool2d(module.kernel_size, module.stride, module.padding, ceil_mode=module.ceil_mode)
    if kind is nn.Linear:
        return tnn.Linear(module.in_features, module.out_features)
    simple = {nn.ReLU: tnn.ReLU, nn.Flatten: tnn.Flatten}
    if kind in simple:
        return simple[kind]()
    raise TypeError(f"no torch copy for {kind.__name__}")


def _torch_unet_class():
    import torch
    from torch import nn as tnn

    class TorchUNet(tnn.Module):
        """convscope's UNet in torch: the same children, the same forward."""

        def __init__(self, unet):
            super().__init__()
            self.down, self.pool = torch_copy(unet.down), torch_copy(unet.pool)
            self.bottom, self.up = torch_copy(unet.bottom), torch_copy(unet.up)
            self.dec, self.head = torch_copy(unet.dec), torch_copy(unet.head)

        def forward(self, x):
            skips = []
            for encode in self.down:
                x = encode(x)
                skips.append(x)
                x = self.pool(x)
            x = self.bottom(x)
            for up, decode, skip in zip(self.up, self.dec, reversed(skips)):
                x = decode(torch.cat([up(x), skip], dim=1))
            return self.head(x)
    return TorchUNet


def TorchUNet(unet):  # noqa: N802 - builds the class on first use, so torch is imported only when run
    return _torch_unet_class()(unet)


if __name__ == "__main__":
    main()
