"""Joining and splitting: concatenate (stack, hstack, vstack) and split.

``concatenate`` joins inputs of one dtype and ndim along an axis. ``split`` is Theano's:
one node per piece, each holding the piece's index in ``arg`` and checking at run time
that the sizes add up to the axis length. The two are each other's gradient: the
gradient of a concatenation splits ``g`` by the inputs' sizes, and the gradient of a
piece (``unsplit``) puts ``g`` back into a zero array shaped like the split input.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, constant, make
from ..ir.op import SHAPE, defop
from ..ir.types import INT_DTYPES, TensorType, upcast
from .common import as_tensor, normalize_axis, shape_entry

__all__ = ["concatenate", "hstack", "join", "split", "stack", "vstack"]


def _g():
    import graphc.tensor as gt

    return gt


# --- concatenate ---------------------------------------------------------------------------------


def _unify_dim(dims, axis: int):
    """The common static size of one non-joined axis (None if unknown); raises on a conflict."""
    known = {d for d in dims if d is not None}
    if len(known) > 1:
        raise ValueError(f"the inputs' sizes along axis {axis} differ: {sorted(known)}")
    return known.pop() if known else None


def _concatenate_infer(types, axis):
    if not types:
        raise ValueError("needs at least one input")
    if len({t.dtype for t in types}) != 1:
        raise TypeError(
            f"inputs must share one dtype, got {[t.dtype for t in types]} (use gt.concatenate)"
        )
    ndims = {t.ndim for t in types}
    if len(ndims) != 1:
        raise TypeError(f"inputs must have equal ndim, got {[t.ndim for t in types]}")
    ndim = ndims.pop()
    if ndim == 0:
        raise TypeError("0-d inputs cannot be concatenated (use stack)")
    if not 0 <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for {ndim}-d inputs")
    shape = []
    for a in range(ndim):
        dims = [t.shape[a] for t in types]
        if a == axis:
            shape.append(None if None in dims else sum(dims))
        else:
            shape.append(_unify_dim(dims, a))
    return TensorType(types[0].dtype, tuple(shape))


def _concatenate_shape(node, in_shapes):
    axis = node.arg
    out = []
    for a in range(node.ndim):
        entries = [s[a] for s in in_shapes]
        if a == axis:
            total = entries[0]
            for e in entries[1:]:
                total = total + e
            out.append(total)
        else:
            static = [e for e in entries if isinstance(e, int)]
            out.append(static[0] if static else entries[0])
    return tuple(out)


def _concatenate_grad(node, g):
    axis = node.arg
    sizes = [shape_entry(x, axis) for x in node.src]
    return tuple(split(g, sizes, len(sizes), axis))


CONCATENATE = defop(
    "concatenate",
    SHAPE,
    _concatenate_infer,
    ref=lambda axis, *xs: np.concatenate(xs, axis=axis),
    shape=_concatenate_shape,
    grad=_concatenate_grad,
)


def _as_piece(value) -> Node:
    # NOTE: non-node pieces keep NumPy's own dtype (Python floats are float64), as in NumPy
    return value if isinstance(value, Node) else constant(np.asarray(value))


def _common_dtype(nodes) -> list:
    dtype = upcast(*[n.dtype for n in nodes])
    return [n if n.dtype == dtype else _g().cast(n, dtype) for n in nodes]


def concatenate(tensors, axis=0) -> Node:
    """Join ``tensors`` along an existing ``axis`` (None flattens them first), like
    ``np.concatenate``; dtypes are promoted by NumPy's rules."""
    nodes = [_as_piece(t) for t in tensors]
    if not nodes:
        raise ValueError("concatenate: needs at least one input")
    if axis is None:
        nodes, axis = [_g().flatten(n) for n in nodes], 0
    nodes = _common_dtype(nodes)
    if nodes[0].ndim == 0:
        raise TypeError("concatenate: 0-d inputs cannot be concatenated (use stack)")
    axis = normalize_axis(axis, nodes[0].ndim, "concatenate")
    if len(nodes) == 1:
        return nodes[0]
    return make(CONCATENATE, nodes, axis)


def join(axis, *tensors) -> Node:
    """Theano's ``join(axis, *tensors)``: ``concatenate(tensors, axis)``."""
    return concatenate(tensors, axis)


def stack(tensors, axis=0) -> Node:
    """Join ``tensors`` (all of one shape) along a new ``axis``, like ``np.stack``."""
    nodes = [_as_piece(t) for t in tensors]
    if not nodes:
        raise ValueError("stack: needs at least one input")
    ndims = {n.ndim for n in nodes}
    if len(ndims) != 1:
        raise TypeError(f"stack: inputs must have equal ndim, got {[n.ndim for n in nodes]}")
    axis = normalize_axis(axis, ndims.pop() + 1, "stack")
    expand = _g().expand_dims
    return concatenate([expand(n, axis) for n in nodes], axis)


