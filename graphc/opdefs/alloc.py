"""Array constructors: alloc (fill a shape with a value), zeros, ones, full, *_like, arange, eye."""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, constant, make
from ..ir.op import OTHER, defop
from ..ir.types import INT_DTYPES, TensorType, as_dtype
from .common import as_tensor, dtype_or_weak, is_weak, shape_entry
from .elementwise import cast
from .shape import as_shape_vector, static_entries, vector_entries


def _g():
    import graphc.tensor as gt

    return gt


def _alloc_infer(types, static):
    value = types[0]
    if value.ndim > len(static):
        raise ValueError(f"alloc: a {value.ndim}-d value cannot fill a {len(static)}-d shape")
    return TensorType(value.dtype, tuple(s if s is not None and s >= 0 else None for s in static))


def _alloc_ref(static, value, shp):
    shp = tuple(int(s) for s in shp)
    if any(s < 0 for s in shp):
        raise ValueError(f"alloc: negative dimension in shape {shp}")
    return np.array(np.broadcast_to(value, shp))


ALLOC = defop("alloc", OTHER, _alloc_infer, ref=_alloc_ref,
              shape=lambda node, s: vector_entries(node.src[1]),
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
    # static sizes stay ints, so the result depends on x's value only where its shape is unknown
    return full([shape_entry(x, i) for i in range(x.ndim)], fill_value, dtype or x.dtype)


def zeros_like(x, dtype=None) -> Node:
    return full_like(x, 0, dtype)


def ones_like(x, dtype=None) -> Node:
    return full_like(x, 1, dtype)


# --- arange / eye ------------------------------------------------------------------------------

def _scalar_const(node: Node):
    """The Python number a constant scalar node holds, else None."""
    from ..ir.node import CONSTANT

    return node.arg.value[()].item() if node.op is CONSTANT and node.ndim == 0 else None


def _arange_infer(types, arg):
    dtype, length = arg
    if any(t.ndim != 0 for t in types):
        got = ", ".join(str(t) for t in types)
        raise TypeError(f"start, stop and step must be scalars, got {got}")
    return TensorType(dtype, (length,))


def _arange_ref(arg, start, stop, step):
    if step == 0:
        raise ValueError("arange: step must not be zero")
    return np.arange(start[()], stop[()], step[()], dtype=arg[0])


def _arange_length(node, in_shapes):
    gt = _g()
    if np.dtype(node.dtype).kind in "iu" and all(np.dtype(s.dtype).kind in "biu" for s in node.src):
        start, stop, step = (cast(s, "int64") for s in node.src)
        n = -((start - stop) // step)  # ceil((stop - start) / step), exact for ints
    else:
        start, stop, step = (cast(s, "float64") for s in node.src)
        n = cast(gt.ceil((stop - start) / step), "int64")
    return (gt.maximum(n, 0),)


ARANGE = defop("arange", OTHER, _arange_infer, ref=_arange_ref, shape=_arange_length,
               differentiable=False)


def _numpy_sample(value):
    """A value of ``value``'s type, for asking NumPy which dtype it would pick."""
    if isinstance(value, Node):
        return np.ones((), value.dtype)[()]
    return type(value)(1) if is_weak(value) else np.ones((), np.asarray(value).dtype)[()]


def arange(start, stop=None, step=1, dtype=None) -> Node:
    """``np.arange`` with Python or symbolic scalars; NumPy's dtype rules (ints -> int64,
    floats -> float64) unless ``dtype`` is given."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        try:
            dtype = np.arange(*[_numpy_sample(v) for v in (start, stop, step)]).dtype
        except TypeError as exc:
            raise TypeError(f"arange: {exc}") from None
    dtype = as_dtype(dtype)
    # NOTE: Python numbers keep full precision (not floatX), so the values are NumPy's
    nodes = [v if isinstance(v, Node) else constant(np.asarray(v)) for v in (start, stop, step)]
    values = [_scalar_const(n) for n in nodes]
    length = None
    if None not in values:
        if values[2] == 0:
            raise ValueError("arange: step must not be zero")
        length = len(np.arange(*values, dtype=dtype))
    return make(ARANGE, nodes, (dtype, length))


def _eye_infer(types, arg):
    dtype, rows, cols = arg
    for name, t in zip(("n", "m", "k"), types):
        if t.ndim != 0 or t.dtype not in INT_DTYPES:
            raise TypeError(f"{name} must be an integer scalar, got {t}")
    return TensorType(dtype, (rows, cols))


def _eye_ref(arg, n, m, k):
    return np.eye(int(n), int(m), int(k), dtype=arg[0])


EYE = defop("eye", OTHER, _eye_infer, ref=_eye_ref,
            shape=lambda node, s: tuple(cast(v, "int64") for v in node.src[:2]),
            differentiable=False)


def eye(n, m=None, k=0, dtype=None) -> Node:
    """An ``n`` x ``m`` array with ones on diagonal ``k`` (``np.eye``); ``n``, ``m``, ``k``
    may be symbolic int scalars; ``dtype`` defaults to ``config.floatX``."""
    nodes = [as_tensor(v) for v in (n, n if m is None else m, k)]
    static = [_scalar_const(v) for v in nodes[:2]]
    if any(s is not None and s < 0 for s in static):
        raise ValueError(f"eye: negative dimension ({static[0]}, {static[1]})")
    return make(EYE, nodes, (as_dtype(dtype or _floatx()), static[0], static[1]))
