"""CPU kernels for 2-d convolutions (``graphc.opdefs.conv``): the gather of the padded,
strided, dilated windows of an input into a column matrix (**im2col**) and its transpose,
the scatter-add of columns back into an input-shaped array (**col2im**). The products
themselves are BLAS calls made by the runtime (``graphc.runtime.conv_step``).

Kernels (the CPU convention of ``graphc.codegen.kernel``)::

    void NAME(PyObject* x, PyObject* pads, PyObject* cols, int64 start, int64 stop)  # im2col
    void NAME(PyObject* cols, PyObject* pads, PyObject* out, int64 start, int64 stop)  # col2im

``x`` and ``out`` are ``(batch, channels, rows, cols)``; ``cols`` is a 6-d
``(batch, channels, kh, kw, out_rows, out_cols)`` view of whatever buffer the runtime lays
out (usually ``(channels * kh * kw, batch * out_rows * out_cols)`` transposed; flipped
kernels are negative strides on the kh, kw axes); ``pads`` is an int64 vector
``(pad_rows, pad_cols)``. Every array is read through its byte strides. ``[start, stop)`` is a
range of the batch axis. Strides and dilations are baked in; sizes and paddings are run-time
values.

- im2col: ``cols[n, c, u, v, i, j] = x[n, c, i * sr + u * dr - pr, j * sc + v * dc - pc]``,
  0.0 outside the input;
- col2im: ``out[n, c, r, q] += cols[n, c, u, v, i, j]`` for every tap landing inside, the taps
  in the reference's order (u, then v), so each cell adds its shares in the reference's order
  into the zeroed ``out``.
"""

from __future__ import annotations

from llvmlite import ir

from ..ir.node import Node
from ..ir.types import FLOAT_DTYPES
from .elemwise import I64, PTR, counted_loop, i64, offset
from .scalar import CannotEmit, constant_value, load_value, store_value

__all__ = ["CONV_KERNEL_OPS", "conv_kernel_source", "emit_conv_core"]

CONV_KERNEL_OPS = ("conv2d", "conv2d_grad_input", "conv2d_grad_weights")
# the kernel each op uses: the forward and the weight gradient gather, the input gradient
# scatters
KERNEL_OF = {"conv2d": "im2col", "conv2d_grad_weights": "im2col", "conv2d_grad_input": "col2im"}
_NDIMS = {"im2col": (4, 1, 6), "col2im": (6, 1, 4)}


def conv_kernel_source(node: Node):
    """The ``KernelSource`` (kind "conv") of a convolution node (raises ``CannotEmit``)."""
    from .kernel import _PLACEHOLDER, _finish

    name = node.op.name
    if name not in CONV_KERNEL_OPS:
        raise CannotEmit(f"{name} is not a convolution op")
    if node.dtype not in FLOAT_DTYPES:
        raise CannotEmit(f"no {name} kernel for {node.dtype}")
    stride, dilation = node.arg[1], node.arg[2]
    module = ir.Module(name="graphc_kernel")
    core = emit_conv_core(module, f"{_PLACEHOLDER}core", KERNEL_OF[name], stride, dilation,
                          node.dtype)
    return _finish(module, core, 2, "conv", node.dtype)


class _Array:
    """An array argument of a core: data pointer, sizes and byte strides (i64 values)."""

    def __init__(self, builder: ir.IRBuilder, args, ndim: int):
        data, dims, strides = args

        def read(pointer, d):
            return builder.load(builder.gep(pointer, [i64(d)], source_etype=I64), typ=I64)

        self.data = data
        self.shape = [read(dims, d) for d in range(ndim)]
        self.strides = [read(strides, d) for d in range(ndim)]


