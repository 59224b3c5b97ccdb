"""Convolution, pooling and batch normalisation layers (NCHW: batch, channels, rows, columns)."""

from __future__ import annotations

from .. import tensor as gt
from ..config import config
from ..opdefs.common import as_tensor
from . import init as initializers
from .layers import Layer, _as_float_input, get_activation

__all__ = ["Conv2D", "MaxPool2D", "AvgPool2D", "BatchNorm"]


def _pair(value, what: str, layer: Layer) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 0 for v in pair):
        raise ValueError(f"{layer.name}: {what} must be an int or a pair of non-negative ints, "
                         f"got {value!r}")
    return pair


def _check_channels(x, channels: int, layer: Layer) -> None:
    if x.ndim != 4:
        raise TypeError(f"{layer.name}: expects a 4-d (batch, channels, rows, columns) input, "
                        f"got {x.type}")
    if x.type.shape[1] is not None and x.type.shape[1] != channels:
        raise ValueError(f"{layer.name}: expects {channels} input channels, got {x.type}")


class Conv2D(Layer):
    """2-d convolution (cross-correlation, as in PyTorch and Keras) plus bias and activation.

    ``W`` is ``(n_out, n_in // groups, *kernel_size)``. ``padding`` is ``"valid"``, ``"same"``
    (odd kernels, stride 1: the output keeps the input's size), ``"full"``, an int or a pair.
    """

    def __init__(self, n_in: int, n_out: int, kernel_size, stride=1, padding="valid",
                 dilation=1, groups: int = 1, activation=None, init="he_uniform",
                 bias: bool = True, rng=None, dtype=None, name: str | None = None):
        super().__init__(name)
        self.n_in, self.n_out, self.groups = int(n_in), int(n_out), int(groups)
        if self.groups < 1 or self.n_in % self.groups or self.n_out % self.groups:
            raise ValueError(f"{self.name}: groups={groups} must divide n_in={n_in} and "
                             f"n_out={n_out}")
        self.kernel_size = _pair(kernel_size, "kernel_size", self)
        self.stride = _pair(stride, "stride", self)
        self.dilation = _pair(dilation, "dilation", self)
        self.border_mode = self._border_mode(padding)
        self.activation = get_activation(activation)
        dtype = dtype or config.floatX
        shape = (self.n_out, self.n_in // self.groups) + self.kernel_size
        self.add_param("W", initializers.get(init)(shape, rng, dtype))
        self.b = self.add_param("b", initializers.zeros(self.n_out, dtype=dtype)) if bias else None

    def _border_mode(self, padding):
        if padding == "same":
            if any(k % 2 == 0 for k in self.kernel_size) or self.stride != (1, 1):
                raise ValueError(f"{self.name}: padding='same' needs an odd kernel and stride 1, "
                                 f"got kernel {self.kernel_size}, stride {self.stride}")
            return "half"
        if padding in ("valid", "full"):
            return padding
        return _pair(padding, "padding", self)

    def forward(self, x, training):
        x = _as_float_input(x, self)
        _check_channels(x, self.n_in, self)
        y = gt.nnet.conv2d(x, self.W, border_mode=self.border_mode, subsample=self.stride,
                           filter_flip=False, filter_dilation=self.dilation,
                           num_groups=self.groups)
        if self.b is not None:
            y = y + self.b.dimshuffle("x", 0, "x", "x")
        return self.activation(y)


class _Pool2D(Layer):
    mode = "max"

    def __init__(self, pool_size=2, stride=None, padding=0, ignore_border: bool = True,
                 name: str | None = None):
        super().__init__(name)
        self.pool_size = _pair(pool_size, "pool_size", self)
        self.stride = self.pool_size if stride is None else _pair(stride, "stride", self)
        self.padding = _pair(padding, "padding", self)
        self.ignore_border = bool(ignore_border)

    def forward(self, x, training):
        x = as_tensor(x)
        if x.ndim < 2:
            raise TypeError(f"{self.name}: expects an input of at least 2 dimensions, got {x.type}")
        return gt.nnet.pool_2d(x, self.pool_size, ignore_border=self.ignore_border,
                               stride=self.stride, pad=self.padding, mode=self.mode)


class MaxPool2D(_Pool2D):
    """Maximum over ``pool_size`` windows of the last two axes, moved by ``stride``
    (default: the window, no overlap)."""

    mode = "max"


class AvgPool2D(_Pool2D):
    """Mean over ``pool_size`` windows of the last two axes (padding excluded from the mean)."""

    mode = "average_exc_pad"


class BatchNorm(Layer):
    """Batch normalisation over every axis but the features' (axis 1): ``(N, C)`` and
    ``(N, C, H, W)`` inputs alike.

    Training normalises with the batch's mean and (biased) variance and records updates of the
    running statistics, ``running = (1 - momentum) * running + momentum * batch`` (the running
    variance takes the unbiased batch variance); inference uses the running statistics.
    """

    def __init__(self, n_features: int, momentum: float = 0.1, epsilon: float = 1e-5,
                 dtype=None, name: str | None = None):
        super().__init__(name)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{self.name}: momentum must lie in [0, 1], got {momentum}")
        if epsilon <= 0:
            raise ValueError(f"{self.name}: epsilon must be positive, got {epsilon}")
        self.n_features, self.momentum, self.epsilon = int(n_features), momentum, epsilon
        dtype = dtype or config.floatX
        self.add_param("gamma", initializers.ones(self.n_features, dtype=dtype))
        self.add_param("beta", initializers.zeros(self.n_features, dtype=dtype))
        self.add_param("running_mean", initializers.zeros(self.n_features, dtype=dtype), False)
        self.add_param("running_var", initializers.ones(self.n_features, dtype=dtype), False)

    def forward(self, x, training):
        x = _as_float_input(x, self, min_ndim=2)
        if x.type.shape[1] is not None and x.type.shape[1] != self.n_features:
            raise ValueError(f"{self.name}: expects {self.n_features} features on axis 1, "
                             f"got {x.type}")
        axes = (0,) + tuple(range(2, x.ndim))
        params = [gt.cast(p, x.dtype) for p in (self.gamma, self.beta)]
        if not training:
            stats = [gt.cast(p, x.dtype) for p in (self.running_mean, self.running_var)]
            return gt.nnet.batch_normalization_test(x, *params, *stats, axes, self.epsilon)
        out, _, _, new_mean, new_var = gt.nnet.batch_normalization_train(
            x, *params, axes, self.epsilon, self.momentum, self.running_mean, self.running_var)
        for stat, new in ((self.running_mean, new_mean), (self.running_var, new_var)):
            self.add_update(stat, gt.cast(new, stat.dtype))
        return out
