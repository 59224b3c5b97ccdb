"""Helpers every op file uses: turning user values into nodes, static broadcasting,
axis normalisation and symbolic shape entries."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ir.node import Node, constant
from ..ir.types import TensorType, as_dtype, shape_str

WEAK_TYPES = (bool, int, float)


def is_weak(value) -> bool:
    """Python scalars are weakly typed (NumPy 2, NEP 50): ``float32_var * 2`` stays float32."""
    return type(value) in WEAK_TYPES


def as_tensor(value, dtype=None, name: str | None = None) -> Node:
    """A node for ``value``: nodes pass through, anything array-like becomes a constant."""
    if isinstance(value, Node):
        if dtype is not None and value.dtype != as_dtype(dtype):
            from .elementwise import cast

            return cast(value, dtype)
        return value
    if isinstance(value, (list, tuple)) and any(isinstance(v, Node) for v in _flat(value)):
        from .joins import stack

        return stack([as_tensor(v, dtype) for v in value])
    if dtype is None and is_weak(value):
        from ..config import config

        dtype = {bool: "bool", int: "int64", float: config.floatX}[type(value)]
    if isinstance(value, np.ndarray) and value.dtype == object:
        raise TypeError("cannot turn an object array into a graphc constant")
    return constant(value, dtype, name)


def _flat(values):
    stack = [values]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        else:
            yield v


def dtype_or_weak(value):
    """The dtype of a node or array, or the Python type of a weak scalar (for promotion)."""
    if isinstance(value, Node):
        return np.dtype(value.dtype)
    if is_weak(value):
        return type(value)
    return np.dtype(as_dtype(np.asarray(value).dtype))


def broadcast_static(types: Sequence[TensorType], opname: str = "") -> tuple:
    """NumPy broadcasting of static shapes of equal ndim; raises on a certain mismatch."""
    ndim = types[0].ndim
    out = []
    for axis in range(ndim):
        dims = [t.shape[axis] for t in types]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ValueError(
                "shapes " + ", ".join(shape_str(t.shape) for t in types) + f" cannot be broadcast (axis {axis})"
            )
        if known:
            out.append(known.pop())
        elif all(d == 1 for d in dims):
            out.append(1)
        else:
            out.append(None)
    return tuple(out)


def normalize_axis(axis, ndim: int, opname: str) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{opname}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise ValueError(f"{opname}: axis {axis} is out of range for a {ndim}-d input")
    return int(axis) % max(ndim, 1)


def normalize_axes(axis, ndim: int, opname: str) -> tuple:
    """``None`` -> all axes; int or tuple -> sorted, non-negative, without repeats."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (list, tuple)):
        axes = tuple(normalize_axis(a, ndim, opname) for a in axis)
    else:
        axes = (normalize_axis(axis, ndim, opname),)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{opname}: repeated axis in {axis!r}")
    return tuple(sorted(axes))


def shape_entry(node: Node, axis: int):
    """Dimension ``axis`` of ``node``: an int if it is static, else an int64 scalar node."""
    size = node.type.shape[axis]
    if size is not None:
        return size
    from .shape import shape_i

    return shape_i(node, axis)
