"""Rules of the specialize set: cheaper equivalents of general ops.

``x ** 2 -> sqr(x)`` (and the other small constant powers), ``x / c -> x * (1/c)``,
``x * x -> sqr(x)``, ``sum(x * c) -> c * sum(x)`` and a matmul of a transposed operand ->
one ``gemm`` node with BLAS's transpose flag set. Every rule keeps the node's dtype and shape;
a constant must not broadcast ``x`` to a bigger shape (checked on static shapes).
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, constant, make
from ..ir.types import FLOAT_DTYPES
from ..opdefs import elementwise as ew
from ..opdefs.linalg import GEMM, MATMUL, sum_of_products
from ..opdefs.reduce import SUM
from ..opdefs.shape import DIMSHUFFLE
from .pattern import P, broadcasts_within, const_value
from .registry import SPECIALIZE

POW, MUL, TRUE_DIV = ew.pow.op, ew.mul.op, ew.true_div.op


# --- helpers -----------------------------------------------------------------------------------

def uniform_value(c: Node):
    """The value every element of the constant ``c`` holds; None if they differ, if ``c`` is
    empty or not a constant (NaN never counts as uniform)."""
    arr = const_value(c)
    if arr is None or arr.size == 0:
        return None
    first = arr.flat[0]
    return first if bool(np.all(arr == first)) else None


def constant_like(c: Node, values: np.ndarray) -> Node:
    """A constant holding ``values`` (shaped like ``c``'s underlying constant), put through the
    dimshuffles that ``c`` applies to that constant."""
    patterns = []
    while c.op is DIMSHUFFLE:
        patterns.append(c.arg)
        c = c.src[0]
    out = constant(values)
    for pattern in reversed(patterns):
        out = make(DIMSHUFFLE, (out,), pattern)
    return out


def _reciprocal(c: Node) -> Node | None:
    """``1 / c`` as a constant node, when every reciprocal is a finite normal number."""
    arr = const_value(c)
    dtype = np.dtype(c.dtype)
    if arr is None or arr.size == 0 or dtype.kind != "f":
        return None
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        recip = (np.ones((), dtype) / arr).astype(dtype)
    # NOTE: a subnormal or infinite reciprocal would lose what x / c keeps
    if not np.all(np.isfinite(recip)) or not np.all(np.abs(recip) >= np.finfo(dtype).tiny):
        return None
    return constant_like(c, recip)


# --- powers ------------------------------------------------------------------------------------

@SPECIALIZE.rule("local_pow_specialize", P(POW, P.var("x"), P.const(name="y")))
def _pow_specialize(x: Node, y: Node) -> Node | None:
    """x**1 -> x, x**2 -> sqr(x), x**3 -> x * sqr(x); for floats x**0.5 -> sqrt(x) (NumPy's
    ``x ** 0.5``) and x**-1 -> 1 / x."""
    e = uniform_value(y)
    if e is None or not broadcasts_within(y, x):
        return None
    if e == 1:
        return x
    if e == 2:
        return ew.sqr(x)
    if e == 3:
        return ew.mul(x, ew.sqr(x))
    if x.dtype in FLOAT_DTYPES and e == 0.5:
        return ew.sqrt(x)
    if x.dtype in FLOAT_DTYPES and e == -1:
        return ew.true_div(1, x)  # a weak 1 keeps x's dtype
    return None


@SPECIALIZE.rule("local_mul_to_sqr", P(MUL, P.var("x"), P.var("x")))
def _mul_to_sqr(x: Node) -> Node | None:
    """x * x -> sqr(x) (not for bool: NumPy squares bools into int8)."""
    return None if x.dtype == "bool" else ew.sqr(x)


@SPECIALIZE.rule("local_div_to_mul", P(TRUE_DIV, P.var("x"), P.const(name="c")))
def _div_to_mul(x: Node, c: Node) -> Node | None:
    """x / c -> x * (1/c) for a float constant c without zeros (elementwise reciprocal)."""
    recip = _reciprocal(c)
    return None if recip is None else ew.mul(x, recip)


# --- sums of scaled inputs ---------------------------------------------------------------------

def _scaled_sum(node: Node, x: Node, c: Node, combine) -> Node | None:
    """``combine(sum(x), c)`` for ``sum(x (op) c)`` with a uniform, finite, nonzero constant c."""
    value = uniform_value(c)
    if value is None or not np.isfinite(value) or value == 0 or not broadcasts_within(c, x):
        return None
    # NOTE: a narrow int (or bool) product wraps (or saturates) in its own dtype before the sum
    # widens it to int64: only when the sum keeps x's dtype is the product's wrap the sum's
    if node.dtype != x.dtype:
        return None
    scale = constant(np.asarray(value, dtype=node.dtype))
    return combine(make(SUM, (x,), node.arg), scale)


@SPECIALIZE.rule("local_sum_of_mul_by_constant",
                 P(SUM, P(MUL, P.var("x"), P.const(name="c")), name="node"))
def _sum_of_mul(node: Node, x: Node, c: Node) -> Node | None:
    """sum(x * c) -> sum(x) * c (and sum(c * x)) for a uniform constant c."""
    return _scaled_sum(node, x, c, ew.mul)


@SPECIALIZE.rule("local_sum_of_div_by_constant",
                 P(SUM, P(TRUE_DIV, P.var("x"), P.const(name="c")), name="node"))
def _sum_of_div(node: Node, x: Node, c: Node) -> Node | None:
    """sum(x / c) -> sum(x) / c for a uniform constant c."""
    return _scaled_sum(node, x, c, ew.true_div)


# --- matmul of transposed operands -------------------------------------------------------------

def swapped_source(x: Node) -> Node | None:
    """The input of ``x`` when ``x`` only swaps its input's last two axes, else None."""
    if x.op is not DIMSHUFFLE or x.ndim < 2 or x.src[0].ndim != x.ndim:
        return None
    n = x.ndim
    return x.src[0] if x.arg == tuple(range(n - 2)) + (n - 1, n - 2) else None


@SPECIALIZE.local("local_matmul_transpose_flags", MATMUL, GEMM)
def _matmul_transpose_flags(node: Node) -> Node | None:
    """matmul(a.T, b) -> gemm(a, b, trans_a) (also b, batched last-two-axes swaps, and a
    transposed operand of a gemm, whose flag then flips)."""
    flags = node.arg if node.op is GEMM else (False, False)
    src, new_flags = [], []
    for x, flag in zip(node.src, flags):
        inner = swapped_source(x)
        src.append(x if inner is None else inner)
        new_flags.append(flag if inner is None else not flag)
    if all(a is b for a, b in zip(src, node.src)):
        return None
    return make(GEMM, src, tuple(new_flags)) if any(new_flags) else make(MATMUL, src)


def _same_batch(a: Node, b: Node) -> bool:
    """Whether ``a`` and ``b`` provably have the same size along axis 0 (no broadcasting)."""
    from ..opdefs.infer_shape import MissingShapeRule, output_shape
    from .shapes import same_size

    try:
        return same_size(output_shape(a)[0], output_shape(b)[0])
    except MissingShapeRule:
        return False


@SPECIALIZE.local("local_sum_of_batched_products", SUM)
def _sum_of_batched_products(node: Node) -> Node | None:
    """sum(a @ b, axis=0) over a batch of matrices -> one product of the stacked operands
    (``linalg.sum_of_products``)."""
    import graphc.tensor as gt

    axes, keepdims = node.arg
    (product,) = node.src
    if axes != (0,) or product.op not in (MATMUL, GEMM) or product.dtype not in FLOAT_DTYPES:
        return None
    a, b = product.src
    if a.ndim != 3 or b.ndim != 3 or node.dtype != product.dtype or not _same_batch(a, b):
        return None
    trans_a, trans_b = product.arg if product.op is GEMM else (False, False)
    out = sum_of_products(a, b, trans_a, trans_b)
    return gt.expand_dims(out, 0) if keepdims else out
