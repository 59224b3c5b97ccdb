"""Reductions over axes: sum prod max min argmax argmin any all logsumexp, plus sum_to (the
unbroadcast used by gradients) and the composites mean var std."""

from __future__ import annotations

import builtins

import numpy as np

from ..ir.node import Node, make
from ..ir.op import REDUCE, defop
from ..ir.types import NUMERIC_DTYPES, TensorType, float_of, is_float
from .common import as_tensor, normalize_axes, normalize_axis, shape_entry
from .elementwise import cast


def _g():
    import graphc.tensor as gt

    return gt


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if a in axes else s for a, s in enumerate(shape))
    return tuple(s for a, s in enumerate(shape) if a not in axes)


def _accumulate_dtype(dtype: str) -> str:
    """NumPy's sum/prod dtype: small ints widen to the platform int, floats stay."""
    if dtype == "bool" or dtype.startswith("int"):
        return "int64"
    if dtype.startswith("uint"):
        return "uint64"
    return dtype


def _reduce_infer(out_dtype, accepts):
    def infer(types, arg):
        (t,) = types
        axes, keepdims = arg
        if t.dtype not in accepts:
            raise TypeError(f"dtype {t.dtype} is not supported")
        if builtins.any(not 0 <= a < t.ndim for a in axes):
            raise ValueError(f"axes {axes} out of range for a {t.ndim}-d input")
        return TensorType(out_dtype(t.dtype), _reduced_shape(t.shape, axes, keepdims))

    return infer


def _reduce_shape(node, in_shapes):
    axes, keepdims = node.arg
    return _reduced_shape(in_shapes[0], axes, keepdims)


def _keep(g, node):
    """``g`` (shaped like the reduction's output) with the reduced axes put back as size 1."""
    axes, keepdims = node.arg
    if keepdims:
        return g
    return _g().expand_dims(g, axes) if axes else g


def _static_where_known(x):
    """``x``'s shape, static sizes as ints: it depends on ``x``'s value only where it must."""
    return [shape_entry(x, i) for i in range(x.ndim)]


def _sum_grad(node, g):
    (x,) = node.src
    return (_g().broadcast_to(_keep(g, node), _static_where_known(x)),)


def _extremum_grad(node, g):
    gt = _g()
    (x,) = node.src
    out = _keep(node, node)
    mask = gt.cast(gt.eq(x, out), g.dtype)
    return (mask * _keep(g, node),)


def _prod_grad(node, g):
    # exact with zeros: the gradient at x_i is the product of the other elements
    gt = _g()
    (x,) = node.src
    axes, _ = node.arg
    is_zero = gt.eq(x, 0)
    n_zero = gt.sum(gt.cast(is_zero, "int64"), axes, keepdims=True)
    prod_nonzero = gt.prod(gt.switch(is_zero, gt.ones_like(x), x), axes, keepdims=True)
    others = gt.switch(gt.eq(n_zero, 0), prod_nonzero / gt.switch(is_zero, gt.ones_like(x), x),
                       gt.switch(gt.logical_and(gt.eq(n_zero, 1), is_zero), prod_nonzero, gt.zeros_like(x)))
    return (others * _keep(g, node),)


def _np_reduce(fn):
    def ref(arg, x):
        axes, keepdims = arg
        return np.asarray(fn(x, axis=axes, keepdims=keepdims))

    return ref


def _reduced_axes_inner(x: np.ndarray, axes) -> bool:
    """Whether each reduced axis lies inside each kept one in memory (NumPy then sums pairwise)."""
    kept = [abs(x.strides[a]) for a in range(x.ndim) if a not in axes and x.shape[a] > 1]
    reduced = [abs(x.strides[a]) for a in axes if x.shape[a] > 1]
    return not kept or not reduced or builtins.min(kept) >= builtins.max(reduced)


def _sum_ref(arg, x):
    axes, keepdims = arg
    dtype = _accumulate_dtype(x.dtype.name)
    if x.dtype.kind == "f" and not _reduced_axes_inner(x, axes):
        # NumPy adds naively across an outer axis, which loses float32 accuracy on long axes
        # (a 2**22-row column sum is off by 4%): lay the reduced axes out innermost and contiguous
        kept = [a for a in range(x.ndim) if a not in axes]
        inner = np.ascontiguousarray(x.transpose(kept + list(axes)))
        size = int(np.prod([x.shape[a] for a in axes]))
        out = np.sum(inner.reshape([x.shape[a] for a in kept] + [size]), axis=-1, dtype=dtype)
        return out.reshape(_reduced_shape(x.shape, axes, keepdims))
    return np.asarray(np.sum(x, axis=axes, keepdims=keepdims, dtype=dtype))


