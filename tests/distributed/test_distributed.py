"""fastconv.distributed: as a single process here, and with real ranks under `mpiexec -n 2`
(tests/distributed/distributed_worker.py; skipped without mpi4py and an mpiexec, which the `mpi` extra installs)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fastconv as fc
from fastconv import data
from fastconv import distributed as dist
from fastconv.layers import BatchNormalization, Conv2D, Dense, Flatten

WORKER = os.path.join(os.path.dirname(__file__), "distributed_worker.py")


def mpiexec():
    """The mpiexec the benchmark launches with (beside this Python, else on PATH), or skip."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install 'fastconv[mpi]')")
    from fastconv.bench.distributed import mpiexec as find_mpiexec

    found = find_mpiexec()
    if found is None:
        pytest.skip("no mpiexec found (pip install mpich)")
    return found


def run_worker(scenario, out_dir, ranks, timeout=120):
    """The worker under `mpiexec -n ranks`, or alone for ranks=None; returns (rc, output)."""
    cmd = [sys.executable, WORKER, scenario, str(out_dir)]
    if ranks is not None:
        cmd = [mpiexec(), "-n", str(ranks)] + cmd
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "OMP_NUM_THREADS")
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return proc.returncode, proc.stdout + proc.stderr


def weights(path):
    f = np.load(path)
    return [f[f"w{i}"] for i in range(sum(k.startswith("w") for k in f.files))], f


def reference_and_ranks(tmp_path, scenario):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    rc, out = run_worker(scenario, tmp_path / "one", None)
    assert rc == 0, out
    rc, out = run_worker(scenario, tmp_path / "two", 2)
    assert rc == 0, out
    ref = weights(tmp_path / "one" / "rank0.npz")
    ranks = [weights(tmp_path / "two" / f"rank{r}.npz") for r in (0, 1)]
    assert int(ref[1]["size"]) == 1 and int(ranks[0][1]["size"]) == 2
    return ref, ranks, out


# ----------------------------------------------------------------------------- real ranks


