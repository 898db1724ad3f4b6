"""What data-parallel training costs: Allreduce times, compute per step, and a cost model.

    mpiexec -n 2 python benchmarks/allreduce.py allreduce   # times Allreduce of float32 buffers
    python benchmarks/allreduce.py compute                  # one process: training time per image
    python benchmarks/allreduce.py model --latency-us L --bandwidth-gbs B --lenet-ms-per-image X --vgg-ms-per-image Y

``allreduce`` times ``comm.Allreduce`` (sum, in place) of buffers from 1 KB to 16 MB, among
them LeNet-5's and the VGG net's gradients (one bucket each), and fits the ring-allreduce
model ``t = 2(p-1)/p * bytes / bandwidth + 2(p-1) * latency`` to them (least squares; with
p = 2: ``t = bytes / bandwidth + 2 * latency``); the fit weighs relative errors, so the small
buffers fix the latency. ``model`` prints, for 2 to 64 ranks and a global batch of 256, the
time of one step's Allreduce against its compute (the per-image training time times 256/p;
the step is not overlapped, so efficiency = compute / (compute + allreduce)).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

SIZES = [256, 4096, 65536, 262144, 1 << 20, 4 << 20]  # float32 values: 1 KB .. 16 MB
PARAMETERS = ("lenet5", "vgg")  # the zoo models whose gradients are timed


def parameter_counts():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from convscope import models
    return {name: sum(p.data.size for p in models.build(name, rng=np.random.default_rng(0)).parameters())
            for name in PARAMETERS}


def time_allreduce(comm, mpi, values, repeats):
    buffer = np.ones(values, dtype=np.float32)
    times = []
    for _ in range(repeats + 3):
        comm.Barrier()
        start = time.perf_counter()
        comm.Allreduce(mpi.IN_PLACE, buffer, op=mpi.SUM)
        times.append(time.perf_counter() - start)
    return float(np.median(times[3:]))


def run_allreduce(args):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    counts = parameter_counts()
    sizes = sorted(set(SIZES) | set(counts.values()))
    measured = {n: time_allreduce(comm, MPI, n, args.repeats) for n in sizes}
    if comm.Get_rank() != 0:
        return
    p = comm.Get_size()
    print(f"Allreduce (sum, in place) of float32 buffers, {p} ranks, median of {args.repeats}; load average "
          f"{os.getloadavg()[0]:.2f}")
    names = {n: name for name, n in counts.items()}
    for n, seconds in measured.items():
        label = f"  ({names[n]}'s gradients)" if n in names else ""
        print(f"{4 * n:>10,} bytes  {seconds * 1e6:>9.1f} us  {4 * n / seconds / 1e9:6.2f} GB/s{label}")
    nbytes = np.array([4.0 * n for n in measured])
    design = np.stack([2 * (p - 1) / p * nbytes, np.full_like(nbytes, 2 * (p - 1))], axis=1)
    seconds = np.array(list(measured.values()))  # relative errors: small buffers count as much as big ones
    (inverse_bandwidth, latency), *_ = np.linalg.lstsq(design / seconds[:, None], np.ones_like(seconds), rcond=None)
    print(f"ring fit: latency {latency * 1e6:.1f} us, bandwidth {1 / inverse_bandwidth / 1e9:.2f} GB/s")


def run_compute(args):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from convscope import functional as F
    from convscope import models, optim
    from convscope.cli.process import configure
    from convscope.tensor import Tensor
    configure()  # as `convscope train` runs: one BLAS thread, freed memory kept
    rng = np.random.default_rng(0)
    for name in PARAMETERS:
        model = models.build(name, rng=rng)
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        for batch in args.batches:
            x, y = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, batch)
            times = []
            for _ in range(args.repeats + 2):
                start = time.perf_counter()
                loss = F.cross_entropy(model(Tensor(x)), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                times.append(time.perf_counter() - start)
            step = float(np.median(times[2:]))
            print(f"{name:7s} batch {batch:4d}: {step * 1e3:8.2f} ms per step, {step / batch * 1e3:.3f} ms per image")


def run_model(args):
    counts = parameter_counts()
    per_image = {"lenet5": args.lenet_ms_per_image / 1e3, "vgg": args.vgg_ms_per_image / 1e3}
    print(f"ring allreduce, latency {args.latency_us} us, bandwidth {args.bandwidth_gbs} GB/s; global batch 256")
    print(f"{'ranks':>5} | " + " | ".join(f"{name} ({counts[name]:,} weights): allreduce / compute ms, efficiency"
                                         for name in counts))
    for p in (2, 4, 8, 16, 32, 64):
        cells = []
        for name, count in counts.items():
            reduce = 2 * (p - 1) / p * 4 * count / (args.bandwidth_gbs * 1e9) + 2 * (p - 1) * args.latency_us / 1e6
            compute = per_image[name] * 256 / p
            cells.append(f"{reduce * 1e3:7.3f} / {compute * 1e3:8.2f}  {compute / (compute + reduce):5.0%}")
        print(f"{p:>5} | " + " | ".join(cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("allreduce", "compute", "model"))
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    # the defaults: what `allreduce` and `compute` measured on the 2-core machine of the README
    parser.add_argument("--latency-us", type=float, default=6.0)
    parser.add_argument("--bandwidth-gbs", type=float, default=1.3)
    parser.add_argument("--lenet-ms-per-image", type=float, default=0.517)
    parser.add_argument("--vgg-ms-per-image", type=float, default=10.34)
    args = parser.parse_args()
    {"allreduce": run_allreduce, "compute": run_compute, "model": run_model}[args.mode](args)


if __name__ == "__main__":
    main()
