"""2-d pooling over the last two axes (Theano's ``pool_2d``) and its gradients.

Windows of ``ws`` cells step by ``stride`` over the input padded by ``pad`` on each side.
The output length along an axis of (padded) length ``n`` is Theano's:

- ``ignore_border=True``: ``max(0, (n - ws) // stride + 1)``: only whole windows;
- ``ignore_border=False`` (no padding allowed): ``(n - 1) // stride + 1`` when
  ``stride >= ws``, else ``max(0, (n - 1 - ws) // stride + 1) + 1``: partial windows at the
  end count (an empty axis gives no window, where Theano's rule says 1).

Modes: 'max' and 'sum' never see the padding; 'average_exc_pad' divides by the number of
input cells in the window, 'average_inc_pad' by ``ws[0] * ws[1]`` (padding counts as zeros;
partial windows of ``ignore_border=False`` count only their cells, as in Theano).

The gradient of 'max' goes to the *first* maximum of each window (row-major order), a true
subgradient; Theano instead gives it to every cell equal to the maximum. Ops:

- ``pool_2d(x)``; its gradient is ``max_pool_grad(x, g)`` for 'max', else
  ``pool_2d_grad(g, (rows, cols))`` (linear, so its gradient is ``pool_2d`` again);
- ``max_pool_grad(x, g)`` scatters ``g`` to each window's first maximum of ``x``;
  ``max_pool_select(x, v)`` reads ``v`` there; each is the other's gradient (in ``g``, ``v``).

Each reference loops over the ``ws[0] * ws[1]`` window offsets, each step one strided
whole-array operation.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, build_error, make
from ..ir.op import OTHER, defop
from ..ir.provenance import user_trace
from ..ir.types import FLOAT_DTYPES, INT_DTYPES, TensorType, shape_str
from .common import as_tensor, shape_entry
from .shape import as_shape_vector, static_entries

__all__ = ["max_pool_2d_same_size", "pool_2d"]

MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")

# an op's arg starts with (ws, stride, pad, ignore_border, mode)


# --- geometry -------------------------------------------------------------------------------------

def _out_len(n, axis: int, params):
    """Theano's output length along spatial ``axis`` for an input length ``n`` (int or node)."""
    ws, stride, pad, ignore_border = (params[0][axis], params[1][axis], params[2][axis], params[3])
    if n is None:
        return None
    if isinstance(n, Node):
        return _out_len_symbolic(n, ws, stride, pad, ignore_border)
    n += 2 * pad
    if ignore_border:
        return max(0, (n - ws) // stride + 1)
    if n == 0:
        return 0
    if stride >= ws:
        return (n - 1) // stride + 1
    return max(0, (n - 1 - ws) // stride + 1) + 1


def _out_len_symbolic(n: Node, ws: int, stride: int, pad: int, ignore_border: bool) -> Node:
    import graphc.tensor as gt

    n = n + 2 * pad
    if ignore_border:
        return gt.maximum((n - ws) // stride + 1, 0)
    if stride >= ws:
        return (n - 1) // stride + 1
    return gt.switch(gt.eq(n, 0), 0, gt.maximum((n - 1 - ws) // stride + 1, 0) + 1)


def _real_counts(n: int, out: int, axis: int, params) -> np.ndarray:
    """How many input cells (not padding) each window covers along ``axis``."""
    ws, stride, pad = params[0][axis], params[1][axis], params[2][axis]
    start = np.arange(out) * stride
    return np.minimum(start + ws, n + pad) - np.maximum(start, pad)


def _divisor(params, h: int, w: int, out_hw, dtype) -> np.ndarray | None:
    """What each window's sum is divided by (None for 'max' and 'sum')."""
    ws, _, _, ignore_border, mode = params[:5]
    if mode in ("max", "sum"):
        return None
    if mode == "average_inc_pad" and ignore_border:
        return np.asarray(ws[0] * ws[1], dtype)
    rows = _real_counts(h, out_hw[0], 0, params)
    cols = _real_counts(w, out_hw[1], 1, params)
    return np.multiply.outer(rows, cols).astype(dtype)


def _padded_size(params, hw, out_hw) -> tuple:
    """The input's spatial size once padded and framed so that every window fits."""
    ws, stride, pad = params[:3]
    return tuple(max(n + 2 * p, (o - 1) * s + k)
                 for n, p, o, s, k in zip(hw, pad, out_hw, stride, ws))


def _padded(x: np.ndarray, params, out_hw, fill) -> np.ndarray:
    """``x`` inside a frame of ``fill``, big enough for every window."""
    h, w = x.shape[-2:]
    size = _padded_size(params, (h, w), out_hw)
    if size == (h, w):
        return x
    pad = params[2]
    out = np.full(x.shape[:-2] + size, fill, x.dtype)
    out[..., pad[0]:pad[0] + h, pad[1]:pad[1] + w] = x
    return out


def _offsets(params, out_hw):
    """``(k, (rows, cols))`` for each window offset: the slices of the padded input it reads."""
    ws, stride = params[:2]
    for u in range(ws[0]):
        rows = slice(u, u + stride[0] * (out_hw[0] - 1) + 1, stride[0])
        for v in range(ws[1]):
            yield u * ws[1] + v, (Ellipsis, rows, slice(v, v + stride[1] * (out_hw[1] - 1) + 1,
                                                       stride[1]))


def _lowest(dtype) -> object:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _pooled_shape(params, shape) -> tuple:
    return tuple(shape[:-2]) + tuple(_out_len(shape[-2 + a], a, params) for a in (0, 1))


# --- references -----------------------------------------------------------------------------------

def _pool_ref(arg, x):
    out_shape = _pooled_shape(arg, x.shape)
    out_hw = out_shape[-2:]
    if 0 in out_hw:
        return np.zeros(out_shape, x.dtype)
    mode = arg[4]
    xp = _padded(x, arg, out_hw, _lowest(x.dtype) if mode == "max" else 0)
    combine = np.maximum if mode == "max" else np.add
    out = None
    for _, where in _offsets(arg, out_hw):
        out = xp[where].copy() if out is None else combine(out, xp[where], out=out)
    divisor = _divisor(arg, *x.shape[-2:], out_hw, x.dtype)
    return out if divisor is None else out / divisor


def _tiled(params, hw, out_hw) -> bool:
    """Whether the windows tile the input exactly (stride = window, no padding, sizes
    divisible): then they can be laid out as a last axis and searched with one argmax."""
    ws, stride, pad = params[:3]
    return tuple(ws) == tuple(stride) and not any(pad) and \
        tuple(hw) == (out_hw[0] * ws[0], out_hw[1] * ws[1])


def _swap_inner(ndim: int) -> tuple:
    """The axes order (..., a, b, c, d) -> (..., a, c, b, d) over the last four axes."""
    n = ndim - 4
    return tuple(range(n)) + (n, n + 2, n + 1, n + 3)


def _to_tiles(x: np.ndarray, ws, out_hw) -> np.ndarray:
    """``x`` as ``(..., oh, ow, wh * ww)``: each window along the last axis."""
    split = x.reshape(x.shape[:-2] + (out_hw[0], ws[0], out_hw[1], ws[1]))
    return split.transpose(_swap_inner(split.ndim)).reshape(
        x.shape[:-2] + tuple(out_hw) + (ws[0] * ws[1],))


def _from_tiles(tiles: np.ndarray, ws, shape) -> np.ndarray:
    """The inverse of ``_to_tiles``: an array of ``shape``."""
    split = tiles.reshape(tiles.shape[:-1] + tuple(ws))
    return np.ascontiguousarray(split.transpose(_swap_inner(split.ndim))).reshape(shape)


def _first_max(x: np.ndarray, params, out_hw) -> np.ndarray:
    """For each window, the offset ``u * ws[1] + v`` of its first maximum (NaN counts as max)."""
    if _tiled(params, x.shape[-2:], out_hw):  # argmax: the first maximum, or the first NaN
        return np.argmax(_to_tiles(x, params[0], out_hw), axis=-1)
    xp = _padded(x, params, out_hw, _lowest(x.dtype))
    best, where_best = None, None
    for k, where in _offsets(params, out_hw):
        slab = xp[where]
        if best is None:
            best, where_best = slab.copy(), np.zeros(slab.shape, "int64")
            continue
        better = slab > best
        if x.dtype.kind == "f":
            better |= np.isnan(slab) & ~np.isnan(best)
        np.copyto(best, slab, where=better)  # masked copies: no fancy-indexing gathers
        np.copyto(where_best, k, where=better)
    return where_best


def _max_grad_ref(arg, x, g):
    out_hw = _pooled_shape(arg, x.shape)[-2:]
    _check_run(g.shape, _pooled_shape(arg, x.shape), "output gradient")
    if 0 in out_hw:
        return np.zeros(x.shape, g.dtype)
    first = _first_max(x, arg, out_hw)
    if _tiled(arg, x.shape[-2:], out_hw):  # scatter into the tiles, then lay them back out
        ws = arg[0]
        tiles = np.zeros(g.shape + (ws[0] * ws[1],), g.dtype)
        np.put_along_axis(tiles, first[..., None], g[..., None], axis=-1)
        return _from_tiles(tiles, ws, x.shape)
    gp = np.zeros(x.shape[:-2] + _padded_size(arg, x.shape[-2:], out_hw), g.dtype)
    for k, where in _offsets(arg, out_hw):
        view = gp[where]  # a strided view: adds in place where this offset holds the maximum
        np.add(view, g, out=view, where=first == k)
    return _crop(gp, arg, x.shape)


def _max_select_ref(arg, x, v):
    out_shape = _pooled_shape(arg, x.shape)
    _check_run(v.shape, x.shape, "values")
    if 0 in out_shape[-2:]:
        return np.zeros(out_shape, v.dtype)
    first = _first_max(x, arg, out_shape[-2:])
    vp = _padded(v, arg, out_shape[-2:], 0)
    out = np.zeros(out_shape, v.dtype)
    for k, where in _offsets(arg, out_shape[-2:]):
        np.copyto(out, vp[where], where=first == k)
    return out


def _sum_grad_ref(arg, g, hw):
    x_shape = g.shape[:-2] + (int(hw[0]), int(hw[1]))
    out_hw = _pooled_shape(arg, x_shape)[-2:]
    _check_run(g.shape, _pooled_shape(arg, x_shape), "output gradient")
    if 0 in out_hw:
        return np.zeros(x_shape, g.dtype)
    divisor = _divisor(arg, *x_shape[-2:], out_hw, g.dtype)
    g = g if divisor is None else g / divisor
    gp = np.zeros(g.shape[:-2] + _padded_size(arg, x_shape[-2:], out_hw), g.dtype)
    for _, where in _offsets(arg, out_hw):
        gp[where] += g
    return _crop(gp, arg, x_shape)


def _crop(padded: np.ndarray, params, shape) -> np.ndarray:
    pad = params[2]
    h, w = shape[-2:]
    return np.ascontiguousarray(padded[..., pad[0]:pad[0] + h, pad[1]:pad[1] + w])


def _check_run(shape, expected, what: str) -> None:
    if tuple(shape) != tuple(expected):
        raise ValueError(f"the {what} has shape {tuple(shape)} but {tuple(expected)} is needed")


# --- static types ---------------------------------------------------------------------------------

def _check_input(t: TensorType, mode: str) -> None:
    if t.ndim < 2:
        raise TypeError(f"pools the last two axes: needs at least 2 dimensions, got {t}")
    allowed = FLOAT_DTYPES + (INT_DTYPES if mode == "max" else ())
    if t.dtype not in allowed:
        raise TypeError(f"mode {mode!r} takes {', '.join(allowed)}, got {t}")


def _pool_infer(types, arg):
    (x,) = types
    _check_input(x, arg[4])
    return TensorType(x.dtype, _pooled_shape(arg, x.shape))


def _check_static(shape, expected, what: str) -> None:
    if len(shape) != len(expected) or any(
            s is not None and e is not None and s != e for s, e in zip(shape, expected)):
        raise ValueError(f"the {what} has shape {shape_str(shape)} but {shape_str(expected)} "
                         "is needed")


def _max_grad_infer(types, arg):
    x, g = types
    _check_input(x, "max")
    _check_input(g, "average_inc_pad")
    _check_static(g.shape, _pooled_shape(arg, x.shape), "output gradient")
    return TensorType(g.dtype, x.shape)


def _max_select_infer(types, arg):
    x, v = types
    _check_input(x, "max")
    _check_input(v, "average_inc_pad")
    _check_static(v.shape, x.shape, "values")
    return TensorType(v.dtype, _pooled_shape(arg, x.shape))


def _sum_grad_infer(types, arg):
    g, hw = types
    _check_input(g, arg[4])
    if hw.dtype != "int64" or hw.shape != (2,):
        raise TypeError(f"the spatial size must be an int64 vector of 2 entries, got {hw}")
    x_shape = g.shape[:-2] + tuple(arg[5])
    _check_static(g.shape, _pooled_shape(arg, x_shape), "output gradient")
    return TensorType(g.dtype, x_shape)


# --- shapes and gradients -------------------------------------------------------------------------

def _spatial(x: Node) -> Node:
    return as_shape_vector([shape_entry(x, x.ndim - 2), shape_entry(x, x.ndim - 1)])


def _pool_grad(node, g):
    (x,) = node.src
    if node.arg[4] == "max":
        return (make(MAX_POOL_GRAD, (x, g), node.arg),)
    hw = _spatial(x)
    return (make(POOL_2D_GRAD, (g, hw), node.arg + (static_entries(hw),)),)


def _max_grad_grad(node, gx):
    x, _ = node.src
    return (None, make(MAX_POOL_SELECT, (x, gx), node.arg))


def _max_select_grad(node, gout):
    x, _ = node.src
    return (None, make(MAX_POOL_GRAD, (x, gout), node.arg))


def _sum_grad_grad(node, gx):
    return (make(POOL_2D, (gx,), node.arg[:5]), None)


def _sum_grad_shape(node, in_shapes):
    hw = node.src[1]
    return tuple(in_shapes[0][:-2]) + (hw[0], hw[1])


_KERNEL = {"kernel": "pool"}  # a native kernel on the CPU backend (codegen/pool_kernels.py)
POOL_2D = defop("pool_2d", OTHER, _pool_infer, ref=_pool_ref, grad=_pool_grad,
                shape=lambda node, s: _pooled_shape(node.arg, s[0]), props=_KERNEL)
MAX_POOL_GRAD = defop("max_pool_grad", OTHER, _max_grad_infer, ref=_max_grad_ref,
                      grad=_max_grad_grad, shape=lambda node, s: s[0], props=_KERNEL)
MAX_POOL_SELECT = defop("max_pool_select", OTHER, _max_select_infer, ref=_max_select_ref,
                        grad=_max_select_grad,
                        shape=lambda node, s: _pooled_shape(node.arg, s[0]), props=_KERNEL)
POOL_2D_GRAD = defop("pool_2d_grad", OTHER, _sum_grad_infer, ref=_sum_grad_ref,
                     grad=_sum_grad_grad, shape=_sum_grad_shape, props=_KERNEL)


# --- builders -------------------------------------------------------------------------------------

def _fail(src, exc_type, message: str):
    raise exc_type(build_error(POOL_2D, src, message, user_trace()))


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _pair(value, what: str, low: int, src) -> tuple:
    pair = (value, value) if _is_int(value) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(map(_is_int, pair))
            or any(v < low for v in pair)):
        _fail(src, ValueError, f"{what} must be a pair of ints >= {low}, got {value!r}")
    return tuple(int(v) for v in pair)


def pool_2d(input, ws, ignore_border=True, stride=None, pad=(0, 0), mode="max") -> Node:
    """Pool windows of ``ws`` (rows, cols) over the last two axes, as Theano's ``pool_2d``.

    ``stride`` defaults to ``ws``; ``pad`` (each < ``ws``, only with ``ignore_border=True``)
    frames the input; ``mode`` is 'max', 'sum', 'average_inc_pad' or 'average_exc_pad'. The
    gradient of 'max' goes to the first maximum of each window.
    """
    x = as_tensor(input)
    ws = _pair(ws, "ws", 1, (x,))
    stride = ws if stride is None else _pair(stride, "stride", 1, (x,))
    pad = _pair(pad, "pad", 0, (x,))
    if mode not in MODES:
        _fail((x,), ValueError, f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if pad != (0, 0) and not ignore_border:
        _fail((x,), ValueError, f"padding {pad} needs ignore_border=True")
    if pad[0] >= ws[0] or pad[1] >= ws[1]:
        _fail((x,), ValueError, f"padding {pad} must be smaller than the window {ws}")
    return make(POOL_2D, (x,), (ws, stride, pad, bool(ignore_border), mode))


def max_pool_2d_same_size(input, patch_size) -> Node:
    """``input`` with every cell that is not its (non-overlapping) window's first maximum
    set to zero (Theano's ``max_pool_2d_same_size``)."""
    x = as_tensor(input)
    pooled = pool_2d(x, patch_size, ignore_border=True)
    return make(MAX_POOL_GRAD, (x, pooled), pooled.arg)
