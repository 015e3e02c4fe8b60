"""Data-parallel training across processes on MPI (mpi4py), NCCL for CuPy arrays.

    mpiexec -n 4 python train.py            # pip install "fastconv[mpi]" (mpi4py + MPICH)

    import fastconv as fc
    from fastconv import distributed as dist
    dist.init()                             # a single process when not launched by mpiexec
    model = fc.Sequential([...])
    model.compile(optimizer=dist.DistributedOptimizer(fc.Adam(1e-3)), loss=..., metrics=["accuracy"])
    model.fit(x, y, batch_size=256, epochs=5)   # 256: the global batch, 256 / size per rank

Every rank holds the whole model. `fit` with a DistributedOptimizer starts from rank 0's weights
(broadcast_parameters), gives each rank its part of every global batch (shard_batches: the same
shuffle on every rank, cut into contiguous parts), averages the gradients across ranks before each
step, reduces the epoch's metrics and validation over all ranks, and prints and writes checkpoints
(ModelCheckpoint, CSVLogger) on rank 0 only. The result is single-process training with the global
batch, to the rounding of the float32 sums (tested under mpiexec -n 2), except that BatchNormalization
normalizes with each rank's own batch statistics and Dropout draws its masks per rank.

Gradient averaging: the gradients go in buckets of about `bucket_mib` MiB, taken in the order
backward fills them (the top layer first); Sequential.backward reports each layer as it finishes,
and a bucket whose layers are all done starts its allreduce at once on a communication thread
while the layers below compute theirs. step() waits for the rest. The sums are MPI_SUM over
fixed buckets in a fixed order, so a run repeats bit for bit and every rank gets the same bits.
Each rank's gradient is weighted by its share of the global batch (the parts differ by one sample
when size does not divide the batch). Frozen layers are not sent. After step() the layers' grads
are views into the buckets (no copy back), overwritten by the next step.

CPU threads: ranks on one machine share its cores (init() gives each cores / local ranks kernel
threads unless OMP_NUM_THREADS or set_num_threads chose). CuPy arrays: one GPU per rank (the local
rank modulo the devices, chosen by init()), the sums by NCCL on the current stream
(cupy.cuda.nccl), or through host memory when CuPy has no NCCL.

The modules: world.py (init, rank, size), collectives.py (barrier, allreduce, broadcast),
sharding.py (each rank's part of the data), optimizer.py (DistributedOptimizer and its gradient
buckets), fit.py (what fit and evaluate do under a DistributedOptimizer).

A rank that raises an uncaught exception ends the whole job (MPI_Abort after the traceback) rather
than leaving the others waiting; a bucket not reduced within `timeout` seconds (a rank stuck or
gone) aborts the job with a message naming the rank that waited.
"""

from __future__ import annotations

from .collectives import allreduce, barrier, broadcast, broadcast_parameters
from .fit import fit_context as fit_context  # for training.loop, not a user API
from .optimizer import DistributedOptimizer
from .sharding import shard_batches, shard_range
from .world import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from .world import init, is_distributed, local_rank, rank, size

__all__ = [
    "init",
    "rank",
    "size",
    "local_rank",
    "is_distributed",
    "barrier",
    "allreduce",
    "broadcast",
    "broadcast_parameters",
    "DistributedOptimizer",
    "shard_batches",
    "shard_range",
]
