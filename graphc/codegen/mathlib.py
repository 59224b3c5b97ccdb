"""graphc's vectorisable math library, emitted inline as LLVM IR.

``emit_math(builder, name, x, dtype)`` writes straight-line code (no calls, no branches) that
computes ``name(x)`` for a float32 or float64 scalar, so a loop around it vectorises, and the same
code serves the CUDA target: besides plain arithmetic, ``fcmp``, ``select``, ``bitcast``, integer
ops and ``sitofp``/``fptosi`` it uses only ``llvm.fma``, ``llvm.fabs``, ``llvm.rint``,
``llvm.floor`` and ``llvm.copysign`` (never ``llvm.exp``/``log``/``sin``..., which abort LLVM's
NVPTX backend). No fast-math flags: the error analysis relies on IEEE rounding. Polynomials are
evaluated with Horner's rule and ``llvm.fma``.

Algorithms (float32 uses the same code with shorter polynomials and float32 splits):

- exp: k = rint(x / ln 2), r = x - k ln 2 with a two-part ln 2 and fma, |r| <= ln2/2; Taylor
  polynomial to r^13 (float32: r^7); scale by 2^k as two powers of two built from exponent bits,
  so overflow, gradual underflow and 0 come out with one rounding. x is clamped first.
- log: x = 2^e m with m in [sqrt(1/2), sqrt(2)) read from the bits (subnormals scaled by 2^54 /
  2^25 first); with f = m - 1 and s = f / (2 + f), log(m) = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R),
  R a series in s^2 (9 terms, float32 4); e ln 2 added in two parts.
- log1p: u = 1 + x, log(u) + (x - (u - 1)) / u (the correction is the rounding error of u).
- expm1: the exp reduction, expm1(r) = r + r^2 P(r) (Taylor to r^13 / r^8), then
  expm1(x) = 2 fma(t, expm1(r), t - 1/2) with t = 2^(k-1): one rounding, no overflow before the
  last doubling, and exactly -1 far left.
- tanh: u = expm1(-2|x|), tanh|x| = -u / (2 + u), sign copied from x.
- sigmoid: e = exp(-|x|); 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0.
- softplus: max(x, 0) + log1p(exp(-|x|)).
- erf: |x| < 1.5: x P(x^2); else 1 - exp(-x^2) H(1/|x|), H a fit of erfc(x) exp(x^2)
  (|x| clamped at 6 / 4 where erf rounds to 1). Coefficients: Chebyshev fits made with mpmath
  (``mpmath.chebyfit``, 50 digits; the comments say interval and fit error).
- sin/cos: k = rint(2x / pi), r = x - k pi/2 with pi/2 split in three full-width parts and fma
  (the first step is exact while k (pi/2 - part 1) is small); Taylor polynomials for sin and cos
  on |r| <= pi/4, chosen and signed by k mod 4 (computed in floating point: no integer overflow).
  The ulp bound holds for |x| < 1e6 (float32) and |x| < 1e15 (float64); beyond that k and the
  reduction lose bits and the result is garbage, but r is clamped to [-1, 1], so it is always
  finite and within [-1, 1] for finite x.

NaN in gives NaN out, ±0 keeps its sign for the odd functions, and the special values are exact
(exp(-inf) = 0, log(0) = -inf, log(-1) = nan, tanh(±inf) = ±1, sigmoid(-inf) = 0, ...).

Measured max error in ulps of the exact result (the smaller ulp at a power of two), over 6 x
2^18 random bit patterns, log-uniform and uniform values per function plus specials; float64
against long double NumPy, float32 against float64 NumPy, erf against ``math.erf`` (itself
~1 ulp); tests/codegen/test_mathlib.py asserts <= 4 (erf <= 8):

    function  float32  float64        function  float32  float64
    exp        0.89     1.00           sigmoid    2.02     2.14
    log        0.80     0.89           softplus   1.84     1.79
    log1p      1.44     1.44           erf        2.75     2.00
    expm1      1.40     1.71           sin        1.52     1.54
    tanh       2.49     2.49           cos        1.67     1.55
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from llvmlite import ir

__all__ = ["MATH_FUNCTIONS", "emit_math", "unary_map_kernel"]

_PI = Fraction("3.14159265358979323846264338327950288419716939937510582097494459230781640629")
_LN2 = Fraction("0.69314718055994530941723212145817656807550013436025525412068000949339362197")


def _round_bits(value: Fraction, bits: int) -> float:
    """``value`` rounded to ``bits`` significant bits (exactly representable as a float)."""
    exponent = math.floor(math.log2(abs(value)))
    scale = Fraction(2) ** (bits - 1 - exponent)
    return float(Fraction(round(value * scale)) / scale)


def _split(value: Fraction, widths: tuple[int, ...]) -> tuple[float, ...]:
    """``value`` as a sum of floats with the given significant widths (Cody-Waite parts)."""
    parts = []
    for bits in widths:
        part = _round_bits(value, bits)
        parts.append(part)
        value -= Fraction(part)
    return tuple(parts)


def _taylor(start: int, stop: int, step: int = 1, signs: tuple = (1.0,)) -> tuple[float, ...]:
    """Coefficients sign/n! for n in range(start, stop, step), cycling through ``signs``."""
    return tuple(signs[i % len(signs)] / math.factorial(n)
                 for i, n in enumerate(range(start, stop, step)))


# erf(x)/x in t = x*x on [0, 1.5**2]; fit error 1.2e-19 / 7.6e-10
_ERF_SMALL = {
    "float64": (
        1.1283791670955126, -0.3761263890318375, 0.11283791670955019, -0.026866170645115376,
        0.005223977625317255, -0.0008548327017499108, 0.00012055332795419675,
        -1.4925646319299433e-05, 1.6462051744758016e-06, -1.6365135951628023e-07,
        1.4801276360093684e-08, -1.2254075631992835e-09, 9.257929022544438e-11,
        -6.1758411722331915e-12, 3.2537896660097213e-13, -9.854893631973009e-15),
    "float32": (
        1.1283791663354448, -0.3761263342329531, 0.11283726278315473, -0.026863147521137064,
        0.005216919267809122, -0.000845462740956296, 0.00011309676159880694,
        -1.132887370811487e-05, 6.205873060404022e-07),
}
# erfc(x)*exp(x*x) in v = (1/x - mid) / half; float64: 1/x in [1/6, 1/1.5], fit error 2.1e-16;
# float32: 1/x in [1/4, 1/1.5], fit error 1.1e-8
_ERFC_TAIL = {
    "float64": ((0.4166666666666667, 0.25), (
        0.2184987345370331, 0.11460274749756379, -0.011749767914093275, -8.580232802712723e-05,
        0.00042042587353486466, -0.000115830131541484, 1.374154001356771e-05,
        2.692107743752749e-06, -2.05967228447601e-06, 6.370449934376554e-07,
        -9.97208215028238e-08, -1.3225135718063601e-08, 1.5842128475574336e-08,
        -6.575048652850831e-09, 1.892078252692078e-09, -1.662065413027374e-10,
        -2.5016091668501425e-10, 1.0254812032468186e-10)),
    "float32": ((0.4583333333333333, 0.20833333333333334), (
        0.23727272258804624, 0.09223866483532799, -0.008144336763491612, 9.444069886738585e-05,
        0.00015939812502774973, -4.0132309053795516e-05, 4.6582244164001386e-06)),
}


class _Format:
    """Per-dtype constants: IEEE layout, clamps, splits and polynomial lengths."""

    def __init__(self, dtype: str):
        wide = dtype == "float64"
        self.dtype = dtype
        self.float = ir.DoubleType() if wide else ir.FloatType()
        self.int = ir.IntType(64 if wide else 32)
        self.mant = 52 if wide else 23
        self.bias = 1023 if wide else 127
        self.subnormal_shift = 54 if wide else 25
        self.tiny = float(np.finfo(dtype).tiny)
        self.exp_clamp = (-750.0, 710.0) if wide else (-105.0, 89.0)
        self.expm1_clamp = (-45.0, 710.0) if wide else (-20.0, 88.8)
        self.erf_clamp = 6.0 if wide else 4.0
        self.ln2 = _split(_LN2, (53, 53) if wide else (24, 24))
        self.ln2_short = _split(_LN2, (32, 53) if wide else (16, 24))  # e * hi exact
        self.pio2 = _split(_PI / 2, (53, 53, 53) if wide else (24, 24, 24))
        self.exp_poly = _taylor(0, 14 if wide else 8)
        self.expm1_poly = _taylor(2, 14 if wide else 9)
        self.log_poly = tuple(2.0 / n for n in range(3, 21 if wide else 11, 2))
        self.sin_poly = _taylor(3, 19 if wide else 13, 2, (-1.0, 1.0))
        self.cos_poly = _taylor(4, 18 if wide else 14, 2, (1.0, -1.0))
        self.erf_small = _ERF_SMALL[dtype]
        self.erfc_tail = _ERFC_TAIL[dtype]


_FORMATS = {name: _Format(name) for name in ("float32", "float64")}


class _Emitter:
    """Thin helpers over an IRBuilder for one float type."""

    def __init__(self, builder: ir.IRBuilder, fmt: _Format):
        self.b = builder
        self.fmt = fmt
        self.ty = fmt.float

    def c(self, value: float) -> ir.Constant:
        return ir.Constant(self.ty, float(np.dtype(self.fmt.dtype).type(value)))

    def ic(self, value: int) -> ir.Constant:
        return ir.Constant(self.fmt.int, value)

    def intrinsic(self, name: str, *args: ir.Value) -> ir.Value:
        module = self.b.module
        suffix = "f64" if self.fmt.dtype == "float64" else "f32"
        full = f"llvm.{name}.{suffix}"
        fn = module.globals.get(full)
        if fn is None:
            fn = ir.Function(module, ir.FunctionType(self.ty, [self.ty] * len(args)), full)
        return self.b.call(fn, args)

    def add(self, a, b):
        return self.b.fadd(a, b)

    def sub(self, a, b):
        return self.b.fsub(a, b)

    def mul(self, a, b):
        return self.b.fmul(a, b)

    def div(self, a, b):
        return self.b.fdiv(a, b)

    def neg(self, a):
        return self.b.fneg(a)

    def fma(self, a, b, c):
        return self.intrinsic("fma", a, b, c)

    def cmp(self, op: str, a, b):
        return self.b.fcmp_ordered(op, a, b)

    def isnan(self, a):
        return self.b.fcmp_unordered("uno", a, a)

    def sel(self, cond, a, b):
        return self.b.select(cond, a, b)

    def clamp(self, x, lo: float, hi: float):
        """min(max(x, lo), hi) that keeps NaN."""
        x = self.sel(self.cmp("<", x, self.c(lo)), self.c(lo), x)
        return self.sel(self.cmp(">", x, self.c(hi)), self.c(hi), x)

    def poly(self, x, coeffs):
        """Horner's rule, coefficients lowest degree first."""
        acc = self.c(coeffs[-1])
        for coeff in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, self.c(coeff))
        return acc

    def pow2(self, k):
        """2.0**k for an integral float k inside the normal exponent range."""
        ki = self.b.fptosi(k, ir.IntType(32))
        if self.fmt.int.width != 32:
            ki = self.b.sext(ki, self.fmt.int)
        biased = self.b.add(ki, self.ic(self.fmt.bias))
        return self.b.bitcast(self.b.shl(biased, self.ic(self.fmt.mant)), self.ty)

    def ldexp(self, x, k):
        """x * 2**k with one rounding, for |k| up to twice the exponent range."""
        half = self.intrinsic("floor", self.mul(k, self.c(0.5)))
        return self.mul(self.mul(x, self.pow2(half)), self.pow2(self.sub(k, half)))

    def reduce_ln2(self, x):
        """(k, r) with x = k ln2 + r, |r| <= ln2/2."""
        k = self.intrinsic("rint", self.mul(x, self.c(1.0 / math.log(2.0))))
        neg_k = self.neg(k)
        hi, lo = self.fmt.ln2
        return k, self.fma(neg_k, self.c(lo), self.fma(neg_k, self.c(hi), x))

    def keep_nan(self, x, result):
        return self.sel(self.isnan(x), x, result)

    def keep_zero(self, x, result):
        """Odd functions: return x itself for ±0 (keeps the sign of zero)."""
        return self.sel(self.cmp("==", x, self.c(0.0)), x, result)


