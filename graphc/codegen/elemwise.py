"""Loops around an elementwise program: the target-neutral core of an elementwise kernel.

``emit_elemwise_core(module, name, program, out_dtype)`` adds

    internal void name(ptr data_0, ptr shape_0, ptr strides_0, ..., ptr data_out,
                       ptr shape_out, ptr strides_out, i64 start, i64 stop)

(inputs first, the output last; ``shape``/``strides`` point at ``ndim`` int64s, strides in
bytes). It computes the output elements whose index on axis 0 lies in ``[start, stop)``. An input
dimension of size 1 where the output's is larger is broadcast (read with stride 0), whether the
size is known statically (the program's params keep their static size-1 dimensions) or only at
run time.

Three ways through, chosen at run time:

- flat: every operand C-contiguous with the output's shape (or statically one element): one
  unit-stride loop over the rows' elements, which the loop vectoriser turns into SIMD code;
- rows: the innermost axis unit-stride everywhere (or statically broadcast): a loop nest over
  the outer axes around the same unit-stride row loop;
- strided: a loop nest with each operand's byte strides (negative strides, broadcasting).

The row loop's pointers are ``noalias``: where an input's memory overlaps the output's (checked
at run time from the extents: in place), the row is computed in blocks into a stack buffer and
copied out. ``out`` must be disjoint from each input or share its exact layout (in place), as the
runtime guarantees; partial overlaps are not detected.
The CPU wrapper (``kernel.py``) and a CUDA wrapper only differ in how they find the arrays and
the range.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from ..ir.node import Node
from .scalar import emit_program, load_value, memory_type, store_value

__all__ = ["I64", "PTR", "Operand", "counted_loop", "emit_elemwise_core", "finish_ir",
           "load_operands"]

I64 = ir.IntType(64)
# the stack buffer an in-place row is computed in, block by block
BUFFER_BYTES = 4096
PTR = ir.PointerType()


def i64(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


# loop metadata must refer to itself, which llvmlite cannot build: loops are marked with a
# placeholder node that ``finish_ir`` turns into the real one when the module is printed
_LOOP_HINTS = {
    # strided loops: gathers and unrolled copies cost more code and compile time than they save
    "scalar": ('!{!"llvm.loop.vectorize.enable", i1 false}', '!{!"llvm.loop.unroll.disable"}'),
    # vectorised loops: one vector body per iteration (the math bodies have ILP enough)
    "vector": ('!{!"llvm.loop.interleave.count", i32 1}',),
}
_HINT_LINE = re.compile(r'^(!\d+) = !{ !"graphc\.loop\.(\w+)" }$', re.MULTILINE)


def finish_ir(text: str) -> str:
    """The module text with the placeholder loop metadata made real."""
    def real(match):
        return f"{match[1]} = distinct !{{{match[1]}, {', '.join(_LOOP_HINTS[match[2]])}}}"

    return _HINT_LINE.sub(real, text)


def counted_loop(builder: ir.IRBuilder, start, stop, carried: Sequence[ir.Value],
                 body: Callable, vectorize: bool | None = None, step=None) -> list:
    """``for i in range(start, stop, step)`` (step 1 by default) with loop-carried values.

    ``body(i, values) -> new values`` emits the body at the builder's position (it may add
    blocks). Returns the carried values after the loop; the builder ends after the loop.
    ``vectorize`` adds a hint for LLVM: False keeps the loop scalar and rolled (strided loops),
    True asks for one vector body per iteration (no interleaving); None leaves it to LLVM.
    """
    before = builder.block
    function = before.function
    loop = function.append_basic_block("loop")
    after = function.append_basic_block("after")
    builder.cbranch(builder.icmp_signed("<", start, stop), loop, after)
    builder.position_at_end(loop)
    index = builder.phi(I64, "i")
    index.add_incoming(start, before)
    phis = []
    for value in carried:
        phi = builder.phi(value.type)
        phi.add_incoming(value, before)
        phis.append(phi)
    updated = list(body(index, list(phis)))
    following = builder.add(index, i64(1) if step is None else step)
    latch = builder.block
    index.add_incoming(following, latch)
    for phi, value in zip(phis, updated):
        phi.add_incoming(value, latch)
    branch = builder.cbranch(builder.icmp_signed("<", following, stop), loop, after)
    if vectorize is not None:
        hint = f"graphc.loop.{'vector' if vectorize else 'scalar'}"
        branch.set_metadata("llvm.loop",
                            builder.module.add_metadata([ir.MetaDataString(builder.module, hint)]))
    builder.position_at_end(after)
    results = []
    for value, phi, new in zip(carried, phis, updated):
        out = builder.phi(value.type)
        out.add_incoming(value, before)
        out.add_incoming(new, latch)
        results.append(out)
    return results


@dataclass
class Operand:
    """One array argument of a core: its data pointer, sizes, strides and static facts."""

    dtype: str
    data: ir.Value
    shape: list  # of i64 values
    strides: list  # of i64 values (bytes)
    static_one: tuple = ()  # per axis: size 1 known statically (read with stride 0)

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    def step(self, builder: ir.IRBuilder, axis: int):
        """The byte step along ``axis``: 0 where the size is 1 (statically or at run time)."""
        if self.static_one and self.static_one[axis]:
            return i64(0)
        is_one = builder.icmp_signed("==", self.shape[axis], i64(1))
        return builder.select(is_one, i64(0), self.strides[axis])


def load_operands(builder: ir.IRBuilder, args: Sequence[ir.Value], dtypes: Sequence[str],
                  ndim: int, static_ones: Sequence[tuple]) -> list[Operand]:
    """Operands from ``(data, shape, strides)`` argument triples, reading the ndim sizes."""
    operands = []
    for k, dtype in enumerate(dtypes):
        data, shape_ptr, strides_ptr = args[3 * k: 3 * k + 3]
        shape = [builder.load(builder.gep(shape_ptr, [i64(d)], source_etype=I64), typ=I64)
                 for d in range(ndim)]
        strides = [builder.load(builder.gep(strides_ptr, [i64(d)], source_etype=I64), typ=I64)
                   for d in range(ndim)]
        operands.append(Operand(dtype, data, shape, strides, tuple(static_ones[k])))
    return operands


def offset(builder: ir.IRBuilder, pointer, byte_offset):
    return builder.gep(pointer, [byte_offset], source_etype=ir.IntType(8))


def c_contiguous(builder: ir.IRBuilder, operand: Operand, out_shape) -> ir.Value:
    """Whether ``operand`` has exactly ``out_shape`` and C-contiguous strides."""
    ok = ir.Constant(ir.IntType(1), 1)
    expected = i64(operand.itemsize)
    for d in reversed(range(len(out_shape))):
        size = operand.shape[d]
        same = builder.icmp_signed("==", size, out_shape[d])
        stride_ok = builder.or_(builder.icmp_signed("==", operand.strides[d], expected),
                                builder.icmp_signed("<=", size, i64(1)))
        ok = builder.and_(ok, builder.and_(same, stride_ok))
        expected = builder.mul(expected, size)
    return ok


def extent(builder: ir.IRBuilder, operand: Operand):
    """(lowest byte address, one past the highest, empty) of the operand's elements."""
    low = high = builder.ptrtoint(operand.data, I64)
    empty = ir.Constant(ir.IntType(1), 0)
    for size, stride in zip(operand.shape, operand.strides):
        span = builder.mul(builder.sub(size, i64(1)), stride)
        negative = builder.icmp_signed("<", span, i64(0))
        low = builder.add(low, builder.select(negative, span, i64(0)))
        high = builder.add(high, builder.select(negative, i64(0), span))
        empty = builder.or_(empty, builder.icmp_signed("==", size, i64(0)))
    return low, builder.add(high, i64(operand.itemsize)), empty


