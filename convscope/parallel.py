"""Data-parallel training over MPI: ``mpiexec -n N convscope train ...``.

Every rank (process) holds the whole model and trains it on its own slice of every global
batch; after each backward pass the gradients are summed across ranks with ``Allreduce``, so
every rank takes the same optimizer step and the copies stay bit-identical. The pieces:

* :func:`connect` finds out whether the process was started by ``mpiexec`` with more than one
  rank (from the launcher's environment, ``PMI_SIZE`` or ``OMPI_COMM_WORLD_SIZE``) and only
  then imports mpi4py; a plain run never imports it.
* :class:`ShardedLoader`: the run's shuffle, drawn from one Generator that every rank holds
  in the same state (so epoch ``e``'s order is a function of the seed and ``e``), cut into
  global batches of ``batch_size`` images; rank ``r`` takes the ``r``-th of ``N`` near-equal
  slices of each. Augmentation is drawn per rank from ``default_rng([seed, epoch, rank])``.
* :class:`DataParallel`, a training-loop callback: rank 0's weights are broadcast when
  training starts; between backward and step each rank's gradients, weighted by its share of
  the global batch, are summed in flattened buckets (one contiguous float buffer per bucket
  of parameters), which gives the gradient of the mean loss over the global batch, as one
  process would compute it. BatchNorm normalises with each rank's own batch statistics;
  its running statistics are averaged across ranks after each epoch's last backward pass.
* :meth:`World.reduce_sums`: the epoch's loss sum, image count and task sums (numbers,
  arrays, lists of arrays) summed or joined across ranks, so the logged figures are global.

MPI is used through its buffer methods only (``Bcast``, ``Allreduce``, ``Allgatherv`` on NumPy
arrays): nothing is pickled.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .data import DataLoader
from .nn import Module
from .train import Callback

LAUNCHER_SIZES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")  # MPICH's hydra (and Slurm's PMI), Open MPI
BUCKET_BYTES = 4 << 20  # gradients are summed in buffers of about this size
KINDS, KIND_TYPES = "biuf", (np.bool_, np.int64, np.uint64, np.float64)  # joined lists keep their kind


class ParallelError(RuntimeError):
    """Data-parallel training cannot start (mpi4py missing, a batch too small for the ranks...)."""


def launched_size(environ: Mapping[str, str] | None = None) -> int:
    """How many ranks the MPI launcher started, from its environment (1 outside mpiexec).

    >>> launched_size({"PMI_SIZE": "4", "PMI_RANK": "1"}), launched_size({})
    (4, 1)
    """
    environ = os.environ if environ is None else environ
    for name in LAUNCHER_SIZES:
        if environ.get(name, "").isdigit():
            return int(environ[name])
    return 1


def connect() -> World | None:
    """The MPI world of this process when it was started as one of several ranks, else None."""
    size = launched_size()
    if size <= 1:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise ParallelError(f"started by mpiexec as one of {size} processes, but mpi4py is not installed: "
                            "pip install 'convscope[mpi]' (or run without mpiexec)") from None
    return World(MPI.COMM_WORLD, MPI)


class World:
    """The ranks of one MPI job: ``rank`` (0..size-1) and ``size``, and the collectives used."""

    def __init__(self, comm: Any, mpi: Any) -> None:
        self.comm, self.mpi = comm, mpi
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def sum_(self, array: np.ndarray) -> np.ndarray:
        """Sum a contiguous array over the ranks, in place; returns it."""
        self.comm.Allreduce(self.mpi.IN_PLACE, array, op=self.mpi.SUM)
        return array

    def broadcast_(self, array: np.ndarray) -> np.ndarray:
        """Overwrite a contiguous array with rank 0's, in place; returns it."""
        self.comm.Bcast(array, root=0)
        return array

    def join(self, values: np.ndarray) -> np.ndarray:
        """Every rank's 1-D float64 ``values``, end to end in rank order (the same on every rank)."""
        counts = self.sum_(np.eye(self.size, dtype=np.int64)[self.rank] * len(values))
        joined = np.empty(int(counts.sum()), dtype=np.float64)
        self.comm.Allgatherv(np.ascontiguousarray(values, dtype=np.float64), [joined, counts])
        return joined

    def abort(self, status: int = 1) -> None:
        """End every rank of the job now (after a rank failed); never returns."""
        self.comm.Abort(status)
        os._exit(status)  # Abort asks the launcher to end the job; this process need not wait for it

    def reduce_sums(self, total_loss: float, sums: dict[str, Any], seen: int) -> tuple[float, dict[str, Any], int]:
        """An epoch's ``(loss sum, task sums, images)`` over every rank's images (see ``train_epoch``):
        numbers and arrays are summed, lists of 1-D arrays joined in rank order."""
        head = self.sum_(np.array([total_loss, seen], dtype=np.float64))
        return float(head[0]), {k: self._reduce(v) for k, v in sorted(sums.items())}, int(head[1])

    def _reduce(self, value):
        if isinstance(value, list):  # e.g. a detector's scores per image: join them
            lengths = self.join(np.array([len(v) for v in value], dtype=np.float64)).astype(np.int64)
            if not len(lengths):
                return []
            flat = self.join(np.concatenate([np.ravel(v) for v in value]) if value else np.zeros(0))
            kind = max((KINDS.index(np.asarray(v).dtype.kind) for v in value), default=0)
            kind = self.sum_(np.eye(len(KINDS))[kind]).nonzero()[0].max()  # the widest of any rank's
            return [part.astype(KIND_TYPES[kind]) for part in np.split(flat, np.cumsum(lengths)[:-1])]
        array = np.array(value, dtype=np.float64 if np.ndim(value) == 0 else np.asarray(value).dtype)
        total = self.sum_(np.ascontiguousarray(array))
        if np.ndim(value):
            return total
        return int(total.item()) if isinstance(value, (int, np.integer)) else total.item()


