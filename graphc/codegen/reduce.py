"""Reduction kernels with an elementwise prologue: the target-neutral core.

``emit_reduce_core(module, name, program, params, reduction, axes, out_dtype)`` adds

    internal void name(ptr data_0, ptr shape_0, ptr strides_0, ..., ptr data_out,
                       ptr shape_out, ptr strides_out, i64 start, i64 stop)

like the elementwise core: the inputs have the un-reduced (broadcast) shape, ``out`` the
keepdims shape (size 1 on the reduced axes), ``[start, stop)`` is a range of out's axis 0. The
kernel loops over out's elements (the kept axes) and, inside, over the reduced axes with an
accumulator, evaluating the program on each element (``sum(exp(x - m))`` is one pass over x).

The innermost reduced loop has two forms chosen at run time: unit-stride (every operand
contiguous or broadcast along that axis, so the vectoriser can work on it) and strided.
Accumulators follow NumPy's ``reduce.py`` references: sums and products in NumPy's dtype
(int64/uint64 for small ints and bool); float sums add chunks of ``CHUNK`` elements into a
partial sum (``reassoc``: the vectoriser keeps one partial per lane, so a chunk is summed as
many short sums) and the partials into a float64 total, which keeps long sums accurate (2^22
float32 additions of 0.1 are off by < 1e-6 relative); products multiply in order (like NumPy's). max/min propagate NaN;
argmax/argmin give the first index of the extremum, the first NaN if there is one. Empty
reductions give the identity (sum 0, prod 1, any False, all True); the runtime never calls
max/min/argmax/argmin on an empty axis.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from llvmlite import ir

from ..ir.node import Node
from .elemwise import Operand, counted_loop, i64, load_operands, new_core, offset
from .scalar import (CannotEmit, Scalar, convert, emit_program, load_value, memory_type,
                     store_value)

__all__ = ["CHUNK", "emit_reduce_core"]

# float sums add this many elements into a partial sum before adding it to the total
CHUNK = 1024
# reductions over outer axes keep this many accumulators (one per output element) on the stack
COLUMN_BLOCK = 512
BOOL = ir.IntType(1)


class Accumulator:
    """How one reduction starts, takes an element and ends (values in registers)."""

    reassoc = False  # the step may be reordered (vectorised partial sums)
    chunked = False  # add the elements of each chunk into a fresh partial first

    def __init__(self, body_dtype: str, out_dtype: str):
        self.body, self.out = body_dtype, out_dtype

    def init(self, e: Scalar) -> list:
        raise NotImplementedError

    def step(self, e: Scalar, accs: list, x, index) -> list:
        raise NotImplementedError

    def finish(self, e: Scalar, accs: list):
        return accs[0]

    def combine(self, e: Scalar, accs: list, partial: list) -> list:
        raise NotImplementedError

    # column form (kept innermost axis): one value per output element, kept in a stack block
    column_dtype: str | None = None  # None: no column form

    def column_init(self, e: Scalar):
        return self.init(e)[0]

    def column_step(self, e: Scalar, acc, x):
        return self.step(e, [acc], x, None)[0]

    def column_finish(self, e: Scalar, acc):
        return acc


class Sum(Accumulator):
    """Integer sums wrap in the out dtype; float sums add each chunk into a partial sum of the
    body's dtype (reassociated: vector lanes) and the partials into a float64 total."""

    def __init__(self, body_dtype: str, out_dtype: str):
        super().__init__(body_dtype, out_dtype)
        self.floating = out_dtype in ("float32", "float64")
        self.acc = "float64" if self.floating else out_dtype
        self.reassoc = self.chunked = self.floating

    def init(self, e):
        return [e.const(self.acc, 0)]

    def partial_init(self, e):
        return [e.const(self.out, 0)]

    def step(self, e, accs, x, index):
        if not self.floating:
            return [e.b.add(accs[0], convert(e.b, x, self.body, self.acc))]
        total = e.b.fadd(accs[0], x)
        total.flags.append("reassoc")
        return [total]

    def combine(self, e, accs, partial):
        return [e.b.fadd(accs[0], convert(e.b, partial[0], self.out, self.acc))]

    def finish(self, e, accs):
        return convert(e.b, accs[0], self.acc, self.out)

    @property
    def column_dtype(self):
        return self.acc  # float sums add down the columns in float64

    def column_step(self, e, acc, x):
        x = convert(e.b, x, self.body, self.acc)
        return e.b.fadd(acc, x) if self.floating else e.b.add(acc, x)

    def column_finish(self, e, acc):
        return self.finish(e, [acc])


