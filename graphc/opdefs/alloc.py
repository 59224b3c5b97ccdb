"""Array constructors: alloc (fill a shape with a value), zeros, ones, full, *_like."""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, make
from ..ir.op import OTHER, defop
from ..ir.types import TensorType, as_dtype
from .common import as_tensor, dtype_or_weak, is_weak
from .elementwise import cast
from .shape import as_shape_vector, shape, static_entries


def _g():
    import graphc.tensor as gt

    return gt


def _alloc_infer(types, static):
    value, shp = types
    if value.ndim > len(static):
        raise ValueError(f"alloc: a {value.ndim}-d value cannot fill a {len(static)}-d shape")
    return TensorType(value.dtype, tuple(s if s is not None and s >= 0 else None for s in static))


def _alloc_ref(static, value, shp):
    shp = tuple(int(s) for s in shp)
    if any(s < 0 for s in shp):
        raise ValueError(f"alloc: negative dimension in shape {shp}")
    return np.array(np.broadcast_to(value, shp))


ALLOC = defop("alloc", OTHER, _alloc_infer, ref=_alloc_ref,
              shape=lambda node, s: __import__("graphc.opdefs.shape", fromlist=["x"]).vector_entries(node.src[1]),
              grad=lambda node, g: (_g().sum_to(g, node.src[0]), None))


def alloc(value, *shape_entries) -> Node:
    """An array of the given shape filled with ``value`` (a scalar or a broadcastable array)."""
    value = as_tensor(value)
    vec = as_shape_vector(shape_entries[0] if len(shape_entries) == 1 and not _is_scalar(shape_entries[0])
                          else shape_entries)
    static = static_entries(vec)
    if len(static) != vec.type.shape[0]:
        raise ValueError("alloc: the shape's length must be known")
    return make(ALLOC, (value, vec), tuple(static))


def _is_scalar(value) -> bool:
    return isinstance(value, (int, np.integer)) or (isinstance(value, Node) and value.ndim == 0)


def full(shape, fill_value, dtype=None) -> Node:
    """``np.full``: ``shape`` may hold ints and int scalar nodes, or be an int vector node."""
    if dtype is None:
        dtype = dtype_or_weak(fill_value)
        dtype = {bool: "bool", int: "int64", float: _floatx()}.get(dtype, dtype) if is_weak(fill_value) else dtype
    value = cast(as_tensor(fill_value, dtype) if is_weak(fill_value) else as_tensor(fill_value), as_dtype(dtype))
    return alloc(value, shape)


def _floatx():
    from ..config import config

    return config.floatX


def zeros(shape, dtype=None) -> Node:
    """An array of zeros (``dtype`` defaults to ``config.floatX``)."""
    return full(shape, 0, dtype or _floatx())


def ones(shape, dtype=None) -> Node:
    return full(shape, 1, dtype or _floatx())


def full_like(x, fill_value, dtype=None) -> Node:
    x = as_tensor(x)
    return full(shape(x), fill_value, dtype or x.dtype)


def zeros_like(x, dtype=None) -> Node:
    return full_like(x, 0, dtype)


def ones_like(x, dtype=None) -> Node:
    return full_like(x, 1, dtype)
