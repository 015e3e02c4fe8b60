"""The job: init() (MPI when launched by mpiexec, else one process), rank, size, local_rank, the
checks the collectives share, and what a rank does when it fails (abort the whole job)."""

from __future__ import annotations

import math
import numbers
import os
import sys
import threading
import time
from types import TracebackType
from typing import Any

from .._typing import Array
from ..ops._checks import real

# Slurm's PMI: PMI_SIZE; Open MPI; MVAPICH). Without one, this is a plain single process and
# mpi4py is not imported: importing it would start an MPI runtime nobody asked for.
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_LAUNCHER_PRESENCE_VARS = ("PMIX_RANK",)


class World:
    """The communicator of this job: MPI's (a duplicate of COMM_WORLD, so that fastconv's traffic
    never matches the user's own messages) or the single process's."""

    def __init__(self, comm: Any = None, mpi: Any = None) -> None:
        self.comm, self.mpi = comm, mpi
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1
        self.local_rank, self.local_size = 0, 1
        self.threads_ok = False  # MPI calls from the communication thread allowed
        self.nccl: Any = None  # cupy.cuda.nccl.NcclCommunicator, made on first use
        self.comm_thread: Any = None  # _CommThread, made on first use
        if comm is not None:
            local = comm.Split_type(mpi.COMM_TYPE_SHARED, key=self.rank)
            self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
            local.Free()
            self.threads_ok = mpi.Query_thread() >= mpi.THREAD_MULTIPLE


_world: World | None = None
_init_lock = threading.Lock()


def _launcher_size() -> int | None:
    """The job size the launcher announced, 0 for 'launched, size unknown', None when not launched."""
    for var in _LAUNCHER_SIZE_VARS:
        if var in os.environ:
            try:
                return int(os.environ[var])
            except ValueError:
                return 0
    return 0 if any(v in os.environ for v in _LAUNCHER_PRESENCE_VARS) else None


def init() -> None:
    """Start (once) and return nothing: the MPI job when launched by mpiexec/mpirun/srun, else a
    single process (rank 0 of 1). Raises ImportError when launched with several ranks but mpi4py
    is missing (each rank would otherwise train alone, silently). Called by every function here."""
    global _world
    with _init_lock:
        if _world is not None:
            return
        launched = _launcher_size()
        if launched is None or launched == 1:
            _world = World()
            return
        try:
            from mpi4py import MPI  # noqa: PLC0415 - optional: the [mpi] extra
        except ImportError:
            raise ImportError(
                f"this process was started by an MPI launcher ({launched or 'several'} ranks) "
                "but mpi4py is not installed: pip install 'fastconv[mpi]'"
            ) from None
        world = World(MPI.COMM_WORLD.Dup(), MPI)
        if world.size > 1:
            _abort_on_uncaught_exceptions(world)
            _share_cores(world)
            _select_gpu(world)
        _world = world


def current_world() -> World:
    if _world is None:
        init()
    assert _world is not None  # init() sets it
    return _world


def rank() -> int:
    """This process's rank, 0 to size() - 1."""
    return current_world().rank


def size() -> int:
    """The number of ranks (1 when not launched by MPI)."""
    return current_world().size


def local_rank() -> int:
    """This process's rank among the ranks of its machine (it picks the GPU)."""
    return current_world().local_rank


def is_distributed() -> bool:
    return current_world().size > 1


DEFAULT_TIMEOUT = 600.0  # seconds a collective may take before the job is aborted


def check_timeout(value: float | None) -> float | None:
    """A collective's timeout: None (wait for ever) or a positive finite number of seconds."""
    return None if value is None else real("timeout", value, 0.0, math.inf, low_open=True)


def check_array(value: Any, who: str) -> Array:
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise TypeError(f"{who}: array must be a NumPy or CuPy array, got {type(value).__name__}")
    return value


def rank_of(name: str, value: object, size: int, size_name: str) -> int:
    """value as a rank of `size` ranks: an int in [0, size), else an error naming it."""
    message = f"{name} must be a rank in [0, {size}) ({size_name} is {size}), got {value!r}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(message)
    if not 0 <= int(value) < size:
        raise ValueError(message)
    return int(value)


def _abort_on_uncaught_exceptions(world: World) -> None:
    """An uncaught exception on one rank would leave the others blocked in their next collective;
    print it, then end every rank (what `python -m mpi4py` does)."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        previous(kind, value, tb)
        abort(world, f"{kind.__name__}: {value} (rank {world.rank} of {world.size})")

    sys.excepthook = hook


def _share_cores(world: World) -> None:
    """Ranks on one machine split its cores: each takes cores / local ranks kernel threads, unless
    the user chose (OMP_NUM_THREADS, or set_num_threads before init) or the launcher bound the rank
    to part of the machine (its affinity mask, the default thread count, is then its share)."""
    from .. import _cpu  # noqa: PLC0415 - the compiled module, loaded with fastconv

    machine = os.cpu_count() or 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else machine
    if (
        world.local_size > 1
        and cores == machine
        and "OMP_NUM_THREADS" not in os.environ
        and _cpu.get_num_threads() == cores
    ):
        _cpu.set_num_threads(max(1, cores // world.local_size))


def _select_gpu(world: World) -> None:
    try:
        import cupy  # noqa: PLC0415 - only to pick this rank's GPU when CuPy is installed
    except ImportError:
        return
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # CuPy without a driver or device: the CPU path is all there is
        return
    if count:
        cupy.cuda.Device(world.local_rank % count).use()


def abort(world: World, message: str) -> None:
    sys.stderr.write(f"fastconv.distributed: rank {world.rank}: {message}; aborting the job\n")
    sys.stderr.flush()
    time.sleep(0.5)  # the launcher forwards this rank's stderr through a pipe: let it drain
    world.mpi.COMM_WORLD.Abort(1)
