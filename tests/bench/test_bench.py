"""`python -m fastconv.bench` in its smallest configuration (--smoke): it runs, writes the
JSON/markdown it promises (training-loop rows first), runs in the environment it is started in
(no re-exec), and its verification step catches a kernel that returns wrong values (the
contender is then not timed and the exit status is 1)."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys

import numpy as np
import pytest

import fastconv as fc
from fastconv import _cpu, bench
from fastconv.bench import kernel_calls, libs, loops, machine, shapes, torch_mirror

ROW_KEYS = {
    "network",
    "layer",
    "kind",
    "pass",
    "batch",
    "threads",
    "dtype",
    "shape",
    "flops",
    "bytes",
    "ms",
    "gflops",
    "gbps",
    "pct_peak",
    "pct_copy",
    "torch_best_ms",
    "x_vs_torch_best",
    "x_vs_numpy",
    "verified",
    "verify_error",
    "peak_gflops",
    "copy_gbps",
}


def run_smoke(tmp_path, *extra):
    code = bench.main(["--smoke", "--out", str(tmp_path), *extra])
    return code, json.loads((tmp_path / "bench.json").read_text())


def test_smoke_run_writes_json_and_markdown(tmp_path, capsys):
    code, res = run_smoke(tmp_path)
    assert code == 0 and res["ok"] is True
    assert {
        "machine",
        "config",
        "results",
        "networks",
        "summary",
        "verification",
        "command",
        "fastconv_version",
        "isa",
        "torch_version",
        "numpy_version",
        "loops",
        "thread_settings",
    } <= set(res)
    m = res["machine"]
    assert all(v > 0 for per in m["peak_gflops_f32"].values() for v in per.values())
    assert m["copy_gbps"]["1"] > 0 and m["copy_gbps_streaming"]["1"] > 0
    kinds = {(r["kind"], r["pass"]) for r in res["results"]}
    assert kinds == {
        ("conv", "fwd"),
        ("conv", "bwd_data"),
        ("conv", "bwd_weight"),
        ("pool", "fwd"),
        ("pool", "bwd"),
        ("relu", "fwd"),
        ("relu", "bwd"),
    }
    for r in res["results"]:
        assert ROW_KEYS <= set(r), ROW_KEYS - set(r)
        assert r["verified"] is True
        assert r["ms"]["fastconv NCHW"] > 0 and r["ms"]["fastconv NHWC"] > 0
        if r["kind"] == "conv":
            assert r["gflops"]["fastconv NCHW"] > 0 and r["pct_peak"]["fastconv NCHW"] > 0
        else:
            assert r["gbps"]["fastconv NHWC"] > 0 and r["pct_copy"]["fastconv NHWC"] > 0
            assert r["gbps"]["fastconv NCHW kernel"] > 0 and r["pct_copy"]["fastconv NHWC kernel"] > 0
        if res["torch_version"]:
            assert r["ms"]["torch NCHW"] > 0 and r["x_vs_torch_best"]["fastconv NCHW"] > 0
    assert res["verification"]["checked"] == 2 * len(res["results"]) + len(res["loops"])
    assert not res["verification"]["failed"]
    assert [n["name"] for n in res["networks"]] == ["mnist CNN training step"]
    assert [r["key"] for r in res["loops"]] == ["a", "d"]  # --smoke: the two small rows
    for r in res["loops"]:
        check_loop_row(r, torch=bool(res["torch_version"]))
    assert res["loops"][1]["dtype"] == "float64" and res["loops"][1]["ms"]["numpy"] > 0
    assert res["loops"][1]["kernels_ms_by_group"]["numpy"] > 0  # the course's affine layers
    md = (tmp_path / "bench.md").read_text()
    assert "## Convolution layers" in md and "## Max pooling and ReLU" in md and "FAIL" not in md
    assert md.index("## Training loops") < md.index("## Convolution summary")
    assert "| a | MNIST CNN training step" in md and "| d | cs231n ThreeLayerConvNet.loss" in md
    if res["torch_version"]:  # the chart's speed-up panel has every kind of row of the run
        from fastconv.bench import report

        labels = [label for label, _ in report._ratios_vs_torch(res)]
        assert labels[0].startswith("loop a") and any(" relu" in lab for lab in labels)
        assert any(" conv" in lab or "conv" in lab.split()[1] for lab in labels[2:])
    capsys.readouterr()


def check_loop_row(r, torch):
    assert r["skipped"] is None and r["check"]["ok"], r
    assert r["ms"]["fastconv"] > 0 and r["kernels_ms"] > 0 and r["step_over_kernels"] > 0
    assert r["kernel_calls"]["conv2d_forward"] >= 1 and r["kernel_calls"]["conv2d_backward_weight"] >= 1
    if torch:
        assert r["ms"]["torch"] > 0 and r["x_vs_torch"] > 0


def test_runs_in_its_environment_without_reexec(tmp_path, monkeypatch, capsys):
    """The entry point neither re-executes itself nor sets thread variables; it reports them."""

    def no_exec(*args):
        raise AssertionError(f"the benchmark re-executed itself: {args}")

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    monkeypatch.setenv("FASTCONV_BENCH_TEST", "1")
    monkeypatch.setattr(os, "execv", no_exec)
    monkeypatch.setattr(
        sys,
        "argv",
        ["fastconv.bench", "--smoke", "--no-loops", "--no-networks", "--layers", "conv_a", "--out", str(tmp_path)],
    )
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("fastconv.bench", run_name="__main__")
    assert exit_.value.code == 0 and "OPENBLAS_THREAD_TIMEOUT" not in os.environ
    ts = json.loads((tmp_path / "bench.json").read_text())["thread_settings"]
    assert ts["env"]["OPENBLAS_THREAD_TIMEOUT"] is None and ts["env"]["FASTCONV_BENCH_TEST"] == "1"
    assert set(machine.THREAD_ENV_VARS) <= set(ts["env"])
    assert ts["fastconv_threads"] == fc.get_num_threads() and ts["numpy_blas"]["name"]
    assert "OPENBLAS_THREAD_TIMEOUT unset" in capsys.readouterr().err
    assert "OPENBLAS_THREAD_TIMEOUT unset" in (tmp_path / "bench.md").read_text()


def test_thread_settings_without_threadpoolctl(monkeypatch):
    monkeypatch.setattr(machine, "_thread_pools", lambda: None)
    ts = machine.thread_settings()
    assert ts["thread_pools"] is None and ts["numpy_blas"]["threads"] is None and ts["torch_threads"] is None
    assert "threads unknown" in machine.describe_threads(ts)


@pytest.mark.parametrize("key", ["b", "c"])
def test_vgg16_loop_rows_in_smoke_form(key):
    """Rows b and c through fastconv.bench.loops (tiny inputs): the transfer row's frozen base
    computes no conv gradient, the full row computes them all (the first conv no input grad).
    Row c leaves PyTorch out (its mirror is checked in rows a and b; this keeps the test short)."""
    torch = libs.torch_module() if key == "b" else None
    row = loops.run(key, torch, "smoke")
    if key == "b" and row["skipped"]:
        assert "trainable=False" in row["skipped"]  # freezing not in this build yet
        return
    calls = row["kernel_calls"]
    if key == "b":
        assert row["skipped"] is None and row["check"]["ok"] and row["frozen_layers_with_params"] == 13
        assert calls["conv2d_forward"] == 13 and "conv2d_backward_weight" not in calls
        assert "conv2d_backward_data" not in calls
    else:
        check_loop_row(row, torch=torch is not None)
        assert calls["conv2d_forward"] == 13 and calls["conv2d_backward_weight"] == 13
        assert calls["conv2d_backward_data"] == 12


def test_batch_norm_loop_row_in_smoke_form():
    """Row e (tiny inputs): the batch-norm CNN matches its PyTorch mirror (batch norm with Keras'
    momentum and epsilon, global average pooling) and its step runs the batch-norm and pooling
    kernels; a mirror with a wrong epsilon is caught by the check."""
    torch = libs.torch_module()
    row = loops.run("e", torch, "smoke")
    check_loop_row(row, torch=torch is not None)
    calls = row["kernel_calls"]
    assert calls["batchnorm_train_forward"] == calls["batchnorm_backward"] == 3
    assert calls["avgpool2d_forward"] == calls["avgpool2d_backward"] == 1
    if torch is not None:
        model = loops.bn_cnn((8, 8, 1))
        x = np.random.default_rng(0).standard_normal((2, 8, 8, 1), dtype=np.float32)
        model.forward(x, training=True)  # built; moving statistics move
        model.layers[1].epsilon = 0.5  # the mirror copies this epsilon ...
        net = torch_mirror.torch_mirror(torch, model, torch.float32)
        model.layers[1].epsilon = 1e-3  # ... which the model no longer uses
        assert not torch_mirror.check_outputs(torch, model, net, x)["ok"]


def test_kernel_recorder_restores_the_kernels():
    before = _cpu.conv2d_forward
    x, w = np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 3, 3), np.float32)
    with pytest.raises(RuntimeError):
        with kernel_calls.KernelRecorder() as rec:
            fc.conv2d(x, w)
            raise RuntimeError
    assert _cpu.conv2d_forward is before
    assert [(g, n) for g, n, *_ in rec.calls] == [("fastconv", "conv2d_forward")]


def test_loop_selection(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--smoke", "--loops", "a,x", "--out", str(tmp_path)])
    assert "unknown row(s) ['x']" in capsys.readouterr().err
    code, res = run_smoke(tmp_path, "--no-loops", "--no-networks", "--layers", "conv_a")
    assert code == 0 and res["loops"] == [] and "## Training loops" not in (tmp_path / "bench.md").read_text()
    capsys.readouterr()


def test_verification_catches_a_wrong_kernel(tmp_path, monkeypatch, capsys):
    real = fc.max_pool2d

    def off_by_one(x, *args, **kwargs):
        y, idx = real(x, *args, **kwargs)
        return y + np.asarray(1, y.dtype), idx

    monkeypatch.setattr(fc, "max_pool2d", off_by_one)
    code, res = run_smoke(tmp_path, "--no-networks", "--no-loops")
    assert code == 1 and res["ok"] is False
    assert any("pool_a fwd fastconv NCHW" in f for f in res["verification"]["failed"])
    pool = [r for r in res["results"] if r["layer"] == "pool_a" and r["pass"] == "fwd"][0]
    assert pool["verified"] is False and "fastconv NCHW" not in pool["ms"]
    assert pool["skipped"]["fastconv NCHW"] == "failed verification" and "fastconv NCHW kernel" not in pool["ms"]
    assert all(r["verified"] for r in res["results"] if r["kind"] != "pool" or r["pass"] != "fwd")
    assert "VERIFICATION FAILED" in capsys.readouterr().err


def test_verification_catches_a_wrong_convolution(tmp_path, monkeypatch, capsys):
    real = fc.conv2d_backward_weight

    def scaled(*args, **kwargs):
        gw, gb = real(*args, **kwargs)
        return gw * np.asarray(1.001, gw.dtype), gb

    monkeypatch.setattr(fc, "conv2d_backward_weight", scaled)
    code, res = run_smoke(tmp_path, "--no-networks", "--no-loops")
    assert code == 1
    assert {f.split(" fastconv")[0] for f in res["verification"]["failed"]} == {
        "smoke conv_a bwd_weight",
        "smoke conv_b bwd_weight",
    }
    capsys.readouterr()


def test_shape_files_parse():
    vgg = shapes.load("vgg16")
    assert [L.kind for L in vgg].count("conv") == 13 and [L.kind for L in vgg].count("pool") == 5
    assert [L.kind for L in vgg].count("relu") == 13
    assert all(L.P == L.H and L.Q == L.W for L in vgg if L.kind == "conv")  # 3x3 pad 1
    flops = sum(L.flops(1) for L in vgg)
    assert 30.0e9 < flops < 31.5e9  # VGG16: 15.5 GMAC
    mnist = shapes.load("mnist")
    assert [(L.name, L.P) for L in mnist if L.kind != "relu"] == [
        ("conv1", 26),
        ("pool1", 13),
        ("conv2", 11),
        ("pool2", 5),
        ("conv3", 3),
    ]
    assert all(L.batch == 64 for L in mnist)
    assert {(L.batch, L.dtype) for L in shapes.load("cs231n")} == {(100, "float64"), (50, "float64")}
    with pytest.raises(ValueError, match="needs"):
        shapes.parse("conv c1 3 224 224 64", "bad")
    fused = [L for L in shapes.load("activations") if L.kind == "conv"]
    assert [L.activation for L in fused] == [None, "sigmoid", "tanh", "leaky_relu"]
    assert [libs.passes(L) for L in fused[:2]] == [("fwd", "bwd_data", "bwd_weight"), ("fwd",)]
    with pytest.raises(ValueError, match="act must be"):
        shapes.parse("conv c1 3 8 8 4 3 3 1 1 act=elu", "bad")
    with pytest.raises(ValueError, match="unknown option"):
        shapes.parse("pool p1 3 8 8 2 2 0 act=relu", "bad")


def test_verification_catches_a_conv_whose_activation_is_not_applied(tmp_path, monkeypatch, capsys):
    """A conv line with act= is checked against the reference with the activation."""
    real = fc.conv2d
    monkeypatch.setattr(fc, "conv2d", lambda *a, activation=None, **kw: real(*a, **kw))
    shape_file = tmp_path / "fused.txt"
    shape_file.write_text("conv c_sig 3 9 9 4 3 3 1 1 act=sigmoid\nconv c_none 3 9 9 4 3 3 1 1\n")
    monkeypatch.setattr(shapes, "SHAPES_DIR", tmp_path)
    code, res = run_smoke(tmp_path, "--networks", "fused", "--no-networks", "--no-loops")
    assert code == 1
    assert {f.split(" fastconv")[0] for f in res["verification"]["failed"]} == {"fused c_sig fwd"}
    capsys.readouterr()


def test_device_cuda_says_clearly_when_missing_or_delegates(monkeypatch, capsys):
    import importlib.util

    if importlib.util.find_spec("fastconv.bench.cuda") is None:
        assert bench.main(["--device", "cuda", "--quick"]) == 2
        assert "not part of this installation" in capsys.readouterr().err
    else:  # the CUDA engineer's module is installed: main() must receive the remaining argv
        import fastconv.bench.cuda as cuda_bench

        seen = []
        monkeypatch.setattr(cuda_bench, "main", lambda argv: seen.append(argv) or 0)
        assert bench.main(["--device", "cuda", "--quick"]) == 0
        assert seen == [["--quick"]]


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "fastconv.bench", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--quick" in out.stdout and "--device" in out.stdout and "--loops" in out.stdout


def test_runs_without_pytorch(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(libs, "torch_module", lambda: None)
    code, res = run_smoke(tmp_path)
    assert code == 0 and res["torch_version"] is None
    assert "PyTorch not installed" in capsys.readouterr().err
    for r in res["results"]:
        assert not any(k.startswith("torch") for k in r["ms"]) and r["torch_best_ms"] is None
        assert {"fastconv NCHW", "fastconv NHWC", "numpy"} <= set(r["ms"])
    assert set(res["networks"][0]["ms"]) == {"fastconv NCHW", "fastconv NHWC", "numpy"}
    assert [set(r["ms"]) for r in res["loops"]] == [{"fastconv"}, {"fastconv", "numpy"}]


def test_the_focused_benchmarks_are_commands_of_the_one_home(capsys):
    """python -m fastconv.bench <command>: every command's module has main(argv), and one runs."""
    import importlib

    from fastconv.bench import cli

    for name, (module, _) in cli.COMMANDS.items():
        assert callable(importlib.import_module(f"fastconv.bench.{module}").main), name
    assert cli.main(["kernels", "--layers", "12", "--passes", "fwd", "--reps", "1", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "L12 C=512 K=512 H=14" in out and "fc NHWC=" in out
    with pytest.raises(SystemExit) as exc:
        cli.main(["fit", "--help"])
    assert exc.value.code == 0 and "--rounds" in capsys.readouterr().out


def test_fold_command_times_the_three_models_and_checks_the_fold(tmp_path, monkeypatch, capsys):
    """python -m fastconv.bench fold: a row per VGG16 shape, the folded output checked against the
    model as trained, and a non-zero exit when the fold is wrong."""
    from fastconv.bench import cli
    from fastconv.layers import BatchNormalization

    out = tmp_path / "fold.md"
    assert cli.main(["fold", "--batch", "1", "--repeats", "1", "--no-torch", "--out", str(out)]) == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith("| conv")]
    assert [r.split(" | ")[0] for r in rows] == ["| conv2_1", "| conv3_2", "| conv4_2", "| conv5_2"]
    assert all(" ok |" in r for r in rows)
    monkeypatch.setattr(
        BatchNormalization, "folded_into", lambda self, conv: (conv.params["kernel"], self.params["beta"])
    )
    assert cli.main(["fold", "--batch", "1", "--repeats", "1", "--no-torch"]) == 1
    assert "FAILED" in capsys.readouterr().out
