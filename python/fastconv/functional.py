"""The functional API (see docs/api.md), kept as one namespace: the functions live in ops/, one
module per kernel family (ops/__init__.py says which), with their argument checks in
ops/_checks.py. NumPy arrays run on the CPU kernels (fastconv._cpu), CuPy arrays on the CUDA kernels.
"""

from __future__ import annotations

from .ops import *  # noqa: F403 - the public functions, listed in ops.__all__
from .ops import __all__ as _ops_all
from .ops._checks import ACTIVATIONS, LEAKY_RELU_SLOPE, check_activation, check_alpha, check_alpha_fits  # noqa: F401

__all__ = list(_ops_all)
