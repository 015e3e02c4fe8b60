"""The one interface ops/ calls (ops._checks.backend_for picks the object for a call's
arrays).

Three backends implement it, one object each:

    CPU              backend.cpu.CPU              NumPy arrays, kernels in fastconv._cpu
    CUDA             backend.cuda.backend()       CuPy arrays, kernels in fastconv._cuda
    CUDA emulation   backend.cuda_emu.backend()   NumPy arrays, the CUDA kernels run on the CPU
                                                  (fastconv._cuda_emu; tests and debugging)

Every method takes validated specs (ops/_spec.py) and arrays that `contiguous` returned, and returns
new output arrays of the backend's array module.
"""

from __future__ import annotations

import abc


class Backend(abc.ABC):
    @abc.abstractmethod
    def contiguous(self, a):
        """a, or a C-contiguous copy of it that the kernels can read in place."""

    @abc.abstractmethod
    def conv2d_forward(self, spec, x, w, bias):
        """x, w, bias (or None) -> y, with spec.activation fused."""

    @abc.abstractmethod
    def conv2d_backward_data(self, spec, gy, w):
        """grad_y, w -> grad_x."""

    @abc.abstractmethod
    def conv2d_backward_weight(self, spec, gy, x, with_bias):
        """grad_y, x -> (grad_w, grad_bias or None)."""

    @abc.abstractmethod
    def max_pool2d_forward(self, spec, x):
        """x -> (y, int64 indices of each window's maximum)."""

    @abc.abstractmethod
    def max_pool2d_backward(self, spec, gy, indices):
        """grad_y, indices -> grad_x; ValueError when an index lies outside its window."""

    @abc.abstractmethod
    def avg_pool2d_forward(self, spec, x, include_pad):
        """x -> the window means (include_pad: divided by R*S, else by the cells inside x)."""

    @abc.abstractmethod
    def avg_pool2d_backward(self, spec, gy, include_pad):
        """grad_y -> grad_x of avg_pool2d."""

    @abc.abstractmethod
    def batch_norm_train(self, x, gamma, beta, eps, layout, relu=False):
        """x -> (y, batch mean, biased variance, inverse std) per channel; relu: y = max(y, 0)."""

    @abc.abstractmethod
    def batch_norm_normalize(self, x, mean, scale, shift, layout, relu=False):
        """y = (x - mean[c]) * scale[c] + shift[c] (per-channel values float64); relu: max(y, 0)."""

    @abc.abstractmethod
    def batch_norm_backward(self, gy, x, mean, inv_std, gamma, training, layout, relu_y=None):
        """-> (grad_x, grad_gamma, grad_beta); relu_y (a relu forward's y): grad_y where y > 0."""

    @abc.abstractmethod
    def relu_forward(self, x, out=None):
        """relu(x), into `out` when given (out may be x)."""

    @abc.abstractmethod
    def relu_backward(self, gy, y):
        """grad_y where y > 0, else 0."""

    @abc.abstractmethod
    def activation_forward(self, name, alpha, x, out=None):
        """sigmoid / tanh / leaky_relu(x) (alpha: leaky_relu's slope), into `out` when given."""

    @abc.abstractmethod
    def activation_backward(self, name, alpha, gy, y):
        """The activation's grad_x from grad_y and the forward's output y."""

    @abc.abstractmethod
    def matmul(self, a, b, bias=None, activation=None, alpha=0.0):
        """activation(a (M, K) @ b (K, N) [+ bias]) (functional.ACTIVATIONS, leaky_relu's slope
        alpha); a and b may be transposed views."""

    @abc.abstractmethod
    def column_sums(self, g):
        """The sums of g's rows (a dense layer's grad_bias)."""
