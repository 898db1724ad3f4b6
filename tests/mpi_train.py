"""``convscope ...`` for tests/test_mpi.py, run under mpiexec: each process first writes its pid
to ``$CONVSCOPE_TEST_DIR/pid-RANK`` and, after training, its weights to ``weights-RANK.npz``.
With ``CONVSCOPE_TEST_FAIL=RANK:EPOCH`` that rank raises as that epoch (1-based) starts."""

import os
import sys

import numpy as np

from convscope import parallel, runs
from convscope.cli import main


def keep_weights(folder, rank):
    """Make ``Run.train`` write the final weights of this process to ``folder``."""
    train = runs.Run.train

    def train_and_keep(self, callbacks=()):
        history = train(self, callbacks)
        np.savez(os.path.join(folder, f"weights-{rank}.npz"), **self.model.state_dict())
        return history

    runs.Run.train = train_and_keep


def fail_at(epoch_to_fail):
    """Make this process raise as epoch ``epoch_to_fail`` (1-based) starts."""
    start = parallel.DataParallel.on_epoch_start

    def failing_start(self, epoch, epochs, batches):
        if epoch + 1 == epoch_to_fail:
            raise RuntimeError(f"a failure made on purpose at epoch {epoch + 1}")
        start(self, epoch, epochs, batches)

    parallel.DataParallel.on_epoch_start = failing_start


if __name__ == "__main__":
    folder, rank = os.environ["CONVSCOPE_TEST_DIR"], os.environ.get("PMI_RANK", "0")
    with open(os.path.join(folder, f"pid-{rank}.tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.replace(os.path.join(folder, f"pid-{rank}.tmp"), os.path.join(folder, f"pid-{rank}"))
    keep_weights(folder, rank)
    if os.environ.get("CONVSCOPE_TEST_FAIL", "").startswith(f"{rank}:"):
        fail_at(int(os.environ["CONVSCOPE_TEST_FAIL"].split(":")[1]))
    sys.exit(main(sys.argv[1:]))
