"""Sharing the cores with NumPy's BLAS in a user's training loop.

After every multithreaded call, OpenBLAS (NumPy's BLAS in its wheels, and SciPy's) keeps its
worker threads spinning for about 0.1 s (2^28 cycles) waiting for the next call. A fastconv kernel
started in that window shares a core with a thread that does nothing: on 2 cores a VGG16 conv3_1
at batch 1 right after a (50, 8192) @ (8192, 100) matmul ran 1.7-2.2x slower than alone.

park() sends those threads home before a kernel that will use several threads: it calls
OpenBLAS's own shutdown (the routine its fork handler uses), and the next BLAS call starts its
threads again (tens of microseconds, against milliseconds of spinning saved). Results of NumPy
are unchanged: the same OpenBLAS does the same work with the same threads.

It is done only when it is safe: OpenBLAS built with its own pthreads server (not OpenMP),
version 0.3.14 or later (which restarts its threads lazily), and only one Python thread in the
process, so no other thread can be inside a BLAS call (the shutdown would pull its threads
away); a Jupyter kernel always runs several, so there it never parks. The libraries are looked
up at the first park(): an OpenBLAS loaded later (SciPy's) is left alone. Off with
fc.set_blas_parking(False) or FASTCONV_PARK_BLAS=0.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys

from . import env

_enabled = env.switch("FASTCONV_PARK_BLAS", True)


def _loaded_openblas_paths():
    """Paths of the OpenBLAS libraries mapped into this process (Linux: /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split(None, 5)[-1].strip() for line in f if "openblas" in line.lower()}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/") and ".so" in os.path.basename(p))


def _symbol(lib, *names):
    for name in names:
        try:
            return getattr(lib, name)
        except AttributeError:
            continue
    return None


def _parkable(path):
    """(shutdown function, server-running flag) of one OpenBLAS, or None when it is not safe."""
    if not hasattr(os, "RTLD_NOLOAD"):
        return None
    try:  # the loaded library itself, kept local: RTLD_GLOBAL would let it interpose its
        lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD)  # symbols on every library loaded later
    except OSError:
        return None
    get_parallel = _symbol(
        lib, "openblas_get_parallel", "scipy_openblas_get_parallel64_", "scipy_openblas_get_parallel"
    )
    get_config = _symbol(lib, "openblas_get_config", "scipy_openblas_get_config64_", "scipy_openblas_get_config")
    shutdown = _symbol(lib, "blas_thread_shutdown_")
    if get_parallel is None or get_config is None or shutdown is None:
        return None
    get_parallel.restype = ctypes.c_int
    get_config.restype = ctypes.c_char_p
    if get_parallel() != 1:  # 1: pthreads server; 2: OpenMP; 0: sequential
        return None
    version = re.search(rb"OpenBLAS (\d+)\.(\d+)\.(\d+)", get_config() or b"")
    # 0.3.14 fixed a race in blas_thread_shutdown_ (OpenBLAS PR #3111); later calls restart the
    # threads lazily.
    if not version or tuple(int(v) for v in version.groups()) < (0, 3, 14):
        return None
    try:
        running = ctypes.c_int.in_dll(lib, "blas_server_avail")
    except ValueError:
        return None
    shutdown.restype = ctypes.c_int
    return shutdown, running


_libraries = None


def _find():
    global _libraries
    if _libraries is None:
        _libraries = [p for p in map(_parkable, _loaded_openblas_paths()) if p is not None]
    return _libraries


def park():
    """Stop the spinning OpenBLAS threads, when enabled and safe (see the module docstring)."""
    if not _enabled:
        return
    libs = _find()
    if not libs or len(sys._current_frames()) != 1:
        return
    for shutdown, running in libs:
        if running.value:
            shutdown()


def set_enabled(on: bool) -> None:
    global _enabled
    _enabled = bool(on)


def enabled() -> bool:
    return _enabled


def parkable_libraries() -> int:
    """How many loaded OpenBLAS libraries park() can act on (0 when none or unsafe)."""
    return len(_find())
