"""fastconv.bench.cuda (the GPU benchmark): imports everywhere, refuses clearly without a GPU."""

from __future__ import annotations

import pytest

import fastconv as fc
from fastconv.bench import cuda as bench_cuda


def test_without_gpu_exits_2_with_a_clear_message(capsys, tmp_path):
    if fc.cuda_available():
        pytest.skip("a GPU is present: the benchmark would run")
    out = tmp_path / "r.json"
    assert bench_cuda.main(["--batch", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot run" in err
    assert any(word in err for word in ("nvcc", "CuPy", "CUDA device")), err
    assert not out.exists()


def test_options():
    args = bench_cuda._parse([])
    assert (args.batch, args.versions, args.layouts) == (32, "3", "NCHW,NHWC")
    args = bench_cuda._parse(["--versions", "1,2,3", "--layers", "conv5_3", "--no-torch"])
    assert args.versions == "1,2,3" and args.layers == "conv5_3" and args.no_torch


def test_vgg16_layer_table():
    """The 13 conv layers of VGG16 at 224x224: 15.35 G multiply-adds per image."""
    assert len(bench_cuda.VGG16_CONV) == 13 and len(bench_cuda.VGG16_POOL) == 5
    macs = sum(K * HW * HW * C * 9 for _, C, K, HW in bench_cuda.VGG16_CONV)
    assert abs(macs - 15.347e9) / 15.347e9 < 1e-3
    # every pool halves the output of the conv before it
    convs = {name: (K, HW) for name, _, K, HW in bench_cuda.VGG16_CONV}
    for (pname, C, HW), last in zip(bench_cuda.VGG16_POOL, ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")):
        assert convs[last] == (C, HW), pname
    assert bench_cuda._peak("NVIDIA H100 80GB HBM3", None) == 66.9
    assert bench_cuda._peak("Some GPU", 12.0) == 12.0
