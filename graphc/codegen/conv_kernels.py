"""CPU kernels for 2-d convolutions (``graphc.opdefs.conv``): the gather of the padded,
strided, dilated windows of an input into a column matrix (**im2col**) and its transpose,
**col2im**, which sums the columns back into an input-shaped array. The products themselves
are BLAS calls made by the runtime (``graphc.runtime.conv_step``).

Kernels (the CPU convention of ``graphc.codegen.kernel``)::

    void NAME(PyObject* x, PyObject* cells, PyObject* cols, int64 start, int64 stop)  # im2col
    void NAME(PyObject* cols, PyObject* taps, PyObject* out, int64 start, int64 stop)  # col2im

``cols`` is a 6-d ``(batch, channels, kh, kw, out_rows, out_cols)`` view of whatever buffer
the runtime lays out, its last two axes C-contiguous (flipped kernels are negative strides on
the kh, kw axes). ``[start, stop)`` is a range of the batch axis. Strides and dilations are
baked in; sizes are run-time values; arrays are read through their byte strides.

- im2col: ``cells`` is an int64 vector, for each output cell p = i * out_cols + j the input
  row and col of its first tap, ``(i * sr - pad_rows, j * sc - pad_cols)``; tap (u, v) adds
  ``(u * dr, v * dc)``. ``cols[n, c, u, v, i, j]`` is that input cell of ``x[n, c]``, 0.0
  outside: with unit column strides a row of up to 64 bytes is one masked vector load and
  store (the padding's lanes masked off), else one flat loop over the cells per tap.
- col2im: ``taps`` is one int64 vector: the paddings (rows, cols), then ``rows * cols + 1``
  bounds (indices into ``taps`` itself: input cell k's entries are ``taps[taps[2 + k]:taps[3 +
  k]]``), then the entries: the byte offsets, in a slab ``cols[n, c]``, of the columns that
  land on each input cell, in the reference's order (by tap row, then tap col). ``out[n, c, r,
  q]`` is 0.0 plus those columns added in that order, the reference's zeroed array and its
  adds, with no padding, zeroing or crop. With unit column strides and rows of up to 64 bytes
  a row of input cells is summed at once (masked vectors, ``_RowSums``).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from ..ir.node import Node
from ..ir.types import FLOAT_DTYPES
from .elemwise import I64, PTR, counted_loop, i64, offset
from .scalar import CannotEmit, constant_value, load_value, memory_type, store_value

__all__ = ["CONV_KERNEL_OPS", "conv_kernel_source", "emit_conv_core"]

CONV_KERNEL_OPS = ("conv2d", "conv2d_grad_input", "conv2d_grad_weights")
# the kernel each op uses: the forward and the weight gradient gather, the input gradient
# scatters
# col2im's table starts with the paddings (rows, cols)
TAPS_HEADER = 2
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
    module = ir.Module(name="graphc_kernel")
    core = emit_conv_core(module, f"{_PLACEHOLDER}core", KERNEL_OF[name], node.arg[1],
                          node.arg[2], node.dtype)
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
    ("im2col" or "col2im") kernel (``stride`` and ``dilation``: pairs of ints)."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * 9 + [I64, I64]), name)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    arrays = [_Array(b, fn.args[3 * k: 3 * k + 3], nd) for k, nd in enumerate(_NDIMS[kind])]
    if kind == "im2col":
        _emit_im2col(b, arrays[2], arrays[0], arrays[1], stride, dilation, dtype,
                     *fn.args[-2:])
    else:
        _emit_col2im(b, arrays[0], arrays[2], arrays[1], stride, dilation, dtype,
                     *fn.args[-2:])
    b.ret_void()
    return fn


def _planes(b: ir.IRBuilder, cols: _Array, image: _Array, start, stop, body) -> None:
    """``body(cols slab, image plane)`` for every (batch in [start, stop), channel)."""
    def batch(n, _):
        col_n = offset(b, cols.data, b.mul(n, cols.strides[0]))
        img_n = offset(b, image.data, b.mul(n, image.strides[0]))

        def channel(c, _):
            body(offset(b, col_n, b.mul(c, cols.strides[1])),
                 offset(b, img_n, b.mul(c, image.strides[1])))
            return []

        counted_loop(b, i64(0), cols.shape[1], [], channel)
        return []

    counted_loop(b, start, stop, [], batch)


def _load_i64(b: ir.IRBuilder, data, index):
    return b.load(b.gep(data, [index], source_etype=I64), typ=I64)


def _emit_im2col(b: ir.IRBuilder, cols: _Array, image: _Array, cells: _Array, stride,
                 dilation, dtype: str, start, stop) -> None:
    """Per plane: the loops over taps (u, v) around the output cells: short unit-stride rows
    as one masked vector each, anything else one flat loop over the cells; 0.0 outside."""
    value_t = memory_type(dtype)
    height, width = image.shape[2], image.shape[3]
    out_rows, out_cols = cols.shape[4], cols.shape[5]
    zero = constant_value(dtype, 0.0)

    def corner(p):
        """(input row, input col) of output cell p's first tap (negative in the padding)."""
        return (_load_i64(b, cells.data, b.mul(p, i64(2))),
                _load_i64(b, cells.data, b.add(b.mul(p, i64(2)), i64(1))))

    def flat_loop(col_uv, img_c, u, v) -> None:
        r_tap, q_tap = b.mul(u, i64(dilation[0])), b.mul(v, i64(dilation[1]))

        def body(p, _):
            r0, q0 = corner(p)
            r, q = b.add(r0, r_tap), b.add(q0, q_tap)
            inside = b.and_(b.icmp_unsigned("<", r, height), b.icmp_unsigned("<", q, width))
            step = b.add(b.mul(r, image.strides[2]), b.mul(q, image.strides[3]))
            value = load_value(b, offset(b, img_c, b.select(inside, step, i64(0))), dtype)
            store_value(b, b.select(inside, value, zero),
                        b.gep(col_uv, [p], source_etype=value_t), dtype)
            return []

        counted_loop(b, i64(0), b.mul(out_rows, out_cols), [], body)

    def row_loop(vector, col_uv, img_c, u, v) -> None:
        q = b.add(corner(i64(0))[1], b.mul(v, i64(dilation[1])))  # input col of cell j = 0
        j = b.add(vector.lane_numbers(), _splat(b, q, vector.lanes))
        in_cols = b.and_(vector.mask, b.icmp_unsigned("<", j, _splat(b, width, vector.lanes)))
        none = ir.Constant(in_cols.type, None)
        img_q = offset(b, img_c, b.mul(q, image.strides[3]))
        r_tap = b.mul(u, i64(dilation[0]))

        def body(i, _):
            r = b.add(corner(b.mul(i, out_cols))[0], r_tap)
            mask = b.select(b.icmp_unsigned("<", r, height), in_cols, none)
            vector.store(vector.load(offset(b, img_q, b.mul(r, image.strides[2])), mask),
                         offset(b, col_uv, b.mul(i, cols.strides[4])))
            return []

        counted_loop(b, i64(0), out_rows, [], body)

    def taps(cell_loop):
        def plane(col_c, img_c) -> None:
            def tap_row(u, _):
                col_u = offset(b, col_c, b.mul(u, cols.strides[2]))

                def tap_col(v, _):
                    cell_loop(offset(b, col_u, b.mul(v, cols.strides[3])), img_c, u, v)
                    return []

                counted_loop(b, i64(0), cols.shape[3], [], tap_col)
                return []

            counted_loop(b, i64(0), cols.shape[2], [], tap_row)

        _planes(b, cols, image, start, stop, plane)

    if stride[1] != 1:
        taps(flat_loop)
        return
    unit = b.and_(_unit(b, image.strides[3], dtype), _unit(b, cols.strides[5], dtype))
    # NOTE: the narrowest vector that holds a row: a wider one's masked-off lanes still cost
    # (cache line splits), 2x on the digits CNN's 4-cell rows
    paths = [lambda: taps(flat_loop)]
    for size in (64, 32, 16):
        vector = _RowVector(b, dtype, out_cols, size)
        paths.append(lambda vector=vector, rest=paths[-1]: _either(
            b, b.and_(unit, vector.fits),
            lambda: taps(lambda *where: row_loop(vector, *where)), rest))
    paths[-1]()


