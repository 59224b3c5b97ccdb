"""Shape ops: shape, shape_i, make_vector, dimshuffle (transpose, expand_dims, squeeze),
reshape (flatten) and broadcast_to."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ir.node import CONSTANT, Node, constant, make
from ..ir.op import SHAPE as SHAPE_KIND
from ..ir.op import defop
from ..ir.types import INT_DTYPES, TensorType, shape_str, upcast
from .common import as_tensor, normalize_axes, normalize_axis, shape_entry


def _g():
    import graphc.tensor as gt

    return gt


def _static_int(node: Node):
    """The Python int a scalar node stands for, if it is a constant."""
    if node.op is CONSTANT and node.ndim == 0:
        return int(node.arg.value)
    return None


# --- shape / shape_i ---------------------------------------------------------------------------
SHAPE = defop("shape", SHAPE_KIND, lambda types, arg: TensorType("int64", (types[0].ndim,)),
              ref=lambda arg, x: np.array(x.shape, dtype="int64"),
              shape=lambda node, s: (len(s[0]),), differentiable=False)


def _shape_i_infer(types, arg):
    if not 0 <= arg < types[0].ndim:
        raise ValueError(f"axis {arg} is out of range for a {types[0].ndim}-d input")
    return TensorType("int64", ())


SHAPE_I = defop("shape_i", SHAPE_KIND, _shape_i_infer, ref=lambda arg, x: np.array(x.shape[arg], dtype="int64"),
                shape=lambda node, s: (), differentiable=False)


def shape(x) -> Node:
    """The shape of ``x`` as an int64 vector (``x.shape``)."""
    return make(SHAPE, (as_tensor(x),))


def shape_i(x, axis: int) -> Node:
    """Dimension ``axis`` of ``x`` as an int64 scalar."""
    x = as_tensor(x)
    return make(SHAPE_I, (x,), normalize_axis(axis, x.ndim, "shape_i"))


def broadcast_dim(dims: Sequence):
    """The broadcast size of several dimensions (ints or int64 scalar nodes)."""
    dims = [d for d in dims if not (isinstance(d, int) and d == 1)]
    # the same size node twice (hash-consed, so identical) broadcasts to itself
    unique = []
    for d in dims:
        if not any(d is u for u in unique):
            unique.append(d)
    dims = unique
    static = [d for d in dims if isinstance(d, int)]
    if static:
        return static[0]
    if not dims:
        return 1
    out = dims[0]
    gt = _g()
    for d in dims[1:]:
        out = gt.switch(gt.eq(out, 1), d, out)
    return out


# --- make_vector: scalars -> vector ------------------------------------------------------------

def _make_vector_infer(types, arg):
    if any(t.ndim != 0 for t in types):
        raise ValueError("make_vector takes scalars")
    if len({t.dtype for t in types}) > 1:
        raise TypeError("make_vector takes scalars of one dtype")
    return TensorType(types[0].dtype if types else arg, (len(types),))


def _make_vector_grad(node, g):
    return tuple(g[i] for i in range(len(node.src)))


MAKE_VECTOR = defop("make_vector", SHAPE_KIND, _make_vector_infer,
                    ref=lambda arg, *xs: np.array(xs, dtype=arg) if xs else np.zeros(0, arg),
                    shape=lambda node, s: (len(node.src),), grad=_make_vector_grad)


def make_vector(values, dtype=None) -> Node:
    """A vector from scalars (nodes or numbers)."""
    values = list(values)
    if dtype is None:
        dtype = upcast(*[np.dtype(v.dtype) if isinstance(v, Node) else type(v) for v in values]) if values else "int64"
    nodes = [as_tensor(v) for v in values]
    nodes = [n if n.dtype == dtype else _g().cast(n, dtype) for n in nodes]
    if all(n.op is CONSTANT for n in nodes):
        return constant(np.array([n.arg.value for n in nodes], dtype=dtype).reshape(len(nodes)))
    return make(MAKE_VECTOR, nodes, dtype)


def as_shape_vector(shape) -> Node:
    """A user's shape (tuple of ints/scalars, or an int vector node) as an int64 vector node."""
    if isinstance(shape, Node):
        if shape.ndim == 0:
            shape = [shape]
        else:
            if shape.ndim != 1 or shape.dtype not in INT_DTYPES:
                raise TypeError(f"a shape must be an int vector, got {shape.type}")
            return shape if shape.dtype == "int64" else _g().cast(shape, "int64")
    if isinstance(shape, (int, np.integer)):
        shape = [shape]
    entries = []
    for s in shape:
        node = as_tensor(s)
        if node.ndim != 0 or node.dtype not in INT_DTYPES:
            raise TypeError(f"shape entries must be integer scalars, got {node.type}")
        entries.append(node if node.dtype == "int64" else _g().cast(node, "int64"))
    return make_vector(entries, "int64")


