"""Process-wide switches of the kernels: threads, worker spin, OpenBLAS parking, the CPU ISA,
Winograd, the output cache and scratch memory, and whether CUDA is there. The fastconv package
re-exports every public name (fc.set_num_threads & co.)."""

from __future__ import annotations

from . import _cpu
from .backend import blas

__all__ = [
    "set_num_threads",
    "get_num_threads",
    "set_worker_spin_us",
    "get_worker_spin_us",
    "set_blas_parking",
    "get_blas_parking",
    "cpu_isa",
    "available_cpu_isas",
    "set_cpu_isa",
    "set_winograd",
    "get_winograd",
    "set_output_cache_limit",
    "output_cache_info",
    "clear_output_cache",
    "set_scratch_limit",
    "memory_info",
    "clear_caches",
    "cuda_available",
    "cuda_built",
]

_ISAS = ("scalar", "avx2", "avx512")


_MAX_THREADS = _cpu.max_threads()


def set_num_threads(n: int) -> None:
    """Threads used by the CPU kernels (process-wide), 1 to 1024."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_THREADS:
        raise ValueError(
            f"n must be an int in [1, {_MAX_THREADS}] (more threads than cores only oversubscribe them), got {n!r}"
        )
    _cpu.set_num_threads(n)


def set_worker_spin_us(us: int) -> None:
    """How long (microseconds) an idle CPU worker thread keeps polling for the next kernel before
    it sleeps (process-wide; FASTCONV_SPIN_US sets it at import). Short (the default) leaves the
    cores to NumPy's BLAS and to other processes almost at once after a kernel; 0 sleeps at once;
    a long spin saves a wake-up per kernel when nothing else runs between kernels."""
    if isinstance(us, bool) or not isinstance(us, int) or not 0 <= us <= 1_000_000:
        raise ValueError(f"us must be an int in [0, 1000000], got {us!r}")
    _cpu.set_spin_us(us)


def set_blas_parking(enabled: bool) -> None:
    """Before a multithreaded CPU kernel, stop the threads NumPy's OpenBLAS leaves spinning after
    each call (about 0.1 s), so they do not take cores from the kernel; the next BLAS call starts
    them again. On by default; FASTCONV_PARK_BLAS=0 turns it off at import. Acts only on OpenBLAS
    >= 0.3.14 with its pthreads server and while one Python thread runs. NumPy's results do not change."""
    if not isinstance(enabled, bool):
        raise ValueError(f"enabled must be a bool, got {enabled!r}")
    blas.set_enabled(enabled)


def get_blas_parking() -> bool:
    """Whether set_blas_parking is on."""
    return blas.enabled()


def get_worker_spin_us() -> int:
    """The idle spin of the CPU worker threads in microseconds (see set_worker_spin_us)."""
    return _cpu.get_spin_us()


def get_num_threads() -> int:
    """Threads used by the CPU kernels (default: OMP_NUM_THREADS or the core count)."""
    return _cpu.get_num_threads()


def cpu_isa() -> str:
    """The CPU instruction set in use: "avx512", "avx2" or "scalar"."""
    return _cpu.cpu_isa()


def available_cpu_isas() -> list[str]:
    """Every ISA this CPU can run, from "scalar" up to the best it supports."""
    return list(_ISAS[: _ISAS.index(_cpu.best_cpu_isa()) + 1])


def set_cpu_isa(name: str) -> str:
    """Force a CPU path (capped to what the CPU supports); returns the ISA now in effect.
    The environment variable FASTCONV_ISA does the same at import time."""
    if name not in _ISAS:
        raise ValueError(f"isa must be one of {_ISAS}, got {name!r}")
    return _cpu.set_cpu_isa(name)


def set_winograd(enabled: bool) -> None:
    """Turn the Winograd F(4x4,3x3) path (AVX-512 and AVX2, float32 and float64, forward,
    backward-data and backward-weight of 3x3 stride-1 layers where it is faster than the direct
    kernel) on or off, process-wide. FASTCONV_WINOGRAD=0 turns it off at import time. Winograd is
    not bit-exact: its error vs float64 stays within ~1e-5 relative."""
    if not isinstance(enabled, bool):
        raise ValueError(f"enabled must be a bool, got {enabled!r}")
    _cpu.set_winograd(enabled)