class Prod(Accumulator):
    @property
    def column_dtype(self):
        return self.out

    def init(self, e):
        return [e.const(self.out, 1)]

    def step(self, e, accs, x, index):
        x = convert(e.b, x, self.body, self.out)
        floating = self.out in ("float32", "float64")
        return [(e.b.fmul if floating else e.b.mul)(accs[0], x)]


class Extremum(Accumulator):
    """max / min; floats keep the non-NaN extremum plus a 'saw NaN' flag."""

    def __init__(self, body_dtype: str, out_dtype: str, larger: bool):
        super().__init__(body_dtype, out_dtype)
        self.larger = larger
        self.floating = body_dtype in ("float32", "float64")

    def init(self, e):
        if self.floating:
            return [e.const(self.body, -math.inf if self.larger else math.inf),
                    ir.Constant(BOOL, 0)]
        if self.body == "bool":
            return [ir.Constant(BOOL, 0 if self.larger else 1)]
        info = np.iinfo(self.body)
        return [e.const(self.body, int(info.min if self.larger else info.max))]

    def step(self, e, accs, x, index):
        if self.body == "bool":
            return [(e.b.or_ if self.larger else e.b.and_)(accs[0], x)]
        if self.floating:
            # The flag remembers a NaN; finish() returns NaN then, so the value may be poison
            # after one (nnan): that lets the vectoriser treat maxnum as a min/max reduction.
            nan = e.isnan(x)
            value = e.intrinsic("maxnum" if self.larger else "minnum", self.body, accs[0], x,
                                fastmath=("nnan", "nsz"))
            return [value, e.b.or_(accs[1], nan)]
        better = e.greater(self.body, x, accs[0]) if self.larger else e.less(self.body, x, accs[0])
        return [e.b.select(better, x, accs[0])]

    def finish(self, e, accs):
        if self.floating:
            return e.b.select(accs[1], e.const(self.body, math.nan), accs[0])
        return accs[0]

    @property
    def column_dtype(self):
        return self.body

    def column_step(self, e, acc, x):
        if not self.floating:
            return self.step(e, [acc], x, None)[0]
        # NaN-propagating: a NaN x is taken, a NaN acc is kept (no comparison is true)
        better = e.greater(self.body, x, acc) if self.larger else e.less(self.body, x, acc)
        return e.b.select(e.b.or_(better, e.isnan(x)), x, acc)


class ArgExtremum(Accumulator):
    """argmax / argmin: (best value, its index); the first extremum, or the first NaN."""

    def __init__(self, body_dtype: str, out_dtype: str, larger: bool):
        super().__init__(body_dtype, out_dtype)
        self.extremum = Extremum(body_dtype, out_dtype, larger)
        self.larger = larger

    def init(self, e):
        return [self.extremum.init(e)[0], i64(0)]

    def step(self, e, accs, x, index):
        best = accs[0]
        dtype = self.body
        better = e.greater(dtype, x, best) if self.larger else e.less(dtype, x, best)
        if dtype in ("float32", "float64"):
            first_nan = e.b.and_(e.isnan(x), e.b.not_(e.isnan(best)))
            better = e.b.or_(better, first_nan)
        return [e.b.select(better, x, best), e.b.select(better, index, accs[1])]

    def finish(self, e, accs):
        return accs[1]


