"""What this machine delivers, measured by the benchmark itself: the FMA peak (csrc/cpu/
csrc/bench/peak_flops.cpp: independent FMA chains per thread, no memory traffic) and the copy bandwidth
(a C++ copy split over the same threads, with ordinary and with streaming stores); and the
BLAS/OpenMP thread settings the run found (the benchmark runs in the environment it is started
in, as users' training loops do, and says what that environment was)."""

from __future__ import annotations

import os
import platform

import numpy as np

from .. import _cpu
from ..backend import blas

# Environment variables that change how NumPy's BLAS, PyTorch and fastconv use threads.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "OMP_PROC_BIND",
    "GOMP_SPINCOUNT",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_THREAD_TIMEOUT",
    "MKL_NUM_THREADS",
)


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
    out = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "peak_gflops_f32": {},
        "copy_gbps": {},
        "copy_gbps_streaming": {},
        "copy_bytes": copy_bytes,
    }
    out["peak_detail"] = {}
    for isa in isas:
        detail = {str(t): fma_peak_gflops(isa, t, 0.1 if quick else 0.3) for t in threads_list}
        out["peak_detail"][isa] = detail
        out["peak_gflops_f32"][isa] = {t: d["peak"] for t, d in detail.items()}
    for t in threads_list:
        out["copy_gbps"][str(t)] = copy_gbps(t, copy_bytes, False, 2 if quick else 3)
        out["copy_gbps_streaming"][str(t)] = copy_gbps(t, copy_bytes, True, 2 if quick else 3)
    return out


def _thread_pools():
    """threadpoolctl's view of the loaded BLAS and OpenMP libraries (None without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415  (optional)
    except ImportError:
        return None
    keys = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer", "filepath")
    return [{k: d.get(k) for k in keys} for d in threadpool_info()]


def _numpy_blas(pools):
    """{"name", "version", "threads", "threading_layer"} of NumPy's BLAS (threads None when unknown)."""
    blas = [p for p in pools or () if p["user_api"] == "blas"]
    mine = [p for p in blas if "numpy" in (p["filepath"] or "")] or blas
    if mine:
        p = mine[0]
        return {
            "name": p["internal_api"],
            "version": p["version"],
            "threads": p["num_threads"],
            "threading_layer": p["threading_layer"],
        }
    try:
        dep = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {"name": dep.get("name"), "version": dep.get("version"), "threads": None, "threading_layer": None}
    except Exception:  # noqa: BLE001  (show_config's layout differs between NumPy versions)
        return {"name": None, "version": None, "threads": None, "threading_layer": None}


def thread_settings(torch=None) -> dict:
    """The thread settings this process runs with: THREAD_ENV_VARS and FASTCONV_* (value, or
    None when unset), NumPy's BLAS and its thread count, torch.get_num_threads(), fastconv's
    threads, and every BLAS/OpenMP pool threadpoolctl sees (when it is installed)."""
    names = list(THREAD_ENV_VARS) + sorted(k for k in os.environ if k.startswith("FASTCONV_"))
    pools = _thread_pools()
    return {
        "env": {k: os.environ.get(k) for k in names},
        "numpy_blas": _numpy_blas(pools),
        "torch_threads": torch.get_num_threads() if torch else None,
        "fastconv_threads": _cpu.get_num_threads(),
        "fastconv_worker_spin_us": _cpu.get_spin_us(),
        "fastconv_blas_parking": blas.enabled() and blas.parkable_libraries() > 0,
        "thread_pools": pools,
    }


def describe_threads(ts) -> str:
    """One line: `fastconv 2 threads; NumPy BLAS openblas 0.3.31 (pthreads) 2 threads; ...`."""
    b = ts["numpy_blas"]
    blas = " ".join(str(v) for v in (b["name"], b["version"]) if v) or "unknown"
    if b["threading_layer"]:
        blas += f" ({b['threading_layer']})"
    blas_threads = f"{b['threads']} threads" if b["threads"] else "threads unknown (no threadpoolctl)"
    parts = [
        f"fastconv {ts['fastconv_threads']} threads (worker spin {ts['fastconv_worker_spin_us']} us, "
        f"BLAS parking {'on' if ts['fastconv_blas_parking'] else 'off'})",
        f"NumPy BLAS {blas} {blas_threads}",
    ]
    if ts["torch_threads"] is not None:
        parts.append(f"PyTorch {ts['torch_threads']} threads")
    env = ", ".join(f"{k}={v}" if v is not None else f"{k} unset" for k, v in ts["env"].items())
    return "; ".join(parts) + f"; environment: {env}"
