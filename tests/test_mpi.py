"""Data-parallel training over MPI (convscope.parallel): two processes under ``mpiexec -n 2``.

The runs go through tests/mpi_train.py, which is ``convscope`` plus each process's pid and final
weights written to files. LeNet-5 on the 300 fake digits of the ``cache`` fixture, global batch
16, no augmentation. The MPI tests skip where mpi4py or mpiexec is missing.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from convscope.io import checkpoint_progress
from convscope.parallel import ShardedLoader, World, launched_size

ROOT = Path(__file__).resolve().parents[1]
HELPER = str(ROOT / "tests" / "mpi_train.py")
MPIEXEC = next((str(p) for p in (Path(sys.executable).with_name("mpiexec"),) if p.exists()), None)
ONE_PROCESS_TOLERANCE = 1e-5  # largest weight difference allowed after 2 epochs (measured: 5.7e-7)


def _has_mpi4py():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


needs_mpi = pytest.mark.skipif(MPIEXEC is None or not _has_mpi4py(),
                               reason="needs mpi4py and mpiexec (pip install 'convscope[mpi]')")


def train(folder, *args, ranks=2, epochs=2, env=(), wait=True, augment=False):
    """Start ``convscope train`` on ``ranks`` processes into ``folder/run``; the finished process
    (or, with wait=False, the running one)."""
    folder.mkdir(exist_ok=True)
    command = [sys.executable, HELPER, "train", "--epochs", str(epochs), "--batch-size", "16", "--no-report",
               "--out", str(folder / "run"), *args, *([] if augment else ["--no-augment"])]
    if ranks > 1:
        command = [MPIEXEC, "-n", str(ranks), *command]
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "CONVSCOPE_TEST_DIR": str(folder), **dict(env)}
    process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    if wait:
        process.stdout_text, process.stderr_text = process.communicate(timeout=60)
    return process


def weights(folder, rank=0):
    with np.load(folder / f"weights-{rank}.npz") as arrays:
        return {k: arrays[k] for k in arrays.files}


@needs_mpi
def test_two_processes_end_identical_and_match_one_process(cache):
    two, one = train(cache / "two"), train(cache / "one", ranks=1)
    assert two.returncode == 0 and one.returncode == 0, two.stderr_text + one.stderr_text
    first, second, alone = weights(cache / "two", 0), weights(cache / "two", 1), weights(cache / "one")
    assert all(np.array_equal(first[k], second[k]) for k in first)  # bit for bit
    assert max(float(np.abs(first[k] - alone[k]).max()) for k in first) <= ONE_PROCESS_TOLERANCE
    assert not any(np.array_equal(first[k], alone[k]) for k in first if k.endswith("weight"))  # not the same code path
    assert two.stdout_text.count("done:") == 1 and two.stderr_text.count("training lenet5") == 1  # rank 0 speaks
    assert "batch 16 shared by 2 processes" in two.stderr_text
    records = [line for line in (cache / "two" / "run" / "metrics.jsonl").read_text().splitlines()]
    alone_records = (cache / "one" / "run" / "metrics.jsonl").read_text().splitlines()
    for mine, theirs in zip(map(json.loads, records), map(json.loads, alone_records), strict=True):
        assert mine["train_acc"] == theirs["train_acc"]  # the figures of all 240 images, not rank 0's 120
        assert abs(mine["train_loss"] - theirs["train_loss"]) < 1e-4


@needs_mpi
def test_a_killed_process_stops_the_job_and_the_run_resumes_exactly(cache):
    whole = train(cache / "whole", epochs=4, augment=True)  # each process's augmentation stream resumes too
    assert whole.returncode == 0, whole.stderr_text
    killed = train(cache / "killed", epochs=4, wait=False, augment=True)
    checkpoint, pid = cache / "killed" / "run" / "checkpoint.safetensors", cache / "killed" / "pid-1"
    deadline = time.monotonic() + 30
    while not (checkpoint.exists() and pid.exists()) and time.monotonic() < deadline and killed.poll() is None:
        time.sleep(0.02)
    os.kill(int(pid.read_text()), 9)
    out, err = killed.communicate(timeout=30)
    done = checkpoint_progress(checkpoint)["epoch"]  # intact: it reads
    said = out + err  # mpiexec reports which process died, and how
    assert killed.returncode != 0, said
    assert "YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)" in said, said
    assert 1 <= done < 4, f"the kill came after epoch {done}: the test did not interrupt the run"
    other = train(cache / "killed", "--resume", ranks=1, epochs=4, augment=True)
    assert other.returncode == 1 and "trained by 2 processes, not 1: resume it with mpiexec -n 2" in other.stderr_text
    resumed = train(cache / "killed", "--resume", epochs=4, augment=True)
    assert resumed.returncode == 0 and f"resuming {cache / 'killed' / 'run'} from epoch {done}" in resumed.stderr_text
    finished, again = weights(cache / "whole"), weights(cache / "killed")
    assert all(np.array_equal(finished[k], again[k]) for k in finished)


@needs_mpi
def test_an_error_in_one_process_stops_every_process(cache):
    failed = train(cache / "failed", epochs=4, env={"CONVSCOPE_TEST_FAIL": "1:3"})
    assert failed.returncode != 0
    assert ("convscope train: error in process 1 of 2: RuntimeError: a failure made on purpose at epoch 3; "
            "stopping every process (the run's last checkpoint is kept)") in failed.stderr_text
    assert "Traceback" not in failed.stderr_text
    # rank 0 may have been stopped before or after writing epoch 2's checkpoint; epoch 1's came before
    # the collectives of epoch 2 that rank 1 went through, so there is one, and it reads
    assert checkpoint_progress(cache / "failed" / "run" / "checkpoint.safetensors")["epoch"] in (1, 2)


@needs_mpi
def test_batchnorm_and_dropout_nets_stay_identical_across_processes(cache):
    two = train(cache / "vgg", "--model", "vgg", epochs=1)
    assert two.returncode == 0, two.stderr_text
    first, second = weights(cache / "vgg", 0), weights(cache / "vgg", 1)
    assert any("running_mean" in k for k in first)
    assert all(np.array_equal(first[k], second[k]) for k in first)  # running statistics averaged too


# ----- without MPI ----------------------------------------------------------------------------------
class FakeWorld:
    def __init__(self, rank, size):
        self.rank, self.size = rank, size


class OneProcess:
    """An MPI communicator of one process, for the buffer methods World calls."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def Allreduce(self, where, array, op):
        assert where == "in place" and op == "sum" and array.flags.c_contiguous

    def Allgatherv(self, values, into):
        buffer, counts = into
        assert list(counts) == [len(values)]
        buffer[:] = values