def static_entries(vec: Node) -> tuple:
    """The statically known entries of an int vector node (None where unknown)."""
    n = vec.type.shape[0]
    if vec.op is CONSTANT:
        return tuple(int(v) for v in vec.arg.value)
    if vec.op is MAKE_VECTOR:
        return tuple(_static_int(s) for s in vec.src)
    if vec.op is SHAPE:
        return vec.src[0].type.shape
    return (None,) * (n or 0)


def vector_entries(vec: Node) -> tuple:
    """The entries of an int vector of static length, each an int or a scalar node."""
    if vec.op is MAKE_VECTOR:
        return tuple(_static_int(s) if _static_int(s) is not None else s for s in vec.src)
    if vec.op is CONSTANT:
        return tuple(int(v) for v in vec.arg.value)
    if vec.op is SHAPE:
        return tuple(shape_entry(vec.src[0], i) for i in range(vec.src[0].ndim))
    return tuple(vec[i] for i in range(vec.type.shape[0]))


# --- dimshuffle --------------------------------------------------------------------------------

def _dimshuffle_infer(types, pattern):
    (t,) = types
    kept = [p for p in pattern if p != "x"]
    if sorted(kept) != sorted(set(kept)) or any(not 0 <= p < t.ndim for p in kept):
        raise ValueError(f"pattern {pattern} is not valid for a {t.ndim}-d input")
    for axis in set(range(t.ndim)) - set(kept):
        if t.shape[axis] not in (1, None):
            raise ValueError(f"pattern {pattern} drops axis {axis} of size {t.shape[axis]} (only size-1 axes can be dropped)")
    return TensorType(t.dtype, tuple(1 if p == "x" else t.shape[p] for p in pattern))


def _dimshuffle_ref(pattern, x):
    kept = [p for p in pattern if p != "x"]
    dropped = [a for a in range(x.ndim) if a not in kept]
    for a in dropped:
        if x.shape[a] != 1:
            raise ValueError(f"cannot drop axis {a} of size {x.shape[a]} (shape {x.shape})")
    y = x.transpose(kept + dropped).reshape([x.shape[a] for a in kept]) if dropped else x.transpose(kept)
    return y.reshape([1 if p == "x" else x.shape[p] for p in pattern])


def _dimshuffle_grad(node, g):
    (x,) = node.src
    pattern = node.arg
    kept = [p for p in pattern if p != "x"]
    g = dimshuffle(g, tuple(i for i, p in enumerate(pattern) if p != "x"))  # drop the new axes
    back = []
    for axis in range(x.ndim):
        back.append(kept.index(axis) if axis in kept else "x")
    return (dimshuffle(g, tuple(back)),)


DIMSHUFFLE = defop("dimshuffle", SHAPE_KIND, _dimshuffle_infer, ref=_dimshuffle_ref, grad=_dimshuffle_grad,
                   shape=lambda node, s: tuple(1 if p == "x" else s[0][p] for p in node.arg))


def dimshuffle(x, pattern) -> Node:
    """Theano's dimshuffle: permute axes, ``'x'`` inserts a broadcastable axis, omitted axes
    (which must have size 1) are dropped. ``dimshuffle(x, (1, 'x', 0))``."""
    x = as_tensor(x)
    pattern = tuple(p if p == "x" else int(p) for p in pattern)
    if pattern == tuple(range(x.ndim)):
        return x
    return make(DIMSHUFFLE, (x,), pattern)


