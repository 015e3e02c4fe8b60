"""DistributedOptimizer: averages the gradients across ranks in buckets reduced on a
communication thread while backward runs, then steps the wrapped optimizer."""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Any

import numpy as np

from ..backend.arrays import array_module, is_cupy
from ..ops._checks import flag, real
from ..training import optimizers as optim
from .collectives import sum_host, sum_in_place
from .world import DEFAULT_TIMEOUT, World, abort, current_world


class _Bucket:
    """A fixed run of parameters whose gradients are summed in one allreduce. After the sum, the
    layers' grads are views into the buffer (no copy back): the next step's pack overwrites them,
    as the next backward would."""

    def __init__(self, refs: list[Any], layers: set[int], xp: Any, dtype: np.dtype[Any]) -> None:
        self.refs, self.layers = refs, layers
        sizes = [int(np.prod(r.value.shape)) for r in refs]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.buffer = xp.empty(int(self.offsets[-1]), dtype=dtype)
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.background = False  # sent by the communication thread

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes

    def pack(self, weight: float) -> None:
        """Gradients times this rank's weight (its share of the global batch) into the buffer."""
        xp = array_module(self.buffer)
        for ref, b, e in zip(self.refs, self.offsets[:-1], self.offsets[1:]):
            xp.multiply(ref.grad.reshape(-1), self.buffer.dtype.type(weight), out=self.buffer[b:e])

    def hand_back(self) -> None:
        """The summed gradients become the layers' grads."""
        for ref, b, e in zip(self.refs, self.offsets[:-1], self.offsets[1:]):
            ref.layer.grads[ref.key] = self.buffer[b:e].reshape(ref.value.shape)


