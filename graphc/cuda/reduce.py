"""Reduction CUDA kernels (with an elementwise prologue): warp shuffles and a second pass.

The output has M elements (the kept axes, C order), each reducing R elements (the reduced
axes, C order; ``argmax``'s index is the position in that order). One module holds three
kernels over the same arguments:

    NAME_block(i64 M, i64 R, i64 S, i64 chunk, ptr partials,
               [ptr data_k, i64 kept strides of k..., i64 reduced strides of k...] per input,
               ptr out, i64 out kept strides..., i64 kept sizes..., i64 reduced sizes...)
    NAME_serial(same arguments)
    NAME_merge(i64 M, i64 S, ptr partials, ptr out, i64 out kept strides..., i64 kept sizes...)

- ``block``: a block per (output element, split): its threads take every ``block size``-th
  element of the split's ``chunk`` of R, then the block combines their states by warp
  shuffles (``shfl.sync.down``) and shared memory. With ``S == 1`` thread 0 writes the
  result; otherwise it writes the state (K int64 slots) to ``partials[(o * S + s) * K + k]``
  and ``merge`` (the second pass, a block per output) combines the S states and writes.
- ``serial``: a thread per output element, looping over its R elements: for many outputs
  over few elements, or reductions over leading axes (neighbouring threads then read
  neighbouring memory).

Strides are in bytes, 0 where an input is broadcast (the host sets them, see
``graphc.cuda.launch``). Blocks must be whole warps (a multiple of 32 threads).
"""
from __future__ import annotations

from collections.abc import Sequence

from llvmlite import ir

from ..codegen.scalar import Scalar, emit_program, load_value, store_value
from ..ir.node import Node
from .accumulate import GpuAccumulator, gpu_accumulator
from .elemwise import byte_offset, dot, grid_stride_loop, i64, unravel
from .nvvm import (
    I64,
    PTR,
    WARP,
    Threads,
    barrier,
    from_bits,
    kernel_function,
    shared_array,
    shuffle_down,
    to_bits,
)

__all__ = ["emit_reduce_kernels"]


class _Layout:
    """The kernels' arguments by meaning (see the module doc)."""

    def __init__(self, args, n_inputs: int, n_kept: int, n_reduced: int):
        args = list(args)
        self.M, self.R, self.S, self.chunk, self.partials = args[:5]
        per_input = 1 + n_kept + n_reduced
        self.inputs = []
        for k in range(n_inputs):
            part = args[5 + k * per_input: 5 + (k + 1) * per_input]
            self.inputs.append((part[0], part[1:1 + n_kept], part[1 + n_kept:]))
        rest = args[5 + n_inputs * per_input:]
        self.out, self.out_strides = rest[0], rest[1:1 + n_kept]
        self.kept_sizes = rest[1 + n_kept:1 + 2 * n_kept]
        self.reduced_sizes = rest[1 + 2 * n_kept:]


def _arg_types(n_inputs: int, n_kept: int, n_reduced: int) -> list:
    per_input = [PTR] + [I64] * (n_kept + n_reduced)
    return [I64] * 4 + [PTR] + per_input * n_inputs + [PTR] + [I64] * (2 * n_kept + n_reduced)


class _Emitter:
    """The pieces every kernel of one reduction shares."""

    def __init__(self, builder, program, in_dtypes, acc: GpuAccumulator, out_dtype, smem=None):
        self.b, self.program, self.in_dtypes = builder, program, in_dtypes
        self.acc, self.out_dtype, self.smem = acc, out_dtype, smem
        self.e = Scalar(builder)

    def kept_offsets(self, layout: _Layout, o):
        """Byte offsets of output element ``o`` in each input and in ``out``."""
        coords = unravel(self.b, o, layout.kept_sizes)
        inputs = [dot(self.b, coords, kept) for _, kept, _ in layout.inputs]
        return inputs, dot(self.b, coords, layout.out_strides)

    def accumulate(self, layout: _Layout, bases, first, stop, step, state):
        """``state`` with the elements ``first, first + step, ... < stop`` of R added."""
        b = self.b

        def body(r, values):
            coords = unravel(b, r, layout.reduced_sizes)
            loaded = []
            for (data, _, reduced), base, dtype in zip(layout.inputs, bases, self.in_dtypes):
                where = b.add(base, dot(b, coords, reduced))
                loaded.append(load_value(b, byte_offset(b, data, where), dtype))
            x = emit_program(b, self.program, loaded)
            return self.acc.step(self.e, values, x, r)

        return grid_stride_loop(b, first, stop, step, body, state)

    def store_result(self, out, offset, state) -> None:
        value = self.acc.finish(self.e, state)
        store_value(self.b, value, byte_offset(self.b, out, offset), self.out_dtype)

    def warp_reduce(self, state):
        for delta in (16, 8, 4, 2, 1):
            other = [shuffle_down(self.b, value, delta) for value in state]
            state = self.acc.merge(self.e, state, other)
        return state

    def block_reduce(self, threads: Threads, state):
        """The merged state of the whole block, valid in thread 0 (every thread calls this)."""
        b = self.b
        k = len(state)
        state = self.warp_reduce(state)
        with b.if_then(b.icmp_unsigned("==", threads.lane, i64(0))):
            for j, value in enumerate(state):
                slot = b.add(b.mul(threads.warp, i64(k)), i64(j))
                b.store(_widen(b, to_bits(b, value)), self._slot(slot))
        barrier(b)
        has_warp = b.icmp_unsigned("<", threads.thread, threads.n_warps)
        row = b.select(has_warp, threads.thread, i64(0))
        initial = self.acc.init(self.e)
        loaded = []
        for j, value in enumerate(state):
            bits = b.load(self._slot(b.add(b.mul(row, i64(k)), i64(j))), typ=I64)
            loaded.append(b.select(has_warp, from_bits(b, bits, value.type), initial[j]))
        state = self.warp_reduce(loaded)
        barrier(b)  # the shared slots are free again
        return state

    def _slot(self, index):
        return self.b.gep(self.smem, [index], source_etype=I64)

    def store_state(self, partials, index, state) -> None:
        k = len(state)
        for j, value in enumerate(state):
            slot = self.b.add(self.b.mul(index, i64(k)), i64(j))
            where = self.b.gep(partials, [slot], source_etype=I64)
            self.b.store(_widen(self.b, to_bits(self.b, value)), where)

    def load_state(self, partials, index, types):
        k = len(types)
        state = []
        for j, ty in enumerate(types):
            slot = self.b.add(self.b.mul(index, i64(k)), i64(j))
            bits = self.b.load(self.b.gep(partials, [slot], source_etype=I64), typ=I64)
            state.append(from_bits(self.b, bits, ty))
        return state


