"""Validated, normalized problem descriptions handed to the kernels.

`ops/` builds these after checking every argument; the backends read their shapes and
pass `spec.native(module)` to C++: the module's bound Conv2dParams / Pool2dParams
(csrc/bindings/params_binding.h), built with keyword arguments once per spec and module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .._typing import Shape


@dataclass(frozen=True)
class Conv2dSpec:
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    P: int
    Q: int
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]  # top, bottom, left, right
    dilation: tuple[int, int]
    layout: str
    activation: str | None = None  # the forward's epilogue (functional.ACTIVATIONS)
    alpha: float = 0.0  # leaky_relu's slope

    @property
    def x_shape(self) -> Shape:
        return (self.N, self.C, self.H, self.W) if self.layout == "NCHW" else (self.N, self.H, self.W, self.C)

    @property
    def w_shape(self) -> Shape:
        return (self.K, self.C, self.R, self.S) if self.layout == "NCHW" else (self.R, self.S, self.C, self.K)

    @property
    def y_shape(self) -> Shape:
        return (self.N, self.K, self.P, self.Q) if self.layout == "NCHW" else (self.N, self.P, self.Q, self.K)

    @property
    def flops(self) -> int:
        """Multiply-adds x 2 of one pass (forward, backward-data and backward-weight alike)."""
        return 2 * self.N * self.K * self.P * self.Q * self.C * self.R * self.S

    def native(self, module: ModuleType) -> Any:
        """This spec as `module`'s Conv2dParams (module: fastconv._cpu, _cuda or _cuda_emu)."""
        return _native(self, module)

    def _to(self, module: ModuleType) -> Any:
        return module.Conv2dParams(
            N=self.N,
            C=self.C,
            H=self.H,
            W=self.W,
            K=self.K,
            R=self.R,
            S=self.S,
            P=self.P,
            Q=self.Q,
            stride_h=self.stride[0],
            stride_w=self.stride[1],
            pad_top=self.padding[0],
            pad_left=self.padding[2],
            dil_h=self.dilation[0],
            dil_w=self.dilation[1],
            nhwc=self.layout == "NHWC",
            activation=self.activation or "none",
            alpha=self.alpha,
        )


@dataclass(frozen=True)
class Pool2dSpec:
    N: int
    C: int
    H: int
    W: int
    R: int
    S: int
    P: int
    Q: int
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    layout: str

    @property
    def x_shape(self) -> Shape:
        return (self.N, self.C, self.H, self.W) if self.layout == "NCHW" else (self.N, self.H, self.W, self.C)

    @property
    def y_shape(self) -> Shape:
        return (self.N, self.C, self.P, self.Q) if self.layout == "NCHW" else (self.N, self.P, self.Q, self.C)

    def native(self, module: ModuleType) -> Any:
        """This spec as `module`'s Pool2dParams."""
        return _native(self, module)

    def _to(self, module: ModuleType) -> Any:
        return module.Pool2dParams(
            N=self.N,
            C=self.C,
            H=self.H,
            W=self.W,
            R=self.R,
            S=self.S,
            P=self.P,
            Q=self.Q,
            stride_h=self.stride[0],
            stride_w=self.stride[1],
            pad_top=self.padding[0],
            pad_left=self.padding[2],
            nhwc=self.layout == "NHWC",
        )


@functools.lru_cache(maxsize=1024)
def _native(spec: Conv2dSpec | Pool2dSpec, module: ModuleType) -> Any:
    """The bound struct of (spec, module), built once: a training loop repeats a few shapes."""
    return spec._to(module)
