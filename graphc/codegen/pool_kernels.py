"""CPU kernels for 2-d pooling (``graphc.opdefs.pool``): ``pool_2d`` in every mode,
``max_pool_grad``, ``max_pool_select`` and ``pool_2d_grad`` (the sum/average gradient).

Kernel (the CPU convention of ``graphc.codegen.kernel``)::

    void NAME(PyObject* in_0, [PyObject* in_1,] PyObject* out, int64 start, int64 stop)

The arrays of each op, inputs then output (``_ARRAYS``): ``pool_2d(x) -> out``,
``max_pool_grad(x, g) -> out``, ``max_pool_select(x, v) -> out``, ``pool_2d_grad(g) -> out``
(the spatial size is out's). All have the node's ndim; the axes before the last two are batch
axes, the same in every array; ``[start, stop)`` is a range of axis 0 (a 2-d kernel runs its one
plane when ``start < stop``). Arrays are read through their byte strides (any layout). The
runtime (``graphc.runtime.pool_step``) checks the shapes and passes a zeroed ``out`` to the
gradients; it runs the reference on empty inputs, so the kernels see ``H, W >= 1`` and every
window holds at least one input cell.

The window parameters are baked in; the sizes are run-time values. Each result is the
reference's own computation, operation for operation:

- a window is visited cell by cell in row-major order, a padding cell (or a cell of the frame
  ``ignore_border=False`` adds) reading as the reference's fill (the dtype's lowest value for
  'max', 0 for the sums); windows wholly inside the input skip the bounds checks;
- 'max' folds as ``np.maximum``: a NaN wins and stays (the first one), a tie takes the later
  cell (which decides the sign of a zero);
- the first maximum (``_first_max``: the first cell greater than all before it, or the first
  NaN) is, for windows of up to ``UNROLL_CELLS`` cells, the first cell equal to the window's
  maximum (or the first NaN), found as the lowest bit of one vector comparison; a padding
  cell can hold it (then no input cell gets the gradient);
- sums add the cells in order from the first (padding adds 0.0), averages then divide by the
  window's count converted to the dtype;
- the gradients add each window's share into ``out`` visiting the windows in reverse order, so
  each input cell receives its shares in the reference's order (by increasing window offset),
  starting from 0.0; tiled max windows (stride = window, no padding, sizes divisible) store the
  share instead, as the reference's ``put_along_axis`` does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from llvmlite import ir

from ..ir.node import Node
from ..ir.types import FLOAT_DTYPES, INT_DTYPES, SIGNED_DTYPES
from .elemwise import I64, PTR, counted_loop, i64, load_operands, offset
from .scalar import CannotEmit, constant_value, load_value, store_value

__all__ = ["POOL_KERNEL_OPS", "emit_pool_core", "pool_kernel_source"]

POOL_KERNEL_OPS = ("pool_2d", "max_pool_grad", "max_pool_select", "pool_2d_grad")
# the arrays of each op's kernel, inputs then the output
_ARRAYS = {"pool_2d": ("x", "out"), "max_pool_grad": ("x", "g", "out"),
           "max_pool_select": ("x", "v", "out"), "pool_2d_grad": ("g", "out")}
# which array has the input's spatial size and which the pooled one
_SIZES = {"pool_2d": ("x", "out"), "max_pool_grad": ("x", "g"),
          "max_pool_select": ("x", "out"), "pool_2d_grad": ("out", "g")}
# windows of at most this many cells are unrolled
UNROLL_CELLS = 32


def pool_kernel_source(node: Node):
    """The ``KernelSource`` (kind "pool") of a pooling node (raises ``CannotEmit``)."""
    from .kernel import _PLACEHOLDER, _finish

    name = node.op.name
    if name not in POOL_KERNEL_OPS:
        raise CannotEmit(f"{name} is not a pooling op")
    in_dtypes = [s.dtype for s in node.src[:len(_ARRAYS[name]) - 1]]
    module = ir.Module(name="graphc_kernel")
    core = emit_pool_core(module, f"{_PLACEHOLDER}core", name, node.arg[:5], in_dtypes,
                          node.dtype, node.ndim)
    return _finish(module, core, len(in_dtypes), "pool", node.dtype)


def _check_dtypes(op_name: str, mode: str, dtypes: dict) -> None:
    for array, dtype in dtypes.items():  # x (and the pooled x) may be ints for 'max'
        numeric = mode == "max" and (array == "x" or (array, op_name) == ("out", "pool_2d"))
        if dtype not in FLOAT_DTYPES + (INT_DTYPES if numeric else ()):
            raise CannotEmit(f"no {op_name} kernel for a {dtype} {array}")


def emit_pool_core(module: ir.Module, name: str, op_name: str, params: tuple, in_dtypes,
                   out_dtype: str, ndim: int) -> ir.Function:
    """``void name(data, dims, strides per array (inputs, out), i64 start, i64 stop)``
    computing ``op_name`` with ``params = (ws, stride, pad, ignore_border, mode)``."""
    arrays = _ARRAYS[op_name]
    dtypes = dict(zip(arrays, list(in_dtypes) + [out_dtype]))
    _check_dtypes(op_name, params[4] if op_name == "pool_2d" else "max", dtypes)
    if ndim < 2:
        raise CannotEmit(f"{op_name} needs 2 dimensions at least")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * (3 * len(arrays)) + [I64, I64]),
                     name)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    operands = load_operands(builder, fn.args[:-2], [dtypes[a] for a in arrays], ndim,
                             [(False,) * ndim] * len(arrays))
    plane = _Plane(builder, params, dict(zip(arrays, operands)), _SIZES[op_name])
    emit = getattr(plane, f"emit_{op_name}")
    start, stop = fn.args[-2:]
    _batch_loops(builder, plane, ndim, start, stop, emit)
    builder.ret_void()
    return fn


def _batch_loops(builder: ir.IRBuilder, plane: _Plane, ndim: int, start, stop,
                 emit: Callable) -> None:
    """``emit(pointers)`` for every plane (the last two axes) of batch rows [start, stop)."""
    batch = ndim - 2
    names = list(plane.arrays)

    def level(axis, pointers):
        if axis == batch:
            emit(dict(zip(names, pointers)))
            return
        lo, hi = (start, stop) if axis == 0 else (i64(0), plane.arrays["out"].shape[axis])

        def body(i, _):
            level(axis + 1, [offset(builder, p, builder.mul(i, plane.arrays[n].strides[axis]))
                             for n, p in zip(names, pointers)])
            return []

        counted_loop(builder, lo, hi, [], body)

    data = [plane.arrays[n].data for n in names]
    if batch == 0:
        with builder.if_then(builder.icmp_signed("<", start, stop)):
            level(0, data)
    else:
        level(0, data)  # NOTE: recursion over the batch axes of one kernel, not over a graph


class _Plane:
    """The loops over one plane's windows, for each op."""

    def __init__(self, builder: ir.IRBuilder, params: tuple, arrays: dict, sizes: tuple):
        self.b = builder
        (self.ws, self.stride, self.pad, self.ignore_border, self.mode) = params
        self.cells = self.ws[0] * self.ws[1]
        self.arrays = arrays
        big, small = arrays[sizes[0]], arrays[sizes[1]]
        self.h, self.w = big.shape[-2], big.shape[-1]
        self.oh, self.ow = small.shape[-2], small.shape[-1]
        self.pointers: dict = {}

    # --- cells ---------------------------------------------------------------------------

    def at(self, array: str, r, c):
        """The address of cell (r, c) of ``array``'s current plane."""
        b, operand = self.b, self.arrays[array]
        step = b.add(b.mul(r, operand.strides[-2]), b.mul(c, operand.strides[-1]))
        return offset(b, self.pointers[array], step)

    def load(self, array: str, r, c):
        return load_value(self.b, self.at(array, r, c), self.arrays[array].dtype)

    def store(self, array: str, r, c, value) -> None:
        store_value(self.b, value, self.at(array, r, c), self.arrays[array].dtype)

    def inside(self, r, c):
        """Whether (r, c) is an input cell (unsigned: a negative index is outside)."""
        b = self.b
        return b.and_(b.icmp_unsigned("<", r, self.h), b.icmp_unsigned("<", c, self.w))

    def load_or(self, array: str, r, c, inside, fill):
        """Cell (r, c), or ``fill`` outside (the load reads cell (0, 0) there)."""
        b = self.b
        zero = i64(0)
        value = self.load(array, b.select(inside, r, zero), b.select(inside, c, zero))
        return b.select(inside, value, fill)

    def corner(self, i, j):
        """The input cell of window (i, j)'s first offset (negative in the padding)."""
        b = self.b
        return (b.sub(b.mul(i, i64(self.stride[0])), i64(self.pad[0])),
                b.sub(b.mul(j, i64(self.stride[1])), i64(self.pad[1])))

    def whole(self, r0, c0):
        """Whether the window at (r0, c0) lies wholly inside the input."""
        b = self.b
        rows = b.icmp_signed("<=", b.add(r0, i64(self.ws[0])), self.h)
        cols = b.icmp_signed("<=", b.add(c0, i64(self.ws[1])), self.w)
        ok = b.and_(rows, cols)
        if self.pad[0]:
            ok = b.and_(ok, b.icmp_signed(">=", r0, i64(0)))
        if self.pad[1]:
            ok = b.and_(ok, b.icmp_signed(">=", c0, i64(0)))
        return ok

    def fold(self, r0, c0, first: int, carried: list, visit: Callable) -> list:
        """``carried = visit(k, r, c, carried)`` over the window's cells k >= first (k = u *
        ws[1] + v at (r0 + u, c0 + v)), in row-major order."""
        b, width = self.b, self.ws[1]
        if self.cells - first <= UNROLL_CELLS:
            for k in range(first, self.cells):
                u, v = divmod(k, width)
                carried = visit(i64(k), b.add(r0, i64(u)), b.add(c0, i64(v)), carried)
            return carried

        def body(k, values):
            r = b.add(r0, b.udiv(k, i64(width)))
            return visit(k, r, b.add(c0, b.urem(k, i64(width))), values)

        return counted_loop(b, i64(first), i64(self.cells), carried, body)

    def cell_of(self, r0, c0, k):
        b = self.b
        return (b.add(r0, b.udiv(k, i64(self.ws[1]))), b.add(c0, b.urem(k, i64(self.ws[1]))))

    def branch(self, cond, make: Callable) -> list:
        """``make(checked)`` values: unchecked where ``cond`` (whole windows), else checked."""
        b = self.b
        with b.if_else(cond) as (fast, slow):
            with fast:
                fast_values, fast_block = make(False), b.block
            with slow:
                slow_values, slow_block = make(True), b.block
        merged = []
        for x, y in zip(fast_values, slow_values):
            phi = b.phi(x.type)
            phi.add_incoming(x, fast_block)
            phi.add_incoming(y, slow_block)
            merged.append(phi)
        return merged

    # --- window values -------------------------------------------------------------------

    def _reader(self, checked: bool, fill):
        """``read(r, c)`` of x: with the reference's fill outside when ``checked``."""
        if not checked:
            return lambda r, c: self.load("x", r, c)
        return lambda r, c: self.load_or("x", r, c, self.inside(r, c), fill)

    def lowest(self):
        dtype = self.arrays["x"].dtype
        return constant_value(dtype, -np.inf if dtype in FLOAT_DTYPES else np.iinfo(dtype).min)

    def greater(self, x, y, ties: bool):
        """Whether ``x`` replaces ``y`` as the maximum: x > y (x >= y with ``ties``), or x NaN
        where y is not; never when y is NaN."""
        b, dtype = self.b, self.arrays["x"].dtype
        op = ">=" if ties else ">"
        if dtype in FLOAT_DTYPES:
            return b.and_(b.fcmp_unordered(op, x, y), b.fcmp_ordered("ord", y, y))
        if dtype in SIGNED_DTYPES:
            return b.icmp_signed(op, x, y)
        return b.icmp_unsigned(op, x, y)

    def window_max(self, r0, c0, checked: bool) -> list:
        """[the window's maximum as ``np.maximum`` folds it]."""
        read = self._reader(checked, self.lowest())

        def visit(k, r, c, values):
            value = read(r, c)
            return [self.b.select(self.greater(value, values[0], ties=True), value, values[0])]

        return self.fold(r0, c0, 1, [read(r0, c0)], visit)

    def first_max(self, r0, c0, checked: bool) -> list:
        """[the offset k of the window's first maximum (a padding cell possibly)]."""
        read = self._reader(checked, self.lowest())
        b = self.b
        if self.cells <= UNROLL_CELLS:
            return [self._first_max_unrolled(r0, c0, read)]

        def visit(k, r, c, values):
            value = read(r, c)
            better = self.greater(value, values[0], ties=False)
            return [b.select(better, value, values[0]), b.select(better, k, values[1])]

        return self.fold(r0, c0, 1, [read(r0, c0), i64(0)], visit)[1:]

    def _first_max_unrolled(self, r0, c0, read):
        """The first cell equal to the window's maximum (the first NaN if there is one):
        the maximum as a tree, then the lowest bit of a mask of the cells equal to it (no
        chain of selects, which would become unpredictable branches)."""
        b, dtype = self.b, self.arrays["x"].dtype
        values = [read(r, c) for _, r, c in self.cells_of(r0, c0)]
        level = values
        while len(level) > 1:
            pairs = [(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            level = [b.select(self.greater(y, x, ties=False), y, x) for x, y in pairs] + \
                level[len(level) - len(level) % 2:]
        top = level[0]
        # compare all cells with it at once: a vector (padded with cell 0: a later match)
        lanes = 1 << (len(values) - 1).bit_length()
        vector = ir.Constant(ir.VectorType(top.type, lanes), None)
        for k in range(lanes):
            vector = b.insert_element(vector, values[k] if k < len(values) else values[0],
                                      ir.Constant(ir.IntType(32), k))
        splat = b.shuffle_vector(
            b.insert_element(ir.Constant(vector.type, None), top, ir.Constant(ir.IntType(32), 0)),
            ir.Constant(vector.type, None),
            ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))
        if dtype in FLOAT_DTYPES:  # top is NaN iff a cell is: then match the NaNs
            same = b.or_(b.fcmp_ordered(">=", vector, splat),
                         b.fcmp_unordered("uno", vector, vector))
        else:
            same = b.icmp_unsigned("==", vector, splat)
        mask = b.zext(b.bitcast(same, ir.IntType(lanes)), I64)
        cttz = b.module.declare_intrinsic("llvm.cttz", [I64],
                                          ir.FunctionType(I64, [I64, ir.IntType(1)]))
        return b.call(cttz, [mask, ir.Constant(ir.IntType(1), 1)])

    def cells_of(self, r0, c0):
        """(k, r, c) of every cell of the window (unrolled), in row-major order."""
        b = self.b
        for k in range(self.cells):
            u, v = divmod(k, self.ws[1])
            yield k, b.add(r0, i64(u)), b.add(c0, i64(v))

    def window_sum(self, r0, c0, checked: bool) -> list:
        dtype = self.arrays["x"].dtype
        read = self._reader(checked, constant_value(dtype, 0.0))
        return self.fold(r0, c0, 1, [read(r0, c0)],
                         lambda k, r, c, values: [self.b.fadd(values[0], read(r, c))])

    def count(self, r0, c0, checked: bool):
        """The divisor of an average window (an i64), as the reference's ``_divisor``."""
        if not checked or (self.mode == "average_inc_pad" and self.ignore_border):
            return i64(self.cells)
        b = self.b

        def covered(start, size, length):
            end = b.add(start, i64(size))
            end = b.select(b.icmp_signed("<", end, length), end, length)
            first = b.select(b.icmp_signed(">", start, i64(0)), start, i64(0))
            return b.sub(end, first)

        return b.mul(covered(r0, self.ws[0], self.h), covered(c0, self.ws[1], self.w))

    def averaged(self, value, count):
        """A window's sum divided by its count (the dtype's division), for the averages."""
        if self.mode in ("max", "sum"):
            return value
        return self.b.fdiv(value, self.b.sitofp(count, value.type))

    # --- loops over the windows ----------------------------------------------------------

    def windows(self, body: Callable, reverse: bool = False) -> None:
        """``body(i, j, r0, c0)`` over the plane's windows (last to first if ``reverse``)."""
        b = self.b

        def row(t, _):
            i = b.sub(b.sub(self.oh, i64(1)), t) if reverse else t

            def column(s, _):
                j = b.sub(b.sub(self.ow, i64(1)), s) if reverse else s
                body(i, j, *self.corner(i, j))
                return []

            counted_loop(b, i64(0), self.ow, [], column)
            return []

        counted_loop(b, i64(0), self.oh, [], row)

    def emit_pool_2d(self, pointers: dict) -> None:
        self.pointers = pointers

        def window(i, j, r0, c0):
            def value(checked):
                if self.mode == "max":
                    return self.window_max(r0, c0, checked)
                total = self.window_sum(r0, c0, checked)[0]
                return [self.averaged(total, self.count(r0, c0, checked))]

            self.store("out", i, j, self.branch(self.whole(r0, c0), value)[0])

        self.windows(window)

    def _first_cell(self, r0, c0):
        """(r, c, inside) of the window's first maximum."""
        (k,) = self.branch(self.whole(r0, c0), lambda checked: self.first_max(r0, c0, checked))
        r, c = self.cell_of(r0, c0, k)
        return r, c, self.inside(r, c)

    def tiled(self):
        """Whether the windows tile the plane (the reference's ``_tiled``), an i1."""
        b = self.b
        if tuple(self.ws) != tuple(self.stride) or any(self.pad):
            return ir.Constant(ir.IntType(1), 0)
        rows = b.icmp_signed("==", self.h, b.mul(self.oh, i64(self.ws[0])))
        return b.and_(rows, b.icmp_signed("==", self.w, b.mul(self.ow, i64(self.ws[1]))))

    def emit_max_pool_grad(self, pointers: dict) -> None:
        self.pointers = pointers
        b = self.b
        tiled = self.tiled()

        def window(i, j, r0, c0):
            share = self.load("g", i, j)
            r, c, inside = self._first_cell(r0, c0)
            with b.if_then(inside):
                added = b.fadd(self.load("out", r, c), share)
                self.store("out", r, c, b.select(tiled, share, added))

        self.windows(window, reverse=True)

    def emit_max_pool_select(self, pointers: dict) -> None:
        self.pointers = pointers

        def window(i, j, r0, c0):
            r, c, inside = self._first_cell(r0, c0)
            zero = constant_value(self.arrays["v"].dtype, 0.0)
            self.store("out", i, j, self.load_or("v", r, c, inside, zero))

        self.windows(window)

    def emit_pool_2d_grad(self, pointers: dict) -> None:
        self.pointers = pointers
        b = self.b

        def window(i, j, r0, c0):
            g = self.load("g", i, j)

            def spread(checked):
                share = self.averaged(g, self.count(r0, c0, checked))

                def visit(k, r, c, values):
                    if not checked:
                        self.store("out", r, c, b.fadd(self.load("out", r, c), share))
                        return values
                    with b.if_then(self.inside(r, c)):
                        self.store("out", r, c, b.fadd(self.load("out", r, c), share))
                    return values

                return self.fold(r0, c0, 0, [], visit)

            self.branch(self.whole(r0, c0), spread)

        self.windows(window, reverse=True)
