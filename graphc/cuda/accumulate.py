"""Reduction states for CUDA kernels: each reduction as (init, step, merge, finish).

A state is a short list of register values. ``step`` adds one element (with its flat index
in the reduced axes); ``merge`` joins two states made from disjoint sets of elements, in any
order (a tree of warp shuffles, a second pass over partial states), so every merge is
commutative and associative up to float rounding. Results follow NumPy (the references of
``graphc/opdefs/reduce.py``): sums and products in NumPy's result dtype, float sums in
float64; max/min propagate NaN; argmax/argmin give the smallest index of the extremum, or of
the first NaN; empty reductions give the identity.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir

from ..codegen.scalar import CannotEmit, Scalar, convert
from ..ir.types import is_float

__all__ = ["GpuAccumulator", "gpu_accumulator"]

BOOL = ir.IntType(1)
I64 = ir.IntType(64)
NO_INDEX = (1 << 63) - 1  # the index of an empty argmax state: larger than any real one


class GpuAccumulator:
    """One reduction: ``body`` is the dtype of the elements, ``out`` that of the result."""

    def __init__(self, body: str, out: str):
        self.body, self.out = body, out

    def init(self, e: Scalar) -> list:
        raise NotImplementedError

    def step(self, e: Scalar, state: list, x, index) -> list:
        raise NotImplementedError

    def merge(self, e: Scalar, a: list, b: list) -> list:
        raise NotImplementedError

    def finish(self, e: Scalar, state: list):
        return state[0]

    def types(self, e: Scalar) -> list:
        return [v.type for v in self.init(e)]


class Sum(GpuAccumulator):
    """Float sums add in float64 (rounded once at the end); integer sums wrap in ``out``."""

    def __init__(self, body, out):
        super().__init__(body, out)
        self.acc = "float64" if is_float(out) else out

    def init(self, e):
        return [e.const(self.acc, 0)]

    def _add(self, e, a, b):
        return e.b.fadd(a, b) if is_float(self.acc) else e.b.add(a, b)

    def step(self, e, state, x, index):
        return [self._add(e, state[0], convert(e.b, x, self.body, self.acc))]

    def merge(self, e, a, b):
        return [self._add(e, a[0], b[0])]

    def finish(self, e, state):
        return convert(e.b, state[0], self.acc, self.out)


class Prod(GpuAccumulator):
    def init(self, e):
        return [e.const(self.out, 1)]

    def _mul(self, e, a, b):
        return e.b.fmul(a, b) if is_float(self.out) else e.b.mul(a, b)

    def step(self, e, state, x, index):
        return [self._mul(e, state[0], convert(e.b, x, self.body, self.out))]

    def merge(self, e, a, b):
        return [self._mul(e, a[0], b[0])]


class Extremum(GpuAccumulator):
    """max / min; floats keep the extremum of the non-NaN values and a 'saw NaN' flag."""

    def __init__(self, body, out, larger: bool):
        super().__init__(body, out)
        self.larger = larger

    def init(self, e):
        if is_float(self.body):
            return [e.const(self.body, -math.inf if self.larger else math.inf),
                    ir.Constant(BOOL, 0)]
        if self.body == "bool":
            return [ir.Constant(BOOL, 0 if self.larger else 1)]
        info = np.iinfo(self.body)
        return [e.const(self.body, int(info.min if self.larger else info.max))]

    def step(self, e, state, x, index):
        if is_float(self.body):
            return self.merge(e, state, [x, e.isnan(x)])
        return self.merge(e, state, [x])

    def merge(self, e, a, b):
        if self.body == "bool":
            return [(e.b.or_ if self.larger else e.b.and_)(a[0], b[0])]
        if is_float(self.body):  # maxnum/minnum skip NaN; the flags remember one
            value = e.intrinsic("maxnum" if self.larger else "minnum", self.body, a[0], b[0])
            return [value, e.b.or_(a[1], b[1])]
        better = (e.greater if self.larger else e.less)(self.body, b[0], a[0])
        return [e.b.select(better, b[0], a[0])]

    def finish(self, e, state):
        if is_float(self.body):
            return e.b.select(state[1], e.const(self.body, math.nan), state[0])
        return state[0]


class ArgExtremum(GpuAccumulator):
    """argmax / argmin: (value, index); ties and NaNs go to the smaller index."""

    def __init__(self, body, out, larger: bool):
        super().__init__(body, out)
        self.larger = larger
        self.extremum = Extremum(body, out, larger)

    def init(self, e):
        return [self.extremum.init(e)[0], ir.Constant(I64, NO_INDEX)]

    def step(self, e, state, x, index):
        return self.merge(e, state, [x, index])

    def merge(self, e, a, b):
        b_first = e.b.icmp_signed("<", b[1], a[1])
        better = (e.greater if self.larger else e.less)(self.body, b[0], a[0])
        tie = e.b.not_(e.b.or_(better, (e.less if self.larger else e.greater)(
            self.body, b[0], a[0])))
        if is_float(self.body):
            a_nan, b_nan = e.isnan(a[0]), e.isnan(b[0])
            neither = e.b.not_(e.b.or_(a_nan, b_nan))
            ordinary = e.b.and_(neither, e.b.or_(better, e.b.and_(tie, b_first)))
            nan_wins = e.b.and_(b_nan, e.b.or_(e.b.not_(a_nan), b_first))
            take_b = e.b.or_(ordinary, nan_wins)
        else:
            take_b = e.b.or_(better, e.b.and_(tie, b_first))
        return [e.b.select(take_b, b[0], a[0]), e.b.select(take_b, b[1], a[1])]

    def finish(self, e, state):
        return state[1]


class Logical(GpuAccumulator):
    """any / all of the elements' truth (NaN is true, as in NumPy)."""

    def __init__(self, body, out, every: bool):
        super().__init__(body, out)
        self.every = every

    def init(self, e):
        return [ir.Constant(BOOL, 1 if self.every else 0)]

    def step(self, e, state, x, index):
        if is_float(self.body):
            truth = e.b.fcmp_unordered("!=", x, e.const(self.body, 0.0))
        elif self.body == "bool":
            truth = x
        else:
            truth = e.b.icmp_unsigned("!=", x, e.const(self.body, 0))
        return self.merge(e, state, [truth])

    def merge(self, e, a, b):
        return [(e.b.and_ if self.every else e.b.or_)(a[0], b[0])]


_MAKERS = {
    "sum": Sum, "prod": Prod,
    "max": lambda b, o: Extremum(b, o, True), "min": lambda b, o: Extremum(b, o, False),
    "argmax": lambda b, o: ArgExtremum(b, o, True), "argmin": lambda b, o: ArgExtremum(b, o, False),
    "any": lambda b, o: Logical(b, o, False), "all": lambda b, o: Logical(b, o, True),
}


def gpu_accumulator(name: str, body: str, out: str) -> GpuAccumulator:
    """The state machine of reduction ``name`` (raises ``CannotEmit`` for others)."""
    if name not in _MAKERS:
        raise CannotEmit(f"no CUDA reduction kernel for {name}")
    return _MAKERS[name](body, out)
