"""The canonicalize and constant_folding sets: one spelling per computation.

Policy on special values: a rule may only fire where the rewritten graph gives the same
result for *every* input, NaN and infinity included, with two documented exceptions that
the issue asks for and Theano/PyTensor make too: ``exp(log(x)) -> x`` (differs for x < 0,
where the naive form gives NaN) and ``log(exp(x)) -> x`` (differs where exp overflows: the
rewrite is then the more accurate). So, for floats:

- ``x * 1``, ``x + 0``, ``x - 0``, ``x / 1``, ``--x`` are removed (exact);
- ``x * 0 -> 0`` and ``x - x -> 0`` fire only on integer and bool dtypes (for floats they are
  NaN for NaN or infinite x), and ``x / x`` is never rewritten (NaN at 0 and infinity);
- constants are reassociated (``(x * 2) * 3 -> x * 6``), which may change the last bit of a
  float result, as in every optimising compiler's "fast" mode for constants.

A rule never changes the result's dtype, ndim or (static or run-time) shape: removing a
neutral element is only done when that element cannot broadcast ``x`` to a bigger shape.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import CONSTANT, Node, constant, make
from ..ir.types import INT_DTYPES
from ..opdefs import elementwise as ew
from ..opdefs.alloc import ALLOC, alloc
from ..opdefs.infer_shape import output_shape
from ..opdefs.reduce import SUM_TO, sum_to
from ..opdefs.shape import BROADCAST_TO, DIMSHUFFLE, RESHAPE, SHAPE, dimshuffle
from ..runtime.reference import RunError, run_node
from .pattern import P
from .registry import CANONICALIZE, CONSTANT_FOLDING

ADD, SUB, MUL, DIV, NEG = ew.add.op, ew.sub.op, ew.mul.op, ew.true_div.op, ew.neg.op
EXP, LOG, CAST = ew.exp.op, ew.log.op, ew.CAST
EXACT_ZERO_DTYPES = INT_DTYPES + ("bool",)


def keeps_shape(x: Node, node: Node) -> bool:
    """Whether ``x`` surely has the shape of ``node`` (one of x's elementwise partners), so
    that ``node`` may be replaced by ``x``: every static dim of node equals x's, and every
    other input of node is size 1 where x is not known to be as big."""
    for axis, (dx, dn) in enumerate(zip(x.type.shape, node.type.shape)):
        if dx is not None and dx == dn:
            continue
        others = [s for s in node.src if s is not x]
        if not all(o.type.shape[axis] == 1 for o in others):
            return False
        if dn is not None and dx is not None and dx != dn:
            return False
    return True


def zeros_shaped_like(node: Node, dtype: str | None = None) -> Node:
    """Zeros with ``node``'s shape, computed from its inputs' shapes (not from node)."""
    return alloc(np.zeros((), dtype or node.dtype), *output_shape(node))


# --- neutral and absorbing elements ----------------------------------------------------------

@CANONICALIZE.rule("local_mul_one", P(MUL, P.var("x"), P.const(1), name="node"))
def _mul_one(x, node):
    """x * 1 -> x"""
    return x if keeps_shape(x, node) else None


@CANONICALIZE.rule("local_add_zero", P(ADD, P.var("x"), P.const(0), name="node"))
def _add_zero(x, node):
    """x + 0 -> x"""
    return x if keeps_shape(x, node) else None


@CANONICALIZE.rule("local_sub_zero", P(SUB, P.var("x"), P.const(0), name="node"))
def _sub_zero(x, node):
    """x - 0 -> x"""
    return x if keeps_shape(x, node) else None


@CANONICALIZE.rule("local_zero_sub", P(SUB, P.const(0), P.var("x"), name="node"))
def _zero_sub(x, node):
    """0 - x -> -x (not for bool, which has no negation)"""
    return ew.neg(x) if keeps_shape(x, node) and x.dtype != "bool" else None


@CANONICALIZE.rule("local_div_one", P(DIV, P.var("x"), P.const(1), name="node"))
def _div_one(x, node):
    """x / 1 -> x"""
    return x if keeps_shape(x, node) else None


@CANONICALIZE.rule("local_mul_minus_one", P(MUL, P.var("x"), P.const(-1), name="node"))
def _mul_minus_one(x, node):
    """x * -1 -> -x"""
    return ew.neg(x) if keeps_shape(x, node) and x.dtype != "bool" else None


@CANONICALIZE.rule("local_mul_zero", P(MUL, P.var("x"), P.const(0), name="node"))
def _mul_zero(x, node):
    """x * 0 -> 0 for integer and bool dtypes only (NaN * 0 is NaN)."""
    return zeros_shaped_like(node) if node.dtype in EXACT_ZERO_DTYPES else None


@CANONICALIZE.rule("local_sub_self", P(SUB, P.var("x"), P.var("x"), name="node"))
def _sub_self(x, node):
    """x - x -> 0 for integer dtypes only (inf - inf is NaN)."""
    return zeros_shaped_like(node) if node.dtype in INT_DTYPES else None


@CANONICALIZE.rule("local_double_neg", P(NEG, P(NEG, P.var("x"))))
def _double_neg(x):
    """--x -> x"""
    return x


@CANONICALIZE.rule("local_add_neg", P(ADD, P.var("x"), P(NEG, P.var("y"))))
def _add_neg(x, y):
    """x + (-y) -> x - y (exact in IEEE arithmetic)"""
    return ew.sub(x, y)


@CANONICALIZE.rule("local_sub_neg", P(SUB, P.var("x"), P(NEG, P.var("y"))))
def _sub_neg(x, y):
    """x - (-y) -> x + y"""
    return ew.add(x, y)


@CANONICALIZE.rule("local_sub_const", P(SUB, P.var("x"), P.const(name="c")))
def _sub_const(x, c):
    """x - c -> x + (-c): one canonical form, so constants reassociate through both."""
    if x.dtype == "bool" or c.op is not CONSTANT:
        return None
    with np.errstate(over="ignore"):
        return ew.add(x, constant(np.negative(c.arg.value)))


# --- reassociation of constants ---------------------------------------------------------------

def _is_constant(node: Node) -> bool:
    return node.op is CONSTANT


def _reassociate(op, ufunc):
    """(x op c1) op c2 -> x op (c1 op c2); dimshuffled constants are folded first."""

    def fn(x, c1, c2):
        if x.op is CONSTANT:
            return None  # constant folding's job
        with np.errstate(all="ignore"):
            merged = ufunc(c1.arg.value, c2.arg.value).astype(c1.dtype)
        return make(op, (x, constant(merged)))

    return fn


for _op, _ufunc, _name in ((MUL, np.multiply, "local_mul_constants"), (ADD, np.add, "local_add_constants")):
    _c1, _c2 = P.var("c1", where=_is_constant), P.var("c2", where=_is_constant)
    CANONICALIZE.rule(_name, P(_op, P(_op, P.var("x"), _c1), _c2))(_reassociate(_op, _ufunc))


@CANONICALIZE.rule("local_where_same_branches", P(ew.WHERE, P.var("c"), P.var("x"), P.var("x"), name="node"))
def _where_same_branches(c, x, node):
    """where(c, x, x) -> x (when c does not broadcast x)"""
    return x if keeps_shape(x, node) else None


# --- exp and log --------------------------------------------------------------------------------

@CANONICALIZE.rule("local_exp_log", P(EXP, P(LOG, P.var("x"))))
def _exp_log(x):
    """exp(log(x)) -> x (differs for x < 0, where the naive form is NaN: see the policy)"""
    return x


@CANONICALIZE.rule("local_log_exp", P(LOG, P(EXP, P.var("x"))))
def _log_exp(x):
    """log(exp(x)) -> x (exact where exp does not overflow, better where it does)"""
    return x


# --- casts ----------------------------------------------------------------------------------

def holds_exactly(src: str, dst: str) -> bool:
    """Whether every value of ``src`` is exactly representable in ``dst``."""
    if src == dst or src == "bool":
        return True
    a, b = np.dtype(src), np.dtype(dst)
    if a.kind == "f":
        return b.kind == "f" and b.itemsize >= a.itemsize
    if b.kind == "f":
        return a.itemsize * 8 - (a.kind == "i") <= np.finfo(b).nmant + 1
    if a.kind == "u":
        return (b.kind == "u" and b.itemsize >= a.itemsize) or (b.kind == "i" and b.itemsize > a.itemsize)
    return b.kind == "i" and b.itemsize >= a.itemsize


@CANONICALIZE.rule("local_cast_cast", P(CAST, P(CAST, P.var("x"), name="inner"), name="node"))
def _cast_cast(x, inner, node):
    """cast(cast(x, a), b) -> cast(x, b) when ``a`` holds every value of x exactly."""
    if not holds_exactly(x.dtype, inner.dtype):
        return None
    return ew.cast(x, node.dtype)


# --- shape ops ------------------------------------------------------------------------------

@CANONICALIZE.rule("local_dimshuffle_dimshuffle", P(DIMSHUFFLE, P(DIMSHUFFLE, P.var("x"), name="inner"), name="node"))
def _dimshuffle_dimshuffle(x, inner, node):
    """Two dimshuffles (transpose of transpose, ...) become one, or none if they cancel."""
    first = inner.arg
    composed = tuple("x" if q == "x" else first[q] for q in node.arg)
    return dimshuffle(x, composed)


@CANONICALIZE.local("local_useless_dimshuffle", DIMSHUFFLE)
def _useless_dimshuffle(node):
    """dimshuffle(x, (0, 1, ...)) -> x"""
    return node.src[0] if node.arg == tuple(range(node.src[0].ndim)) else None


@CANONICALIZE.local("local_static_sum_to", SUM_TO)
def _static_sum_to(node):
    """sum_to(x, like) whose summed axes the static shapes tell -> x (nothing to sum: a
    gradient through a broadcast that broadcast nothing) or a sum over those axes."""
    new = sum_to(*node.src)  # the builder decides from the static shapes
    return None if new is node else new


@CANONICALIZE.rule("local_reshape_reshape", P(RESHAPE, P(RESHAPE, P.var("x"), P.var("s1")), P.var("s2"), name="node"))
def _reshape_reshape(x, s1, s2, node):
    """reshape(reshape(x, a), b) -> reshape(x, b)"""
    return make(RESHAPE, (x, s2), node.arg)


@CANONICALIZE.local("local_useless_reshape", RESHAPE)
def _useless_reshape(node):
    """reshape(x, s) -> x when s is x's own shape (statically, or as shape(x))."""
    x, vec = node.src
    if x.ndim != node.ndim:
        return None
    static = x.type.shape
    if (vec.op is SHAPE and vec.src[0] is x) or (None not in static and static == node.type.shape):
        return x
    return None


@CANONICALIZE.local("local_useless_broadcast_to", BROADCAST_TO)
def _useless_broadcast_to(node):
    """broadcast_to(x, s) -> x when x statically has shape s."""
    x = node.src[0]
    if x.ndim == node.ndim and None not in x.type.shape and x.type.shape == node.type.shape:
        return x
    return None


# --- constant folding -------------------------------------------------------------------------

# folded results bigger than this stay computed: a graph should not carry big arrays
MAX_FOLDED_SIZE = 4096
NEVER_FOLD = (ALLOC,)


@CONSTANT_FOLDING.local("constant_folding")
def _fold(node):
    """A node whose inputs are all constants becomes the constant it computes."""
    if node.is_leaf or not node.src or any(s.op is not CONSTANT for s in node.src):
        return None
    if node.op in NEVER_FOLD or node.op.props.get("no_fold") or node.op.ref is None:
        return None
    static = node.type.shape
    if None not in static and int(np.prod(static, dtype=np.int64)) > MAX_FOLDED_SIZE:
        return None
    try:
        value = run_node(node, [s.arg.value for s in node.src])
    except (RunError, ArithmeticError, ValueError, TypeError, IndexError):
        return None  # leave it: the error is reported, with the user's line, when it runs
    if value.size > MAX_FOLDED_SIZE:
        return None
    return constant(value)
