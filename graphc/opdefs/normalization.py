"""Batch normalisation (Theano's ``batch_normalization_train`` / ``_test`` and the older
``batch_normalization``), composed of existing ops, so gradients of every order come free.

The statistics are two-pass (``var`` subtracts the mean first), which stays accurate for
inputs far from zero. Parameters (``gamma``, ``beta``, means and variances) come either with
the input's ndim and size 1 on the normalised axes, or with those axes left out; the
statistics and running averages a builder returns have the layout ``gamma`` was given in.
"""

from __future__ import annotations

from ..ir.node import Node
from ..ir.provenance import user_trace
from ..ir.types import FLOAT_DTYPES, shape_str
from .common import as_tensor, normalize_axes, shape_entry
from .elementwise import cast, sqrt
from .reduce import mean as _mean
from .reduce import var as _var
from .shape import expand_dims, squeeze

__all__ = ["batch_normalization", "batch_normalization_test", "batch_normalization_train"]


def _error(exc_type, fname: str, message: str) -> Exception:
    trace = user_trace()
    return exc_type(f"{fname}: {message}" + (f"\n  created at {trace}" if trace else ""))


def _input(inputs, fname: str) -> Node:
    x = as_tensor(inputs)
    if x.dtype not in FLOAT_DTYPES:
        raise _error(TypeError, fname, f"inputs must be float32 or float64, got {x.type}")
    return x


def _axes(axes, ndim: int, fname: str) -> tuple:
    if axes == "per-activation":
        axes = (0,)
    elif axes == "spatial":
        axes = (0,) + tuple(range(2, ndim))
    elif isinstance(axes, str):
        raise _error(ValueError, fname, "axes must be 'per-activation', 'spatial' or a tuple of "
                                        f"ints, got {axes!r}")
    try:
        axes = normalize_axes(axes, ndim, fname)
    except (TypeError, ValueError) as exc:
        raise _error(type(exc), fname, str(exc).removeprefix(f"{fname}: ")) from None
    if not axes:
        raise _error(ValueError, fname, "needs at least one axis to normalise over")
    return axes


def _param(value, x: Node, axes: tuple, what: str, fname: str) -> Node:
    """A parameter in the input's layout: size 1 (or left out) on the normalised axes."""
    p = as_tensor(value)
    if p.ndim == x.ndim - len(axes):
        return expand_dims(p, axes)
    if p.ndim != x.ndim:
        raise _error(ValueError, fname, f"{what} of type {p.type} must have {x.ndim} dimensions "
                                        f"(size 1 on axes {axes}) or {x.ndim - len(axes)} "
                                        f"(those left out), for inputs {x.type}")
    wide = [a for a in axes if p.type.shape[a] not in (None, 1)]
    if wide:
        raise _error(ValueError, fname, f"{what} of shape {shape_str(p.type.shape)} must have "
                                        f"size 1 on the normalised axes {axes}")
    return p


def _like_gamma(value: Node, reduced: bool, axes: tuple) -> Node:
    return squeeze(value, axes) if reduced else value


def _count(x: Node, axes: tuple):
    n = 1
    for a in axes:
        n = n * shape_entry(x, a)
    return n


def _unbiased(var: Node, n) -> Node:
    """``var * n / (n - 1)``: the sample variance from the population one."""
    if isinstance(n, Node):
        return var * (cast(n, var.dtype) / cast(n - 1, var.dtype))
    return var * (n / (n - 1) if n != 1 else float("inf"))


def batch_normalization_train(inputs, gamma, beta, axes="per-activation", epsilon=1e-4,
                              running_average_factor=0.1, running_mean=None,
                              running_var=None):
    """``(inputs - mean) * gamma * invstd + beta`` with the batch's statistics over ``axes``.

    ``axes``: 'per-activation' (axis 0), 'spatial' (0 and every axis after 1) or a tuple.
    Returns ``(out, mean, invstd)``, plus ``(new_running_mean, new_running_var)`` when both
    running averages are given: ``running * (1 - f) + f * batch`` with the unbiased variance.
    """
    fname = "batch_normalization_train"
    x = _input(inputs, fname)
    axes = _axes(axes, x.ndim, fname)
    if (running_mean is None) != (running_var is None):
        raise _error(ValueError, fname, "running_mean and running_var must be given together")
    reduced = as_tensor(gamma).ndim != x.ndim
    gamma, beta = (_param(p, x, axes, what, fname) for p, what in ((gamma, "gamma"), (beta, "beta")))
    eps, factor = float(epsilon), float(running_average_factor)
    mean = _mean(x, axes, keepdims=True)
    var = _var(x, axes, keepdims=True)
    invstd = 1.0 / sqrt(var + eps)
    out = (x - mean) * (gamma * invstd) + beta
    results = (out, _like_gamma(mean, reduced, axes), _like_gamma(invstd, reduced, axes))
    if running_mean is None:
        return results
    old_mean = _param(running_mean, x, axes, "running_mean", fname)
    old_var = _param(running_var, x, axes, "running_var", fname)
    new_mean = old_mean * (1.0 - factor) + mean * factor
    new_var = old_var * (1.0 - factor) + _unbiased(var, _count(x, axes)) * factor
    reduced_running = as_tensor(running_mean).ndim != x.ndim
    return results + (_like_gamma(new_mean, reduced_running, axes),
                      _like_gamma(new_var, reduced_running, axes))


def batch_normalization_test(inputs, gamma, beta, mean, var, axes="per-activation",
                             epsilon=1e-4) -> Node:
    """``(inputs - mean) * gamma / sqrt(var + epsilon) + beta`` with given statistics
    (``mean``, ``var`` and the parameters laid out as for ``batch_normalization_train``)."""
    fname = "batch_normalization_test"
    x = _input(inputs, fname)
    axes = _axes(axes, x.ndim, fname)
    gamma, beta, mean, var = (_param(p, x, axes, what, fname) for p, what in (
        (gamma, "gamma"), (beta, "beta"), (mean, "mean"), (var, "var")))
    return (x - mean) * (gamma / sqrt(var + float(epsilon))) + beta


def batch_normalization(inputs, gamma, beta, mean, std, mode="low_mem") -> Node:
    """``(inputs - mean) * (gamma / std) + beta``, every argument broadcast against ``inputs``
    (Theano's ``batch_normalization``; both modes compute the same)."""
    if mode not in ("low_mem", "high_mem"):
        raise _error(ValueError, "batch_normalization",
                     f"mode must be 'low_mem' or 'high_mem', got {mode!r}")
    x = _input(inputs, "batch_normalization")
    return (x - mean) * (as_tensor(gamma) / std) + beta
