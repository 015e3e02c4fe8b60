"""Where the kernels run: the Backend interface (base.py), the CPU backend over fastconv._cpu
(cpu.py), the CUDA backend over CuPy and fastconv._cuda (cuda.py), its CPU emulation
(cuda_emu.py) and the launch logic they share (runner.py); NumPy/CuPy array helpers (arrays.py),
OpenBLAS thread parking (blas.py) and the FASTCONV_* environment settings (env.py)."""
