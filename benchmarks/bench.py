"""convscope against PyTorch on this CPU, side by side in one process.

Modes:
    python benchmarks/bench.py steps    # training steps and inference, batch 1 / 64 / 256
    python benchmarks/bench.py memory   # peak resident memory of a LeNet-5 training loop, batch 256
    python benchmarks/bench.py train    # a whole `convscope train` run vs the same recipe in torch

Timings alternate between the two frameworks round by round and report medians, so drift
of the shared machine hits both alike; ratios are what to compare (> 1: convscope faster).

Both frameworks run with the same settings, printed with the figures and the load average:

* ``--threads N`` (default 1) BLAS threads for NumPy and intra-op threads for torch. On a
  2-core machine shared with other jobs, threads wait on each other: while two other
  processes kept both cores busy, a LeNet training step (batch 256) took 12x longer in
  convscope and 2.7x longer in torch with 2 threads each than with 1. Idle OpenMP threads
  sleep (OMP_WAIT_POLICY=PASSIVE); spinning ones made torch up to 250x slower.
* glibc keeps freed memory (trim threshold 1 GiB, mmap threshold 32 MiB; ``--default-malloc``
  turns this off). Otherwise the big arrays of every step go back to the OS and return as
  thousands of page faults per step (both frameworks, batch 256: up to a third of the time).
"""

import os
import sys


def early_settings(argv):
    """Thread counts must be fixed before NumPy's BLAS and torch's OpenMP load."""
    threads = argv[argv.index("--threads") + 1] if "--threads" in argv else "1"
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = threads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "--default-malloc" not in argv:  # for subprocesses; this process calls mallopt below
        os.environ.update(MALLOC_TRIM_THRESHOLD_=str(1 << 30), MALLOC_MMAP_THRESHOLD_=str(32 << 20))


early_settings(sys.argv)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from convscope import Tensor, models, no_grad, optim  # noqa: E402
from convscope import functional as F  # noqa: E402
from convscope.cli.process import keep_freed_memory  # noqa: E402

try:
    import torch
except ImportError:  # the benchmark still reports convscope alone
    torch = None


# ----- model pairs with identical weights ---------------------------------------------------
def torch_twin(model):
    """An equivalent torch.nn.Sequential with convscope's weights (Sequential models only).

    convscope's layers take PyTorch's names and arguments, so each layer's recorded
    constructor arguments (``config()``) build its torch twin directly.
    """
    twin = torch.nn.Sequential(*[getattr(torch.nn, type(layer).__name__)(**layer.config()) for layer in model])
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}, strict=False)
    return twin


def flops_per_image(model, shape):
    """(forward, training) FLOPs of one image: 2 per multiply-add of the conv and linear
    layers (from ``convscope.summary``); training adds the weight gradients (same cost as
    forward) and input gradients for every layer but the first."""
    from convscope.summary import summarize
    costs = [2 * r.mult_adds for r in summarize(model, shape) if r.module.role in ("conv", "linear")]
    return sum(costs), 3 * sum(costs) - costs[0]


def gemm_peak(seconds=1.0):
    """Best float32 GEMM rate (GFLOP/s) of this NumPy/BLAS, 1024^3 products."""
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        a @ a
        best = max(best, 2 * 1024 ** 3 / (time.perf_counter() - start) / 1e9)
    return best