def _at_least(node: Node, ndim: int) -> Node:
    if node.ndim >= ndim:
        return node
    if node.ndim == 0:
        return _g().reshape(node, (1,) * ndim)
    return _g().dimshuffle(node, ("x",) + tuple(range(node.ndim)))  # 1-d -> row, as np.atleast_2d


def hstack(tensors) -> Node:
    """``np.hstack``: join along axis 0 for 1-d inputs, else along axis 1."""
    nodes = [_at_least(_as_piece(t), 1) for t in tensors]
    if not nodes:
        raise ValueError("hstack: needs at least one input")
    return concatenate(nodes, 0 if nodes[0].ndim == 1 else 1)


def vstack(tensors) -> Node:
    """``np.vstack``: inputs made at least 2-d, joined along axis 0."""
    return concatenate([_at_least(_as_piece(t), 2) for t in tensors], 0)


# --- split ---------------------------------------------------------------------------------------


def _check_sizes(sizes, n: int, length: int) -> np.ndarray:
    sizes = np.asarray(sizes).reshape(-1)
    if sizes.shape[0] != n:
        raise ValueError(f"expected {n} split sizes, got {sizes.shape[0]}")
    if (sizes < 0).any():
        raise ValueError(f"split sizes must be non-negative, got {sizes.tolist()}")
    if int(sizes.sum()) != length:
        raise ValueError(
            f"split sizes {sizes.tolist()} sum to {int(sizes.sum())}, "
            f"not to the axis length {length}"
        )
    return sizes


def _piece_index(arg, x, sizes) -> tuple:
    axis, i, n, _ = arg
    sizes = _check_sizes(sizes, n, x.shape[axis])
    start = int(sizes[:i].sum())
    return (slice(None),) * axis + (slice(start, start + int(sizes[i])),)


def _split_infer(types, arg):
    x, sizes = types
    axis, _i, n, size = arg
    if sizes.ndim != 1 or sizes.dtype not in INT_DTYPES:
        raise TypeError(f"split sizes must be an int vector, got {sizes}")
    if sizes.shape[0] not in (None, n):
        raise ValueError(f"{sizes.shape[0]} split sizes for {n} pieces")
    if not 0 <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for a {x.ndim}-d input")
    return TensorType(x.dtype, x.shape[:axis] + (size,) + x.shape[axis + 1 :])


def _split_shape(node, in_shapes):
    from .shape import vector_entries

    axis, i, _, _ = node.arg
    return in_shapes[0][:axis] + (vector_entries(node.src[1])[i],) + in_shapes[0][axis + 1 :]


SPLIT = defop(
    "split",
    SHAPE,
    _split_infer,
    ref=lambda arg, x, sizes: x[_piece_index(arg, x, sizes)],
    shape=_split_shape,
    grad=lambda node, g: (make(UNSPLIT, (g, node.src[0], node.src[1]), node.arg), None),
)


def _unsplit_infer(types, arg):
    g, x, _sizes = types
    return TensorType(g.dtype, x.shape)


def _unsplit_ref(arg, g, x, sizes):
    out = np.zeros(x.shape, dtype=g.dtype)
    out[_piece_index(arg, x, sizes)] = g
    return out


UNSPLIT = defop(
    "unsplit",
    SHAPE,
    _unsplit_infer,
    ref=_unsplit_ref,
    shape=lambda node, s: s[1],
    grad=lambda node, g: (make(SPLIT, (g, node.src[2]), node.arg), None, None),
)


def split(x, splits_size, n_splits=None, axis=0) -> list:
    """Theano's split: cut ``x`` along ``axis`` into pieces of the given sizes.

    ``splits_size`` is a list of ints / int scalars or an int vector (of static length, or
    give ``n_splits``); the sizes must sum to the axis length (checked at run time).
    Returns a list of ``n_splits`` variables.
    """
    from .shape import as_shape_vector, static_entries

    x = as_tensor(x)
    if x.ndim == 0:
        raise TypeError("split: cannot split a 0-d input")
    axis = normalize_axis(axis, x.ndim, "split")
    sizes = as_shape_vector(splits_size)
    n = sizes.type.shape[0]
    if n is None:
        n = n_splits
        if n is None:
            raise ValueError("split: the number of pieces is unknown; pass n_splits=")
    elif n_splits is not None and n_splits != n:
        raise ValueError(f"split: n_splits={n_splits} but {n} sizes were given")
    static = static_entries(sizes) if sizes.type.shape[0] is not None else (None,) * n
    if any(s is not None and s < 0 for s in static):
        raise ValueError(f"split: sizes must be non-negative, got {static}")
    length = x.type.shape[axis]
    if None not in static and length is not None:
        try:
            _check_sizes(static, n, length)
        except ValueError as exc:
            raise ValueError(f"split: {exc} (input {x.type})") from None
    return [make(SPLIT, (x, sizes), (axis, i, n, static[i])) for i in range(n)]