def test_fit_on_two_ranks_equals_one_process_with_the_global_batch(tmp_path):
    (ref, ref_file), ranks, out = reference_and_ranks(tmp_path, "fit")
    for w0, w1 in zip(ranks[0][0], ranks[1][0]):
        np.testing.assert_array_equal(w0, w1)  # every rank holds the same bits
    for a, b in zip(ref, ranks[0][0]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    for key in ("loss", "val_loss", "accuracy"):  # metrics reduced over the ranks
        np.testing.assert_allclose(ranks[0][1][key], ref_file[key], rtol=1e-5)
        np.testing.assert_array_equal(ranks[1][1][key], ranks[0][1][key])
    assert out.count("Epoch 1/2") == 1  # only rank 0 prints
    cores = len(os.sched_getaffinity(0))
    assert int(ranks[0][1]["threads"]) == max(1, cores // 2)  # two ranks share this machine's cores
    assert int(ref_file["threads"]) == cores


def test_hand_written_loop_overlaps_backward_and_equals_one_process(tmp_path):
    (ref, ref_file), ranks, _ = reference_and_ranks(tmp_path, "loop")
    for a, b, c in zip(ref, ranks[0][0], ranks[1][0]):
        np.testing.assert_array_equal(b, c)
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ranks[0][1]["grad_sums"], ranks[1][1]["grad_sums"])
    np.testing.assert_allclose(ranks[0][1]["grad_sums"], ref_file["grad_sums"], rtol=1e-4, atol=1e-6)
    overlapped = ranks[0][1]["overlapped"]
    # 5 buckets: all but the last (complete when backward is) started during backward
    assert len(overlapped) == 10 and (overlapped == 4).all(), overlapped


@pytest.mark.gpu
def test_cupy_loop_on_two_ranks_equals_one_process(tmp_path):
    """The hand-written loop on CuPy arrays: NCCL with a GPU per rank, or through host memory when
    the ranks share a GPU (NCCL refuses that)."""
    if not fc.cuda_available():
        pytest.skip("needs the CUDA kernels, CuPy and a CUDA device")
    (ref, ref_file), ranks, _ = reference_and_ranks(tmp_path, "cupy")
    for a, b, c in zip(ref, ranks[0][0], ranks[1][0]):
        np.testing.assert_array_equal(b, c)
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(ranks[0][1]["grad_sums"], ranks[1][1]["grad_sums"])


def test_a_failing_rank_ends_the_job_with_its_error(tmp_path):
    rc, out = run_worker("fail", tmp_path, 2, timeout=60)
    assert rc != 0
    assert "rank 1 failed on purpose" in out and "aborting the job" in out, out


def test_a_rank_that_never_joins_the_broadcast_times_it_out(tmp_path):
    rc, out = run_worker("late", tmp_path, 2, timeout=60)
    assert rc != 0
    assert "a broadcast of" in out and "did not finish within 3 s" in out, out


def test_batches_that_differ_between_ranks_are_refused(tmp_path):
    rc, out = run_worker("mismatch", tmp_path, 2, timeout=60)
    assert rc != 0
    assert "the batches of x differ between ranks" in out, out


def test_a_stuck_rank_times_the_others_out(tmp_path):
    rc, out = run_worker("stuck", tmp_path, 2, timeout=60)
    assert rc != 0
    assert "did not finish within 5 s: another rank failed or is stuck" in out, out


# ----------------------------------------------------------------------------- one process


def small_model(frozen_first=False):
    model = fc.Sequential(
        [
            Conv2D(3, 3, input_shape=(6, 6, 2), seed=0, trainable=not frozen_first),
            BatchNormalization(),
            Conv2D(4, 3, seed=1),
            Flatten(),
            Dense(5, seed=2),
        ]
    )
    return model


def test_single_process_world():
    assert dist.rank() == 0 and dist.size() == 1 and dist.local_rank() == 0 and not dist.is_distributed()
    a = np.arange(5.0)
    np.testing.assert_array_equal(dist.allreduce(a), a)
    assert dist.broadcast(a) is a
    dist.barrier()


@pytest.mark.parametrize("n", [0, 1, 7, 15, 64])
@pytest.mark.parametrize("p", [1, 2, 3, 8])
def test_shard_range_partitions(n, p):
    parts = [dist.shard_range(n, r, p) for r in range(p)]
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    sizes = [e - b for b, e in parts]
    assert max(sizes) - min(sizes) <= 1


def test_shard_batches_alone_are_the_batches():
    x = np.arange(40.0).reshape(20, 2)
    y = np.arange(20)
    ours = list(dist.shard_batches(x, y, 6, seed=3))
    theirs = list(data.batches(x, y, 6, seed=3))
    assert len(ours) == len(theirs) == 4
    for (a, b), (c, d) in zip(ours, theirs):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_one_process_steps_like_the_wrapped_optimizer(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 5, 12)
    runs = []
    for wrap in (False, True):
        model = small_model()
        opt = fc.Adam(0.01)
        model.compile(dist.DistributedOptimizer(opt) if wrap else opt, "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=4, epochs=2, seed=1, verbose=0)
        runs.append(model)
    for a, b in zip(runs[0].get_weights(), runs[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    wrapped = runs[1].optimizer
    assert len(runs[1].grad_hooks) == 1
    runs[1].compile(dist.DistributedOptimizer(fc.SGD(0.1)), "sparse_categorical_crossentropy")
    assert len(runs[1].grad_hooks) == 1 and runs[1].grad_hooks[0].__self__ is runs[1].optimizer
    runs[1].optimizer = wrapped
    assert wrapped.iterations == 6 and wrapped.learning_rate == 0.01
    wrapped.learning_rate = 0.005  # callbacks set it through the wrapper
    assert wrapped.wrapped.learning_rate == 0.005
    runs[1].save(tmp_path / "m.npz")  # saved as the optimizer it wraps
    assert type(fc.load_model(tmp_path / "m.npz").optimizer) is fc.Adam


def test_buckets_follow_backward_order_and_leave_frozen_layers_out():
    model = small_model(frozen_first=True)
    model.build()
    opt = dist.DistributedOptimizer(fc.SGD(0.1), model, bucket_mib=100 / 2**20)  # 100 bytes
    refs = model.parameters()
    plan = opt._make_plan(refs)
    sent = [r for b in plan for r in b.refs]
    assert [r.name for r in sent] == [r.name for r in reversed(refs)]
    assert not any(r.layer is model.layers[0] for r in sent)  # frozen: not sent
    assert not any("moving" in r.key for r in sent)  # non-trainable statistics: not sent
    for b in plan:
        assert len(b.refs) == 1 or sum(r.value.nbytes for r in b.refs) <= 100
    assert all(b.buffer.size == sum(r.value.size for r in b.refs) for b in plan)


def test_bad_arguments():
    with pytest.raises(ValueError, match="bucket_mib"):
        dist.DistributedOptimizer(fc.SGD(0.1), bucket_mib=0)
    with pytest.raises(ValueError, match="timeout"):
        dist.DistributedOptimizer(fc.SGD(0.1), timeout=-1)
    with pytest.raises(TypeError, match="already"):
        dist.DistributedOptimizer(dist.DistributedOptimizer(fc.SGD(0.1)))
    with pytest.raises(TypeError, match="Sequential"):
        dist.DistributedOptimizer(fc.SGD(0.1), model=object())


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"overlap": "no"}, TypeError, "overlap must be True or False"),
        ({"overlap": 0}, TypeError, "overlap must be True or False"),
        ({"bucket_mib": True}, ValueError, "bucket_mib must be a finite number"),
        ({"bucket_mib": "25"}, ValueError, "bucket_mib must be a finite number"),
        ({"timeout": True}, ValueError, "timeout must be a finite number"),
        ({"timeout": "600"}, ValueError, "timeout must be a finite number"),
        ({"timeout": None}, ValueError, "timeout must be a finite number"),
    ],
)
def test_optimizer_arguments_are_bools_and_numbers(kwargs, error, message):
    with pytest.raises(error, match=message):
        dist.DistributedOptimizer(fc.SGD(0.1), **kwargs)


