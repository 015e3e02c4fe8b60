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
threads unless OMP_NUM_THREADS or set_num_threads chose). CuPy arrays: one GPU per rank (the local rank modulo the devices, chosen by init()), the sums by
NCCL on the current stream (cupy.cuda.nccl), or through host memory when CuPy has no NCCL.

A rank that raises an uncaught exception ends the whole job (MPI_Abort after the traceback) rather
than leaving the others waiting; a bucket not reduced within `timeout` seconds (a rank stuck or
gone) aborts the job with a message naming the rank that waited.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
import queue
import sys
import threading
import time

import numpy as np

from . import data, optim
from ._arrays import array_module, is_cupy
from ._shapes import positive_int
from .functional import _flag
from .normalization import _real

__all__ = [
    "init", "rank", "size", "local_rank", "is_distributed", "barrier", "allreduce", "broadcast",
    "broadcast_parameters", "DistributedOptimizer", "shard_batches", "shard_range",
]

# Variables the common launchers set in every process they start (MPICH/Intel MPI hydra and
# Slurm's PMI: PMI_SIZE; Open MPI; MVAPICH). Without one, this is a plain single process and
# mpi4py is not imported: importing it would start an MPI runtime nobody asked for.
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_LAUNCHER_PRESENCE_VARS = ("PMIX_RANK",)


class _World:
    """The communicator of this job: MPI's (a duplicate of COMM_WORLD, so that fastconv's traffic
    never matches the user's own messages) or the single process's."""

    def __init__(self, comm=None, mpi=None):
        self.comm, self.mpi = comm, mpi
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1
        self.local_rank, self.local_size = 0, 1
        self.threads_ok = False          # MPI calls from the communication thread allowed
        self.nccl = None                 # cupy.cuda.nccl.NcclCommunicator, made on first use
        self.comm_thread = None          # _CommThread, made on first use
        if comm is not None:
            local = comm.Split_type(mpi.COMM_TYPE_SHARED, key=self.rank)
            self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
            local.Free()
            self.threads_ok = mpi.Query_thread() >= mpi.THREAD_MULTIPLE


_world: _World | None = None
_init_lock = threading.Lock()


def _launcher_size():
    """The job size the launcher announced, 0 for 'launched, size unknown', None when not launched."""
    for var in _LAUNCHER_SIZE_VARS:
        if var in os.environ:
            try:
                return int(os.environ[var])
            except ValueError:
                return 0
    return 0 if any(v in os.environ for v in _LAUNCHER_PRESENCE_VARS) else None


def init():
    """Start (once) and return nothing: the MPI job when launched by mpiexec/mpirun/srun, else a
    single process (rank 0 of 1). Raises ImportError when launched with several ranks but mpi4py
    is missing (each rank would otherwise train alone, silently). Called by every function here."""
    global _world
    with _init_lock:
        if _world is not None:
            return
        launched = _launcher_size()
        if launched is None or launched == 1:
            _world = _World()
            return
        try:
            from mpi4py import MPI  # noqa: PLC0415 - optional: the [mpi] extra
        except ImportError:
            raise ImportError(f"this process was started by an MPI launcher ({launched or 'several'} ranks) "
                              "but mpi4py is not installed: pip install 'fastconv[mpi]'") from None
        world = _World(MPI.COMM_WORLD.Dup(), MPI)
        if world.size > 1:
            _abort_on_uncaught_exceptions(world)
            _share_cores(world)
            _select_gpu(world)
        _world = world


def _get():
    if _world is None:
        init()
    return _world


def rank() -> int:
    """This process's rank, 0 to size() - 1."""
    return _get().rank


def size() -> int:
    """The number of ranks (1 when not launched by MPI)."""
    return _get().size


def local_rank() -> int:
    """This process's rank among the ranks of its machine (it picks the GPU)."""
    return _get().local_rank


def is_distributed() -> bool:
    return _get().size > 1


DEFAULT_TIMEOUT = 600.0     # seconds a collective may take before the job is aborted


def _timeout(value):
    """A collective's timeout: None (wait for ever) or a positive finite number of seconds."""
    return None if value is None else _real("timeout", value, 0.0, math.inf, low_open=True)


def _array(value, who):
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise TypeError(f"{who}: array must be a NumPy or CuPy array, got {type(value).__name__}")
    return value