def _either(b: ir.IRBuilder, condition, then, otherwise) -> None:
    with b.if_else(condition) as (yes, no):
        with yes:
            then()
        with no:
            otherwise()


def _unit(b: ir.IRBuilder, stride, dtype: str):
    return b.icmp_signed("==", stride, i64(np.dtype(dtype).itemsize))


class _RowVector:
    """Rows of up to ``size`` bytes as masked vector loads and stores (the lanes past the
    row's ``length`` are never touched)."""

    def __init__(self, b: ir.IRBuilder, dtype: str, length, size: int):
        self.b = b
        self.lanes = size // np.dtype(dtype).itemsize
        element = memory_type(dtype)
        self.type = ir.VectorType(element, self.lanes)
        self.fits = b.icmp_signed("<=", length, i64(self.lanes))
        lanes = ir.Constant(ir.VectorType(I64, self.lanes), list(range(self.lanes)))
        self.mask = b.icmp_signed("<", lanes, _splat(b, length, self.lanes))
        suffix = f"v{self.lanes}{'f32' if dtype == 'float32' else 'f64'}.p0"
        mask_t, i32 = ir.VectorType(ir.IntType(1), self.lanes), ir.IntType(32)
        module = b.module
        self._load = _declare(module, f"llvm.masked.load.{suffix}",
                              ir.FunctionType(self.type, [PTR, i32, mask_t, self.type]))
        self._store = _declare(module, f"llvm.masked.store.{suffix}",
                               ir.FunctionType(ir.VoidType(), [self.type, PTR, i32, mask_t]))
        self.align = ir.Constant(i32, np.dtype(dtype).itemsize)

    def lane_numbers(self):
        return ir.Constant(ir.VectorType(I64, self.lanes), list(range(self.lanes)))

    def load(self, pointer, mask=None):
        zeros = ir.Constant(self.type, None)
        return self.b.call(self._load, [pointer, self.align, self.mask if mask is None else mask,
                                        zeros])

    def store(self, value, pointer) -> None:
        self.b.call(self._store, [value, pointer, self.align, self.mask])