class FakeMPI:
    IN_PLACE, SUM = "in place", "sum"


def test_reduced_sums_keep_numbers_arrays_and_lists_of_arrays():
    world = World(OneProcess(), FakeMPI)
    sums = {"correct": 7, "abs_error": 2.5, "confusion": np.eye(2, dtype=np.int64),
            "scores": [np.array([0.5, 0.25]), np.zeros(0)], "hits": [np.array([True]), np.array([False, True])]}
    loss, reduced, seen = world.reduce_sums(3.0, sums, 12)
    assert (loss, seen) == (3.0, 12) and reduced["correct"] == 7 and isinstance(reduced["correct"], int)
    assert reduced["abs_error"] == 2.5 and np.array_equal(reduced["confusion"], np.eye(2))
    assert reduced["confusion"].dtype == np.int64
    assert [list(v) for v in reduced["scores"]] == [[0.5, 0.25], []]
    assert [v.tolist() for v in reduced["hits"]] == [[True], [False, True]]


@pytest.mark.parametrize("count, batch, size", [(50, 16, 2), (50, 16, 3), (48, 16, 4), (33, 16, 2)],
                         ids=["2-ranks-uneven-last", "3-ranks", "4-ranks-exact", "last-batch-of-one-skipped"])
def test_shards_split_every_global_batch_of_one_shuffle(count, batch, size):
    from convscope.data import DataLoader
    images, labels = np.zeros((count, 1, 2, 2), np.uint8), np.arange(count)
    shards = [ShardedLoader(DataLoader((images, labels), batch, shuffle=True, rng=np.random.default_rng(7),
                                       normalize=False), FakeWorld(rank, size), seed=0) for rank in range(size)]
    alone = DataLoader((images, labels), batch, shuffle=True, rng=np.random.default_rng(7), normalize=False)
    batches = [list(shard) for shard in shards]
    expected = [y for _, y in alone][:len(shards[0])]
    assert len(shards[0]) == (count // batch) + (count % batch >= size)
    for step, global_batch in enumerate(expected):
        parts = [batches[rank][step][1] for rank in range(size)]
        assert np.array_equal(np.concatenate(parts), global_batch)  # disjoint, in order, all of it
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_plain_runs_never_import_mpi4py_and_say_what_is_missing(cache):
    code = ("import sys; sys.modules['mpi4py'] = None\n"  # as if it were not installed
            "from convscope.cli import main\n"
            "status = main(['train', '--epochs', '1', '--out', sys.argv[1], '--no-report'])\n"
            "assert status == 0 and sys.modules['mpi4py'] is None\n"
            "import os; os.environ['PMI_SIZE'] = '2'\n"
            "sys.exit(main(['train', '--epochs', '1', '--out', sys.argv[1] + '-2', '--no-report']))\n")
    environ = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")}
    done = subprocess.run([sys.executable, "-c", code, str(cache / "plain")], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "convscope train: error: started by mpiexec as one of 2 processes, but mpi4py is not installed: "
        "pip install 'convscope[mpi]' (or run without mpiexec)")
    assert launched_size({"OMPI_COMM_WORLD_SIZE": "3"}) == 3


def test_augmentation_streams_differ_by_process_and_epoch_and_repeat():
    from convscope.data import DataLoader

    def draws(rank, epoch, size=2):
        loader = DataLoader((np.zeros((8, 1, 2, 2), np.uint8), np.arange(8)), 4, rng=np.random.default_rng(0),
                            normalize=False, augment=lambda x, rng: x + rng.random())
        shard = ShardedLoader(loader, FakeWorld(rank, size), seed=3)
        shard.epoch = epoch
        return [float(x[0, 0, 0, 0]) for x, _ in shard]

    assert draws(0, 0) == draws(0, 0)  # from (seed, epoch, process) alone, so a resumed run draws the same
    assert draws(0, 0) != draws(0, 1) and draws(0, 0) != draws(1, 0)
    assert len(set(draws(0, 0))) == 2  # one stream per epoch, not one per batch