def _rank_of(name, value, size, size_name):
    """value as a rank of `size` ranks: an int in [0, size), else an error naming it."""
    message = f"{name} must be a rank in [0, {size}) ({size_name} is {size}), got {value!r}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(message)
    if not 0 <= value < size:
        raise ValueError(message)
    return int(value)


def barrier(timeout=DEFAULT_TIMEOUT):
    """Wait until every rank has called barrier (timeout: seconds, or None for no limit)."""
    timeout = _timeout(timeout)
    w = _get()
    if w.comm is not None:
        _wait_for(w, w.comm.Ibarrier(), "a barrier", timeout)


def _abort_on_uncaught_exceptions(world):
    """An uncaught exception on one rank would leave the others blocked in their next collective;
    print it, then end every rank (what `python -m mpi4py` does)."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        _abort(world, f"{kind.__name__}: {value} (rank {world.rank} of {world.size})")

    sys.excepthook = hook


def _share_cores(world):
    """Ranks on one machine split its cores: each takes cores / local ranks kernel threads, unless
    the user chose (OMP_NUM_THREADS, or set_num_threads before init) or the launcher bound the rank
    to part of the machine (its affinity mask, the default thread count, is then its share)."""
    from . import _cpu  # noqa: PLC0415 - the compiled module, loaded with fastconv
    machine = os.cpu_count() or 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else machine
    if (world.local_size > 1 and cores == machine and "OMP_NUM_THREADS" not in os.environ
            and _cpu.get_num_threads() == cores):
        _cpu.set_num_threads(max(1, cores // world.local_size))


def _select_gpu(world):
    cupy = sys.modules.get("cupy")
    if cupy is None:
        try:
            import cupy  # noqa: PLC0415 - only to pick this rank's GPU when CuPy is installed
        except ImportError:
            return
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:       # CuPy without a driver or device: the CPU path is all there is
        return
    if count:
        cupy.cuda.Device(world.local_rank % count).use()


def _abort(world, message):
    sys.stderr.write(f"fastconv.distributed: rank {world.rank}: {message}; aborting the job\n")
    sys.stderr.flush()
    time.sleep(0.5)          # the launcher forwards this rank's stderr through a pipe: let it drain
    world.mpi.COMM_WORLD.Abort(1)


# ----------------------------------------------------------------------------- collectives

def allreduce(array, timeout=DEFAULT_TIMEOUT):
    """The elementwise sum of `array` over all ranks, as a new array (NumPy or CuPy)."""
    _array(array, "allreduce")
    timeout = _timeout(timeout)
    w = _get()
    out = array.copy()
    if w.size > 1:
        _sum_in_place(w, out, timeout)
    return out


def broadcast(array, root=0, timeout=DEFAULT_TIMEOUT):
    """Overwrite `array` on every rank with root's, in place; returns it."""
    _array(array, "broadcast")
    timeout = _timeout(timeout)
    w = _get()
    root = _rank_of("root", root, w.size, "the job size")
    if w.size > 1:
        if is_cupy(array):
            host = array_module(array).asnumpy(array)
            _wait_for(w, w.comm.Ibcast(host, root=root), f"a broadcast of {host.nbytes} bytes", timeout)
            array[...] = array_module(array).asarray(host)
        else:
            if not array.flags.c_contiguous:
                raise ValueError(f"broadcast needs a C-contiguous array, got strides {array.strides}")
            _wait_for(w, w.comm.Ibcast(array, root=root), f"a broadcast of {array.nbytes} bytes", timeout)
    return array


def broadcast_parameters(model, root=0, timeout=DEFAULT_TIMEOUT):
    """Every rank takes root's parameters (trainable or not, frozen included: all the model's
    weights), so that training starts from the same point everywhere."""
    timeout = _timeout(timeout)
    w = _get()
    root = _rank_of("root", root, w.size, "the job size")
    if w.size == 1:
        return
    for layer in model.layers:
        for key, value in layer.params.items():
            if not value.flags.c_contiguous:
                layer.params[key] = value = array_module(value).ascontiguousarray(value)
            broadcast(value, root, timeout)


def _wait_for(world, request, what, timeout):
    """Poll a non-blocking MPI request: a rank that never joins ends the job instead of hanging
    this one. Polls back off to 0.1 ms sleeps after the first millisecond (a waiting rank leaves
    its core to the others)."""
    start = time.perf_counter()
    while not request.Test():
        waited = time.perf_counter() - start
        if timeout is not None and waited > timeout:
            _abort(world, f"{what} did not finish within {timeout:g} s: another rank failed or is stuck")
        if waited > 1e-3:
            time.sleep(1e-4)