def _widen(builder: ir.IRBuilder, bits: ir.Value) -> ir.Value:
    return builder.zext(bits, I64) if bits.type.width < 64 else bits


def _emit_block(module, name, emitter_args, n_inputs, n_kept, n_reduced, n_state):
    fn = kernel_function(module, name, _arg_types(n_inputs, n_kept, n_reduced))
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    smem = shared_array(module, f"{name}_smem", I64, WARP * n_state)
    em = _Emitter(builder, *emitter_args, smem=smem)
    layout = _Layout(fn.args, n_inputs, n_kept, n_reduced)
    threads = Threads(builder)
    tasks = builder.mul(layout.M, layout.S)

    def task(t, _):
        b = builder
        o, s = b.udiv(t, layout.S), b.urem(t, layout.S)
        bases, out_offset = em.kept_offsets(layout, o)
        first = b.mul(s, layout.chunk)
        stop = b.add(first, layout.chunk)
        stop = b.select(b.icmp_signed("<", stop, layout.R), stop, layout.R)
        state = em.accumulate(layout, bases, b.add(first, threads.thread), stop,
                              threads.block_size, em.acc.init(em.e))
        state = em.block_reduce(threads, state)
        with b.if_then(b.icmp_unsigned("==", threads.thread, i64(0))):
            with b.if_else(b.icmp_signed("==", layout.S, i64(1))) as (whole, split):
                with whole:
                    em.store_result(layout.out, out_offset, state)
                with split:
                    em.store_state(layout.partials, t, state)
        return []

    grid_stride_loop(builder, threads.block, tasks, threads.grid_size, task)
    builder.ret_void()


def _emit_serial(module, name, emitter_args, n_inputs, n_kept, n_reduced):
    fn = kernel_function(module, name, _arg_types(n_inputs, n_kept, n_reduced))
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    em = _Emitter(builder, *emitter_args)
    layout = _Layout(fn.args, n_inputs, n_kept, n_reduced)
    threads = Threads(builder)

    def output(o, _):
        bases, out_offset = em.kept_offsets(layout, o)
        state = em.accumulate(layout, bases, i64(0), layout.R, i64(1), em.acc.init(em.e))
        em.store_result(layout.out, out_offset, state)
        return []

    grid_stride_loop(builder, threads.global_id, layout.M, threads.global_size, output)
    builder.ret_void()


def _emit_merge(module, name, emitter_args, n_kept, types):
    fn = kernel_function(module, name, [I64, I64, PTR, PTR] + [I64] * (2 * n_kept))
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    smem = shared_array(module, f"{name}_smem", I64, WARP * len(types))
    em = _Emitter(builder, *emitter_args, smem=smem)
    M, S, partials, out = fn.args[:4]
    out_strides, kept_sizes = fn.args[4:4 + n_kept], fn.args[4 + n_kept:]
    threads = Threads(builder)

    def output(o, _):
        b = builder
        out_offset = dot(b, unravel(b, o, kept_sizes), out_strides)

        def take(s, state):
            return em.acc.merge(em.e, state, em.load_state(partials, b.add(b.mul(o, S), s), types))

        state = grid_stride_loop(b, threads.thread, S, threads.block_size, take,
                                 em.acc.init(em.e))
        state = em.block_reduce(threads, state)
        with b.if_then(b.icmp_unsigned("==", threads.thread, i64(0))):
            em.store_result(out, out_offset, state)
        return []

    grid_stride_loop(builder, threads.block, M, threads.grid_size, output)
    builder.ret_void()


def emit_reduce_kernels(module: ir.Module, name: str, program: Node, params: Sequence[Node],
                        reduction: str, axes: Sequence[int], out_dtype: str) -> int:
    """Add ``name_block``, ``name_serial`` and ``name_merge`` (see the module doc); returns
    the number of int64 slots of one partial state."""
    ndim = program.ndim
    n_reduced = len(set(axes))
    n_kept = ndim - n_reduced
    acc = gpu_accumulator(reduction, program.dtype, out_dtype)
    in_dtypes = [p.dtype for p in params]
    emitter_args = (program, in_dtypes, acc, out_dtype)
    types = acc.types(Scalar(None))
    n = len(params)
    _emit_block(module, f"{name}_block", emitter_args, n, n_kept, n_reduced, len(types))
    _emit_serial(module, f"{name}_serial", emitter_args, n, n_kept, n_reduced)
    _emit_merge(module, f"{name}_merge", emitter_args, n_kept, types)
    return len(types)