SUM = defop("sum", REDUCE, _reduce_infer(_accumulate_dtype, NUMERIC_DTYPES + ("bool",)),
            ref=_sum_ref, shape=_reduce_shape, grad=_sum_grad, props=dict(identity=0))
PROD = defop("prod", REDUCE, _reduce_infer(_accumulate_dtype, NUMERIC_DTYPES + ("bool",)),
             ref=lambda arg, x: np.asarray(np.prod(x, axis=arg[0], keepdims=arg[1], dtype=_accumulate_dtype(x.dtype.name))),
             shape=_reduce_shape, grad=_prod_grad, props=dict(identity=1))


def _extremum_ref(fn, name):
    def ref(arg, x):
        axes, keepdims = arg
        if x.size == 0 and builtins.any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"{name} of an empty axis has no identity (shape {x.shape}, axes {axes})")
        return np.asarray(fn(x, axis=axes, keepdims=keepdims))

    return ref


MAX = defop("max", REDUCE, _reduce_infer(lambda d: d, NUMERIC_DTYPES + ("bool",)), ref=_extremum_ref(np.max, "max"),
            shape=_reduce_shape, grad=_extremum_grad)
MIN = defop("min", REDUCE, _reduce_infer(lambda d: d, NUMERIC_DTYPES + ("bool",)), ref=_extremum_ref(np.min, "min"),
            shape=_reduce_shape, grad=_extremum_grad)
ANY = defop("any", REDUCE, _reduce_infer(lambda d: "bool", NUMERIC_DTYPES + ("bool",)), ref=_np_reduce(np.any),
            shape=_reduce_shape, differentiable=False)
ALL = defop("all", REDUCE, _reduce_infer(lambda d: "bool", NUMERIC_DTYPES + ("bool",)), ref=_np_reduce(np.all),
            shape=_reduce_shape, differentiable=False)


def _arg_ref(fn, name):
    def ref(arg, x):
        axes, keepdims = arg
        if x.ndim == 0:
            return np.zeros((), "int64")
        if x.shape[axes[0]] == 0:
            raise ValueError(f"{name} of an empty axis (shape {x.shape}, axis {axes[0]})")
        return np.asarray(fn(x, axis=axes[0], keepdims=keepdims)).astype("int64")

    return ref


ARGMAX = defop("argmax", REDUCE, _reduce_infer(lambda d: "int64", NUMERIC_DTYPES + ("bool",)),
               ref=_arg_ref(np.argmax, "argmax"), shape=_reduce_shape, differentiable=False)
ARGMIN = defop("argmin", REDUCE, _reduce_infer(lambda d: "int64", NUMERIC_DTYPES + ("bool",)),
               ref=_arg_ref(np.argmin, "argmin"), shape=_reduce_shape, differentiable=False)


def _reduce(op, x, axis, keepdims) -> Node:
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim, op.name)
    return make(op, (x,), (axes, bool(keepdims)))


def sum(x, axis=None, keepdims=False, dtype=None) -> Node:
    """Sum over ``axis`` (None = all, int, or tuple; negative counts from the end)."""
    x = as_tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
    return _reduce(SUM, x, axis, keepdims)


def prod(x, axis=None, keepdims=False, dtype=None) -> Node:
    """Product over ``axis``; the gradient is exact where inputs are zero."""
    x = as_tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
    return _reduce(PROD, x, axis, keepdims)


def max(x, axis=None, keepdims=False) -> Node:
    """Maximum over ``axis``; the gradient goes to the elements equal to the maximum."""
    return _reduce(MAX, x, axis, keepdims)


def min(x, axis=None, keepdims=False) -> Node:
    return _reduce(MIN, x, axis, keepdims)


def any(x, axis=None, keepdims=False) -> Node:
    return _reduce(ANY, x, axis, keepdims)


def all(x, axis=None, keepdims=False) -> Node:
    return _reduce(ALL, x, axis, keepdims)


def _argreduce(op, x, axis, keepdims):
    x = as_tensor(x)
    if axis is None:
        if x.ndim > 1:
            from .shape import flatten

            return _argreduce(op, flatten(x), 0, False) if not keepdims else _g().reshape(
                _argreduce(op, flatten(x), 0, False), (1,) * x.ndim)
        axis = 0
    if isinstance(axis, (tuple, list)):
        if len(axis) != 1:
            raise ValueError(f"{op.name}: axis must be one int or None, got {axis}")
        axis = axis[0]
    if x.ndim == 0:
        return make(op, (x,), ((), bool(keepdims)))
    return make(op, (x,), ((normalize_axis(axis, x.ndim, op.name),), bool(keepdims)))


def argmax(x, axis=None, keepdims=False) -> Node:
    """Index of the maximum along ``axis`` (of the flattened input when None), int64."""
    return _argreduce(ARGMAX, x, axis, keepdims)