def _sum_in_place(world, buf, timeout=None):
    """MPI_SUM of a contiguous buffer over all ranks, in place (NCCL for CuPy when available);
    with a timeout (seconds), the job is aborted when it has not finished by then."""
    if is_cupy(buf):
        nccl = _nccl(world)
        if nccl is not None:
            import cupy  # noqa: PLC0415
            from cupy.cuda import nccl as nc  # noqa: PLC0415
            kind = {np.dtype(np.float32): nc.NCCL_FLOAT32, np.dtype(np.float64): nc.NCCL_FLOAT64}[buf.dtype]
            stream = cupy.cuda.get_current_stream()
            nccl.allReduce(buf.data.ptr, buf.data.ptr, buf.size, kind, nc.NCCL_SUM, stream.ptr)
            return
        xp = array_module(buf)
        host = xp.asnumpy(buf)
        _sum_host(world, host, timeout)
        buf[...] = xp.asarray(host)
        return
    _sum_host(world, buf, timeout)


def _sum_host(world, buf, timeout):
    if timeout is None:
        world.comm.Allreduce(world.mpi.IN_PLACE, buf, op=world.mpi.SUM)
        return
    _wait_for(world, world.comm.Iallreduce(world.mpi.IN_PLACE, buf, op=world.mpi.SUM),
              f"an allreduce of {buf.nbytes} bytes", timeout)


def _nccl(world):
    """The NCCL communicator, or None (then the sums go through host memory): CuPy built without
    NCCL, or more ranks on a machine than GPUs (NCCL refuses two ranks on one device). Decided by
    all ranks together: creating the communicator is itself collective."""
    if world.nccl is None:
        try:
            from cupy.cuda import nccl as nc  # noqa: PLC0415
            import cupy  # noqa: PLC0415
            usable = bool(getattr(nc, "available", False)) and \
                world.local_size <= cupy.cuda.runtime.getDeviceCount()
        except ImportError:
            usable = False
        if not world.comm.allreduce(int(usable), op=world.mpi.MIN):
            world.nccl = False
            return None
        uid = nc.get_unique_id() if world.rank == 0 else None
        uid = world.comm.bcast(uid, root=0)
        world.nccl = nc.NcclCommunicator(world.size, uid, world.rank)
    return world.nccl or None


# ----------------------------------------------------------------------------- data