def disjoint_from(builder: ir.IRBuilder, out: Operand, inputs: Sequence[Operand]) -> ir.Value:
    """Whether no input's memory overlaps the output's (then the row loop may use noalias)."""
    out_low, out_high, out_empty = extent(builder, out)
    ok = ir.Constant(ir.IntType(1), 1)
    for operand in inputs:
        low, high, empty = extent(builder, operand)
        apart = builder.or_(builder.icmp_unsigned("<=", high, out_low),
                            builder.icmp_unsigned("<=", out_high, low))
        ok = builder.and_(ok, builder.or_(apart, builder.or_(empty, out_empty)))
    return ok


# --- the row loop ----------------------------------------------------------------------------

def emit_row(module: ir.Module, name: str, program: Node, in_dtypes, out_dtype: str,
             invariant: Sequence[bool]) -> ir.Function:
    """``void name(ptr noalias out, ptr noalias in_0, ..., i64 n)``: out[i] = program(in_k[i])
    for i < n, reading ``in_k[0]`` once for the ``invariant`` inputs (broadcast along the row).

    Callers guarantee ``noalias``: ``out`` never overlaps an input (see ``_call_row``).
    """
    n_in = len(in_dtypes)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * (n_in + 1) + [I64]), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")  # one copy of the (vectorised) body, not one per call site
    for arg in fn.args[:-1]:
        arg.add_attribute("noalias")
    out, inputs, n = fn.args[0], fn.args[1:-1], fn.args[-1]
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    fixed = [load_value(builder, p, d) if inv else None
             for p, d, inv in zip(inputs, in_dtypes, invariant)]

    def body(i, _):
        values = [v if v is not None else load_value(builder, _element(builder, p, i, d), d)
                  for v, p, d in zip(fixed, inputs, in_dtypes)]
        result = emit_program(builder, program, values)
        store_value(builder, result, _element(builder, out, i, out_dtype), out_dtype)
        return []

    counted_loop(builder, i64(0), n, [], body, vectorize=True)
    builder.ret_void()
    return fn