def _exp(e: _Emitter, x):
    lo, hi = e.fmt.exp_clamp
    xc = e.sel(e.isnan(x), e.c(0.0), e.clamp(x, lo, hi))
    k, r = e.reduce_ln2(xc)
    return e.keep_nan(x, e.ldexp(e.poly(r, e.fmt.exp_poly), k))


def _log_positive(e: _Emitter, x):
    """log(x) for finite x > 0 (other inputs give garbage, fixed up by the caller)."""
    fmt = e.fmt
    is_sub = e.cmp("<", x, e.c(fmt.tiny))
    xs = e.sel(is_sub, e.mul(x, e.c(2.0 ** fmt.subnormal_shift)), x)
    bits = e.b.bitcast(xs, fmt.int)
    exponent = e.b.sub(e.b.lshr(bits, e.ic(fmt.mant)), e.ic(fmt.bias))
    if fmt.int.width != 32:
        exponent = e.b.trunc(exponent, ir.IntType(32))
    mant_bits = e.b.or_(e.b.and_(bits, e.ic((1 << fmt.mant) - 1)), e.ic(fmt.bias << fmt.mant))
    m = e.b.bitcast(mant_bits, e.ty)
    big = e.cmp(">", m, e.c(math.sqrt(2.0)))
    m = e.sel(big, e.mul(m, e.c(0.5)), m)
    k = e.add(e.b.sitofp(exponent, e.ty), e.sel(big, e.c(1.0), e.c(0.0)))
    k = e.sub(k, e.sel(is_sub, e.c(fmt.subnormal_shift), e.c(0.0)))
    f = e.sub(m, e.c(1.0))
    s = e.div(f, e.add(f, e.c(2.0)))
    z = e.mul(s, s)
    tail = e.mul(z, e.poly(z, fmt.log_poly))
    half_f2 = e.mul(e.mul(f, f), e.c(0.5))
    hi, lo = fmt.ln2_short
    inner = e.fma(s, e.add(half_f2, tail), e.mul(k, e.c(lo)))
    return e.sub(e.mul(k, e.c(hi)), e.sub(e.sub(half_f2, inner), f))