class Logical(Accumulator):
    """any / all of the elements' truth (NaN is true, as in NumPy)."""

    def __init__(self, body_dtype: str, out_dtype: str, every: bool):
        super().__init__(body_dtype, out_dtype)
        self.every = every

    column_dtype = "bool"

    def init(self, e):
        return [ir.Constant(BOOL, 1 if self.every else 0)]

    def step(self, e, accs, x, index):
        if self.body in ("float32", "float64"):
            truth = e.b.fcmp_unordered("!=", x, e.const(self.body, 0.0))
        elif self.body == "bool":
            truth = x
        else:
            truth = e.b.icmp_unsigned("!=", x, e.const(self.body, 0))
        return [(e.b.and_ if self.every else e.b.or_)(accs[0], truth)]


def accumulator(name: str, body_dtype: str, out_dtype: str) -> Accumulator:
    makers = {
        "sum": lambda: Sum(body_dtype, out_dtype), "prod": lambda: Prod(body_dtype, out_dtype),
        "max": lambda: Extremum(body_dtype, out_dtype, True),
        "min": lambda: Extremum(body_dtype, out_dtype, False),
        "argmax": lambda: ArgExtremum(body_dtype, out_dtype, True),
        "argmin": lambda: ArgExtremum(body_dtype, out_dtype, False),
        "any": lambda: Logical(body_dtype, out_dtype, False),
        "all": lambda: Logical(body_dtype, out_dtype, True),
    }
    if name not in makers:
        raise CannotEmit(f"no reduction kernel for {name}")
    return makers[name]()


# --- the core --------------------------------------------------------------------------------

def _broadcast_size(builder: ir.IRBuilder, inputs: Sequence[Operand], axis: int):
    """The loop size along ``axis``: any input size that is not 1 (the graph checked them)."""
    size = i64(1)
    for op in inputs:
        if op.static_one[axis]:
            continue
        size = builder.select(builder.icmp_signed("!=", op.shape[axis], i64(1)), op.shape[axis],
                              size)
    return size