class ShardedLoader:
    """This rank's slice of every global batch of ``loader`` (a shuffling DataLoader).

    Args:
        loader: the DataLoader one process would use; its ``rng`` must be in the same state
            on every rank (the run's loader Generator from the shared seed). It draws only the
            epoch's order from it.
        world: the ranks (``rank``, ``size``).
        seed: the run's seed, for the per-rank augmentation streams.

    ``len()`` is the number of global batches; a last batch with fewer images than ranks is
    skipped, so every rank has at least one image in every step. ``shares`` holds the
    current batch's ``(this rank's images, the global batch's images)``.
    """

    def __init__(self, loader: DataLoader, world: World, seed: int) -> None:
        if loader.batch_size < world.size:
            raise ParallelError(f"a global batch of {loader.batch_size} images cannot be shared by {world.size} "
                                f"ranks: use --batch-size {world.size} or more (it is the global batch)")
        self.loader, self.world, self.seed, self.epoch = loader, world, int(seed), 0
        self.shares = (0, 0)

    def __len__(self) -> int:
        whole, rest = divmod(len(self.loader.labels), self.loader.batch_size)
        return whole + int(rest >= self.world.size and not self.loader.drop_last)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        loader, size, step = self.loader, self.world.size, self.loader.batch_size
        order = loader.rng.permutation(len(loader.labels)) if loader.shuffle else np.arange(len(loader.labels))
        augment_rng = np.random.default_rng([self.seed, self.epoch, self.world.rank])
        for start in range(0, len(self) * step, step):
            batch = order[start:start + step]
            mine = np.array_split(batch, size)[self.world.rank]
            self.shares = (len(mine), len(batch))
            yield self._batch(mine, augment_rng)

    def _batch(self, index, augment_rng):
        """The loader's batch of ``index`` with augmentation drawn from this rank's stream."""
        shuffle_rng, self.loader.rng = self.loader.rng, augment_rng
        try:
            return self.loader.batch(index)
        finally:
            self.loader.rng = shuffle_rng


class DataParallel(Callback):
    """Keep the ranks' copies of ``model`` identical while it trains on ``loader``'s shards.

    Put it first among the callbacks, so that others (gradient clipping) see the averaged
    gradients.
    """

    def __init__(self, world: World, model: Module, loader: ShardedLoader) -> None:
        self.world, self.model, self.loader = world, model, loader
        self.buckets = buckets(model.parameters())
        self.started = False

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        self.loader.epoch = epoch
        if not self.started:  # rank 0's weights (new or resumed), once
            broadcast_state(self.world, self.model)
            self.started = True

    def on_backward_end(self, epoch: int, batch: int, model: Module) -> None:
        mine, total = self.loader.shares
        for bucket in self.buckets:
            buffer = np.concatenate([_grad(p).ravel() * np.float32(mine) for p in bucket])
            self.world.sum_(buffer)
            buffer /= np.float32(total)
            start = 0
            for p in bucket:
                p.grad = buffer[start:start + p.data.size].reshape(p.data.shape).astype(p.data.dtype, copy=False)
                start += p.data.size
        if batch == len(self.loader) - 1:
            average_buffers(self.world, model)


def buckets(parameters: list, limit: int = BUCKET_BYTES) -> list[list]:
    """The parameters in consecutive groups of about ``limit`` bytes (one buffer each)."""
    groups, size = [[]], 0
    for p in parameters:
        if groups[-1] and size + p.data.nbytes > limit:
            groups, size = groups + [[]], 0
        groups[-1].append(p)
        size += p.data.nbytes
    return [g for g in groups if g]


def _grad(p):
    return np.zeros_like(p.data) if p.grad is None else np.asarray(p.grad, dtype=p.data.dtype)


def broadcast_state(world: World, model: Module) -> None:
    """Give every rank rank 0's weights and buffers."""
    state = {name: world.broadcast_(np.array(value, copy=True, order="C"))
             for name, value in model.state_dict().items()}
    model.load_state_dict(state)


def average_buffers(world: World, model: Module) -> None:
    """Average the float buffers (BatchNorm's running statistics) over the ranks."""
    state = model.state_dict()
    names = {name for name, _, _ in model.named_buffers()}
    floats = {k: np.array(v, dtype=np.float64) for k, v in state.items()
              if k in names and np.asarray(v).dtype.kind == "f"}
    if floats:
        averaged = {k: (world.sum_(v) / world.size).astype(np.asarray(state[k]).dtype) for k, v in floats.items()}
        model.load_state_dict({**state, **averaged})
