"""Sorting and scans along one axis: sort, argsort, cumsum, cumprod.

``axis=None`` flattens the input first, as NumPy does. The gradient of ``sort`` moves
``g`` back through the sorting permutation (``permute_along_axis`` with the inverse
permutation); the gradient of ``cumsum`` is a reversed cumsum; ``cumprod``'s gradient is
exact also where the input holds zeros (see ``_cumprod_grad``).
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, make
from ..ir.op import OTHER, defop
from ..ir.types import ALL_DTYPES, INT_DTYPES, NUMERIC_DTYPES, TensorType
from .common import as_tensor, normalize_axis
from .reduce import _accumulate_dtype

__all__ = ["argsort", "cumprod", "cumsum", "sort"]


def _g():
    import graphc.tensor as gt

    return gt


def _axis_infer(out_dtype, accepts):
    """The type rule of an op along axis ``arg[0]``: same shape, dtype ``out_dtype(dtype)``."""

    def infer(types, arg):
        (x,) = types
        axis = arg[0]
        if x.dtype not in accepts:
            raise TypeError(f"dtype {x.dtype} is not supported (supported: {', '.join(accepts)})")
        if not 0 <= axis < x.ndim:
            raise ValueError(f"axis {axis} is out of range for a {x.ndim}-d input")
        return TensorType(out_dtype(x.dtype), x.shape)

    return infer


def _same_shape(node, in_shapes):
    return in_shapes[0]


def _along_axis(x, axis, opname: str):
    """``x`` as a node and ``axis`` normalised; ``axis=None`` flattens ``x`` (NumPy's rule)."""
    x = as_tensor(x)
    if axis is None:
        return _g().flatten(x), 0
    if x.ndim == 0:
        raise ValueError(f"{opname}: axis {axis} is out of range for a 0-d input (use axis=None)")
    return x, normalize_axis(axis, x.ndim, opname)


# --- permute_along_axis: the internal gather used by sort's gradient ---------------------------


def _permute_infer(types, arg):
    x, perm = types
    if perm.dtype not in INT_DTYPES or perm.ndim != x.ndim:
        raise TypeError(f"the permutation must be an int array of the input's ndim, got {perm}")
    return TensorType(
        x.dtype, tuple(p if p is not None else s for s, p in zip(x.shape, perm.shape))
    )


def _permute_grad(node, g):
    _x, perm = node.src
    axis = node.arg[0]
    inverse = make(ARGSORT, (perm,), (axis,))  # argsort of a permutation is its inverse
    return make(PERMUTE_ALONG_AXIS, (g, inverse), node.arg), None


PERMUTE_ALONG_AXIS = defop(
    "permute_along_axis",
    OTHER,
    _permute_infer,
    ref=lambda arg, x, perm: np.take_along_axis(x, perm, axis=arg[0]),
    shape=_same_shape,
    grad=_permute_grad,
)


# --- sort / argsort ------------------------------------------------------------------------------


def _sort_grad(node, g):
    # sort(x) == permute(x, argsort(x)), so g goes back through the inverse permutation
    (x,) = node.src
    axis = node.arg[0]
    order = make(ARGSORT, (x,), (axis,))
    inverse = make(ARGSORT, (order,), (axis,))
    return (make(PERMUTE_ALONG_AXIS, (g, inverse), (axis,)),)


SORT = defop(
    "sort",
    OTHER,
    _axis_infer(lambda d: d, ALL_DTYPES),
    ref=lambda arg, x: np.sort(x, axis=arg[0]),
    shape=_same_shape,
    grad=_sort_grad,
)
ARGSORT = defop(
    "argsort",
    OTHER,
    _axis_infer(lambda d: "int64", ALL_DTYPES),
    ref=lambda arg, x: np.argsort(x, axis=arg[0], kind="stable").astype("int64"),
    shape=_same_shape,
    differentiable=False,
)


def sort(x, axis=-1) -> Node:
    """``x`` sorted along ``axis`` (None: flattened first), like ``np.sort``; NaNs go last."""
    x, axis = _along_axis(x, axis, "sort")
    return make(SORT, (x,), (axis,))


def argsort(x, axis=-1) -> Node:
    """The int64 indices that sort ``x`` along ``axis`` (stable: ties keep their order)."""
    x, axis = _along_axis(x, axis, "argsort")
    return make(ARGSORT, (x,), (axis,))


# --- cumsum / cumprod ----------------------------------------------------------------------------


def _scan_ref(fn):
    def ref(arg, x):
        axis, reverse = arg
        dtype = _accumulate_dtype(x.dtype.name)
        if not reverse:
            return fn(x, axis=axis, dtype=dtype)
        return np.flip(fn(np.flip(x, axis), axis=axis, dtype=dtype), axis)

    return ref


def _cumsum_back(g, arg) -> Node:
    """The cumsum of ``g`` in the direction opposite to the scan ``arg`` = (axis, reverse)."""
    axis, reverse = arg
    return make(CUMSUM, (g,), (axis, not reverse))


def _cumsum_grad(node, g):
    return (_cumsum_back(g, node.arg),)


def _cumprod_grad(node, g):
    """Exact also at zeros. Along each lane let z be the first zero of x. Then
    d out_j / d x_i = prod_{k <= j, k != i} x_k, which is
      i < z: out_j / x_i (x_i != 0; terms with j >= z are 0 both ways) -> revcumsum(g * out) / x;
      i = z: with x' = x with that zero replaced by 1 -> revcumsum(g * cumprod(x')) (read at z);
      i > z: 0 (every term keeps the factor x_z = 0).
    Only cumsum/cumprod/where/mul/div are used, so the gradient is itself differentiable."""
    gt = _g()
    (x,) = node.src
    axis, reverse = node.arg
    is_zero = gt.eq(x, 0)
    zeros_so_far = make(CUMSUM, (gt.cast(is_zero, "int64"),), (axis, reverse))
    before_first_zero = gt.eq(zeros_so_far, 0)
    first_zero = gt.logical_and(is_zero, gt.eq(zeros_so_far, 1))
    one = gt.ones_like(x)
    safe_x = gt.switch(is_zero, one, x)
    regular = _cumsum_back(g * node, node.arg) / safe_x
    at_zero = _cumsum_back(g * make(CUMPROD, (gt.switch(first_zero, one, x),), node.arg), node.arg)
    return (
        gt.switch(before_first_zero, regular, gt.switch(first_zero, at_zero, gt.zeros_like(x))),
    )


_SCAN_DTYPES = NUMERIC_DTYPES + ("bool",)


def _scan_op(name, np_fn, grad):
    return defop(name, OTHER, _axis_infer(_accumulate_dtype, _SCAN_DTYPES), ref=_scan_ref(np_fn),
                 shape=_same_shape, grad=grad)


CUMSUM = _scan_op("cumsum", np.cumsum, _cumsum_grad)
CUMPROD = _scan_op("cumprod", np.cumprod, _cumprod_grad)


def cumsum(x, axis=None) -> Node:
    """Cumulative sum along ``axis`` (None: of the flattened input), with ``np.cumsum``'s
    dtype (small ints and bool accumulate in int64, unsigned in uint64)."""
    x, axis = _along_axis(x, axis, "cumsum")
    return make(CUMSUM, (x,), (axis, False))


def cumprod(x, axis=None) -> Node:
    """Cumulative product along ``axis`` (None: flattened), with ``np.cumprod``'s dtype; its
    gradient is exact where ``x`` has zeros."""
    x, axis = _along_axis(x, axis, "cumprod")
    return make(CUMPROD, (x,), (axis, False))
