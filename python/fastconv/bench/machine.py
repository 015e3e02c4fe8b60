"""What this machine delivers, measured by the benchmark itself: the FMA peak (csrc/cpu/
peak_flops.cpp: independent FMA chains per thread, no memory traffic) and the copy bandwidth
(a C++ copy split over the same threads, with ordinary and with streaming stores)."""
from __future__ import annotations

import os
import platform

from .. import _cpu


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fma_peak_gflops(isa: str, threads: int, seconds: float = 0.3, tries: int = 3) -> dict:
    """FP32 GFLOP/s of `threads` threads running FMA chains with `isa`, best of `tries`:
    {"wall": flops / wall time, "cpu_time": sum over threads of flops / thread CPU time,
     "peak": the larger}. On a shared machine a thread waiting for a core lowers the wall-time
    rate but not the CPU-time one, so "peak" stays what the cores can do (a strict denominator)."""
    iters = 1_000_000
    probe_wall, _ = _cpu.fma_peak_gflops(isa, threads, iters)
    # scale so one try takes about `seconds`: iters * 16 chains * 2 flops * lanes * threads / rate
    lanes = 16 if isa == "avx512" else 8
    iters = max(iters, int(seconds * probe_wall * 1e9 / (32 * lanes * threads)))
    runs = [_cpu.fma_peak_gflops(isa, threads, iters) for _ in range(tries)]
    wall, cpu = max(r[0] for r in runs), max(r[1] for r in runs)
    return {"wall": wall, "cpu_time": cpu, "peak": max(wall, cpu)}


def copy_gbps(threads: int, nbytes: int = 512 << 20, streaming: bool = False, repeats: int = 3) -> float:
    """GB/s (read + written) of a copy of nbytes split over `threads` threads (best of repeats)."""
    return _cpu.copy_gbps(int(nbytes), threads, streaming, repeats)


def measure(threads_list, isas, copy_bytes: int, quick: bool) -> dict:
    """Peak (per ISA, per thread count) and copy bandwidth (per thread count)."""
    out = {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "peak_gflops_f32": {}, "copy_gbps": {},
           "copy_gbps_streaming": {}, "copy_bytes": copy_bytes}
    out["peak_detail"] = {}
    for isa in isas:
        detail = {str(t): fma_peak_gflops(isa, t, 0.1 if quick else 0.3) for t in threads_list}
        out["peak_detail"][isa] = detail
        out["peak_gflops_f32"][isa] = {t: d["peak"] for t, d in detail.items()}
    for t in threads_list:
        out["copy_gbps"][str(t)] = copy_gbps(t, copy_bytes, False, 2 if quick else 3)
        out["copy_gbps_streaming"][str(t)] = copy_gbps(t, copy_bytes, True, 2 if quick else 3)
    return out