def _element(builder, pointer, index, dtype):
    return builder.gep(pointer, [index], inbounds=True, source_etype=memory_type(dtype))


def _memcpy(builder: ir.IRBuilder, target, source, size) -> None:
    module = builder.module
    fn = module.globals.get("llvm.memcpy.p0.p0.i64")
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, ir.IntType(1)]),
                         "llvm.memcpy.p0.p0.i64")
    builder.call(fn, [target, source, size, ir.Constant(ir.IntType(1), 0)])


class RowCaller:
    """Calls the row loop; where an input overlaps the output (in place), it writes blocks of
    the row into a stack buffer and copies them out, so the row's ``noalias`` stays true."""

    def __init__(self, builder: ir.IRBuilder, row: ir.Function, inputs, out, invariant,
                 disjoint):
        self.builder, self.row, self.inputs, self.out = builder, row, inputs, out
        self.invariant, self.disjoint = invariant, disjoint
        self.block = BUFFER_BYTES // out.itemsize
        with builder.goto_entry_block():
            self.buffer = builder.alloca(ir.ArrayType(ir.IntType(8), BUFFER_BYTES))
        self.buffer.align = 64

    def __call__(self, pointers, out_pointer, n) -> None:
        builder = self.builder
        with builder.if_else(self.disjoint) as (separate, overlapping):
            with separate:
                builder.call(self.row, [out_pointer, *pointers, n])
            with overlapping:
                blocks = builder.sdiv(builder.add(n, i64(self.block - 1)), i64(self.block))
                counted_loop(builder, i64(0), blocks, [], lambda b, _: self._block(
                    pointers, out_pointer, n, builder.mul(b, i64(self.block))))

    def _block(self, pointers, out_pointer, n, first):
        builder = self.builder
        left = builder.sub(n, first)
        count = builder.select(builder.icmp_signed("<", left, i64(self.block)), left,
                               i64(self.block))
        moved = [p if inv else offset(builder, p, builder.mul(first, i64(op.itemsize)))
                 for p, op, inv in zip(pointers, self.inputs, self.invariant)]
        builder.call(self.row, [self.buffer, *moved, count])
        target = offset(builder, out_pointer, builder.mul(first, i64(self.out.itemsize)))
        _memcpy(builder, target, self.buffer, builder.mul(count, i64(self.out.itemsize)))
        return []


def _strided_row(builder, program, inputs, steps, out, out_step, pointers, out_pointer, n):
    """The innermost loop with byte steps (any strides)."""

    def body(i, _):
        values = [load_value(builder, offset(builder, p, builder.mul(i, s)), op.dtype)
                  for op, p, s in zip(inputs, pointers, steps)]
        result = emit_program(builder, program, values)
        store_value(builder, result, offset(builder, out_pointer, builder.mul(i, out_step)),
                    out.dtype)
        return []

    counted_loop(builder, i64(0), n, [], body, vectorize=False)


# --- the core --------------------------------------------------------------------------------

def new_core(module: ir.Module, name: str, params: Sequence[Node], ndim: int):
    """A core function (three pointers per operand, the outputs last, then start and stop),
    internal and always inlined, and each operand's statically size-1 axes."""
    n_ops = len(params) + 1
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * (3 * n_ops) + [I64, I64]), name)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    static_ones = [tuple(s == 1 for s in p.type.shape) for p in params] + [(False,) * ndim]
    return fn, static_ones