# ----- timing ----------------------------------------------------------------------------
def make_steps(model, twin, batch, shape, train):
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + shape, dtype=np.float32)
    y = rng.integers(0, 10, batch)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def ours():
        if train:
            loss = F.cross_entropy(model(Tensor(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:
            with no_grad():
                model(Tensor(x))

    if twin is None:
        return ours, None
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    topt = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)

    def theirs():
        if train:
            loss = torch.nn.functional.cross_entropy(twin(tx), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()
        else:
            with torch.no_grad():
                twin(tx)

    return ours, theirs


def alternate(fns, seconds, round_seconds=0.0):
    """Run the functions in turn, round after round, for about ``seconds``; median step times.

    By default a round is one step of each function. With ``round_seconds`` each function
    runs consecutive steps for about that long per round, as in a training loop (warm
    caches); measured so (0.25 s), LeNet-5 training ratios were 0.92 at batch 64 and 0.82 at
    256, against 0.98-1.03 and 0.81-0.83 with one step per round.
    """
    fns = [f for f in fns if f is not None]
    for f in fns:
        f()
        f()
    times = [[] for _ in fns]
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times[0]) < 5:
        for f, record in zip(fns, times):
            round_end = time.perf_counter() + round_seconds
            while True:
                start = time.perf_counter()
                f()
                record.append(time.perf_counter() - start)
                if start >= round_end - record[-1]:
                    break
    return [float(np.median(t)) for t in times]


def run_steps(args):
    peak = gemm_peak()
    print(environment(args.malloc_kept))
    print(f"float32 GEMM peak (1024^3): {peak:.0f} GFLOP/s\n")
    header = f"{'model':8} {'mode':9} {'batch':>5} {'convscope img/s':>15} {'torch img/s':>12} {'ratio':>6} " \
             f"{'GFLOP/s':>8} {'% peak':>7}"
    print(header)
    print("-" * len(header))
    results = []
    for name in args.models:
        shape = (1, 28, 28)
        model = models.build(name, rng=np.random.default_rng(0))
        twin = torch_twin(model) if torch is not None else None
        fwd, train_flops = flops_per_image(model, shape)
        for train in (True, False):
            for batch in args.batches:
                if name == "vgg" and batch == 1 and train:
                    continue
                model.train(train)
                if twin is not None:
                    twin.train(train)
                times = alternate(make_steps(model, twin, batch, shape, train), args.seconds, args.round_seconds)
                ours = batch / times[0]
                theirs = batch / times[1] if len(times) > 1 else float("nan")
                gflops = ours * (train_flops if train else fwd) / 1e9
                mode = "train" if train else "inference"
                print(f"{name:8} {mode:9} {batch:>5} {ours:>15.0f} {theirs:>12.0f} {ours / theirs:>6.2f} "
                      f"{gflops:>8.1f} {100 * gflops / peak:>6.1f}%", flush=True)
                results.append(dict(model=name, mode=mode, batch=batch, convscope=ours, torch=theirs,
                                    latency_us=1e6 * times[0] if batch == 1 else None))
    for r in results:
        if r["batch"] == 1:
            print(f"\n{r['model']} batch-1 {r['mode']} latency: convscope {1e6 / r['convscope']:.0f} us, "
                  f"torch {1e6 / r['torch']:.0f} us (ratio {r['torch'] / r['convscope']:.2f}x of torch's)")
    return results


def environment(malloc_kept):
    env = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    torch_threads = torch.get_num_threads() if torch is not None else "-"
    malloc = "freed memory kept (trim 1 GiB, mmap 32 MiB)" if malloc_kept else "default malloc"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
            f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; numpy {np.__version__}, "
            f"torch {torch.__version__ if torch else '-'}\nthreads: torch {torch_threads}, "
            f"{', '.join(f'{k}={v}' for k, v in env.items())}; {malloc}\n{blas_kernels()}")


def blas_kernels():
    """NumPy's BLAS and the kernels it runs: they change these figures (OpenBLAS picks AVX-512
    kernels on an AVX-512 CPU unless OPENBLAS_CORETYPE names others)."""
    from threadpoolctl import threadpool_info
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    found = ", ".join(f"{i['internal_api']} {i['version']} ({i.get('architecture') or '?'} kernels)" for i in blas)
    return f"numpy BLAS: {found or 'not found'}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}"


# ----- memory ------------------------------------------------------------------------------
def memory_child(framework, steps=30, batch=256):
    """Train LeNet-5 at batch 256 for ``steps`` steps; print the peak RSS in MB."""
    model = models.lenet5(rng=np.random.default_rng(0))
    fn, twin_fn = make_steps(model, torch_twin(model) if framework == "torch" else None, batch, (1, 28, 28), True)
    step = twin_fn if framework == "torch" else fn
    for _ in range(steps):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_memory(args):
    print(environment(args.malloc_kept))
    peaks = {}
    for framework in ("convscope", "torch") if torch is not None else ("convscope",):
        flags = ["--threads", str(args.threads)] + ([] if args.malloc_kept else ["--default-malloc"])
        out = subprocess.run([sys.executable, __file__, "memory-child", framework] + flags,
                             capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(out.stderr)
        peaks[framework] = float(out.stdout.split()[-1])
        print(f"{framework:9} LeNet-5 training, batch 256: peak RSS {peaks[framework]:.0f} MB")
    if "torch" in peaks:
        print(f"difference: {peaks['convscope'] - peaks['torch']:+.0f} MB (target: at most +100 MB)")
    return peaks


# ----- whole training runs ------------------------------------------------------------------
def run_train(args):
    """Time `convscope train` and the same recipe (model, data, augmentation, schedule) in torch."""
    from convscope.data import DataLoader, load_splits
    from convscope.recipes import make_augment, recipe_for
    print(environment(args.malloc_kept))
    out = os.path.join("runs", "bench-train")
    if os.path.exists(out):
        import shutil
        shutil.rmtree(out)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "convscope.cli", "train", "--model", "lenet5", "--data", args.data,
                    "--epochs", str(args.epochs), "--out", out, "--no-report", "--seed", "0"], check=True,
                   env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    ours = time.perf_counter() - start
    history = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    if torch is None:
        print(f"convscope: {ours:.1f} s; torch not installed")
        return
    recipe = recipe_for("lenet5", args.data)
    train_set, val_set = load_splits(args.data, ("train", "val"))
    rng = np.random.default_rng(0)
    model = models.lenet5(rng=rng)
    twin = torch_twin(model)
    loader = DataLoader(train_set, recipe.batch_size, shuffle=True, rng=rng,
                        augment=make_augment(recipe.augment, (28, 28)))
    if recipe.optimizer != "adamw" or recipe.schedule != "onecycle":
        raise SystemExit("bench train mirrors AdamW + one-cycle; "
                         f"the lenet5 recipe is now {recipe.optimizer} + {recipe.schedule}")
    topt = torch.optim.AdamW(twin.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=recipe.lr, total_steps=args.epochs * len(loader))
    start = time.perf_counter()
    for _ in range(args.epochs):
        twin.train()
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y))
            topt.zero_grad()
            loss.backward()
            topt.step()
            sched.step()
        twin.eval()
        with torch.no_grad():
            val = DataLoader(val_set, 500)
            correct = sum(int((twin(torch.from_numpy(x)).argmax(1).numpy() == y).sum()) for x, y in val)
    theirs = time.perf_counter() - start
    print(f"convscope train ({args.epochs} epochs, whole command incl. start-up and saving): {ours:.1f} s "
          f"({sum(r['seconds'] for r in history):.1f} s in training epochs), val acc {history[-1]['val_acc']:.2%}")
    print(f"torch, same recipe and loader: {theirs:.1f} s, val acc {correct / len(val_set):.2%}")
    print(f"ratio torch/convscope time: {theirs / ours:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("steps", "memory", "train", "memory-child"))
    parser.add_argument("framework", nargs="?", default="convscope")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--models", nargs="+", default=["lenet5", "vgg"], help="for steps (default lenet5 vgg)")
    parser.add_argument("--seconds", type=float, default=6.0, help="time per configuration (default 6)")
    parser.add_argument("--round-seconds", type=float, default=0.0,
                        help="seconds of consecutive steps per framework and round (default 0: one step)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--data", default="digits")
    parser.add_argument("--threads", type=int, default=1, help="threads for each framework (default 1)")
    parser.add_argument("--default-malloc", action="store_true", help="let glibc return freed memory to the OS")
    args = parser.parse_args()
    args.malloc_kept = not args.default_malloc and keep_freed_memory()
    if torch is not None:
        torch.set_num_threads(args.threads)
    {"steps": run_steps, "memory": run_memory, "train": run_train,
     "memory-child": lambda a: memory_child(a.framework)}[args.mode](args)


if __name__ == "__main__":
    main()