def _log(e: _Emitter, x):
    result = _log_positive(e, x)
    result = e.sel(e.cmp("==", x, e.c(math.inf)), x, result)
    result = e.sel(e.cmp("==", x, e.c(0.0)), e.c(-math.inf), result)
    result = e.sel(e.cmp("<", x, e.c(0.0)), e.c(math.nan), result)
    return e.keep_nan(x, result)


def _log1p(e: _Emitter, x):
    u = e.add(x, e.c(1.0))
    correction = e.div(e.sub(x, e.sub(u, e.c(1.0))), u)
    result = e.add(_log_positive(e, u), correction)
    result = e.sel(e.cmp("==", x, e.c(math.inf)), x, result)
    result = e.sel(e.cmp("==", x, e.c(-1.0)), e.c(-math.inf), result)
    result = e.sel(e.cmp("<", x, e.c(-1.0)), e.c(math.nan), result)
    return e.keep_nan(x, e.keep_zero(x, result))


def _expm1_core(e: _Emitter, x):
    """expm1(x) for non-NaN x (-inf and +inf included), sign of zero not kept."""
    lo, hi = e.fmt.expm1_clamp
    k, r = e.reduce_ln2(e.clamp(x, lo, hi))
    em1_r = e.fma(e.mul(r, r), e.poly(r, e.fmt.expm1_poly), r)
    t = e.pow2(e.sub(k, e.c(1.0)))
    scaled = e.mul(e.fma(t, em1_r, e.sub(t, e.c(0.5))), e.c(2.0))
    return e.sel(e.cmp("==", k, e.c(0.0)), em1_r, scaled)