def argmin(x, axis=None, keepdims=False) -> Node:
    return _argreduce(ARGMIN, x, axis, keepdims)


# --- sum_to: sum a broadcast gradient back to the shape of the input it came from -----------

def _sum_to_infer(types, arg):
    g, target = types
    return TensorType(g.dtype, target.shape)


def _sum_to_ref(arg, g, target):
    lead = g.ndim - target.ndim
    axes = tuple(range(lead)) + tuple(
        lead + a for a, s in enumerate(target.shape) if s == 1 and g.shape[lead + a] != 1)
    out = np.sum(g, axis=axes, keepdims=True) if axes else g
    return out.reshape(target.shape) if out.shape != target.shape else out


SUM_TO = defop("sum_to", REDUCE, _sum_to_infer, ref=_sum_to_ref,
               shape=lambda node, s: s[1], props=dict(may_alias=True),  # returns g when nothing sums
               grad=lambda node, g: (_g().broadcast_to(g, _g().shape(node.src[0])), None))


def sum_to(g, like) -> Node:
    """Sum ``g`` over the axes along which ``like`` was broadcast to produce it.

    ``like`` supplies only its shape (its values are never read).
    """
    g, like = as_tensor(g), as_tensor(like)
    if None not in like.type.shape and g.type.shape == like.type.shape:
        return g
    lead = g.ndim - like.ndim
    static_axes = tuple(range(lead)) + tuple(
        lead + a for a, s in enumerate(like.type.shape) if s == 1 and g.type.shape[lead + a] != 1)
    unknown = [a for a, s in enumerate(like.type.shape) if s is None and g.type.shape[lead + a] != 1]
    if not unknown:
        out = sum(g, static_axes, keepdims=True) if static_axes else g
        if lead:
            from .shape import dimshuffle

            out = dimshuffle(out, tuple(range(lead, g.ndim)))
        return out
    return make(SUM_TO, (g, like), None)


# --- composites --------------------------------------------------------------------------------

def _count(x, axes):
    n = 1
    for a in axes:
        n = n * shape_entry(x, a)
    return n


def mean(x, axis=None, keepdims=False) -> Node:
    """Arithmetic mean; integer inputs are averaged in float64, as NumPy does."""
    x = as_tensor(x)
    if not is_float(x.dtype):
        x = cast(x, "float64")
    axes = normalize_axes(axis, x.ndim, "mean")
    n = _count(x, axes)
    total = sum(x, axes, keepdims)
    return total / (cast(n, x.dtype) if isinstance(n, Node) else float(n))


def var(x, axis=None, keepdims=False, ddof=0) -> Node:
    """Variance (two-pass: mean first), with ``ddof`` like NumPy."""
    x = as_tensor(x)
    if not is_float(x.dtype):
        x = cast(x, "float64")
    axes = normalize_axes(axis, x.ndim, "var")
    centred = x - mean(x, axes, keepdims=True)
    n = _count(x, axes)
    denom = n - ddof
    sq = sum(centred * centred, axes, keepdims)
    return sq / (cast(denom, x.dtype) if isinstance(denom, Node) else float(denom))


def std(x, axis=None, keepdims=False, ddof=0) -> Node:
    return _g().sqrt(var(x, axis, keepdims, ddof))


def _logsumexp_ref(arg, x):
    axes, keepdims = arg
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m = np.max(x, axis=axes, keepdims=True) if x.size else np.zeros(
            _reduced_shape(x.shape, axes, True), x.dtype)
        m = np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)
        out = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return np.asarray(out if keepdims else np.squeeze(out, axes)).astype(x.dtype, copy=False)


def _logsumexp_grad(node, g):
    # d logsumexp(x) / dx = softmax(x) over the reduced axes
    (x,) = node.src
    axes = node.arg[0]
    if not axes:  # logsumexp over no axis is x itself
        return (g,)
    return (_g().nnet.softmax(x, axes) * _keep(g, node),)


LOGSUMEXP = defop("logsumexp", REDUCE, _reduce_infer(lambda d: d, ("float32", "float64")),
                  ref=_logsumexp_ref, shape=_reduce_shape, grad=_logsumexp_grad,
                  props={"kernel": "rows"})  # over the last axis: a row kernel (codegen/rows.py)


def logsumexp(x, axis=None, keepdims=False) -> Node:
    """``log(sum(exp(x)))`` computed stably: the maximum (where finite) is subtracted first.

    One op, so the compiled backend computes a row's maximum, sum and log while the row is in
    the cache. Integer and bool inputs are computed in the float dtype NumPy would use.
    """
    x = as_tensor(x)
    if not is_float(x.dtype):
        x = cast(x, float_of(x.dtype))
    return make(LOGSUMEXP, (x,), (normalize_axes(axis, x.ndim, "logsumexp"), bool(keepdims)))
