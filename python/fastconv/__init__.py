"""fastconv: hand-written C++/CUDA kernels for CNN building blocks with a NumPy-friendly API.

    import fastconv as fc
    y = fc.conv2d(x, w, b, padding="same", activation="relu")   # NumPy -> CPU, CuPy -> CUDA

See README.md and docs/api.md for the contract.
"""

from __future__ import annotations

import sys as _sys
from types import ModuleType as _ModuleType

__version__ = "0.1.0"

from . import _cpu  # noqa: F401 - the compiled kernels, fastconv._cpu
from .backend import env as _env

_env.check()
from .ops import (  # noqa: E402
    avg_pool2d,
    avg_pool2d_backward,
    batch_norm,
    batch_norm_backward,
    conv2d,
    conv2d_backward,
    conv2d_backward_data,
    conv2d_backward_weight,
    fold_batch_norm,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    global_max_pool2d,
    global_max_pool2d_backward,
    leaky_relu,
    leaky_relu_backward,
    linear,
    linear_backward,
    linear_backward_data,
    linear_backward_weight,
    max_pool2d,
    max_pool2d_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    tanh,
    tanh_backward,
)
from .runtime import (  # noqa: E402
    available_cpu_isas,
    clear_caches,
    clear_output_cache,
    cpu_isa,
    cuda_available,
    cuda_built,
    get_blas_parking,
    get_num_threads,
    get_winograd,
    get_worker_spin_us,
    memory_info,
    output_cache_info,
    set_blas_parking,
    set_cpu_isa,
    set_num_threads,
    set_output_cache_limit,
    set_scratch_limit,
    set_winograd,
    set_worker_spin_us,
)

__all__ = [
    "__version__",
    "conv2d",
    "conv2d_backward",
    "conv2d_backward_data",
    "conv2d_backward_weight",
    "max_pool2d",
    "max_pool2d_backward",
    "relu",
    "relu_backward",
    "set_num_threads",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "batch_norm",
    "batch_norm_backward",
    "fold_batch_norm",
    "avg_pool2d",
    "avg_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
    "linear",
    "linear_backward",
    "linear_backward_data",
    "linear_backward_weight",
    "set_worker_spin_us",
    "get_worker_spin_us",
    "set_blas_parking",
    "get_blas_parking",
    "get_num_threads",
    "cpu_isa",
    "available_cpu_isas",
    "set_cpu_isa",
    "set_winograd",
    "get_winograd",
    "cuda_available",
    "cuda_built",
    "set_output_cache_limit",
    "output_cache_info",
    "clear_output_cache",
    "set_scratch_limit",
    "memory_info",
    "clear_caches",
]

# ----------------------------------------------------------------------------- layers and training
from . import data, distributed, functional, layers, models, testing  # noqa: E402, F401
from .models import Sequential  # noqa: E402
from .models.sequential import load_model  # noqa: E402
from .training import callbacks, losses, metrics, regularizers  # noqa: E402
from .training import optimizers as optim  # noqa: E402
from .training.optimizers import SGD, Adam, AdamW, RMSprop  # noqa: E402

# The documented module names fastconv.callbacks, .losses, .metrics, .optim and .regularizers:
# their modules live in training/, and `import fastconv.losses` finds them under these names too.
for _name, _module in (
    ("callbacks", callbacks),
    ("losses", losses),
    ("metrics", metrics),
    ("optim", optim),
    ("regularizers", regularizers),
):
    _sys.modules[f"{__name__}.{_name}"] = _module
del _name, _module

__all__ += [
    "layers",
    "models",
    "optim",
    "losses",
    "metrics",
    "callbacks",
    "regularizers",
    "data",
    "testing",
    "compat",
    "Sequential",
    "load_model",
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
]


def __getattr__(name: str) -> _ModuleType:  # fastconv.compat (the cs231n drop-in) loads on first use
    if name == "compat":
        import importlib  # noqa: PLC0415

        return importlib.import_module(".compat", __name__)
    raise AttributeError(f"module 'fastconv' has no attribute {name!r}")
