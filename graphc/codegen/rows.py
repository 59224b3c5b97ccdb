"""Row kernels: softmax, log_softmax and logsumexp over the last axis, a row at a time.

Each needs the row's maximum, then the sum of ``exp(x - max)``, then a last pass; done as
separate kernels (a max reduction, a fused sum, an elementwise pass) the whole array would
travel from memory three times. Here each row is read while it is still in the cache:

    m     = max(row)                 (NaN if the row has one)
    shift = m if finite(m) else 0    (as the references do)
    s     = sum(exp(row - shift))    softmax stores the exponentials in out on the way
    softmax:     out = e / s
    log_softmax: out = (row - shift) - log(s)
    logsumexp:   out = shift + log(s)   (out has the keepdims shape: one element per row)

``emit_rows_core(module, name, op_name, dtype, ndim)`` adds a core with the elementwise core's
signature (``x`` then ``out`` as ``data, shape, strides`` triples, then ``start, stop`` over
out's axis 0; a 1-d input is one row, run for ``[0, 1)``). Rows whose elements are contiguous
take unit-stride loops that the loop vectoriser turns into SIMD code; others take strided ones.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir

from .elemwise import Operand, counted_loop, i64, load_operands, new_core, offset
from .scalar import Scalar, load_value, store_value

__all__ = ["emit_rows_core"]


class _Row:
    """One row's passes: pointers, element steps and the row length."""

    def __init__(self, builder, dtype, op_name, x_ptr, x_step, out_ptr, out_step, n, vectorize):
        self.b, self.e = builder, Scalar(builder)
        self.dtype, self.op_name = dtype, op_name
        self.x_ptr, self.x_step, self.out_ptr, self.out_step = x_ptr, x_step, out_ptr, out_step
        self.n, self.vectorize = n, vectorize

    def _at(self, pointer, step, i):
        return offset(self.b, pointer, self.b.mul(i, step))

    def _loop(self, carried, body):
        return counted_loop(self.b, i64(0), self.n, carried, body, vectorize=self.vectorize)

    def x(self, i):
        return load_value(self.b, self._at(self.x_ptr, self.x_step, i), self.dtype)

    def shift(self):
        """The row's maximum where finite, else 0; NaN rows are seen by the max's flag."""
        e, b = self.e, self.b
        start = [e.const(self.dtype, -math.inf), ir.Constant(ir.IntType(1), 0)]

        def body(i, accs):
            x = self.x(i)
            # nnan: after a NaN the value may be poison, but the flag then decides (see reduce.py)
            value = e.intrinsic("maxnum", self.dtype, accs[0], x, fastmath=("nnan", "nsz"))
            return [value, b.or_(accs[1], e.isnan(x))]

        m, saw_nan = self._loop(start, body)
        finite = b.fcmp_ordered("<", e.intrinsic("fabs", self.dtype, m),
                                e.const(self.dtype, math.inf))
        return b.select(b.and_(finite, b.not_(saw_nan)), m, e.const(self.dtype, 0.0))

    def exp_sum(self, shift, store: bool):
        """sum(exp(x - shift)) (lanes reassociated); the exponentials go to out if ``store``."""
        e, b = self.e, self.b

        def body(i, accs):
            value = e.math("exp", self.dtype, b.fsub(self.x(i), shift))
            if store:
                store_value(b, value, self._at(self.out_ptr, self.out_step, i), self.dtype)
            total = b.fadd(accs[0], value)
            total.flags.append("reassoc")
            return [total]

        return self._loop([e.const(self.dtype, 0.0)], body)[0]

    def emit(self):
        b, e = self.b, self.e
        shift = self.shift()
        total = self.exp_sum(shift, store=self.op_name == "softmax")
        if self.op_name == "logsumexp":
            log_total = e.math("log", self.dtype, total)
            store_value(b, b.fadd(shift, log_total), self.out_ptr, self.dtype)
            return
        if self.op_name == "softmax":
            def scale(i, _):
                where = self._at(self.out_ptr, self.out_step, i)
                store_value(b, b.fdiv(load_value(b, where, self.dtype), total), where, self.dtype)
                return []
        else:
            log_total = e.math("log", self.dtype, total)

            def scale(i, _):
                value = b.fsub(b.fsub(self.x(i), shift), log_total)
                store_value(b, value, self._at(self.out_ptr, self.out_step, i), self.dtype)
                return []
        self._loop([], scale)


def _emit_row(builder, dtype, op_name, x: Operand, out: Operand, x_ptr, out_ptr):
    """One row, unit-stride (vectorisable) or strided, chosen at run time."""
    b = builder
    item = i64(np.dtype(dtype).itemsize)
    n = x.shape[-1]
    unit = b.icmp_signed("==", x.strides[-1], item)
    if op_name != "logsumexp":
        unit = b.and_(unit, b.icmp_signed("==", out.strides[-1], item))
    with b.if_else(unit) as (contiguous, strided):
        with contiguous:
            _Row(b, dtype, op_name, x_ptr, item, out_ptr, item, n, None).emit()
        with strided:
            _Row(b, dtype, op_name, x_ptr, x.strides[-1], out_ptr, out.strides[-1], n,
                 False).emit()


def emit_rows_core(module: ir.Module, name: str, op_name: str, dtype: str, ndim: int,
                   param) -> ir.Function:
    """Add the core ``name`` computing ``op_name`` over the last axis (see the module doc)."""
    fn, _ = new_core(module, name, [param], ndim)
    start, stop = fn.args[-2:]
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    no_static = [(False,) * ndim] * 2
    x, out = load_operands(builder, fn.args[:-2], [dtype, dtype], ndim, no_static)

    def outer(level, x_ptr, out_ptr):
        if level == ndim - 1:
            _emit_row(builder, dtype, op_name, x, out, x_ptr, out_ptr)
            return
        lo, hi = (start, stop) if level == 0 else (i64(0), x.shape[level])

        def body(i, _):
            outer(level + 1, offset(builder, x_ptr, builder.mul(i, x.strides[level])),
                  offset(builder, out_ptr, builder.mul(i, out.strides[level])))
            return []

        counted_loop(builder, lo, hi, [], body)

    if ndim == 1:
        with builder.if_then(builder.icmp_signed("<", start, stop)):
            outer(0, x.data, out.data)
    else:
        outer(0, x.data, out.data)
    builder.ret_void()
    return fn