def transpose(x, axes=None) -> Node:
    """Permute the axes (reverse them when ``axes`` is None), like ``np.transpose``."""
    x = as_tensor(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    axes = tuple(normalize_axis(a, x.ndim, "transpose") for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of {x.ndim} axes")
    return dimshuffle(x, axes)


def expand_dims(x, axis) -> Node:
    """Insert size-1 axes at ``axis`` (int or tuple), like ``np.expand_dims``."""
    x = as_tensor(x)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out_ndim = x.ndim + len(axes)
    axes = normalize_axes(axes, out_ndim, "expand_dims")
    rest = iter(range(x.ndim))
    return dimshuffle(x, tuple("x" if a in axes else next(rest) for a in range(out_ndim)))


def squeeze(x, axis=None) -> Node:
    """Drop size-1 axes: all static ones when ``axis`` is None, else the ones named
    (checked at run time when their size is not known statically)."""
    x = as_tensor(x)
    if axis is None:
        drop = [a for a, s in enumerate(x.type.shape) if s == 1]
    else:
        drop = normalize_axes(axis, x.ndim, "squeeze")
    return dimshuffle(x, tuple(a for a in range(x.ndim) if a not in drop))


# --- reshape -----------------------------------------------------------------------------------

def _reshape_infer(types, static):
    # NOTE: arg holds the statically known entries of the shape vector (None unknown, -1 inferred)
    x, shp = types
    if shp.ndim != 1 or shp.dtype != "int64" or shp.shape[0] not in (None, len(static)):
        raise TypeError(f"reshape needs an int64 vector of length {len(static)}, got {shp}")
    return TensorType(x.dtype, _refine_reshape_type(x, static))


def _reshape_ref(static, x, shp):
    try:
        return x.reshape(tuple(int(s) for s in shp))
    except ValueError:
        raise ValueError(f"cannot reshape an array of shape {x.shape} (size {x.size}) into {tuple(shp)}") from None


RESHAPE = defop("reshape", SHAPE_KIND, _reshape_infer, ref=_reshape_ref,
                grad=lambda node, g: (reshape(g, shape(node.src[0])), None),
                shape=lambda node, s: _reshape_shape(node))


def _reshape_shape(node):
    x, vec = node.src
    entries = vector_entries(vec)
    if -1 not in entries:
        return tuple(entries)
    total = 1
    for i in range(x.ndim):
        total = total * shape_entry(x, i)
    known = 1
    for e in entries:
        if not (isinstance(e, int) and e == -1):
            known = known * e
    return tuple(total // known if isinstance(e, int) and e == -1 else e for e in entries)


def reshape(x, newshape, ndim=None) -> Node:
    """``x`` with a new shape (a tuple of ints/scalars, at most one -1, or an int vector)."""
    x = as_tensor(x)
    vec = as_shape_vector(newshape)
    n = vec.type.shape[0]
    if n is None:
        if ndim is None:
            raise ValueError("reshape: the length of a symbolic shape must be known; pass ndim=")
        n = ndim
    static = static_entries(vec)
    if sum(1 for s in static if s == -1) > 1:
        raise ValueError(f"reshape: at most one -1 in the new shape, got {static}")
    return make(RESHAPE, (x, vec), tuple(static) if len(static) == n else (None,) * n)


def _refine_reshape_type(x, static):
    sizes = list(static)
    if -1 in sizes and all(s is not None for s in x.shape):
        known = int(np.prod([s for s in sizes if s != -1])) if len(sizes) > 1 else 1
        total = int(np.prod(x.shape)) if x.ndim else 1
        if None not in sizes and known and total % known == 0:
            sizes[sizes.index(-1)] = total // known
    if None not in sizes and -1 not in sizes and all(s is not None for s in x.shape):
        if int(np.prod(sizes)) != int(np.prod(x.shape)):
            raise ValueError(f"reshape: cannot reshape {shape_str(x.shape)} into {tuple(sizes)}")
    return tuple(None if s in (-1, None) else s for s in sizes)


def flatten(x, ndim: int = 1) -> Node:
    """Keep the first ``ndim - 1`` axes and flatten the rest into one (Theano's flatten)."""
    x = as_tensor(x)
    if not 1 <= ndim <= max(x.ndim, 1):
        raise ValueError(f"flatten: ndim must be in [1, {max(x.ndim, 1)}], got {ndim}")
    rest = x.type.shape[ndim - 1:]
    if None not in rest:  # static when the flattened dims are
        last = int(np.prod(rest))
    else:  # a product, not -1: NumPy cannot infer -1 when a kept axis has size 0
        last = 1
        for i in range(ndim - 1, x.ndim):
            last = last * shape_entry(x, i)
    return reshape(x, [shape_entry(x, i) for i in range(ndim - 1)] + [last])


# --- broadcast_to ------------------------------------------------------------------------------

def _broadcast_to_infer(types, static):
    x, shp = types
    n = len(static)
    if shp.ndim != 1 or shp.shape[0] != n or n < x.ndim:
        raise ValueError(f"cannot broadcast a {x.ndim}-d input to {n} dimensions")
    offset = n - x.ndim
    refined = []
    for i, s in enumerate(static):
        xs = x.shape[i - offset] if i >= offset else 1
        if s is not None and xs not in (None, 1, s):
            raise ValueError(f"cannot broadcast {shape_str(x.shape)} to {tuple(static)}")
        refined.append(s if s is not None else (xs if xs not in (None, 1) else None))
    return TensorType(x.dtype, tuple(refined))


BROADCAST_TO = defop("broadcast_to", SHAPE_KIND, _broadcast_to_infer,
                     ref=lambda static, x, shp: np.broadcast_to(x, tuple(int(s) for s in shp)).copy(),
                     grad=lambda node, g: (_g().sum_to(g, node.src[0]), None),
                     shape=lambda node, s: vector_entries(node.src[1]))


def broadcast_to(x, newshape) -> Node:
    """``x`` broadcast to ``newshape`` like ``np.broadcast_to``."""
    x = as_tensor(x)
    vec = as_shape_vector(newshape)
    n = vec.type.shape[0]
    static = static_entries(vec)
    if len(static) != n:
        static = (None,) * n
    return make(BROADCAST_TO, (x, vec), tuple(static))