def _splat(b: ir.IRBuilder, value, lanes: int):
    vector_t = ir.VectorType(value.type, lanes)
    single = b.insert_element(ir.Constant(vector_t, None), value, ir.Constant(ir.IntType(32), 0))
    return b.shuffle_vector(single, ir.Constant(vector_t, None),
                            ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))


def _declare(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    found = module.globals.get(name)
    return found if found is not None else ir.Function(module, fnty, name)


def _emit_col2im(b: ir.IRBuilder, cols: _Array, out: _Array, taps: _Array, stride, dilation,
                 dtype: str, start, stop) -> None:
    """Per plane: each input cell sums its columns in a register, then stores once: a row of
    cells at once where the columns are unit-stride and the row fits a vector, else cell by
    cell through the table."""
    width = out.shape[3]

    def table_plane(col_c, out_c) -> None:
        def row(r, _):
            out_r = offset(b, out_c, b.mul(r, out.strides[2]))
            first = b.add(b.mul(r, width), i64(TAPS_HEADER))

            def cell(q, _):
                k = b.add(first, q)
                lo, hi = _load_i64(b, taps.data, k), _load_i64(b, taps.data, b.add(k, i64(1)))

                def add(t, values):
                    col = offset(b, col_c, _load_i64(b, taps.data, t))
                    return [b.fadd(values[0], load_value(b, col, dtype))]

                (total,) = counted_loop(b, lo, hi, [constant_value(dtype, 0.0)], add)
                store_value(b, total, offset(b, out_r, b.mul(q, out.strides[3])), dtype)
                return []

            counted_loop(b, i64(0), width, [], cell)
            return []

        counted_loop(b, i64(0), out.shape[2], [], row)

    if stride[1] != 1:
        _planes(b, cols, out, start, stop, table_plane)
        return
    pads = (_load_i64(b, taps.data, i64(0)), _load_i64(b, taps.data, i64(1)))
    rows = _RowSums(b, cols, out, pads, stride[0], dilation, dtype)
    unit = b.and_(_unit(b, cols.strides[5], dtype), _unit(b, out.strides[3], dtype))
    paths = [lambda: _planes(b, cols, out, start, stop, table_plane)]
    for size in (64, 32, 16):  # the narrowest vector that holds a row, as for im2col
        vector = _RowVector(b, dtype, width, size)
        paths.append(lambda vector=vector, rest=paths[-1]: _either(
            b, b.and_(unit, vector.fits),
            lambda: _planes(b, cols, out, start, stop,
                            lambda c, o: rows.plane(vector, c, o)), rest))
    paths[-1]()


class _RowSums:
    """col2im a row of input cells at once (unit column stride): for each tap (u, v) in the
    reference's order, the output row i it comes from (if any) adds its cells j = q + pc -
    v * dc as one masked vector (0.0 in the lanes outside; adding 0.0 to the sum, which starts
    at +0.0 and so is never -0.0, changes nothing)."""

    def __init__(self, b, cols: _Array, out: _Array, pads, row_stride: int, dilation, dtype):
        self.b, self.cols, self.out, self.pads = b, cols, out, pads
        self.row_stride, self.dilation, self.dtype = row_stride, dilation, dtype

    def source_row(self, r, u):
        """(whether output row i feeds input row r through tap row u, i)."""
        b, sr = self.b, self.row_stride
        t = b.sub(b.add(r, self.pads[0]), b.mul(u, i64(self.dilation[0])))
        i = b.udiv(t, i64(sr)) if sr > 1 else t
        ok = b.icmp_unsigned("<", i, self.cols.shape[4])  # t < 0: a huge i
        if sr > 1:
            ok = b.and_(b.and_(ok, b.icmp_signed(">=", t, i64(0))),
                        b.icmp_signed("==", b.urem(t, i64(sr)), i64(0)))
        return ok, i

    def plane(self, vector, col_c, out_c) -> None:
        b, cols, out = self.b, self.cols, self.out
        lanes = ir.Constant(ir.VectorType(I64, vector.lanes), list(range(vector.lanes)))
        item = i64(np.dtype(self.dtype).itemsize)

        def row(r, _):
            def tap_row(u, sums):
                ok, i = self.source_row(r, u)
                col_u = offset(b, col_c, b.add(b.mul(u, cols.strides[2]),
                                               b.mul(i, cols.strides[4])))

                def add_row():
                    def tap_col(v, values):
                        j0 = b.sub(self.pads[1], b.mul(v, i64(self.dilation[1])))
                        j = b.add(lanes, _splat(b, j0, vector.lanes))
                        inside = b.icmp_unsigned("<", j, _splat(b, cols.shape[5], vector.lanes))
                        mask = b.and_(vector.mask, inside)
                        where = b.add(b.mul(v, cols.strides[3]), b.mul(j0, item))
                        return [b.fadd(values[0], vector.load(offset(b, col_u, where), mask))]

                    return counted_loop(b, i64(0), cols.shape[3], sums, tap_col)

                return _select_values(b, ok, add_row, sums)

            zero = ir.Constant(vector.type, None)
            (total,) = counted_loop(b, i64(0), cols.shape[2], [zero], tap_row)
            vector.store(total, offset(b, out_c, b.mul(r, out.strides[2])))
            return []

        counted_loop(b, i64(0), out.shape[2], [], row)


def _select_values(b: ir.IRBuilder, condition, make, otherwise: list) -> list:
    """``make()``'s values where ``condition``, else ``otherwise`` (phis after a branch)."""
    before = b.block
    with b.if_then(condition):
        made, made_block = make(), b.block
    merged = []
    for new, old in zip(made, otherwise):
        phi = b.phi(new.type)
        phi.add_incoming(new, made_block)
        phi.add_incoming(old, before)
        merged.append(phi)
    return merged
