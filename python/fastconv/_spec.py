"""Validated, normalized problem descriptions handed to the kernels.

`functional.py` builds these after checking every argument; the backends read their shapes and
pass `as_tuple()` to C++ (csrc/bindings/params_from_python.h fixes the field order).
"""
from __future__ import annotations

from dataclasses import dataclass


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
    relu: bool = False

    @property
    def x_shape(self):
        return (self.N, self.C, self.H, self.W) if self.layout == "NCHW" else (self.N, self.H, self.W, self.C)

    @property
    def w_shape(self):
        return (self.K, self.C, self.R, self.S) if self.layout == "NCHW" else (self.R, self.S, self.C, self.K)

    @property
    def y_shape(self):
        return (self.N, self.K, self.P, self.Q) if self.layout == "NCHW" else (self.N, self.P, self.Q, self.K)

    @property
    def flops(self) -> int:
        """Multiply-adds x 2 of one pass (forward, backward-data and backward-weight alike)."""
        return 2 * self.N * self.K * self.P * self.Q * self.C * self.R * self.S

    def as_tuple(self):
        return (self.N, self.C, self.H, self.W, self.K, self.R, self.S, self.P, self.Q,
                self.stride[0], self.stride[1], self.padding[0], self.padding[2],
                self.dilation[0], self.dilation[1], self.layout == "NHWC", self.relu)


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
    def x_shape(self):
        return (self.N, self.C, self.H, self.W) if self.layout == "NCHW" else (self.N, self.H, self.W, self.C)

    @property
    def y_shape(self):
        return (self.N, self.C, self.P, self.Q) if self.layout == "NCHW" else (self.N, self.P, self.Q, self.C)

    def as_tuple(self):
        return (self.N, self.C, self.H, self.W, self.R, self.S, self.P, self.Q,
                self.stride[0], self.stride[1], self.padding[0], self.padding[2],
                self.layout == "NHWC")