def emit_conv_core(module: ir.Module, name: str, kind: str, stride, dilation,
                   dtype: str) -> ir.Function:
    """``void name(data, dims, strides per array, i64 start, i64 stop)``: the ``kind``
    ("im2col" or "col2im") kernel for ``stride`` and ``dilation`` (pairs of ints)."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * 9 + [I64, I64]), name)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    arrays = [_Array(b, fn.args[3 * k: 3 * k + 3], nd) for k, nd in enumerate(_NDIMS[kind])]
    pads = [b.load(b.gep(arrays[1].data, [i64(a)], source_etype=I64), typ=I64) for a in (0, 1)]
    cols, image = (arrays[2], arrays[0]) if kind == "im2col" else (arrays[0], arrays[2])
    _Loops(b, kind, cols, image, pads, stride, dilation, dtype).emit(*fn.args[-2:])
    b.ret_void()
    return fn


def _first_at_least(b: ir.IRBuilder, low, step: int):
    """The least ``j >= 0`` with ``j * step >= low`` (``step > 0``)."""
    positive = b.icmp_signed(">", low, i64(0))
    rounded = b.udiv(b.add(low, i64(step - 1)), i64(step))
    return b.select(positive, rounded, i64(0))


def _min(b: ir.IRBuilder, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


class _Loops:
    """The loop nest over (batch, channel, tap row, tap col, out row) with a row loop inside."""

    def __init__(self, b, kind, cols: _Array, image: _Array, pads, stride, dilation, dtype):
        self.b, self.kind, self.cols, self.image = b, kind, cols, image
        self.pads, self.stride, self.dilation, self.dtype = pads, stride, dilation, dtype

    def emit(self, start, stop) -> None:
        b, cols, image = self.b, self.cols, self.image
        channels, kh, kw = cols.shape[1:4]

        def batch(n, _):
            col_n = offset(b, cols.data, b.mul(n, cols.strides[0]))
            img_n = offset(b, image.data, b.mul(n, image.strides[0]))

            def channel(c, _):
                col_c = offset(b, col_n, b.mul(c, cols.strides[1]))
                img_c = offset(b, img_n, b.mul(c, image.strides[1]))

                def tap_row(u, _):
                    col_u = offset(b, col_c, b.mul(u, cols.strides[2]))

                    def tap_col(v, _):
                        self.tap(offset(b, col_u, b.mul(v, cols.strides[3])), img_c, u, v)
                        return []

                    counted_loop(b, i64(0), kw, [], tap_col)
                    return []

                counted_loop(b, i64(0), kh, [], tap_row)
                return []

            counted_loop(b, i64(0), channels, [], channel)
            return []

        counted_loop(b, start, stop, [], batch)

    def tap(self, col_uv, img_c, u, v) -> None:
        """All output rows of tap (u, v): the in-bounds run of each row, and zeros (im2col)."""
        b, cols, image = self.b, self.cols, self.image
        (sr, sc), (dr, dc) = self.stride, self.dilation
        height, width = image.shape[2], image.shape[3]
        out_rows, out_cols = cols.shape[4], cols.shape[5]
        # the columns j whose input column j * sc + v * dc - pc lies in [0, width)
        shift = b.sub(b.mul(v, i64(dc)), self.pads[1])
        hi = _min(b, _first_at_least(b, b.sub(width, shift), sc), out_cols)
        lo = _min(b, _first_at_least(b, b.sub(i64(0), shift), sc), hi)
        img_v = offset(b, img_c, b.mul(shift, image.strides[3]))
        img_step = b.mul(i64(sc), image.strides[3])
        row_shift = b.sub(b.mul(u, i64(dr)), self.pads[0])

        def out_row(i, _):
            col_i = offset(b, col_uv, b.mul(i, cols.strides[4]))
            r = b.add(b.mul(i, i64(sr)), row_shift)
            inside = b.icmp_unsigned("<", r, height)
            if self.kind == "im2col":
                with b.if_else(inside) as (then, otherwise):
                    with then:
                        img_r = offset(b, img_v, b.mul(r, image.strides[2]))
                        self.zeros(col_i, i64(0), lo)
                        self.run(col_i, img_r, img_step, lo, hi)
                        self.zeros(col_i, hi, out_cols)
                    with otherwise:
                        self.zeros(col_i, i64(0), out_cols)
            else:
                with b.if_then(inside):
                    self.run(col_i, offset(b, img_v, b.mul(r, image.strides[2])), img_step,
                             lo, hi)
            return []

        counted_loop(b, i64(0), out_rows, [], out_row)

    def zeros(self, col_i, lo, hi) -> None:
        b, step = self.b, self.cols.strides[5]
        zero = constant_value(self.dtype, 0.0)

        def body(j, _):
            store_value(b, zero, offset(b, col_i, b.mul(j, step)), self.dtype)
            return []

        counted_loop(b, lo, hi, [], body)

    def run(self, col_i, img_r, img_step, lo, hi) -> None:
        """Copy (im2col) or add (col2im) the in-bounds cells j in [lo, hi) of one row."""
        b, dtype, col_step = self.b, self.dtype, self.cols.strides[5]

        def body(j, _):
            col = offset(b, col_i, b.mul(j, col_step))
            img = offset(b, img_r, b.mul(j, img_step))
            if self.kind == "im2col":
                store_value(b, load_value(b, img, dtype), col, dtype)
            else:
                total = b.fadd(load_value(b, img, dtype), load_value(b, col, dtype))
                store_value(b, total, img, dtype)
            return []

        counted_loop(b, lo, hi, [], body)