def emit_elemwise_core(module: ir.Module, name: str, program: Node, params: Sequence[Node],
                       out_dtype: str) -> ir.Function:
    """Add the core function ``name`` computing ``program`` elementwise (see the module doc)."""
    ndim = program.ndim
    in_dtypes = [p.dtype for p in params]
    fn, static_ones = new_core(module, name, params, ndim)
    start, stop = fn.args[-2:]
    scalar_row = [ndim == 0 or ones[-1] for ones in static_ones[:-1]]
    row = emit_row(module, f"{name}_row", program, in_dtypes, out_dtype, scalar_row)
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    *inputs, out = load_operands(builder, fn.args[:-2], in_dtypes + [out_dtype], ndim, static_ones)
    disjoint = disjoint_from(builder, out, inputs)
    call_row = RowCaller(builder, row, inputs, out, scalar_row, disjoint)

    if ndim == 0:
        with builder.if_then(builder.icmp_signed("<", start, stop)):
            call_row([op.data for op in inputs], out.data, i64(1))
        builder.ret_void()
        return fn

    # flat: every operand contiguous with the output's shape, or statically one element
    all_ones = [all(ones) for ones in static_ones[:-1]]
    flat_possible = all(a == r for a, r in zip(all_ones, scalar_row))
    flat = c_contiguous(builder, out, out.shape)
    for operand, one in zip(inputs, all_ones):
        if not one:
            flat = builder.and_(flat, c_contiguous(builder, operand, out.shape))
    if not flat_possible:
        flat = ir.Constant(ir.IntType(1), 0)
    with builder.if_else(flat) as (flat_path, nested_path):
        with flat_path:
            _emit_flat(builder, inputs, out, all_ones, start, stop, call_row)
        with nested_path:
            _emit_nest(builder, program, inputs, out, start, stop, call_row)
    builder.ret_void()
    return fn


def _byte_offset(builder, operand: Operand, index):
    return offset(builder, operand.data, builder.mul(index, i64(operand.itemsize)))


def _emit_flat(builder, inputs, out, scalar, start, stop, call_row) -> None:
    """One row over the elements of rows [start, stop) (all operands C-contiguous)."""
    row_size = i64(1)
    for size in out.shape[1:]:
        row_size = builder.mul(row_size, size)
    first = builder.mul(start, row_size)
    count = builder.mul(builder.sub(stop, start), row_size)
    pointers = [op.data if one else _byte_offset(builder, op, first)
                for op, one in zip(inputs, scalar)]
    with builder.if_then(builder.icmp_signed(">", count, i64(0))):
        call_row(pointers, _byte_offset(builder, out, first), count)


def _emit_nest(builder, program, inputs, out, start, stop, call_row) -> None:
    """Loops over the outer axes; the innermost axis as a unit-stride row when it can be."""
    ndim = len(out.shape)
    last = ndim - 1
    steps = [[op.step(builder, d) for d in range(ndim)] for op in inputs]
    out_steps = list(out.strides)
    inner_size = out.shape[last]
    short = builder.icmp_signed("<=", inner_size, i64(1))
    unit = builder.or_(builder.icmp_signed("==", out.strides[last], i64(out.itemsize)), short)
    for op in inputs:
        if op.static_one[last]:
            continue
        same = builder.icmp_signed("==", op.shape[last], inner_size)
        unit_stride = builder.icmp_signed("==", op.strides[last], i64(op.itemsize))
        unit = builder.and_(unit, builder.and_(same, builder.or_(unit_stride, short)))

    def inner(pointers, out_pointer, first, stop_index):
        pointers = [offset(builder, p, builder.mul(first, s[last]))
                    for p, s in zip(pointers, steps)]
        out_pointer = offset(builder, out_pointer, builder.mul(first, out_steps[last]))
        n = builder.sub(stop_index, first)
        with builder.if_else(unit) as (unit_path, strided_path):
            with unit_path:
                call_row(pointers, out_pointer, n)
            with strided_path:
                _strided_row(builder, program, inputs, [s[last] for s in steps], out,
                             out_steps[last], pointers, out_pointer, n)

    def level(axis, pointers, out_pointer):
        lo, hi = (start, stop) if axis == 0 else (i64(0), out.shape[axis])
        if axis == last:
            inner(pointers, out_pointer, lo, hi)
            return

        def body(i, _):
            moved = [offset(builder, p, builder.mul(i, s[axis])) for p, s in zip(pointers, steps)]
            level(axis + 1, moved, offset(builder, out_pointer, builder.mul(i, out_steps[axis])))
            return []

        counted_loop(builder, lo, hi, [], body)

    # NOTE: recursion over the axes of one kernel (ndim levels), not over a graph
    level(0, [op.data for op in inputs], out.data)