class _Reducer:
    """State of one core's emission: the builder, operands, sizes and the accumulator."""

    def __init__(self, builder, program, inputs, out, axes, acc: Accumulator):
        self.b, self.program, self.inputs, self.out = builder, program, inputs, out
        self.e = Scalar(builder)
        self.acc = acc
        ndim = len(out.shape)
        self.reduced = sorted(axes)
        self.kept = [d for d in range(ndim) if d not in axes]
        self.sizes = [out.shape[d] if d in self.kept else _broadcast_size(builder, inputs, d)
                      for d in range(ndim)]
        self.steps = [[op.step(builder, d) for d in range(ndim)] for op in inputs]

    def element(self, pointers):
        values = [load_value(self.b, p, op.dtype) for p, op in zip(pointers, self.inputs)]
        return emit_program(self.b, self.program, values)

    def unit_inner(self, axis):
        """Whether every operand is contiguous (or statically broadcast) along ``axis``."""
        b = self.b
        short = b.icmp_signed("<=", self.sizes[axis], i64(1))
        ok = ir.Constant(BOOL, 1)
        for op in self.inputs:
            if op.static_one[axis]:
                continue
            same = b.icmp_signed("==", op.shape[axis], self.sizes[axis])
            unit = b.icmp_signed("==", op.strides[axis], i64(op.itemsize))
            ok = b.and_(ok, b.and_(same, b.or_(unit, short)))
        return ok

    def run_range(self, pointers, steps, first, stop, accs, base, vectorize):
        """Accumulate elements first..stop-1 of the innermost reduced axis into ``accs``."""
        b = self.b

        def body(i, values):
            moved = [offset(b, p, b.mul(i, s)) for p, s in zip(pointers, steps)]
            return self.acc.step(self.e, values, self.element(moved), b.add(base, i))

        return counted_loop(b, first, stop, accs, body, vectorize=vectorize)

    def inner(self, pointers, steps, accs, base, vectorize):
        """The whole innermost reduced axis, in chunks for float sums."""
        b = self.b
        size = self.sizes[self.reduced[-1]]
        if not self.acc.chunked:
            return self.run_range(pointers, steps, i64(0), size, accs, base, vectorize)
        chunks = b.sdiv(b.add(size, i64(CHUNK - 1)), i64(CHUNK))

        def chunk(c, totals):
            first = b.mul(c, i64(CHUNK))
            last = b.add(first, i64(CHUNK))
            last = b.select(b.icmp_signed("<", last, size), last, size)
            partial = self.run_range(pointers, steps, first, last, self.acc.partial_init(self.e),
                                     base, vectorize)
            return self.acc.combine(self.e, totals, partial)

        return counted_loop(b, i64(0), chunks, accs, chunk, vectorize=False)

    def innermost(self, pointers, accs, base):
        """The innermost reduced axis, unit-stride (constant steps) or strided."""
        b = self.b
        axis = self.reduced[-1]
        unit_steps = [i64(0) if op.static_one[axis] else i64(op.itemsize) for op in self.inputs]
        strided_steps = [s[axis] for s in self.steps]
        results, blocks = [], []
        with b.if_else(self.unit_inner(axis)) as (unit, strided):
            for branch, steps, vectorize in ((unit, unit_steps, None),
                                             (strided, strided_steps, False)):
                with branch:
                    results.append(self.inner(pointers, steps, accs, base, vectorize))
                    blocks.append(b.block)
        merged = []
        for k, value in enumerate(accs):
            phi = b.phi(value.type)
            for result, block in zip(results, blocks):
                phi.add_incoming(result[k], block)
            merged.append(phi)
        return merged

    def reduce_axes(self, level, pointers, accs, base):
        """Loops over the reduced axes from ``level`` inward, carrying the accumulators."""
        b = self.b
        if level == len(self.reduced) - 1:
            return self.innermost(pointers, accs, base)
        axis = self.reduced[level]

        def body(i, values):
            moved = [offset(b, p, b.mul(i, s[axis])) for p, s in zip(pointers, self.steps)]
            inner_base = b.mul(b.add(base, i), self.sizes[self.reduced[level + 1]])
            return self.reduce_axes(level + 1, moved, values, inner_base)

        return counted_loop(b, i64(0), self.sizes[axis], accs, body)

    def output_element(self, pointers, out_pointer):
        accs = self.acc.init(self.e)
        if self.reduced:
            accs = self.reduce_axes(0, pointers, accs, i64(0))
        elif self.acc.chunked:
            partial = self.acc.step(self.e, self.acc.partial_init(self.e), self.element(pointers),
                                    i64(0))
            accs = self.acc.combine(self.e, accs, partial)
        else:
            accs = self.acc.step(self.e, accs, self.element(pointers), i64(0))
        store_value(self.b, self.acc.finish(self.e, accs), out_pointer, self.out.dtype)

    def column_form(self) -> bool:
        """Whether the innermost axis is kept and reduced axes lie outside it: then the kernel
        may reduce whole rows of outputs at once (``columns``), vectorised along that axis."""
        last = len(self.out.shape) - 1
        return bool(self.reduced) and self.kept[-1:] == [last] and \
            self.acc.column_dtype is not None

    def unit_last(self):
        """Every operand and out unit-stride (or statically broadcast) along the last axis."""
        b, last = self.b, len(self.out.shape) - 1
        ok = b.icmp_signed("==", self.out.strides[last], i64(self.out.itemsize))
        for op in self.inputs:
            if op.static_one[last]:
                continue
            same = b.icmp_signed("==", op.shape[last], self.out.shape[last])
            ok = b.and_(ok, b.and_(same, b.icmp_signed("==", op.strides[last], i64(op.itemsize))))
        return ok

    def columns(self, pointers, out_pointer):
        """All output elements along the last axis, ``COLUMN_BLOCK`` at a time: a block of
        accumulators on the stack, the reduced axes outside, the last axis innermost."""
        b, e, acc = self.b, self.e, self.acc
        last = len(self.out.shape) - 1
        n = self.out.shape[last]
        dtype = acc.column_dtype
        with b.goto_entry_block():
            block = b.alloca(ir.ArrayType(memory_type(dtype), COLUMN_BLOCK))
        block.align = 64
        unit = [i64(0) if op.static_one[last] else i64(op.itemsize) for op in self.inputs]

        def slot(j):
            return b.gep(block, [i64(0), j], inbounds=True)

        def one_block(k, _):
            first = b.mul(k, i64(COLUMN_BLOCK))
            count = b.sub(n, first)
            count = b.select(b.icmp_signed("<", count, i64(COLUMN_BLOCK)), count, i64(COLUMN_BLOCK))
            moved = [offset(b, p, b.mul(first, u)) for p, u in zip(pointers, unit)]

            def init(j, _):
                store_value(b, acc.column_init(e), slot(j), dtype)
                return []

            def accumulate(level, ptrs):
                if level == len(self.reduced):
                    def body(j, _):
                        x = self.element([offset(b, p, b.mul(j, u)) for p, u in zip(ptrs, unit)])
                        store_value(b, acc.column_step(e, load_value(b, slot(j), dtype), x),
                                    slot(j), dtype)
                        return []

                    counted_loop(b, i64(0), count, [], body)
                    return
                axis = self.reduced[level]

                def outer(i, _):
                    accumulate(level + 1, [offset(b, p, b.mul(i, s[axis]))
                                           for p, s in zip(ptrs, self.steps)])
                    return []

                counted_loop(b, i64(0), self.sizes[axis], [], outer)

            def finish(j, _):
                target = offset(b, out_pointer, b.mul(b.add(first, j), i64(self.out.itemsize)))
                store_value(b, acc.column_finish(e, load_value(b, slot(j), dtype)), target,
                            self.out.dtype)
                return []

            counted_loop(b, i64(0), count, [], init)
            accumulate(0, moved)
            counted_loop(b, i64(0), count, [], finish)
            return []

        blocks = b.sdiv(b.add(n, i64(COLUMN_BLOCK - 1)), i64(COLUMN_BLOCK))
        counted_loop(b, i64(0), blocks, [], one_block)

    def kept_axes(self, level, pointers, out_pointer, start, stop):
        """Loops over the kept axes (axis 0 over [start, stop)), an output element inside."""
        b = self.b
        if level == len(self.kept):
            self.output_element(pointers, out_pointer)
            return
        if level == len(self.kept) - 1 and self.column_form():
            with b.if_else(self.unit_last()) as (unit, other):
                with unit:
                    self.columns(pointers, out_pointer)
                with other:
                    self._kept_loop(level, pointers, out_pointer, start, stop)
            return
        self._kept_loop(level, pointers, out_pointer, start, stop)

    def _kept_loop(self, level, pointers, out_pointer, start, stop):
        b = self.b
        axis = self.kept[level]
        lo, hi = (start, stop) if axis == 0 else (i64(0), self.out.shape[axis])

        def body(i, _):
            moved = [offset(b, p, b.mul(i, s[axis])) for p, s in zip(pointers, self.steps)]
            out_moved = offset(b, out_pointer, b.mul(i, self.out.strides[axis]))
            self.kept_axes(level + 1, moved, out_moved, start, stop)
            return []

        counted_loop(b, lo, hi, [], body)


def emit_reduce_core(module: ir.Module, name: str, program: Node, params: Sequence[Node],
                     reduction: str, axes: Sequence[int], out_dtype: str) -> ir.Function:
    """Add the core function ``name`` reducing ``program`` over ``axes`` (see the module doc)."""
    ndim = program.ndim
    acc = accumulator(reduction, program.dtype, out_dtype)
    fn, static_ones = new_core(module, name, params, ndim)
    start, stop = fn.args[-2:]
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    *inputs, out = load_operands(builder, fn.args[:-2], [p.dtype for p in params] + [out_dtype],
                                 ndim, static_ones)
    reducer = _Reducer(builder, program, inputs, out, tuple(axes), acc)
    pointers = [op.data for op in inputs]
    if ndim and 0 in reducer.kept:
        reducer.kept_axes(0, pointers, out.data, start, stop)
    else:  # out's axis 0 has size 1 (reduced) or out is 0-d: one range, [0, 1)
        with builder.if_then(builder.icmp_signed("<", start, stop)):
            reducer.kept_axes(0, pointers, out.data, start, stop)
    builder.ret_void()
    return fn