def get_winograd() -> bool:
    """Whether the Winograd path may be used (see set_winograd)."""
    return _cpu.get_winograd()


def set_output_cache_limit(megabytes: float) -> None:
    """Most memory (MiB) kept in freed output buffers for reuse; 0 turns the cache off.

    CPU outputs of 1 MiB or more come from a cache of blocks reused by exact size: a training
    loop asks for the same sizes every step, and reusing mapped memory saves the page faults a
    fresh 100 MB array costs on its first write (more than the convolution itself on VGG16's
    first layers at batch 8). Default 1024 MiB, or FASTCONV_OUTPUT_CACHE_MB at import time.
    Memory of arrays still in use is not counted and never reclaimed early."""
    if isinstance(megabytes, bool) or not isinstance(megabytes, (int, float)) or not 0 <= megabytes <= _MAX_CACHE_MB:
        raise ValueError(f"megabytes must be a number in [0, {_MAX_CACHE_MB}], got {megabytes!r}")
    _cpu.output_cache_set_limit(int(megabytes * (1 << 20)))


_MAX_CACHE_MB = 1 << 20  # 1 TiB: more than any machine this runs on, and finite (NaN and inf fail)


def output_cache_info() -> dict[str, float]:
    """{"limit_mib", "free_mib" (kept for reuse), "used_mib" (in arrays alive now)}."""
    mib = float(1 << 20)
    return {
        "limit_mib": _cpu.output_cache_limit() / mib,
        "free_mib": _cpu.output_cache_free_bytes() / mib,
        "used_mib": _cpu.output_cache_used_bytes() / mib,
    }


def clear_output_cache() -> None:
    """Give the freed output buffers kept for reuse back to the system."""
    _cpu.output_cache_clear()


def set_scratch_limit(megabytes: float) -> None:
    """Most scratch memory (MiB) each thread keeps between kernel calls; 0 keeps none.

    The CPU kernels work in per-thread buffers (repacked inputs, transformed tiles, packed
    weights) that are kept for the next call, since allocating tens of MB anew costs page faults.
    A call that needs more than the limit still gets it and gives the excess back when it ends.
    Lowering the limit trims every thread's buffers at once. Default 64 MiB per thread, or
    FASTCONV_SCRATCH_MB at import time."""
    if isinstance(megabytes, bool) or not isinstance(megabytes, (int, float)) or not 0 <= megabytes <= _MAX_CACHE_MB:
        raise ValueError(f"megabytes must be a number in [0, {_MAX_CACHE_MB}], got {megabytes!r}")
    _cpu.scratch_set_limit(int(megabytes * (1 << 20)))


def memory_info() -> dict[str, float]:
    """Memory fastconv keeps between calls, in MiB: {"scratch_mib" (all threads),
    "scratch_threads" (threads holding some), "scratch_limit_mib" (per thread),
    "output_cache_free_mib", "output_cache_used_mib", "output_cache_limit_mib",
    "kept_mib" (scratch plus the free output buffers: what clear_caches() gives back)}."""
    mib = float(1 << 20)
    scratch = _cpu.scratch_bytes_held() / mib
    cache = output_cache_info()
    return {
        "scratch_mib": scratch,
        "scratch_threads": _cpu.scratch_threads(),
        "scratch_limit_mib": _cpu.scratch_limit() / mib,
        "output_cache_free_mib": cache["free_mib"],
        "output_cache_used_mib": cache["used_mib"],
        "output_cache_limit_mib": cache["limit_mib"],
        "kept_mib": scratch + cache["free_mib"],
    }


def clear_caches() -> None:
    """Give back every buffer fastconv keeps between calls: each thread's scratch (waiting for
    kernels running on other Python threads) and the free output buffers. Arrays still in use
    are untouched; the next call allocates what it needs again."""
    _cpu.scratch_release()
    _cpu.output_cache_clear()


def cuda_available() -> bool:
    """True when the CUDA kernels are built, CuPy imports and a CUDA device is usable."""
    try:
        from . import _cuda  # noqa: PLC0415
    except ImportError:
        return False
    if _cuda.device_count() < 1:
        return False
    try:
        import cupy  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def cuda_built() -> bool:
    """True when this installation includes the CUDA module (it may still see no device)."""
    try:
        from . import _cuda  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True