def _expm1(e: _Emitter, x):
    xc = e.sel(e.isnan(x), e.c(0.0), x)
    return e.keep_nan(x, e.keep_zero(x, _expm1_core(e, xc)))


def _tanh(e: _Emitter, x):
    ax = e.intrinsic("fabs", e.sel(e.isnan(x), e.c(0.0), x))
    u = _expm1_core(e, e.mul(ax, e.c(-2.0)))
    magnitude = e.div(e.neg(u), e.add(u, e.c(2.0)))
    return e.keep_nan(x, e.intrinsic("copysign", magnitude, x))


def _sigmoid(e: _Emitter, x):
    em = _exp(e, e.neg(e.intrinsic("fabs", x)))
    numerator = e.sel(e.cmp("<", x, e.c(0.0)), em, e.c(1.0))
    return e.keep_nan(x, e.div(numerator, e.add(em, e.c(1.0))))


def _softplus(e: _Emitter, x):
    em = _exp(e, e.neg(e.intrinsic("fabs", x)))
    positive = e.sel(e.cmp(">", x, e.c(0.0)), x, e.c(0.0))
    return e.keep_nan(x, e.add(positive, _log1p(e, em)))


def _erf(e: _Emitter, x):
    fmt = e.fmt
    ax = e.intrinsic("fabs", x)
    small = e.mul(ax, e.poly(e.mul(ax, ax), fmt.erf_small))
    at = e.clamp(ax, 1.5, fmt.erf_clamp)
    (mid, half), tail_poly = fmt.erfc_tail
    v = e.mul(e.sub(e.div(e.c(1.0), at), e.c(mid)), e.c(1.0 / half))
    erfc = e.mul(_exp(e, e.neg(e.mul(at, at))), e.poly(v, tail_poly))
    magnitude = e.sel(e.cmp("<", ax, e.c(1.5)), small, e.sub(e.c(1.0), erfc))
    return e.keep_nan(x, e.intrinsic("copysign", magnitude, x))