class _CommThread:
    """One thread that runs the allreduces in the order they are queued, so the compute thread
    goes on with backward (the kernels release the GIL, and so does MPI)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.jobs: queue.Queue[_Bucket] = queue.Queue()
        self.busy_seconds = 0.0
        self.thread = threading.Thread(target=self._run, name="fastconv-allreduce", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            bucket = self.jobs.get()
            t0 = time.perf_counter()
            try:
                sum_in_place(self.world, bucket.buffer)
            except BaseException as exc:  # handed to the compute thread by step()
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

    def __init__(
        self,
        optimizer: optim.Optimizer | str,
        model: Any = None,
        *,
        bucket_mib: float = 25.0,
        timeout: float = DEFAULT_TIMEOUT,
        overlap: bool = True,
    ) -> None:
        self.wrapped = optim.get(optimizer)
        if isinstance(self.wrapped, DistributedOptimizer):
            raise TypeError("optimizer is already a DistributedOptimizer")
        self.bucket_bytes = int(real("bucket_mib", bucket_mib, 0.0, 4096.0, low_open=True) * 2**20)
        self.timeout = real("timeout", timeout, 0.0, math.inf, low_open=True)
        self.overlap = flag("overlap", overlap)
        self.world = current_world()
        self.last_step: dict[str, float] = {}
        self._model: Any = None
        self._plans: dict[tuple[Any, ...], list[_Bucket]] = {}  # parameter list key -> buckets
        self._plan: list[_Bucket] = []  # this backward's buckets
        self._launched: list[_Bucket] = []  # of them, sent so far, in order
        self._done_layers: set[int] = set()
        self._weight = 1.0  # this rank's share of the global batch, this step
        self._averaged = False  # the grads of the last backward are averages already
        self._sync_seconds = 0.0  # allreduce time spent on the compute thread
        self._busy_at_start = 0.0
        if model is not None:
            self.attach(model)

    # the wrapped optimizer's settings, as callbacks and saving read and write them
    learning_rate = property(
        lambda self: self.wrapped.learning_rate, lambda self, v: setattr(self.wrapped, "learning_rate", v)
    )
    lr = learning_rate
    schedule = property(lambda self: self.wrapped.schedule)
    iterations = property(lambda self: self.wrapped.iterations, lambda self, v: setattr(self.wrapped, "iterations", v))
    state = property(lambda self: self.wrapped.state, lambda self, v: setattr(self.wrapped, "state", v))

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.wrapped!r}, ranks={self.world.size})"

    def attach(self, model: Any) -> None:
        """Average the gradients inside model.backward (see the class docstring)."""
        if self._model is model:
            return
        if not hasattr(model, "grad_hooks"):
            raise TypeError(f"model must be a fastconv.Sequential, got {type(model).__name__}")
        model.grad_hooks[:] = [
            h for h in model.grad_hooks if not isinstance(getattr(h, "__self__", None), DistributedOptimizer)
        ]
        self._model = model
        model.grad_hooks.append(self._layer_done)

    # -- the plan: buckets over the trainable parameters in the order backward fills them
    def _buckets(self, refs: list[Any]) -> list[_Bucket]:
        key = tuple(
            (id(r.layer), r.key, tuple(r.value.shape), r.value.dtype.str, type(r.value).__module__) for r in refs
        )
        if key not in self._plans:
            if len(self._plans) >= 4:  # parameter sets come and go (freezing): keep a few
                self._plans.clear()
            self._plans[key] = self._make_plan(refs)
        return self._plans[key]

    def _make_plan(self, refs: list[Any]) -> list[_Bucket]:
        order = list(reversed(refs))  # backward: the last layer's gradients come first
        plan: list[_Bucket] = []
        run: list[Any] = []
        run_bytes = 0

        def close() -> None:
            if run:
                xp = array_module(run[0].value)
                plan.append(_Bucket(list(run), {id(r.layer) for r in run}, xp, run[0].value.dtype))

        for ref in order:
            nbytes = ref.value.nbytes
            if run and (
                run_bytes + nbytes > self.bucket_bytes
                or ref.value.dtype != run[0].value.dtype
                or array_module(ref.value) is not array_module(run[0].value)
            ):
                close()
                run, run_bytes = [], 0
            run.append(ref)
            run_bytes += nbytes
        close()
        return plan

    def _share_of_batch(self) -> float:
        """This rank's samples / the global batch (one small allreduce, on every rank alike), or
        1 / size without an attached model (the samples are not known)."""
        if self._model is None:
            return 1.0 / self.world.size
        n = int(self._model.last_batch_size or 0)
        total = np.array([n], dtype=np.int64)
        sum_host(self.world, total, self.timeout)
        if total[0] == 0:
            raise ValueError("no rank had samples in this step")
        return n / int(total[0])

    def _comm_thread(self) -> _CommThread:
        if getattr(self.world, "comm_thread", None) is None:  # one per job: one order of collectives
            self.world.comm_thread = _CommThread(self.world)
        return self.world.comm_thread

    def _busy(self) -> float:
        thread = getattr(self.world, "comm_thread", None)
        return thread.busy_seconds if thread is not None else 0.0

    # -- during backward
    def _layer_done(self, model: Any, layer: Any, is_top: bool, is_bottom: bool) -> None:
        """Sequential.backward's report: `layer` has its gradients (is_top: the first reported,
        is_bottom: the last)."""
        if self.world.size == 1:
            return
        if is_top:
            self._wait_in_flight()  # a second backward before step(): buffers reused
            self._start(model.parameters())
        self._done_layers.add(id(layer))
        plan = self._plan
        # the last bucket is complete only when backward is: _finish sends it, without a thread handoff
        while (
            self.overlap
            and len(self._launched) < len(plan) - 1
            and plan[len(self._launched)].layers <= self._done_layers
        ):
            self._launch(plan[len(self._launched)], background=True)
        if is_bottom:
            self._finish()
            self._averaged = True

    def _start(self, refs: list[Any]) -> None:
        self._busy_at_start, self._sync_seconds = self._busy(), 0.0
        self._done_layers, self._launched, self._averaged = set(), [], False
        self._plan = self._buckets(refs)
        self._weight = self._share_of_batch()

    def _launch(self, bucket: _Bucket, background: bool) -> None:
        bucket.done.clear()
        bucket.error = None
        bucket.pack(self._weight)
        bucket.background = background and not is_cupy(bucket.buffer) and self.world.threads_ok
        if bucket.background:
            self._comm_thread().jobs.put(bucket)
        else:
            t0 = time.perf_counter()
            sum_in_place(self.world, bucket.buffer, self.timeout)  # NCCL: queued on the stream
            self._sync_seconds += time.perf_counter() - t0
            bucket.done.set()
        self._launched.append(bucket)

    def _wait_in_flight(self) -> None:
        for i, bucket in enumerate(self._launched):
            self._wait(i, bucket)

    def _wait(self, i: int, bucket: _Bucket) -> None:
        if not bucket.done.wait(self.timeout):
            abort(
                self.world,
                f"the allreduce of gradient bucket {i} ({bucket.nbytes} bytes) did not "
                f"finish within {self.timeout:g} s: another rank failed or is stuck",
            )
        if bucket.error is not None:
            raise RuntimeError(f"allreduce of gradient bucket {i} failed") from bucket.error

    def _finish(self) -> None:
        """Send the buckets not sent yet (after the queued ones: one channel, so every rank issues
        the collectives in one order), wait for all, and make the sums the layers' grads."""
        t0 = time.perf_counter()
        overlapped = sum(b.background for b in self._launched)
        if len(self._launched) < len(self._plan):
            self._wait_in_flight()
            for bucket in self._plan[len(self._launched) :]:
                self._launch(bucket, background=False)
        for i, bucket in enumerate(self._plan):
            self._wait(i, bucket)
            bucket.hand_back()
        self.last_step = {
            "buckets": len(self._plan),
            "overlapped": overlapped,
            "bytes": sum(b.nbytes for b in self._plan),
            "comm_s": self._busy() - self._busy_at_start + self._sync_seconds,
            "exposed_s": time.perf_counter() - t0,
        }
        self._launched = []

    # -- the step
    def step(self, params: Any) -> None:
        refs = self.wrapped._refs(params)  # a list: params may be a generator
        if self.world.size > 1 and not self._averaged:
            if hasattr(params, "grad_hooks"):
                self.attach(params)  # the next backwards average as they go
            self._start([r for r in refs if r.trainable and r.grad is not None])
            self._finish()
        self._averaged = False
        self.wrapped.step(refs)
