"""Box-Muller written once, for NumPy and for LLVM: the same correctly rounded operations in
the same order, so every backend computes the same normal values bit for bit.

``box_muller(a, u1, u2)`` takes an *arithmetic* ``a``: an object with ``const add sub mul div
sqrt rint select gt eq split``. ``NUMPY`` runs it on float64 arrays (the reference);
``graphc.codegen.random_kernels`` gives an ``a`` that emits LLVM IR. Only IEEE operations that
round exactly once (``+ - * /`` and ``sqrt``) and exact ones (``rint``, comparisons, selects,
reading an exponent from the bits) are used; no libm call, whose last bit differs between
libraries (and between NumPy's SIMD paths), and no fused multiply-add.

- ``log(v)`` for ``v = 1 - u1`` in (0, 1] (exact, never subnormal): ``v = 2^e m`` with ``m`` in
  [sqrt(1/2), sqrt(2)); ``s = (m - 1) / (m + 1)``, ``log m = 2 atanh(s) = 2s + 2s R(s^2)``
  (the atanh series to ``s^21``, |s| <= 0.172), and ``e ln 2`` added in two parts (fdlibm's
  split: ``e * LN2_HI`` is exact). About 2 ulp.
- ``cos`` and ``sin`` of ``2 pi u2``: ``4 u2 = n + f`` with ``n = rint(4 u2)`` and ``f`` in
  [-1/2, 1/2] (both exact), so the angle is ``(pi/2)(n + f)``; Taylor polynomials of
  ``sin(pi/2 f)`` (to ``f^17``) and ``cos(pi/2 f)`` (to ``f^18``), swapped and signed by
  ``n mod 4``. About 2 ulp, and no argument reduction error.
"""

from __future__ import annotations

from fractions import Fraction
from math import factorial

import numpy as np

__all__ = ["NUMPY", "box_muller", "log_unit"]

# pi to 50 digits: the polynomial coefficients are exact rationals rounded once to float64
_PI = Fraction("3.14159265358979323846264338327950288419716939937510")
_HALF_PI = _PI / 2
SIN_COEFFS = tuple(float((-1) ** k * _HALF_PI ** (2 * k + 1) / factorial(2 * k + 1))
                   for k in range(9))
COS_COEFFS = tuple(float((-1) ** k * _HALF_PI ** (2 * k) / factorial(2 * k)) for k in range(10))
ATANH_COEFFS = tuple(1.0 / (2 * k + 1) for k in range(1, 11))  # 1/3 .. 1/21
LN2_HI = 6.93147180369123816490e-01  # the top 21 bits of ln 2: e * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
SQRT2 = 1.4142135623730951


def _horner(a, z, coeffs):
    """``coeffs[0] + z (coeffs[1] + z (...))`` with one rounding per operation."""
    acc = a.const(coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = a.add(a.const(c), a.mul(z, acc))
    return acc


def log_unit(a, v):
    """log(v) for v in (0, 1] (a float64 that is normal, not subnormal)."""
    e, m = a.split(v)  # v = 2^e m, m in [1, 2), e as a float
    big = a.gt(m, a.const(SQRT2))
    m = a.select(big, a.mul(m, a.const(0.5)), m)
    e = a.select(big, a.add(e, a.const(1.0)), e)
    s = a.div(a.sub(m, a.const(1.0)), a.add(m, a.const(1.0)))
    z = a.mul(s, s)
    t = a.add(s, s)
    log_m = a.add(t, a.mul(t, a.mul(z, _horner(a, z, ATANH_COEFFS))))
    return a.add(a.mul(e, a.const(LN2_HI)), a.add(a.mul(e, a.const(LN2_LO)), log_m))


def box_muller(a, u1, u2):
    """The pair ``(r cos(2 pi u2), r sin(2 pi u2))``, ``r = sqrt(-2 log(1 - u1))``, of two
    float64 uniforms in [0, 1)."""
    radius = a.sqrt(a.mul(a.const(-2.0), log_unit(a, a.sub(a.const(1.0), u1))))
    t = a.mul(u2, a.const(4.0))
    n = a.rint(t)
    f = a.sub(t, n)
    z = a.mul(f, f)
    sin_f = a.mul(f, _horner(a, z, SIN_COEFFS))
    cos_f = _horner(a, z, COS_COEFFS)
    minus_sin, minus_cos = a.sub(a.const(0.0), sin_f), a.sub(a.const(0.0), cos_f)
    quadrant = [a.eq(n, a.const(float(q))) for q in (1.0, 2.0, 3.0)]  # n = 0 or 4: as is
    cos = a.select(quadrant[0], minus_sin, a.select(quadrant[1], minus_cos,
                                                    a.select(quadrant[2], sin_f, cos_f)))
    sin = a.select(quadrant[0], cos_f, a.select(quadrant[1], minus_sin,
                                                a.select(quadrant[2], minus_cos, sin_f)))
    return a.mul(radius, cos), a.mul(radius, sin)


class _NumpyArithmetic:
    """The arithmetic of ``box_muller`` on float64 arrays."""

    const = staticmethod(np.float64)
    add, sub = staticmethod(np.add), staticmethod(np.subtract)
    mul, div = staticmethod(np.multiply), staticmethod(np.divide)
    sqrt, rint = staticmethod(np.sqrt), staticmethod(np.rint)
    gt, eq = staticmethod(np.greater), staticmethod(np.equal)

    @staticmethod
    def select(cond, x, y):
        """``np.where(cond, x, y)`` on the bits (twice as fast on unpredictable conditions)."""
        mask = np.subtract(0, cond, dtype=np.int64)
        x, y = x.view(np.int64), y.view(np.int64)
        return (y ^ ((x ^ y) & mask)).view(np.float64)

    @staticmethod
    def split(v):
        bits = np.asarray(v, np.float64).view(np.int64)
        e = ((bits >> 52) & 0x7FF) - 1023
        m = ((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000).view(np.float64)
        return e.astype(np.float64), m


NUMPY = _NumpyArithmetic()