def _sin_or_cos(e: _Emitter, x, quarter_turns: float):
    k = e.intrinsic("rint", e.mul(x, e.c(2.0 / math.pi)))
    neg_k = e.neg(k)
    r = x
    for part in e.fmt.pio2:
        r = e.fma(neg_k, e.c(part), r)
    r = e.clamp(r, -1.0, 1.0)  # only reached when the reduction broke down (huge |x|)
    z = e.mul(r, r)
    sin_r = e.fma(e.mul(r, z), e.poly(z, e.fmt.sin_poly), r)
    cos_r = e.fma(e.mul(z, z), e.poly(z, e.fmt.cos_poly), e.sub(e.c(1.0), e.mul(z, e.c(0.5))))
    q = e.add(k, e.c(quarter_turns))
    q = e.sub(q, e.mul(e.intrinsic("floor", e.mul(q, e.c(0.25))), e.c(4.0)))  # k mod 4, exact
    odd = e.b.or_(e.cmp("==", q, e.c(1.0)), e.cmp("==", q, e.c(3.0)))
    value = e.sel(odd, cos_r, sin_r)
    return e.sel(e.cmp(">=", q, e.c(2.0)), e.neg(value), value)


def _sin(e: _Emitter, x):
    return e.keep_zero(x, _sin_or_cos(e, x, 0.0))


def _cos(e: _Emitter, x):
    return _sin_or_cos(e, x, 1.0)


MATH_FUNCTIONS = {
    "exp": _exp, "log": _log, "log1p": _log1p, "expm1": _expm1, "tanh": _tanh,
    "sigmoid": _sigmoid, "softplus": _softplus, "erf": _erf, "sin": _sin, "cos": _cos,
}


def emit_math(builder: ir.IRBuilder, name: str, value: ir.Value, dtype) -> ir.Value:
    """Emit inline code computing ``name(value)`` for a float32/float64 scalar ``value``."""
    key = np.dtype(dtype).name
    if key not in _FORMATS:
        raise TypeError(f"emit_math({name!r}): dtype must be float32 or float64, got {key}")
    fmt = _FORMATS[key]
    if value.type != fmt.float:
        raise TypeError(f"emit_math({name!r}): value has LLVM type {value.type}, "
                        f"dtype {key} needs {fmt.float}")
    if name not in MATH_FUNCTIONS:
        raise ValueError(f"emit_math: unknown function {name!r}; "
                         f"known: {', '.join(sorted(MATH_FUNCTIONS))}")
    return MATH_FUNCTIONS[name](_Emitter(builder, fmt), value)


def unary_map_kernel(module: ir.Module, fn_name: str, math_name: str, dtype) -> ir.Function:
    """Add ``void fn_name(T* in, T* out, i64 n)`` computing out[i] = math_name(in[i])."""
    fty = _FORMATS[np.dtype(dtype).name].float
    i64, ptr = ir.IntType(64), ir.PointerType()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, i64]), fn_name)
    src, dst, n = fn.args
    src.add_attribute("noalias")
    dst.add_attribute("noalias")
    entry, loop, done = (fn.append_basic_block(label) for label in ("entry", "loop", "done"))
    builder = ir.IRBuilder(entry)
    builder.cbranch(builder.icmp_signed(">", n, ir.Constant(i64, 0)), loop, done)
    builder.position_at_end(loop)
    index = builder.phi(i64)
    index.add_incoming(ir.Constant(i64, 0), entry)
    value = builder.load(builder.gep(src, [index], inbounds=True, source_etype=fty), typ=fty)
    result = emit_math(builder, math_name, value, dtype)
    builder.store(result, builder.gep(dst, [index], inbounds=True, source_etype=fty))
    following = builder.add(index, ir.Constant(i64, 1))
    index.add_incoming(following, builder.block)
    builder.cbranch(builder.icmp_signed("<", following, n), loop, done)
    builder.position_at_end(done)
    builder.ret_void()
    return fn
