"""Scalar code of each elementwise op, as LLVM IR, with NumPy's semantics for every dtype.

``emit_program(builder, root, values)`` writes the straight-line code of a program (a graph of
elementwise nodes over ``param`` leaves and one-element constants, see ``graphc.opdefs.fused``)
for one element; the loop wrappers in ``elemwise.py`` / ``reduce.py`` call it in their bodies.
Every emitter is a small function ``(e: Scalar, node, *args) -> value`` in ``EMITTERS``, keyed by
op name; an op (or an op/dtype pair) without one raises ``CannotEmit`` and the runtime runs that
node on the NumPy reference instead.

Registers hold bool as ``i1``, integers as ``iN`` (signedness comes from the dtype) and floats
as ``float``/``double``; memory holds bool as ``i8``. Only NVPTX-safe operations are used: plain
arithmetic, compares, selects, casts, bit operations and the intrinsics ``fma fabs sqrt floor
ceil rint copysign`` (the transcendental functions come from ``mathlib``), so the CUDA backend can
reuse this module with its own loops. No fast-math flags.

Semantics worth knowing (all NumPy's, checked by tests/codegen):

- integers wrap; ``//`` and ``%`` follow Python's signs, division by zero gives 0 and
  ``MIN // -1`` gives MIN (no LLVM UB: the divisor is replaced by 1 in those cases);
- float -> int casts follow NumPy on x86-64: a value outside the target's conversion range
  (NaN and inf included) gives the x86 "integer indefinite" pattern (int8/16/32 and uint8/16
  through int32, int64 directly, uint32/uint64 through the "subtract 2^(n-1)" sequence);
- maximum/minimum/clip propagate NaN; ``sign(nan)`` is NaN; ``round`` is half-to-even;
- ``pow`` is emitted only for a constant exponent: in (0, 1, 2, 3, -1, 0.5) for floats,
  >= 0 for integers (NumPy raises for negative ones).

Ops that raise ``CannotEmit`` always: arcsin, arccos, arctan, arctan2, erfc; also float
``int_div``/``mod`` (NumPy's floor-divmod needs an exact fmod), ``sub`` on bool and ``pow``
with any other exponent (a plain ``pow`` node, whose exponent is an input, always).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from llvmlite import ir

from ..ir.node import CONSTANT, Node, toposort
from ..ir.op import ELEMWISE
from ..ir.types import FLOAT_DTYPES
from .mathlib import _FORMATS, MATH_FUNCTIONS, _Emitter, emit_math

__all__ = [
    "EMITTERS",
    "CannotEmit",
    "Scalar",
    "constant_value",
    "emit_program",
    "load_value",
    "memory_type",
    "store_value",
    "value_type",
]


class CannotEmit(Exception):
    """The kernel emitter does not support this node (the runtime falls back to NumPy)."""


# --- types and memory ------------------------------------------------------------------------

def value_type(dtype: str) -> ir.Type:
    """The LLVM type of a ``dtype`` value in a register (bool is i1)."""
    if dtype == "bool":
        return ir.IntType(1)
    if dtype == "float32":
        return ir.FloatType()
    if dtype == "float64":
        return ir.DoubleType()
    return ir.IntType(np.dtype(dtype).itemsize * 8)


def memory_type(dtype: str) -> ir.Type:
    """The LLVM type of a ``dtype`` element in memory (bool is i8)."""
    return ir.IntType(8) if dtype == "bool" else value_type(dtype)


def load_value(builder: ir.IRBuilder, pointer: ir.Value, dtype: str) -> ir.Value:
    value = builder.load(pointer, typ=memory_type(dtype))
    if dtype == "bool":
        return builder.icmp_unsigned("!=", value, ir.Constant(ir.IntType(8), 0))
    return value


def store_value(builder: ir.IRBuilder, value: ir.Value, pointer: ir.Value, dtype: str) -> None:
    if dtype == "bool":
        value = builder.zext(value, ir.IntType(8))
    builder.store(value, pointer)


def constant_value(dtype: str, value) -> ir.Constant:
    """An LLVM constant of ``dtype`` (ints as their two's-complement bits)."""
    if dtype in FLOAT_DTYPES:
        return ir.Constant(value_type(dtype), float(np.asarray(value, dtype)))
    if dtype == "bool":
        return ir.Constant(ir.IntType(1), int(bool(value)))
    bits = np.dtype(dtype).itemsize * 8
    return ir.Constant(ir.IntType(bits), int(value) & ((1 << bits) - 1))


def _is_signed(dtype: str) -> bool:
    return dtype.startswith("int")


def _is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def constant_scalar(node: Node):
    """The Python value of a one-element constant (seen through dimshuffles), else None."""
    while node.op.name == "dimshuffle":
        node = node.src[0]
    if node.op is CONSTANT and node.arg.value.size == 1:
        return node.arg.value.reshape(()).item()
    return None


# --- the emitter context ---------------------------------------------------------------------

def convert(builder: ir.IRBuilder, x, source: str, target: str):
    """``x`` of dtype ``source`` as the accumulator dtype ``target`` (a widening, an int to a
    float, or float64 -> float32): what reductions need, without ``cast``'s rounding rules."""
    if source == target:
        return x
    ty = value_type(target)
    if _is_float(target):
        if _is_float(source):
            return builder.fpext(x, ty) if target == "float64" else builder.fptrunc(x, ty)
        return builder.sitofp(x, ty) if _is_signed(source) else builder.uitofp(x, ty)
    if source == "bool" or source.startswith("uint"):
        return builder.zext(x, ty)
    return builder.sext(x, ty)


class Scalar:
    """An IRBuilder plus small typed helpers for one program's scalar code."""

    def __init__(self, builder: ir.IRBuilder):
        self.b = builder

    def const(self, dtype: str, value) -> ir.Constant:
        return constant_value(dtype, value)

    def intrinsic(self, name: str, dtype: str, *args: ir.Value, fastmath=()) -> ir.Value:
        """Call ``llvm.<name>`` overloaded on ``dtype``'s float type."""
        suffix = "f64" if dtype == "float64" else "f32"
        full = f"llvm.{name}.{suffix}"
        module = self.b.module
        fn = module.globals.get(full)
        if fn is None:
            ty = value_type(dtype)
            fn = ir.Function(module, ir.FunctionType(ty, [ty] * len(args)), full)
        return self.b.call(fn, args, fastmath=fastmath)

    def isnan(self, x):
        return self.b.fcmp_unordered("uno", x, x)

    def math(self, name: str, dtype: str, x):
        return emit_math(self.b, name, x, dtype)

    def floats(self, dtype: str) -> _Emitter:
        """mathlib's float helpers (fma, ldexp, ...) on this builder."""
        return _Emitter(self.b, _FORMATS[dtype])

    def greater(self, dtype: str, a, b, equal: bool = False):
        op = ">=" if equal else ">"
        if _is_float(dtype):
            return self.b.fcmp_ordered(op, a, b)
        if _is_signed(dtype):
            return self.b.icmp_signed(op, a, b)
        return self.b.icmp_unsigned(op, a, b)

    def less(self, dtype: str, a, b, equal: bool = False):
        return self.greater(dtype, b, a, equal)


# --- arithmetic ------------------------------------------------------------------------------

def _dtype(node: Node) -> str:
    """The loop dtype (that of the value inputs; where's first input is the condition)."""
    return node.src[-1].dtype


def _arith(float_op: str, int_op: str, bool_op: str | None):
    def emit(e: Scalar, node, a, b):
        dtype = _dtype(node)
        if _is_float(dtype):
            return getattr(e.b, float_op)(a, b)
        if dtype == "bool":
            if bool_op is None:
                raise CannotEmit(f"{node.op.name} of bool (NumPy has no such loop)")
            return getattr(e.b, bool_op)(a, b)
        return getattr(e.b, int_op)(a, b)

    return emit


def _true_div(e: Scalar, node, a, b):
    return e.b.fdiv(a, b)


def _safe_divisor(e: Scalar, dtype: str, a, b):
    """``b`` with 1 where LLVM's division would be UB (b == 0, MIN / -1), and the b == 0 mask."""
    zero = e.b.icmp_unsigned("==", b, e.const(dtype, 0))
    bad = zero
    if _is_signed(dtype):
        info = np.iinfo(dtype)
        overflow = e.b.and_(e.b.icmp_signed("==", a, e.const(dtype, int(info.min))),
                            e.b.icmp_signed("==", b, e.const(dtype, -1)))
        bad = e.b.or_(zero, overflow)
    return e.b.select(bad, e.const(dtype, 1), b), zero


def _int_div(e: Scalar, node, a, b):
    dtype = _dtype(node)
    if _is_float(dtype):
        raise CannotEmit("float floor division (NumPy's divmod needs an exact fmod)")
    divisor, zero = _safe_divisor(e, dtype, a, b)
    if not _is_signed(dtype):
        return e.b.select(zero, e.const(dtype, 0), e.b.udiv(a, divisor))
    quotient = e.b.sdiv(a, divisor)
    rest = e.b.srem(a, divisor)
    # round toward -inf: one less where the remainder is nonzero and its sign differs from b's
    differs = e.b.icmp_signed("<", e.b.xor(rest, b), e.const(dtype, 0))
    adjust = e.b.and_(e.b.icmp_signed("!=", rest, e.const(dtype, 0)), differs)
    quotient = e.b.sub(quotient, e.b.zext(adjust, quotient.type))
    return e.b.select(zero, e.const(dtype, 0), quotient)


def _mod(e: Scalar, node, a, b):
    dtype = _dtype(node)
    if _is_float(dtype):
        raise CannotEmit("float remainder (NumPy's divmod needs an exact fmod)")
    divisor, _ = _safe_divisor(e, dtype, a, b)  # a % 1 == 0 where b == 0 or MIN % -1
    if not _is_signed(dtype):
        return e.b.urem(a, divisor)
    rest = e.b.srem(a, divisor)
    differs = e.b.icmp_signed("<", e.b.xor(rest, b), e.const(dtype, 0))
    adjust = e.b.and_(e.b.icmp_signed("!=", rest, e.const(dtype, 0)), differs)
    return e.b.select(adjust, e.b.add(rest, b), rest)


def _int_power_const(e: Scalar, dtype: str, x, exponent: int):
    """x ** exponent (exponent >= 0, known) by squaring, wrapping like NumPy."""
    result = e.const(dtype, 1)
    square = x
    while exponent:
        if exponent & 1:
            result = e.b.mul(result, square)
        exponent >>= 1
        if exponent:
            square = e.b.mul(square, square)
    return result


def _float_power_const(e: Scalar, dtype: str, x, exponent: float):
    if exponent == 0:
        return e.const(dtype, 1.0)
    if exponent == 1:
        return x
    if exponent == 2:
        return e.b.fmul(x, x)
    if exponent == 3:
        return e.b.fmul(e.b.fmul(x, x), x)
    if exponent == -1:
        return e.b.fdiv(e.const(dtype, 1.0), x)
    if exponent == 0.5:  # NumPy's scalar-exponent fast path is sqrt (sqrt(-0) = -0, unlike pow)
        return e.intrinsic("sqrt", dtype, x)
    raise CannotEmit(f"float pow with the exponent {exponent!r} (only 0, 1, 2, 3, -1, 0.5)")


def _pow(e: Scalar, node, x, y):
    dtype = _dtype(node)
    exponent = constant_scalar(node.src[1])
    if _is_float(dtype):
        if exponent is None:
            raise CannotEmit("float pow with a non-constant exponent (exp(y log x) is not "
                             "accurate enough)")
        return _float_power_const(e, dtype, x, float(exponent))
    if exponent is not None and int(exponent) >= 0:
        return _int_power_const(e, dtype, x, int(exponent))
    raise CannotEmit("integer pow with a non-constant or negative exponent (NumPy raises for "
                     "negative ones; square-and-multiply over every bit is not worth a kernel)")


def _neg(e: Scalar, node, x):
    dtype = _dtype(node)
    return e.b.fneg(x) if _is_float(dtype) else e.b.sub(e.const(dtype, 0), x)


def _abs(e: Scalar, node, x):
    dtype = _dtype(node)
    if _is_float(dtype):
        return e.intrinsic("fabs", dtype, x)
    if not _is_signed(dtype):
        return x
    negative = e.b.icmp_signed("<", x, e.const(dtype, 0))
    return e.b.select(negative, e.b.sub(e.const(dtype, 0), x), x)


def _sign(e: Scalar, node, x):
    dtype = _dtype(node)
    zero = e.const(dtype, 0)
    positive = e.greater(dtype, x, zero)
    if not _is_float(dtype) and not _is_signed(dtype):
        return e.b.zext(positive, x.type)
    negative = e.less(dtype, x, zero)
    if not _is_float(dtype):
        return e.b.sub(e.b.zext(positive, x.type), e.b.zext(negative, x.type))
    # NaN matches no compare and stays NaN; -0.0 gives +0.0 like NumPy
    is_zero = e.b.fcmp_ordered("==", x, zero)
    value = e.b.select(is_zero, zero, x)
    value = e.b.select(negative, e.const(dtype, -1.0), value)
    return e.b.select(positive, e.const(dtype, 1.0), value)


def _sqr(e: Scalar, node, x):
    return e.b.fmul(x, x) if _is_float(_dtype(node)) else e.b.mul(x, x)


def _extremum(larger: bool):
    def emit(e: Scalar, node, a, b):
        dtype = _dtype(node)
        if dtype == "bool":
            return e.b.or_(a, b) if larger else e.b.and_(a, b)
        keep_a = e.greater(dtype, a, b) if larger else e.less(dtype, a, b)
        if _is_float(dtype):  # NumPy: (a > b || isnan(a)) ? a : b: NaN wins, ties give b (-0/+0)
            keep_a = e.b.or_(keep_a, e.isnan(a))
        return e.b.select(keep_a, a, b)

    return emit


# --- transcendental --------------------------------------------------------------------------

def _mathlib(name: str):
    def emit(e: Scalar, node, x):
        return e.math(name, _dtype(node), x)

    return emit


def _sqrt(e: Scalar, node, x):
    return e.intrinsic("sqrt", _dtype(node), x)


# 1/ln 2 and 1/ln 10 to ~34 digits, as (hi, lo) for float64 and float32
_INV_LN2 = (1.4426950408889634074, 2.0355273740931033e-17)
_INV_LN10 = (0.43429448190325182765, 1.0983196502167652e-17)


def _log_scaled(factors):
    """log(x) times a constant given as hi + lo (log2, log10): the product rounded once."""

    def emit(e: Scalar, node, x):
        dtype = _dtype(node)
        f = e.floats(dtype)
        hi = float(np.float32(factors[0])) if dtype == "float32" else factors[0]
        lo = (factors[0] - hi) + factors[1] if dtype == "float32" else factors[1]
        value = e.math("log", dtype, x)
        product = f.mul(value, f.c(hi))
        error = f.fma(value, f.c(hi), f.neg(product))
        result = f.add(product, f.fma(value, f.c(lo), error))
        # log is exact (0, +-inf, nan) at 1, 0, inf and the invalid inputs
        exact = e.b.or_(e.b.fcmp_unordered("uno", result, result),
                        e.b.fcmp_ordered("==", f.intrinsic("fabs", value), f.c(math.inf)))
        return e.b.select(exact, value, result)

    return emit


def _exp2(e: Scalar, node, x):
    """2^x = 2^k exp(r ln 2), k = rint(x), r = x - k exact, r ln 2 in two parts."""
    dtype = _dtype(node)
    f = e.floats(dtype)
    limit = 1100.0 if dtype == "float64" else 160.0
    xc = f.sel(f.isnan(x), f.c(0.0), f.clamp(x, -limit, limit))
    k = f.intrinsic("rint", xc)
    r = f.sub(xc, k)
    ln2_hi, ln2_lo = f.fmt.ln2
    hi = f.mul(r, f.c(ln2_hi))
    lo = f.fma(r, f.c(ln2_lo), f.fma(r, f.c(ln2_hi), f.neg(hi)))
    power = e.math("exp", dtype, hi)
    power = f.fma(power, lo, power)  # exp(hi + lo) = exp(hi) (1 + lo), |r ln 2| <= 0.35
    return f.keep_nan(x, f.ldexp(power, k))


def _tan(e: Scalar, node, x):
    dtype = _dtype(node)
    return e.b.fdiv(e.math("sin", dtype, x), e.math("cos", dtype, x))


def _hyperbolic(odd: bool):
    """sinh / cosh from expm1 / exp near 0 and exp(|x|/2)^2 / 2 far out (no early overflow)."""

    def emit(e: Scalar, node, x):
        dtype = _dtype(node)
        f = e.floats(dtype)
        ax = f.intrinsic("fabs", x)
        if odd:
            u = e.math("expm1", dtype, ax)  # sinh|x| = (u + u / (u + 1)) / 2
            near = f.mul(f.add(u, f.div(u, f.add(u, f.c(1.0)))), f.c(0.5))
        else:
            t = e.math("exp", dtype, ax)  # cosh x = (t + 1/t) / 2
            near = f.mul(f.add(t, f.div(f.c(1.0), t)), f.c(0.5))
        half = e.math("exp", dtype, f.mul(ax, f.c(0.5)))
        far = f.mul(f.mul(half, f.c(0.5)), half)
        switch = 20.0 if dtype == "float64" else 10.0
        value = f.sel(f.cmp(">", ax, f.c(switch)), far, near)
        if odd:
            value = f.keep_zero(x, f.intrinsic("copysign", value, x))
        return f.keep_nan(x, value)

    return emit


def _cannot(reason: str):
    def emit(e: Scalar, node, *args):
        raise CannotEmit(f"{node.op.name}: {reason}")

    return emit


# --- rounding --------------------------------------------------------------------------------

def _rounding(intrinsic: str):
    def emit(e: Scalar, node, x):
        dtype = _dtype(node)
        return e.intrinsic(intrinsic, dtype, x) if _is_float(dtype) else x  # ints stay

    return emit


# --- comparisons and logic -------------------------------------------------------------------

_FLOAT_COMPARE = {"eq": ("==", True), "neq": ("!=", False), "lt": ("<", True),
                  "le": ("<=", True), "gt": (">", True), "ge": (">=", True)}


def _compare(name: str):
    op, ordered = _FLOAT_COMPARE[name]

    def emit(e: Scalar, node, a, b):
        dtype = _dtype(node)
        if _is_float(dtype):  # != is true for NaN, every other compare false
            return (e.b.fcmp_ordered if ordered else e.b.fcmp_unordered)(op, a, b)
        if _is_signed(dtype):
            return e.b.icmp_signed(op, a, b)
        return e.b.icmp_unsigned(op, a, b)

    return emit


def _bitwise(method: str):
    def emit(e: Scalar, node, a, b):
        return getattr(e.b, method)(a, b)

    return emit


def _invert(e: Scalar, node, x):
    return e.b.xor(x, ir.Constant(x.type, (1 << x.type.width) - 1))


def _isnan(e: Scalar, node, x):
    return e.isnan(x) if _is_float(_dtype(node)) else ir.Constant(ir.IntType(1), 0)


def _isinf(e: Scalar, node, x):
    dtype = _dtype(node)
    if not _is_float(dtype):
        return ir.Constant(ir.IntType(1), 0)
    return e.b.fcmp_ordered("==", e.intrinsic("fabs", dtype, x), e.const(dtype, math.inf))


# --- cast, where, clip -----------------------------------------------------------------------

def _float_to_signed(e: Scalar, dtype: str, x, bits: int):
    """x86's cvtt: truncate toward zero; NaN, inf and out-of-range give the minimum."""
    limit = float(2 ** (bits - 1))
    inside = e.b.and_(e.b.fcmp_ordered(">=", x, e.const(dtype, -limit)),
                      e.b.fcmp_ordered("<", x, e.const(dtype, limit)))
    target = ir.IntType(bits)
    converted = e.b.fptosi(e.b.select(inside, x, e.const(dtype, 0.0)), target)  # never poison
    return e.b.select(inside, converted, ir.Constant(target, 1 << (bits - 1)))


def _float_to_unsigned(e: Scalar, dtype: str, x, bits: int):
    """The x86 sequence for unsigned targets: values >= 2^(n-1) go through x - 2^(n-1)."""
    half = float(2 ** (bits - 1))
    high = e.b.fcmp_ordered(">=", x, e.const(dtype, half))
    shifted = e.b.select(high, e.b.fsub(x, e.const(dtype, half)), x)
    converted = _float_to_signed(e, dtype, shifted, bits)
    flip = e.b.select(high, ir.Constant(ir.IntType(bits), 1 << (bits - 1)),
                      ir.Constant(ir.IntType(bits), 0))
    return e.b.xor(converted, flip)


def _float_to_int(e: Scalar, source: str, target: str, x):
    bits = np.dtype(target).itemsize * 8
    if target in ("uint32", "uint64"):
        return _float_to_unsigned(e, source, x, bits)
    if bits == 64:
        return _float_to_signed(e, source, x, 64)
    return e.b.trunc(_float_to_signed(e, source, x, 32), ir.IntType(bits))


def _cast(e: Scalar, node, x):
    source, target = node.src[0].dtype, node.dtype
    if source == target:
        return x
    out_type = value_type(target)
    if target == "bool":
        if _is_float(source):
            return e.b.fcmp_unordered("!=", x, e.const(source, 0.0))  # NaN is True
        return e.b.icmp_unsigned("!=", x, e.const(source, 0))
    if _is_float(source):
        if _is_float(target):
            return (e.b.fpext if target == "float64" else e.b.fptrunc)(x, out_type)
        return _float_to_int(e, source, target, x)
    signed = _is_signed(source)
    if _is_float(target):
        return (e.b.sitofp if signed else e.b.uitofp)(x, out_type)
    if out_type.width < x.type.width:
        return e.b.trunc(x, out_type)
    if out_type.width == x.type.width:
        return x
    return (e.b.sext if signed else e.b.zext)(x, out_type)


def _where(e: Scalar, node, condition, a, b):
    return e.b.select(condition, a, b)


def _clip(e: Scalar, node, x, lo, hi):
    """NumPy's clip: min(max(x, lo), hi), where each step keeps a NaN first operand."""
    dtype = _dtype(node)
    if dtype == "bool":
        return e.b.and_(e.b.or_(x, lo), hi)
    raised = e.b.select(e.greater(dtype, x, lo), x, lo)
    if _is_float(dtype):
        raised = e.b.select(e.isnan(x), x, raised)
    lowered = e.b.select(e.less(dtype, raised, hi), raised, hi)
    if _is_float(dtype):
        lowered = e.b.select(e.isnan(raised), raised, lowered)
    return lowered


# --- the table -------------------------------------------------------------------------------

EMITTERS: dict[str, Callable] = {
    "add": _arith("fadd", "add", "or_"), "sub": _arith("fsub", "sub", None),
    "mul": _arith("fmul", "mul", "and_"), "true_div": _true_div, "int_div": _int_div,
    "mod": _mod, "pow": _pow, "neg": _neg, "abs": _abs, "sign": _sign, "sqr": _sqr,
    "maximum": _extremum(True), "minimum": _extremum(False),
    **{name: _mathlib(name) for name in MATH_FUNCTIONS},
    "sqrt": _sqrt, "exp2": _exp2, "log2": _log_scaled(_INV_LN2),
    "log10": _log_scaled(_INV_LN10), "tan": _tan, "sinh": _hyperbolic(True),
    "cosh": _hyperbolic(False),
    "arcsin": _cannot("no vectorisable implementation yet"),
    "arccos": _cannot("no vectorisable implementation yet"),
    "arctan": _cannot("no vectorisable implementation yet"),
    "arctan2": _cannot("no vectorisable implementation yet"),
    "erfc": _cannot("1 - erf loses the tail; no vectorisable implementation yet"),
    "round": _rounding("rint"), "floor": _rounding("floor"), "ceil": _rounding("ceil"),
    **{name: _compare(name) for name in _FLOAT_COMPARE},
    "and": _bitwise("and_"), "or": _bitwise("or_"), "xor": _bitwise("xor"),
    "invert": _invert, "isnan": _isnan, "isinf": _isinf,
    "cast": _cast, "where": _where, "clip": _clip,
}


def check_program(root: Node) -> None:
    """Raise ``CannotEmit`` early for a program holding an op without an emitter."""
    for node in toposort([root]):
        if node.op.kind == ELEMWISE and node.op.name not in EMITTERS:
            raise CannotEmit(f"no scalar code for {node.op.name}")


def emit_program(builder: ir.IRBuilder, root: Node, values: Sequence[ir.Value]) -> ir.Value:
    """The code computing ``root`` for one element; ``values[i]`` is the value of param i."""
    e = Scalar(builder)
    computed: dict[Node, ir.Value] = {}
    for node in toposort([root]):
        if node.op.name == "param":
            computed[node] = values[node.arg[0]]
        elif constant_scalar(node) is not None:
            computed[node] = constant_value(node.dtype, constant_scalar(node))
        elif node.op.kind == ELEMWISE and node.op.name in EMITTERS:
            args = [computed[s] for s in node.src]
            computed[node] = EMITTERS[node.op.name](e, node, *args)
        elif node.op.name == "dimshuffle":
            continue  # of a constant that is not one element: only reached through users
        else:
            raise CannotEmit(f"no scalar code for {node.op.name} ({node.type})")
    return computed[root]