def test_optimizer_takes_numpy_numbers_and_bools():
    opt = dist.DistributedOptimizer(
        fc.SGD(0.1), bucket_mib=np.float32(0.5), timeout=np.int64(30), overlap=np.bool_(False)
    )
    assert opt.bucket_bytes == 2**19 and opt.timeout == 30.0 and opt.overlap is False


def test_collectives_need_arrays_ranks_and_timeouts():
    with pytest.raises(TypeError, match="allreduce: array must be a NumPy or CuPy array, got NoneType"):
        dist.allreduce(None)
    with pytest.raises(TypeError, match="broadcast: array must be a NumPy or CuPy array, got list"):
        dist.broadcast([1.0])
    a = np.arange(3.0)
    for root, error in ((5, ValueError), (1, ValueError), (-1, ValueError), (True, TypeError), ("0", TypeError)):
        with pytest.raises(error, match=r"root must be a rank in \[0, 1\) \(the job size is 1\)"):
            dist.broadcast(a, root=root)
    with pytest.raises(ValueError, match="root must be a rank"):
        dist.broadcast_parameters(small_model(), root=2)
    for timeout in ("x", True, 0, -1.0, np.nan):
        with pytest.raises(ValueError, match="timeout must be a finite number"):
            dist.barrier(timeout=timeout)
        with pytest.raises(ValueError, match="timeout must be a finite number"):
            dist.allreduce(a, timeout=timeout)
    dist.barrier(timeout=None)
    dist.barrier(timeout=np.float32(1.5))
    assert dist.broadcast(a, root=np.int64(0)) is a


