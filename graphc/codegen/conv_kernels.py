"""CPU kernels for 2-d convolutions (``graphc.opdefs.conv``): the gather of the strided,
dilated windows of a zero-padded input into a column matrix (**im2col**) and its transpose,
the scatter-add of columns back into a padded input-shaped array (**col2im**). The products
themselves are BLAS calls made by the runtime (``graphc.runtime.conv_step``).

Kernels (the CPU convention of ``graphc.codegen.kernel``)::

    void NAME(PyObject* xp, PyObject* cells, PyObject* cols, int64 start, int64 stop)  # im2col
    void NAME(PyObject* cols, PyObject* cells, PyObject* xp, int64 start, int64 stop)  # col2im

``xp`` is the padded input ``(batch, channels, rows + 2 * pad_rows, cols + 2 * pad_cols)``
(any strides: the runtime pads the input, or zeroes it for col2im and crops it after);
``cols`` is a 5-d ``(batch, channels, kh, kw, cells)`` view of whatever buffer the runtime lays
out, its last axis unit-stride (flipped kernels are negative strides on the kh, kw axes);
``cells`` is an int64 vector: the byte offset in a plane of ``xp`` of output cell p's first
tap (``i * sr * row stride + j * sc * col stride`` for p = i * out_cols + j). Tap (u, v) adds
``u * dr * row stride + v * dc * col stride``. ``[start, stop)`` is a range of the batch
axis. Dilations are baked in (the strides are in the table); sizes are run-time values.

- im2col: ``cols[n, c, u, v, p] = plane(n, c)[cells[p] + tap(u, v)]``: one flat loop over the
  output cells per tap, no bounds checks (the padding is in ``xp``);
- col2im: ``plane(n, c)[cells[p] + tap(u, v)] += cols[n, c, u, v, p]``, the taps in the
  reference's order (u, then v), so each cell adds its shares in the reference's order into
  the zeroed ``xp``.
"""

from __future__ import annotations

from llvmlite import ir

from ..ir.node import Node
from ..ir.types import FLOAT_DTYPES
from .elemwise import I64, PTR, counted_loop, i64, offset
from .scalar import CannotEmit, load_value, memory_type, store_value

__all__ = ["CONV_KERNEL_OPS", "conv_kernel_source", "emit_conv_core"]

CONV_KERNEL_OPS = ("conv2d", "conv2d_grad_input", "conv2d_grad_weights")
# the kernel each op uses: the forward and the weight gradient gather, the input gradient
# scatters
KERNEL_OF = {"conv2d": "im2col", "conv2d_grad_weights": "im2col", "conv2d_grad_input": "col2im"}
_NDIMS = {"im2col": (4, 1, 5), "col2im": (5, 1, 4)}


def conv_kernel_source(node: Node):
    """The ``KernelSource`` (kind "conv") of a convolution node (raises ``CannotEmit``)."""
    from .kernel import _PLACEHOLDER, _finish

    name = node.op.name
    if name not in CONV_KERNEL_OPS:
        raise CannotEmit(f"{name} is not a convolution op")
    if node.dtype not in FLOAT_DTYPES:
        raise CannotEmit(f"no {name} kernel for {node.dtype}")
    module = ir.Module(name="graphc_kernel")
    core = emit_conv_core(module, f"{_PLACEHOLDER}core", KERNEL_OF[name], node.arg[2], node.dtype)
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


def emit_conv_core(module: ir.Module, name: str, kind: str, dilation, dtype: str) -> ir.Function:
    """``void name(data, dims, strides per array, i64 start, i64 stop)``: the ``kind``
    ("im2col" or "col2im") kernel for ``dilation`` (a pair of ints)."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * 9 + [I64, I64]), name)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    arrays = [_Array(b, fn.args[3 * k: 3 * k + 3], nd) for k, nd in enumerate(_NDIMS[kind])]
    cols, image = (arrays[2], arrays[0]) if kind == "im2col" else (arrays[0], arrays[2])
    _emit_loops(b, kind, cols, image, arrays[1], dilation, dtype, *fn.args[-2:])
    b.ret_void()
    return fn


def _emit_loops(b: ir.IRBuilder, kind: str, cols: _Array, image: _Array, cells: _Array,
                dilation, dtype: str, start, stop) -> None:
    """The nest (batch, channel, tap row, tap col) around the flat loop over output cells."""
    count = cols.shape[4]
    row_step = b.mul(i64(dilation[0]), image.strides[2])
    col_step = b.mul(i64(dilation[1]), image.strides[3])
    value_t = memory_type(dtype)

    def cell_loop(col_uv, img_uv) -> None:
        def body(p, _):
            where = b.load(b.gep(cells.data, [p], source_etype=I64), typ=I64)
            img = offset(b, img_uv, where)
            col = b.gep(col_uv, [p], source_etype=value_t)
            if kind == "im2col":
                store_value(b, load_value(b, img, dtype), col, dtype)
            else:
                store_value(b, b.fadd(load_value(b, img, dtype), load_value(b, col, dtype)),
                            img, dtype)
            return []

        counted_loop(b, i64(0), count, [], body)

    def nest(axis: int, col, img):
        """Loops over axes 1.. of cols (channel, tap row, tap col), then the cell loop
        (NOTE: recursion over the 3 axes of one kernel, not over a graph)."""
        if axis == 4:
            cell_loop(col, img)
            return
        img_step = (image.strides[1], row_step, col_step)[axis - 1]

        def body(k, _):
            nest(axis + 1, offset(b, col, b.mul(k, cols.strides[axis])),
                 offset(b, img, b.mul(k, img_step)))
            return []

        counted_loop(b, i64(0), cols.shape[axis], [], body)

    def batch(n, _):
        nest(1, offset(b, cols.data, b.mul(n, cols.strides[0])),
             offset(b, image.data, b.mul(n, image.strides[0])))
        return []

    counted_loop(b, start, stop, [], batch)
