"""2-d convolution (Theano's ``conv2d``) and its two gradients, each an op of its own.

Layouts are Theano's: inputs ``(batch, channels, rows, cols)``, filters
``(out_channels, in_channels / groups, rows, cols)``. ``filter_flip=True`` is a true
convolution (kernels flipped), ``False`` a cross-correlation. The three ops are closed
under differentiation, so gradients of every order work:

- ``conv2d(x, w)``; its gradients are ``conv2d_grad_input(g, w)`` and ``conv2d_grad_weights(x, g)``;
- ``conv2d_grad_input(g, w, (rows, cols))`` is the transposed convolution (``conv2d_transpose``);
  its gradients are ``conv2d(G, w)`` and ``conv2d_grad_weights(G, g)``;
- ``conv2d_grad_weights(x, g, (kh, kw))``: its gradients are ``conv2d_grad_input(g, G)`` and
  ``conv2d(x, G)``.

The gradient ops take the spatial size they produce as an int64 vector: with strides, the
output size does not determine the input size.

NOTE: the references use im2col plus one BLAS matmul per group (``np.matmul``). Measured
against the direct form (one matmul per kernel tap over shifted views, no column matrix) on
the layers of a small CNN, im2col is 1.5-4x faster for a forward and backward pass
(``benchmarks/conv_speed.py``): each tap of the direct form is a thin matmul plus a full
pass over the output. Columns are laid out ``(channels * taps, batch * cells)`` so that both
the gather and the col2im of the transposed convolution (one strided add per kernel tap,
cheaper than convolving a zero-dilated input) move whole rows.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..ir.node import Node, build_error, make
from ..ir.op import OTHER, defop
from ..ir.provenance import user_trace
from ..ir.types import FLOAT_DTYPES, TensorType, shape_str, upcast
from .common import as_tensor, shape_entry
from .elementwise import cast
from .shape import as_shape_vector, static_entries

__all__ = ["conv2d", "conv2d_grad_input", "conv2d_grad_weights", "conv2d_transpose"]

BORDER_MODES = ("valid", "full", "half")


# --- the geometry of a convolution --------------------------------------------------------------
# An op's arg starts with the five parameters (border, stride, dilation, flip, groups); the
# border is a mode name or a pair of paddings, resolved once the kernel size is known.

def _dilated(k: int, d: int) -> int:
    return (k - 1) * d + 1


def _pads(border, kernel, dilation) -> tuple:
    """The (rows, cols) zero padding of ``border`` for a kernel of spatial size ``kernel``."""
    if border == "valid":
        return (0, 0)
    extents = [_dilated(k, d) for k, d in zip(kernel, dilation)]
    if border == "full":
        return tuple(e - 1 for e in extents)
    if border == "half":
        return tuple(e // 2 for e in extents)
    return border


def _pad(border, k, axis: int, dilation) -> int:
    """The zero padding ``border`` puts on each side of spatial ``axis`` for a kernel of ``k``."""
    if isinstance(border, str):
        return _pads(border, (k, k), (dilation[axis],) * 2)[0]
    return border[axis]


def _out_len(n, k, axis: int, params):
    """Output length along spatial ``axis`` (0 rows, 1 cols), None if unknown; raises if the
    dilated kernel does not fit in the padded input."""
    border, stride, dilation = params[:3]
    if n is None or k is None:
        return None
    pad, extent = _pad(border, k, axis, dilation), _dilated(k, dilation[axis])
    if n + 2 * pad < extent:
        what = ("rows", "cols")[axis]
        raise ValueError(f"the filter ({extent} {what} with dilation {dilation[axis]}) is larger "
                         f"than the padded input ({n} {what} + 2 * {pad} padding)")
    return (n + 2 * pad - extent) // stride[axis] + 1


def _out_len_symbolic(n, k, axis: int, params):
    """``_out_len`` for sizes that may be int64 scalar nodes (no checks: shape rules)."""
    border, stride, dilation = params[:3]
    if isinstance(n, int) and isinstance(k, int):
        return _out_len(n, k, axis, params)
    extent = (k - 1) * dilation[axis] + 1
    if border == "full":
        pad = extent - 1
    elif border == "half":
        pad = extent // 2
    else:
        pad = 0 if border == "valid" else border[axis]
    return (n + 2 * pad - extent) // stride[axis] + 1


def _check_channels(x_shape, w_shape, groups: int, x_name: str = "input") -> None:
    """Channel counts agree: input channels = filter channels * groups, outputs split evenly."""
    channels, out = x_shape[1], w_shape[0]
    if out is not None and out % groups:
        raise ValueError(f"{out} filters cannot be split into {groups} groups")
    if channels is not None and channels % groups:
        raise ValueError(f"{channels} {x_name} channels cannot be split into {groups} groups")
    if channels is not None and w_shape[1] is not None and channels != w_shape[1] * groups:
        per = f" / {groups} groups" if groups > 1 else ""
        raise ValueError(f"channel mismatch: the {x_name} has {channels} channels{per} but the "
                         f"filters {shape_str(w_shape)} take {w_shape[1]}")


def _check_float4(types, names) -> str:
    for t, name in zip(types, names):
        if t.dtype not in FLOAT_DTYPES:
            raise TypeError(f"the {name} must be float32 or float64, got {t}")
        if t.ndim != 4:
            raise TypeError(f"the {name} must be 4-d, got a {t.ndim}-d {t}")
    if len({t.dtype for t in types}) > 1:
        raise TypeError("inputs must share one dtype (the builders cast), got "
                        + ", ".join(str(t) for t in types))
    return types[0].dtype


def _merge_hint(static: tuple, hint, what: str) -> tuple:
    if hint is None:
        return static
    for s, h in zip(static, hint):
        if s is not None and h is not None and s != h:
            raise ValueError(f"the {what} has static shape {shape_str(static)} but "
                             f"{what}_shape says {shape_str(hint)}")
    return tuple(s if s is not None else h for s, h in zip(static, hint))


def _check_run(shape: tuple, expected: tuple, what: str) -> None:
    """A run-time shape against the one the parameters require (None: anything)."""
    if any(e is not None and s != e for s, e in zip(shape, expected)):
        raise ValueError(f"the {what} has shape {tuple(shape)} but {shape_str(expected)} is needed")


# --- the NumPy references -----------------------------------------------------------------------

def _corr_kernel(w: np.ndarray, flip: bool) -> np.ndarray:
    return w[:, :, ::-1, ::-1] if flip else w


def _kernel_matrix(w: np.ndarray, flip: bool, groups: int) -> np.ndarray:
    """The correlation kernels as ``(groups, out_channels/groups, in_channels/groups * kh * kw)``."""
    o, per_in, kh, kw = w.shape
    return _corr_kernel(w, flip).reshape(groups, o // groups, per_in * kh * kw)


def _columns(x: np.ndarray, kernel, params) -> np.ndarray:
    """im2col: ``(groups, in_channels/groups * kh * kw, batch * out_rows * out_cols)``."""
    border, stride, dilation, _, groups = params[:5]
    (n, c, h, w), (kh, kw) = x.shape, kernel
    ph, pw = _pads(border, kernel, dilation)
    if ph or pw:
        padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), x.dtype)
        padded[:, :, ph:ph + h, pw:pw + w] = x
        x = padded
    extent = (_dilated(kh, dilation[0]), _dilated(kw, dilation[1]))
    win = sliding_window_view(x, extent, axis=(2, 3))
    win = win[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]
    oh, ow = win.shape[2:4]
    # NOTE: batch and output cells innermost: the copy reads rows of the input, and the
    # col2im of the transposed convolution adds whole rows
    win = win.reshape(n, groups, c // groups, oh, ow, kh, kw).transpose(1, 2, 5, 6, 0, 3, 4)
    return win.reshape(groups, (c // groups) * kh * kw, n * oh * ow)


def _grouped(g: np.ndarray, groups: int) -> np.ndarray:
    """An output-shaped array as ``(groups, out_channels/groups, batch * rows * cols)``."""
    n, o, h, w = g.shape
    grouped = g.reshape(n, groups, o // groups, h * w).transpose(1, 2, 0, 3)
    return grouped.reshape(groups, o // groups, n * h * w)


def _ungrouped(cols: np.ndarray, n: int, out_hw) -> np.ndarray:
    """The inverse of ``_grouped``: a contiguous ``(batch, out_channels, rows, cols)`` array."""
    groups, per, _ = cols.shape
    cols = cols.reshape(groups, per, n, *out_hw).transpose(2, 0, 1, 3, 4)
    return np.ascontiguousarray(cols).reshape(n, groups * per, *out_hw)


def _check_forward(arg, x: np.ndarray, w: np.ndarray) -> None:
    in_hint, w_hint = arg[5:7]
    for value, hint, what in ((x, in_hint, "input"), (w, w_hint, "filters")):
        if hint is not None:
            _check_run(value.shape, hint, what)
    _check_channels(x.shape, w.shape, arg[4])
    for axis in (0, 1):
        _out_len(x.shape[2 + axis], w.shape[2 + axis], axis, arg)


def _conv2d_ref(arg, x, w):
    _check_forward(arg, x, w)
    groups = arg[4]
    cols = _columns(x, w.shape[2:], arg)
    out_hw = _expected_out(arg, x.shape, w.shape)[2:]
    return _ungrouped(np.matmul(_kernel_matrix(w, arg[3], groups), cols), x.shape[0], out_hw)


def _expected_out(arg, x_shape, w_shape) -> tuple:
    hw = tuple(_out_len(x_shape[2 + a], w_shape[2 + a], a, arg) for a in (0, 1))
    return (x_shape[0], w_shape[0]) + hw


def _grad_input_ref(arg, g, w, hw):
    border, stride, dilation, flip, groups = arg[:5]
    n, (h, wd) = g.shape[0], (int(hw[0]), int(hw[1]))
    x_shape = (n, w.shape[1] * groups, h, wd)
    _check_channels(x_shape, w.shape, groups, "result")
    _check_run(g.shape, _expected_out(arg, x_shape, w.shape), "output gradient")
    kh, kw = w.shape[2:]
    kern = _kernel_matrix(w, flip, groups)
    oh, ow = g.shape[2:]
    cols = np.matmul(kern.transpose(0, 2, 1), _grouped(g, groups))  # (groups, cg*kh*kw, n*oh*ow)
    cols = cols.reshape(groups, w.shape[1], kh, kw, n, oh, ow)
    ph, pw = _pads(border, (kh, kw), dilation)
    out = np.zeros((n, groups, w.shape[1], h + 2 * ph, wd + 2 * pw), g.dtype)
    for u in range(kh):  # col2im: every kernel offset adds its columns back at once
        r0 = u * dilation[0]
        rows = slice(r0, r0 + stride[0] * (oh - 1) + 1, stride[0])
        for v in range(kw):
            c0 = v * dilation[1]
            cols_v = slice(c0, c0 + stride[1] * (ow - 1) + 1, stride[1])
            out[:, :, :, rows, cols_v] += cols[:, :, u, v].transpose(2, 0, 1, 3, 4)
    out = out[:, :, :, ph:ph + h, pw:pw + wd]
    return np.ascontiguousarray(out).reshape(x_shape)


def _grad_weights_ref(arg, x, g, khw):
    flip, groups = arg[3:5]
    kernel = (int(khw[0]), int(khw[1]))
    w_shape = (g.shape[1], x.shape[1] // groups) + kernel
    _check_channels(x.shape, w_shape, groups)
    _check_run(g.shape, _expected_out(arg, x.shape, w_shape), "output gradient")
    cols = _columns(x, kernel, arg)
    dk = np.matmul(_grouped(g, groups), cols.transpose(0, 2, 1))  # (groups, og, cg * kh * kw)
    return np.ascontiguousarray(_corr_kernel(dk.reshape(w_shape), flip))


# --- static types ---------------------------------------------------------------------------------

def _conv2d_infer(types, arg):
    x, w = types
    dtype = _check_float4(types, ("input", "filters"))
    xs = _merge_hint(x.shape, arg[5], "input")
    ws = _merge_hint(w.shape, arg[6], "filter")
    _check_channels(xs, ws, arg[4])
    return TensorType(dtype, _expected_out(arg, xs, ws))


def _grad_input_infer(types, arg):
    g, w, hw = types
    dtype = _check_float4((g, w), ("output gradient", "filters"))
    _check_shape_vector(hw)
    groups = arg[4]
    channels = None if w.shape[1] is None else w.shape[1] * groups
    x_shape = (g.shape[0], channels) + tuple(arg[5])
    _check_channels(x_shape, w.shape, groups, "result")
    _check_static(g.shape, _expected_out(arg, x_shape, w.shape), "output gradient")
    return TensorType(dtype, x_shape)


def _grad_weights_infer(types, arg):
    x, g, khw = types
    dtype = _check_float4((x, g), ("input", "output gradient"))
    _check_shape_vector(khw)
    groups = arg[4]
    per_group = None if x.shape[1] is None else x.shape[1] // groups
    w_shape = (g.shape[1], per_group) + tuple(arg[5])
    _check_channels(x.shape, w_shape, groups)
    _check_static(g.shape, _expected_out(arg, x.shape, w_shape), "output gradient")
    return TensorType(dtype, w_shape)


def _check_shape_vector(t: TensorType) -> None:
    if t.dtype != "int64" or t.shape != (2,):
        raise TypeError(f"the spatial size must be an int64 vector of 2 entries, got {t}")


def _check_static(shape: tuple, expected: tuple, what: str) -> None:
    if any(s is not None and e is not None and s != e for s, e in zip(shape, expected)):
        raise ValueError(f"the {what} has shape {shape_str(shape)} but the parameters give "
                         f"{shape_str(expected)}")


# --- symbolic shapes and gradients ----------------------------------------------------------------

def _conv2d_shape(node, in_shapes):
    xs, ws = in_shapes
    hw = [_out_len_symbolic(xs[2 + a], ws[2 + a], a, node.arg) for a in (0, 1)]
    return (xs[0], ws[0], *hw)


def _grad_input_shape(node, in_shapes):
    gs, ws, _ = in_shapes
    hw = node.src[2]
    return (gs[0], ws[1] * node.arg[4], hw[0], hw[1])


def _grad_weights_shape(node, in_shapes):
    xs, gs, _ = in_shapes
    khw = node.src[2]
    return (gs[1], xs[1] // node.arg[4], khw[0], khw[1])


def _spatial(x: Node) -> Node:
    return as_shape_vector([shape_entry(x, 2), shape_entry(x, 3)])


def _conv2d_grad(node, g):
    x, w = node.src
    params = node.arg[:5]
    return (_grad_input(g, w, _spatial(x), params), _grad_weights(x, g, _spatial(w), params))


def _grad_input_grad(node, gx):
    g, w, _ = node.src
    params = node.arg[:5]
    return (_conv(gx, w, params), _grad_weights(gx, g, _spatial(w), params), None)


def _grad_weights_grad(node, gw):
    x, g, _ = node.src
    params = node.arg[:5]
    return (_grad_input(g, gw, _spatial(x), params), _conv(x, gw, params), None)


_KERNEL = {"kernel": "conv"}  # native im2col / col2im on the CPU backend (codegen/conv_kernels.py)
CONV2D = defop("conv2d", OTHER, _conv2d_infer, ref=_conv2d_ref, shape=_conv2d_shape,
               grad=_conv2d_grad, props=_KERNEL)
CONV2D_GRAD_INPUT = defop("conv2d_grad_input", OTHER, _grad_input_infer, ref=_grad_input_ref,
                          shape=_grad_input_shape, grad=_grad_input_grad, props=_KERNEL)
CONV2D_GRAD_WEIGHTS = defop("conv2d_grad_weights", OTHER, _grad_weights_infer,
                            ref=_grad_weights_ref, shape=_grad_weights_shape,
                            grad=_grad_weights_grad, props=_KERNEL)


def _conv(x: Node, w: Node, params: tuple) -> Node:
    return make(CONV2D, (x, w), tuple(params) + (None, None))


def _grad_input(g: Node, w: Node, hw: Node, params: tuple) -> Node:
    return make(CONV2D_GRAD_INPUT, (g, w, hw), tuple(params) + (static_entries(hw),))


def _grad_weights(x: Node, g: Node, khw: Node, params: tuple) -> Node:
    return make(CONV2D_GRAD_WEIGHTS, (x, g, khw), tuple(params) + (static_entries(khw),))


# --- builders -------------------------------------------------------------------------------------

def _fail(op, src, exc_type, message: str):
    raise exc_type(build_error(op, src, message, user_trace()))


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _pair(value, what: str, low: int, op, src) -> tuple:
    pair = (value, value) if _is_int(value) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(map(_is_int, pair))
            or any(v < low for v in pair)):
        _fail(op, src, ValueError, f"{what} must be an int >= {low} or a pair of them, "
                                   f"got {value!r}")
    return tuple(int(v) for v in pair)


def _border(border_mode, op, src):
    if isinstance(border_mode, str):
        if border_mode not in BORDER_MODES:
            _fail(op, src, ValueError, f"border_mode must be 'valid', 'full', 'half', an int or a "
                                       f"pair of ints, got {border_mode!r}")
        return border_mode
    pads = _pair(border_mode, "border_mode", 0, op, src)
    return "valid" if pads == (0, 0) else pads


def _params(op, src, border_mode, subsample, filter_flip, filter_dilation, num_groups) -> tuple:
    border = _border(border_mode, op, src)
    stride = _pair(subsample, "subsample", 1, op, src)
    dilation = _pair(filter_dilation, "filter_dilation", 1, op, src)
    if not _is_int(num_groups) or num_groups < 1:
        _fail(op, src, ValueError, f"num_groups must be a positive int, got {num_groups!r}")
    return (border, stride, dilation, bool(filter_flip), int(num_groups))


def _float_pair(a, b, op) -> tuple[Node, Node]:
    a, b = as_tensor(a), as_tensor(b)
    for t in (a, b):
        if t.dtype not in FLOAT_DTYPES:
            _fail(op, (a, b), TypeError, f"inputs must be float32 or float64, got {t.type}")
    dtype = upcast(a.dtype, b.dtype)
    return cast(a, dtype), cast(b, dtype)


def _hint(shape, what: str, op, src):
    if shape is None:
        return None
    if not isinstance(shape, (tuple, list)) or len(shape) != 4 or not all(
            s is None or (_is_int(s) and s >= 0) for s in shape):
        _fail(op, src, ValueError, f"{what} must be 4 ints (or None), got {shape!r}")
    return tuple(None if s is None else int(s) for s in shape)


def conv2d(input, filters, input_shape=None, filter_shape=None, border_mode="valid",
           subsample=(1, 1), filter_flip=True, filter_dilation=(1, 1), num_groups=1) -> Node:
    """2-d convolution of ``(batch, channels, rows, cols)`` inputs with
    ``(out_channels, channels / num_groups, rows, cols)`` filters, as Theano's ``conv2d``.

    ``border_mode``: 'valid' (no padding), 'full' (kernel - 1), 'half' (kernel // 2), an int or
    a pair of ints (zero padding of rows and cols); ``subsample`` is the stride,
    ``filter_dilation`` the spacing of kernel taps; ``filter_flip=False`` cross-correlates.
    ``input_shape`` / ``filter_shape`` (4 entries, None = unknown) are checked when run.
    """
    x, w = _float_pair(input, filters, CONV2D)
    params = _params(CONV2D, (x, w), border_mode, subsample, filter_flip, filter_dilation,
                     num_groups)
    hints = (_hint(input_shape, "input_shape", CONV2D, (x, w)),
             _hint(filter_shape, "filter_shape", CONV2D, (x, w)))
    return make(CONV2D, (x, w), params + hints)


def _spatial_arg(shape, what: str, op, src) -> Node:
    """The last two entries of a user's shape (ints or int scalar nodes) as an int64 vector."""
    if isinstance(shape, Node):
        if shape.ndim != 1 or shape.type.shape[0] not in (2, 4):
            _fail(op, src, TypeError, f"{what} must have 2 or 4 entries, got {shape.type}")
        return as_shape_vector([shape[-2], shape[-1]])
    if not isinstance(shape, (tuple, list)) or len(shape) not in (2, 4):
        _fail(op, src, ValueError, f"{what} must have 2 or 4 entries, got {shape!r}")
    if any(s is None for s in shape[-2:]):
        _fail(op, src, ValueError, f"{what} needs its spatial sizes, got {shape!r}")
    return as_shape_vector(list(shape[-2:]))


def conv2d_transpose(input, filters, output_shape, border_mode="valid", subsample=(1, 1),
                     filter_flip=True, filter_dilation=(1, 1), num_groups=1,
                     input_dilation=None) -> Node:
    """Transposed convolution: the gradient of ``conv2d`` with respect to its input.

    ``filters`` are laid out as for the ``conv2d`` it transposes, ``(channels of input,
    channels of the result / num_groups, rows, cols)``; ``output_shape`` gives the result's
    (batch, channels, rows, cols) or (rows, cols); ``subsample`` (Theano: ``input_dilation``)
    is the stride of that convolution.
    """
    g, w = _float_pair(input, filters, CONV2D_GRAD_INPUT)
    if input_dilation is not None:
        subsample = input_dilation
    params = _params(CONV2D_GRAD_INPUT, (g, w), border_mode, subsample, filter_flip,
                     filter_dilation, num_groups)
    out = _grad_input(g, w, _spatial_arg(output_shape, "output_shape", CONV2D_GRAD_INPUT, (g, w)),
                      params)
    if not isinstance(output_shape, Node) and len(output_shape) == 4:
        _check_leading(out, output_shape, CONV2D_GRAD_INPUT)
    return out


def _check_leading(out: Node, shape, op) -> None:
    for got, want in zip(out.type.shape[:2], shape[:2]):
        if got is not None and _is_int(want) and got != want:
            _fail(op, out.src, ValueError, f"output_shape {tuple(shape)} contradicts the result's "
                                           f"shape {shape_str(out.type.shape)}")


def conv2d_grad_input(output_grad, filters, input_shape, border_mode="valid", subsample=(1, 1),
                      filter_flip=True, filter_dilation=(1, 1), num_groups=1) -> Node:
    """The gradient of ``conv2d`` with respect to its input, of spatial size ``input_shape``."""
    return conv2d_transpose(output_grad, filters, input_shape, border_mode, subsample,
                            filter_flip, filter_dilation, num_groups)


def conv2d_grad_weights(input, output_grad, filter_shape, border_mode="valid", subsample=(1, 1),
                        filter_flip=True, filter_dilation=(1, 1), num_groups=1) -> Node:
    """The gradient of ``conv2d`` with respect to its filters, of spatial size ``filter_shape``."""
    x, g = _float_pair(input, output_grad, CONV2D_GRAD_WEIGHTS)
    params = _params(CONV2D_GRAD_WEIGHTS, (x, g), border_mode, subsample, filter_flip,
                     filter_dilation, num_groups)
    khw = _spatial_arg(filter_shape, "filter_shape", CONV2D_GRAD_WEIGHTS, (x, g))
    return _grad_weights(x, g, khw, params)