def test_shard_range_checks_its_arguments():
    with pytest.raises(ValueError, match="size_ must be a positive int, got 0"):
        dist.shard_range(10, size_=0)
    with pytest.raises(ValueError, match=r"rank_ must be a rank in \[0, 2\) \(size_ is 2\), got 3"):
        dist.shard_range(10, rank_=3, size_=2)
    with pytest.raises(ValueError, match=r"rank_ must be a rank in \[0, 1\) \(the job size is 1\), got 1"):
        dist.shard_range(10, rank_=1)
    with pytest.raises(TypeError, match="rank_ must be a rank"):
        dist.shard_range(10, rank_=True, size_=2)
    for n in (-1, 2.5, "10", None):
        with pytest.raises(ValueError, match="n must be a non-negative int"):
            dist.shard_range(n)
    assert dist.shard_range(np.int64(10), np.int32(1), np.int64(2)) == (5, 10)


def test_launched_without_mpi4py_is_a_clear_error():
    code = (
        "import sys; sys.modules['mpi4py'] = None\n"
        "from fastconv import distributed\n"
        "try:\n    distributed.init()\nexcept ImportError as e:\n    print('ImportError:', e)\n"
    )
    env = dict(os.environ, PMI_SIZE="2", PMI_RANK="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60).stdout
    assert "started by an MPI launcher (2 ranks)" in out and "fastconv[mpi]" in out, out


# ----------------------------------------------------------------------------- the benchmark and its model


def test_scaling_model_formulas():
    from fastconv.bench import distributed as bench

    assert bench.ring_allreduce_s(1e9, 1, 1e-5, 1e9) == 0.0
    # p = 4: 6 messages of latency, 1.5 x the bytes over the bandwidth
    assert bench.ring_allreduce_s(1e9, 4, 1e-5, 1e9) == pytest.approx(6e-5 + 1.5)
    # one bucket ready when backward ends: all of it exposed
    step, exposed = bench.predicted_step(1.0, 0.6, [(1e9, 0.0)], 2, 0.0, 1e9)
    assert (step, exposed) == pytest.approx((2.0, 1.0))
    # ready with 0.5 s of backward left, 0.4 s to send: hidden
    assert bench.predicted_step(1.0, 0.6, [(4e8, 0.5)], 2, 0.0, 1e9) == pytest.approx((1.0, 0.0))
    # one channel: the second bucket waits for the first
    assert bench.predicted_step(1.0, 0.6, [(4e8, 0.5), (4e8, 0.45)], 2, 0.0, 1e9)[1] == pytest.approx(0.3)
    # buckets cut as DistributedOptimizer cuts them: complete when their lowest parameter is
    assert bench.bucketize([(3, 0.9), (3, 0.8), (5, 0.5), (1, 0.1)], 6) == [(6, 0.8), (6, 0.1)]
    sweep = [(n, 2 * 3e-6 + n / 2e9) for n in bench.SWEEP_BYTES]
    latency, bandwidth = bench.fit_latency_bandwidth(sweep)
    assert bandwidth == pytest.approx(2e9, rel=1e-6) and latency == pytest.approx(3e-6 + 512 / 2e9)


def test_forward_flops_of_the_mnist_cnn():
    from fastconv.bench import distributed as bench
    from fastconv.bench.loops import mnist_cnn

    model = mnist_cnn((28, 28, 1))
    model.build()
    macs = 26 * 26 * 32 * 9 + 11 * 11 * 64 * 32 * 9 + 3 * 3 * 64 * 64 * 9 + 576 * 64 + 64 * 10
    assert bench.forward_flops(model) == 2 * macs


def test_distributed_benchmark_runs(tmp_path):
    mpiexec()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastconv.bench",
            "distributed",
            "--workloads",
            "mnist",
            "--steps",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "distributed.md").read_text()
    assert "overlapped" in text and "after backward" in text and "Fitted to the 2-rank allreduce sweep" in text


def test_model_arguments_are_named():
    with pytest.raises(TypeError, match="model must be a fastconv model .* got int"):
        dist.broadcast_parameters(5)
    with pytest.raises(TypeError, match="model must be a fastconv.Sequential, got int"):
        dist.DistributedOptimizer(fc.SGD(0.1), model=5)
