"""Collectives over the job's communicator: barrier, allreduce, broadcast, broadcast_parameters,
and the in-place sums the gradient buckets use (MPI_SUM, NCCL for CuPy arrays, or host memory)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .._typing import Array
from ..backend.arrays import array_module, is_cupy
from .world import DEFAULT_TIMEOUT, World, abort, check_array, check_timeout, current_world, rank_of


def barrier(timeout: float | None = DEFAULT_TIMEOUT) -> None:
    """Wait until every rank has called barrier (timeout: seconds, or None for no limit)."""
    timeout = check_timeout(timeout)
    w = current_world()
    if w.comm is not None:
        wait_for(w, w.comm.Ibarrier(), "a barrier", timeout)


def allreduce(array: Array, timeout: float | None = DEFAULT_TIMEOUT) -> Array:
    """The elementwise sum of `array` over all ranks, as a new array (NumPy or CuPy)."""
    check_array(array, "allreduce")
    timeout = check_timeout(timeout)
    w = current_world()
    out = array.copy()
    if w.size > 1:
        sum_in_place(w, out, timeout)
    return out


def broadcast(array: Array, root: int = 0, timeout: float | None = DEFAULT_TIMEOUT) -> Array:
    """Overwrite `array` on every rank with root's, in place; returns it."""
    check_array(array, "broadcast")
    timeout = check_timeout(timeout)
    w = current_world()
    root = rank_of("root", root, w.size, "the job size")
    if w.size > 1:
        if is_cupy(array):
            host = array_module(array).asnumpy(array)
            wait_for(w, w.comm.Ibcast(host, root=root), f"a broadcast of {host.nbytes} bytes", timeout)
            array[...] = array_module(array).asarray(host)
        else:
            if not array.flags.c_contiguous:
                raise ValueError(f"broadcast needs a C-contiguous array, got strides {array.strides}")
            wait_for(w, w.comm.Ibcast(array, root=root), f"a broadcast of {array.nbytes} bytes", timeout)
    return array


def broadcast_parameters(model: Any, root: int = 0, timeout: float | None = DEFAULT_TIMEOUT) -> None:
    """Every rank takes root's parameters (trainable or not, frozen included: all the model's
    weights), so that training starts from the same point everywhere."""
    if not hasattr(model, "layers"):
        raise TypeError(f"model must be a fastconv model (Sequential), got {type(model).__name__}")
    timeout = check_timeout(timeout)
    w = current_world()
    root = rank_of("root", root, w.size, "the job size")
    if w.size == 1:
        return
    for layer in model.layers:
        for key, value in layer.params.items():
            if not value.flags.c_contiguous:
                layer.params[key] = value = array_module(value).ascontiguousarray(value)
            broadcast(value, root, timeout)


def wait_for(world: World, request: Any, what: str, timeout: float | None) -> None:
    """Poll a non-blocking MPI request: a rank that never joins ends the job instead of hanging
    this one. Polls back off to 0.1 ms sleeps after the first millisecond (a waiting rank leaves
    its core to the others)."""
    start = time.perf_counter()
    while not request.Test():
        waited = time.perf_counter() - start
        if timeout is not None and waited > timeout:
            abort(world, f"{what} did not finish within {timeout:g} s: another rank failed or is stuck")
        if waited > 1e-3:
            time.sleep(1e-4)


def sum_in_place(world: World, buf: Any, timeout: float | None = None) -> None:
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
        sum_host(world, host, timeout)
        buf[...] = xp.asarray(host)
        return
    sum_host(world, buf, timeout)


def sum_host(world: World, buf: Array, timeout: float | None) -> None:
    if timeout is None:
        world.comm.Allreduce(world.mpi.IN_PLACE, buf, op=world.mpi.SUM)
        return
    wait_for(
        world,
        world.comm.Iallreduce(world.mpi.IN_PLACE, buf, op=world.mpi.SUM),
        f"an allreduce of {buf.nbytes} bytes",
        timeout,
    )


def _nccl(world: World) -> Any:
    """The NCCL communicator, or None (then the sums go through host memory): CuPy built without
    NCCL, or more ranks on a machine than GPUs (NCCL refuses two ranks on one device). Decided by
    all ranks together: creating the communicator is itself collective."""
    if world.nccl is None:
        try:
            import cupy  # noqa: PLC0415
            from cupy.cuda import nccl as nc  # noqa: PLC0415

            usable = bool(getattr(nc, "available", False)) and world.local_size <= cupy.cuda.runtime.getDeviceCount()
        except ImportError:
            usable = False
        if not world.comm.allreduce(int(usable), op=world.mpi.MIN):
            world.nccl = False
            return None
        uid = nc.get_unique_id() if world.rank == 0 else None
        uid = world.comm.bcast(uid, root=0)
        world.nccl = nc.NcclCommunicator(world.size, uid, world.rank)
    return world.nccl or None