def shard_range(n, rank_=None, size_=None):
    """(begin, end) of this rank's contiguous part of n items: the parts differ by at most one.
    rank_ / size_ (default: this process's) ask for another rank's part or another job size."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    w = _get()
    p = w.size if size_ is None else positive_int(size_, "size_")
    r = _rank_of("rank_", w.rank if rank_ is None else rank_, p, "the job size" if size_ is None else "size_")
    return r * int(n) // p, (r + 1) * int(n) // p


def shard_batches(x, y=None, batch_size=32, shuffle=True, seed=None, drop_last=False):
    """This rank's part of every global batch that data.batches(x, y, batch_size, shuffle, seed,
    drop_last) gives: every rank shuffles alike (`seed` must be the same on all ranks; None takes
    rank 0's random seed) and takes its contiguous slice of each batch. A final batch with fewer
    samples than ranks is skipped (some rank would get none)."""
    if shuffle and not isinstance(seed, np.random.Generator):
        seed = _common_seed(seed)
    for batch in data.batches(x, y, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last):
        part = _my_part(batch if y is None else batch[0], None if y is None else batch[1])
        if part is not None:
            yield part[0] if y is None else part


def _my_part(xb, yb):
    """(xb, yb) cut to this rank's contiguous slice, or None when the batch has fewer samples than
    there are ranks (some rank would get none)."""
    n = xb.shape[0]
    if n < _get().size:
        return None
    b, e = shard_range(n)
    return xb[b:e], None if yb is None else yb[b:e]


def _common_seed(seed):
    """seed, or (None) a random seed drawn on rank 0 and sent to all."""
    w = _get()
    if seed is not None or w.size == 1:
        return seed
    return w.comm.bcast(int(np.random.SeedSequence().generate_state(1)[0]) if w.rank == 0 else None, root=0)


# ----------------------------------------------------------------------------- gradients

class _Bucket:
    """A fixed run of parameters whose gradients are summed in one allreduce. After the sum, the
    layers' grads are views into the buffer (no copy back): the next step's pack overwrites them,
    as the next backward would."""

    def __init__(self, refs, layers, xp, dtype):
        self.refs, self.layers = refs, layers
        sizes = [int(np.prod(r.value.shape)) for r in refs]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.buffer = xp.empty(int(self.offsets[-1]), dtype=dtype)
        self.done = threading.Event()
        self.error = None
        self.background = False        # sent by the communication thread

    @property
    def nbytes(self):
        return self.buffer.nbytes

    def pack(self, weight):
        """Gradients times this rank's weight (its share of the global batch) into the buffer."""
        xp = array_module(self.buffer)
        for ref, b, e in zip(self.refs, self.offsets[:-1], self.offsets[1:]):
            xp.multiply(ref.grad.reshape(-1), self.buffer.dtype.type(weight), out=self.buffer[b:e])

    def hand_back(self):
        """The summed gradients become the layers' grads."""
        for ref, b, e in zip(self.refs, self.offsets[:-1], self.offsets[1:]):
            ref.layer.grads[ref.key] = self.buffer[b:e].reshape(ref.value.shape)


class _CommThread:
    """One thread that runs the allreduces in the order they are queued, so the compute thread
    goes on with backward (the kernels release the GIL, and so does MPI)."""

    def __init__(self, world):
        self.world = world
        self.jobs = queue.Queue()
        self.busy_seconds = 0.0
        self.thread = threading.Thread(target=self._run, name="fastconv-allreduce", daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            bucket = self.jobs.get()
            t0 = time.perf_counter()
            try:
                _sum_in_place(self.world, bucket.buffer)
            except BaseException as exc:       # handed to the compute thread by step()
                bucket.error = exc
            self.busy_seconds += time.perf_counter() - t0
            bucket.done.set()


class DistributedOptimizer(optim.Optimizer):
    """Wraps an optimizer so that every rank steps with the gradients averaged over all ranks
    (weighted by each rank's share of the global batch).

    With a model attached (compile attaches it; in a hand-written loop pass `model`), the averaging
    happens inside model.backward: a bucket's allreduce starts as soon as its layers are done, and
    when backward returns the layers' grads hold the averages over all ranks (clip or inspect them
    then); step() only runs the wrapped optimizer. Without a model, step() averages first (no
    overlap). `learning_rate`, `iterations`, `state` and the schedule are the wrapped optimizer's
    (callbacks and saving see it). One DistributedOptimizer per model: attaching a new one (a
    second compile) detaches the old.

    bucket_mib: size of one allreduce (see docs/distributed.md for how it was chosen).
    timeout: seconds to wait for one collective before aborting the job.
    overlap: False sends every bucket once backward is done (for measuring the overlap).
    last_step: after each averaging, {"buckets", "overlapped" (of them sent while backward ran),
    "bytes", "comm_s" (time in allreduce), "exposed_s" (time waited for it after backward)}."""

    def __init__(self, optimizer, model=None, *, bucket_mib=25.0, timeout=DEFAULT_TIMEOUT, overlap=True):
        self.wrapped = optim.get(optimizer)
        if isinstance(self.wrapped, DistributedOptimizer):
            raise TypeError("optimizer is already a DistributedOptimizer")
        self.bucket_bytes = int(_real("bucket_mib", bucket_mib, 0.0, 4096.0, low_open=True) * 2**20)
        self.timeout = _real("timeout", timeout, 0.0, math.inf, low_open=True)
        self.overlap = _flag("overlap", overlap)
        self.world = _get()
        self.last_step = {}
        self._model = None
        self._plans = {}               # parameter list key -> buckets
        self._plan = []                # this backward's buckets
        self._launched = []            # of them, sent so far, in order
        self._done_layers = set()
        self._weight = 1.0             # this rank's share of the global batch, this step
        self._averaged = False         # the grads of the last backward are averages already
        self._sync_seconds = 0.0       # allreduce time spent on the compute thread
        self._busy_at_start = 0.0
        if model is not None:
            self.attach(model)

    # the wrapped optimizer's settings, as callbacks and saving read and write them
    learning_rate = property(lambda self: self.wrapped.learning_rate,
                             lambda self, v: setattr(self.wrapped, "learning_rate", v))
    lr = learning_rate
    schedule = property(lambda self: self.wrapped.schedule)
    iterations = property(lambda self: self.wrapped.iterations,
                          lambda self, v: setattr(self.wrapped, "iterations", v))
    state = property(lambda self: self.wrapped.state, lambda self, v: setattr(self.wrapped, "state", v))

    def __repr__(self):
        return f"DistributedOptimizer({self.wrapped!r}, ranks={self.world.size})"

    def attach(self, model):
        """Average the gradients inside model.backward (see the class docstring)."""
        if self._model is model:
            return
        if not hasattr(model, "grad_hooks"):
            raise TypeError(f"attach needs a fastconv.Sequential, got {type(model).__name__}")
        model.grad_hooks[:] = [h for h in model.grad_hooks
                               if not isinstance(getattr(h, "__self__", None), DistributedOptimizer)]
        self._model = model
        model.grad_hooks.append(self._layer_done)

    # -- the plan: buckets over the trainable parameters in the order backward fills them
    def _buckets(self, refs):
        key = tuple((id(r.layer), r.key, tuple(r.value.shape), r.value.dtype.str, type(r.value).__module__)
                    for r in refs)
        if key not in self._plans:
            if len(self._plans) >= 4:          # parameter sets come and go (freezing): keep a few
                self._plans.clear()
            self._plans[key] = self._make_plan(refs)
        return self._plans[key]

    def _make_plan(self, refs):
        order = list(reversed(refs))            # backward: the last layer's gradients come first
        plan, run, run_bytes = [], [], 0

        def close():
            if run:
                xp = array_module(run[0].value)
                plan.append(_Bucket(list(run), {id(r.layer) for r in run}, xp, run[0].value.dtype))

        for ref in order:
            nbytes = ref.value.nbytes
            if run and (run_bytes + nbytes > self.bucket_bytes or ref.value.dtype != run[0].value.dtype
                        or array_module(ref.value) is not array_module(run[0].value)):
                close()
                run, run_bytes = [], 0
            run.append(ref)
            run_bytes += nbytes
        close()
        return plan

    def _share_of_batch(self):
        """This rank's samples / the global batch (one small allreduce, on every rank alike), or
        1 / size without an attached model (the samples are not known)."""
        if self._model is None:
            return 1.0 / self.world.size
        n = int(self._model.last_batch_size or 0)
        total = np.array([n], dtype=np.int64)
        _sum_host(self.world, total, self.timeout)
        if total[0] == 0:
            raise ValueError("no rank had samples in this step")
        return n / int(total[0])

    def _comm_thread(self):
        if getattr(self.world, "comm_thread", None) is None:   # one per job: one order of collectives
            self.world.comm_thread = _CommThread(self.world)
        return self.world.comm_thread

    def _busy(self):
        thread = getattr(self.world, "comm_thread", None)
        return thread.busy_seconds if thread is not None else 0.0

    # -- during backward
    def _layer_done(self, model, layer, is_top, is_bottom):
        """Sequential.backward's report: `layer` has its gradients (is_top: the first reported,
        is_bottom: the last)."""
        if self.world.size == 1:
            return
        if is_top:
            self._wait_in_flight()                  # a second backward before step(): buffers reused
            self._start(model.parameters())
        self._done_layers.add(id(layer))
        plan = self._plan
        # the last bucket is complete only when backward is: _finish sends it, without a thread handoff
        while (self.overlap and len(self._launched) < len(plan) - 1
               and plan[len(self._launched)].layers <= self._done_layers):
            self._launch(plan[len(self._launched)], background=True)
        if is_bottom:
            self._finish()
            self._averaged = True

    def _start(self, refs):
        self._busy_at_start, self._sync_seconds = self._busy(), 0.0
        self._done_layers, self._launched, self._averaged = set(), [], False
        self._plan = self._buckets(refs)
        self._weight = self._share_of_batch()

    def _launch(self, bucket, background):
        bucket.done.clear()
        bucket.error = None
        bucket.pack(self._weight)
        bucket.background = background and not is_cupy(bucket.buffer) and self.world.threads_ok
        if bucket.background:
            self._comm_thread().jobs.put(bucket)
        else:
            t0 = time.perf_counter()
            _sum_in_place(self.world, bucket.buffer, self.timeout)   # NCCL: queued on the stream
            self._sync_seconds += time.perf_counter() - t0
            bucket.done.set()
        self._launched.append(bucket)

    def _wait_in_flight(self):
        for i, bucket in enumerate(self._launched):
            self._wait(i, bucket)

    def _wait(self, i, bucket):
        if not bucket.done.wait(self.timeout):
            _abort(self.world, f"the allreduce of gradient bucket {i} ({bucket.nbytes} bytes) did not "
                               f"finish within {self.timeout:g} s: another rank failed or is stuck")
        if bucket.error is not None:
            raise RuntimeError(f"allreduce of gradient bucket {i} failed") from bucket.error

    def _finish(self):
        """Send the buckets not sent yet (after the queued ones: one channel, so every rank issues
        the collectives in one order), wait for all, and make the sums the layers' grads."""
        t0 = time.perf_counter()
        overlapped = sum(b.background for b in self._launched)
        if len(self._launched) < len(self._plan):
            self._wait_in_flight()
            for bucket in self._plan[len(self._launched):]:
                self._launch(bucket, background=False)
        for i, bucket in enumerate(self._plan):
            self._wait(i, bucket)
            bucket.hand_back()
        self.last_step = {"buckets": len(self._plan), "overlapped": overlapped,
                          "bytes": sum(b.nbytes for b in self._plan),
                          "comm_s": self._busy() - self._busy_at_start + self._sync_seconds,
                          "exposed_s": time.perf_counter() - t0}
        self._launched = []

    # -- the step
    def step(self, params):
        refs = self.wrapped._refs(params)       # a list: params may be a generator
        if self.world.size > 1 and not self._averaged:
            if hasattr(params, "grad_hooks"):
                self.attach(params)              # the next backwards average as they go
            self._start([r for r in refs if r.trainable and r.grad is not None])
            self._finish()
        self._averaged = False
        self.wrapped.step(refs)


# ----------------------------------------------------------------------------- fit support

class _FitContext:
    """What TrainingMixin.fit and evaluate do differently under a DistributedOptimizer."""

    def __init__(self, world, timeout):
        self.world, self.timeout = world, timeout
        self.is_root = world.rank == 0

    def begin(self, model):
        broadcast_parameters(model, timeout=self.timeout)

    def batches(self, x, y, batch_size, shuffle, rng, batches_given):
        if batches_given:                    # every rank iterates the same batches; each keeps its part
            return self._parts(x)
        return shard_batches(x, y, batch_size, shuffle=shuffle, seed=rng)

    def _parts(self, batches):
        for i, (xb, yb) in enumerate(batches):
            if i == 0:
                self._check_same_batches(xb)
            part = _my_part(xb, yb)
            if part is not None:
                yield part

    def _check_same_batches(self, xb):
        """Each rank iterates its own copy of the batches (e.g. ImageDataGenerator.flow): they must
        be the same on every rank, or each rank would train on parts of different batches."""
        mine = (tuple(int(d) for d in xb.shape), float(array_module(xb).asarray(xb, dtype=np.float64).sum()))
        everyone = self.world.comm.allgather(mine)
        if any(other != everyone[0] for other in everyone):
            raise ValueError("the batches of x differ between ranks (first batch: shape and sum per rank "
                             f"{everyone}); give the generator a seed, e.g. gen.flow(x, y, seed=0)")

    def common_seed(self, seed):
        return _common_seed(seed)

    def callbacks(self, hooks):
        from .callbacks import CSVLogger, ModelCheckpoint  # noqa: PLC0415
        return hooks if self.is_root else [c for c in hooks if not isinstance(c, (ModelCheckpoint, CSVLogger))]

    @contextlib.contextmanager
    def quiet(self):
        """Only rank 0 prints."""
        if self.is_root:
            yield
            return
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            yield

    def reduce(self, keys, sums, seen):
        """{name: sum over ranks of value * samples / all samples} for every name in keys (the
        same on every rank, also on one that saw no samples)."""
        vec = np.array([float(sums.get(k, 0.0)) for k in keys] + [float(seen)], dtype=np.float64)
        _sum_host(self.world, vec, self.timeout)
        if vec[-1] == 0:
            raise ValueError("no rank had a sample to evaluate")
        return {k: v / vec[-1] for k, v in zip(keys, vec[:-1])}

    def evaluation_part(self, x, y):
        b, e = shard_range(x.shape[0])
        return x[b:e], y[b:e]


def fit_context(optimizer):
    """A _FitContext when `optimizer` is a DistributedOptimizer in a job of several ranks, else None."""
    if isinstance(optimizer, DistributedOptimizer) and optimizer.world.size > 1:
        return _FitContext(optimizer.world, optimizer.timeout)
    return None
