"""How long preparing one image for a digit model takes: today's ``preprocess_image`` against
the plain definitions it replaced (``tests/imageops_reference.py``), side by side in one process.

Inputs: a 280 x 280 drawing (light strokes on black, as a drawing canvas sends it) and a
320 x 240 photo (``--photo-kind``, see ``convscope.data.photos.KINDS``), both PNG files read
from disk each time. Rounds alternate between the two implementations and report medians
of the wall-clock time and of the process's CPU time (the work a server does per image,
less sensitive to other jobs on a shared machine than the wall clock), so drift hits both
alike. Both give the same array and notes (checked first).

Settings, printed with the figures: ``--threads N`` (default 1) BLAS threads
(OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS); freed memory kept in the process
as the ``convscope`` command does (``convscope.cli.process.keep_freed_memory``), unless
``--default-malloc``.

    python benchmarks/prepare_digit.py [--rounds 40] [--photo-kind noise] [--threads 1] [--default-malloc]
"""

import os
import sys

THREADS = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before NumPy loads
    os.environ[_name] = THREADS

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "tests")]

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from imageops_reference import drawing, reference_preprocess_image  # noqa: E402

from convscope.cli.process import keep_freed_memory  # noqa: E402
from convscope.data.photos import KINDS, write_photo  # noqa: E402
from convscope.data.preprocess import preprocess_image  # noqa: E402

DIGIT_MODEL = {"input_shape": [1, 28, 28], "preprocess": "digit", "mean": [0.13], "std": [0.31]}


def milliseconds(prepare, path):
    """(wall-clock, CPU) milliseconds of one preparation."""
    wall, cpu = time.perf_counter(), time.process_time()
    prepare(path, DIGIT_MODEL)
    return 1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--photo-kind", default="noise", choices=KINDS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", default="1", help="BLAS threads (set before NumPy loads)")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's malloc settings as they are")
    args = parser.parse_args(argv)
    kept = False if args.default_malloc else keep_freed_memory()
    rng, folder = np.random.default_rng(args.seed), Path(tempfile.mkdtemp(prefix="prepare-"))
    drawn = folder / "drawing.png"
    drawing(rng).save(drawn)
    inputs = {"drawing 280x280": drawn, f"photo ({args.photo_kind})": write_photo(folder / "photo", 3,
                                                                                args.photo_kind, rng)}
    ways = {"reference": reference_preprocess_image, "today": preprocess_image}
    for path in inputs.values():
        (old, old_notes), (new, new_notes) = (prepare(path, DIGIT_MODEL) for prepare in ways.values())
        if not (np.array_equal(old, new) and old_notes == new_notes):
            raise SystemExit(f"{path}: today's preparation differs from the reference")
    times = {(case, way): [] for case in inputs for way in ways}
    for _ in range(args.rounds):
        for case, path in inputs.items():
            for way, prepare in ways.items():
                times[case, way].append(milliseconds(prepare, path))
    print(f"OPENBLAS/OMP/MKL_NUM_THREADS={THREADS}, freed memory kept: {kept}, {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.2f}, NumPy {np.__version__}")
    print(f"  {'median ms':22s} {'reference':>10s} {'today':>7s} {'ratio':>6s}   {'CPU: reference':>14s} "
          f"{'today':>7s} {'ratio':>6s}")
    for case in inputs:
        (old, old_cpu), (new, new_cpu) = (np.median(times[case, way], axis=0) for way in ways)
        print(f"  {case:22s} {old:10.2f} {new:7.2f} {old / new:5.1f}x   {old_cpu:14.2f} {new_cpu:7.2f} "
              f"{old_cpu / new_cpu:5.1f}x")


if __name__ == "__main__":
    main()
