"""Rules of the stabilize set: users write the naive formula, graphc computes the stable one.

=====================================================  ========================================
naive                                                  stable
=====================================================  ========================================
``log(1 + x)``, ``log(1 - x)``                         ``log1p(x)``, ``log1p(-x)``
``exp(x) - 1``                                         ``expm1(x)``
``1 - sigmoid(x)``                                     ``sigmoid(-x)``
``log(sigmoid(x))``                                    ``-softplus(-x)``
``log(softmax(x))``                                    ``log_softmax(x)``
``log(sum(exp(x)))``                                   ``logsumexp(x)`` (the maximum subtracted)
``exp(x) / sum(exp(x), keepdims=True)``                ``softmax(x)``
``log(sum(where(one_hot(y), softmax(x), 0), -1))``     ``-crossentropy_softmax(x, y)``
``sum(where(one_hot(y), log_softmax(x), 0), -1)``      ``-crossentropy_softmax(x, y)``
=====================================================  ========================================

A rule declines (returns None) wherever its stable form could differ from the naive one in
shape or dtype, e.g. when the constant ``1`` would broadcast ``x`` to a bigger shape.
``graphc.grad`` runs these rules (only these) on the cost before differentiating, so the
gradients are stable too.
"""

from __future__ import annotations

import graphc.tensor as gt

from ..ir.node import Node, make
from ..opdefs.common import shape_entry
from ..opdefs.elementwise import ELEMWISE_OPS
from ..opdefs.gradient_ops import GRAD_CLIP, STOP_GRADIENT, ZERO_GRAD
from ..opdefs.infer_shape import MissingShapeRule, output_shape
from ..opdefs.nnet import CROSSENTROPY_SOFTMAX, LOG_SOFTMAX, ONE_HOT, SOFTMAX
from ..opdefs.reduce import LOGSUMEXP, MAX, SUM
from ..opdefs.shape import DIMSHUFFLE, SHAPE_I
from .pattern import P, broadcasts_within, const_value
from .registry import STABILIZE

LOG, EXP, ADD, SUB, NEG = (ELEMWISE_OPS[n] for n in ("log", "exp", "add", "sub", "neg"))
SIGMOID, TRUE_DIV, WHERE = (ELEMWISE_OPS[n] for n in ("sigmoid", "true_div", "where"))
_MARKERS = (STOP_GRADIENT, ZERO_GRAD, GRAD_CLIP)


# --- helpers ---------------------------------------------------------------------------------

def _negate(x: Node) -> Node:
    """``-x``, without stacking a second negation on a negated node."""
    return x.src[0] if x.op is NEG else gt.neg(x)


def _last_axis_only(axes: tuple, ndim: int) -> bool:
    return axes == (ndim - 1,)


def _strip_markers(node: Node) -> Node:
    while node.op in _MARKERS:
        node = node.src[0]
    return node


# --- log1p / expm1 ---------------------------------------------------------------------------

@STABILIZE.rule("local_log1p", P(LOG, P(ADD, P.const(1, name="one"), P.var("x"))))
def _log1p(one, x):
    """log(1 + x) -> log1p(x): exact for tiny x, where 1 + x rounds x away."""
    return gt.log1p(x) if broadcasts_within(one, x) else None


@STABILIZE.rule("local_log1m", P(LOG, P(SUB, P.const(1, name="one"), P.var("x"))))
def _log1m(one, x):
    """log(1 - x) -> log1p(-x)."""
    return gt.log1p(_negate(x)) if broadcasts_within(one, x) else None


@STABILIZE.rule("local_expm1", P(SUB, P(EXP, P.var("x"), name="e"), P.const(1, name="one")))
def _expm1(e, one, x):
    """exp(x) - 1 -> expm1(x): exact for tiny x, where exp(x) rounds to 1."""
    return gt.expm1(x) if broadcasts_within(one, e) else None


@STABILIZE.rule("local_expm1_add", P(ADD, P(EXP, P.var("x"), name="e"), P.const(-1, name="one")))
def _expm1_add(e, one, x):
    """exp(x) + (-1) -> expm1(x)."""
    return gt.expm1(x) if broadcasts_within(one, e) else None


# --- sigmoid ---------------------------------------------------------------------------------

@STABILIZE.rule("local_one_minus_sigmoid",
                P(SUB, P.const(1, name="one"), P(SIGMOID, P.var("x"), name="s")))
def _one_minus_sigmoid(one, s, x):
    """1 - sigmoid(x) -> sigmoid(-x): no cancellation when sigmoid(x) is close to 1."""
    return gt.sigmoid(_negate(x)) if broadcasts_within(one, s) else None


@STABILIZE.rule("local_log_sigmoid", P(LOG, P(SIGMOID, P.var("x"))))
def _log_sigmoid(x):
    """log(sigmoid(x)) -> -softplus(-x): finite where sigmoid(x) underflows to 0.

    With ``local_one_minus_sigmoid`` this also turns log(1 - sigmoid(x)) into -softplus(x).
    """
    return gt.neg(gt.softplus(_negate(x)))


# --- softmax family --------------------------------------------------------------------------

@STABILIZE.rule("local_log_softmax", P(LOG, P(SOFTMAX, P.var("x"), name="sm")))
def _log_softmax(sm, x):
    """log(softmax(x)) -> log_softmax(x): finite where softmax underflows to 0."""
    return make(LOG_SOFTMAX, (x,), sm.arg)


def _is_max_shifted(x: Node) -> bool:
    """Whether ``x`` is ``y - max(y)`` (or ``y - where(isfinite(m), m, 0)`` with m = max(y))."""
    if x.op is not SUB:
        return False
    y, m = x.src
    m = _strip_markers(m)
    if m.op is WHERE:
        m = _strip_markers(m.src[1])
    while m.op is DIMSHUFFLE:
        m = m.src[0]
    return m.op is MAX and _strip_markers(m.src[0]) is y


@STABILIZE.rule("local_logsumexp", P(LOG, P(SUM, P(EXP, P.var("x")), name="s")))
def _logsumexp(s, x):
    """log(sum(exp(x))) -> logsumexp(x), which subtracts max(x) first: no overflow for large x.

    Declines when ``x`` is already shifted by its maximum, and on statically empty axes
    (where ``max`` has no value; naive gives -inf).
    """
    axes, keepdims = s.arg
    if not axes or _is_max_shifted(x) or any(x.type.shape[a] == 0 for a in axes):
        return None
    return make(LOGSUMEXP, (x,), s.arg)


def _keepdims_sum(den: Node) -> Node | None:
    """The sum node behind ``den`` when ``den`` is a sum that keeps its reduced axes (with
    ``keepdims=True`` or re-inserted by dimshuffle); else None."""
    if den.op is SUM:
        return den if den.arg[1] else None
    if den.op is DIMSHUFFLE and den.src[0].op is SUM:
        total = den.src[0]
        axes, keepdims = total.arg
        kept = iter(range(total.ndim))
        expand = tuple("x" if a in axes else next(kept) for a in range(den.ndim))
        return total if not keepdims and den.arg == expand else None
    return None


@STABILIZE.rule("local_softmax",
                P(TRUE_DIV, P(EXP, P.var("x"), name="e"), P(None, name="den")))
def _softmax(e, den, x):
    """exp(x) / sum(exp(x), axes, keepdims=True) -> softmax(x, axes) (max subtracted)."""
    total = _keepdims_sum(den)
    if total is None or total.src[0] is not e or not total.arg[0]:
        return None
    return make(SOFTMAX, (x,), total.arg[0])


# --- cross-entropy of softmax -----------------------------------------------------------------

def _picked(normalizer) -> P:
    """``where(one_hot(y, n), normalizer(x), 0)``: the labelled class of each example."""
    mask = P(ONE_HOT, P.var("y"), P.var("n"), name="mask")
    return P(WHERE, mask, P(normalizer, P.var("x"), name="dist"), P.const(0, name="zero"))


def _size_forms(node: Node, axis: int) -> list:
    """The spellings of ``node``'s size along ``axis``: ``shape_i(node, axis)`` and what the
    shape rules turn it into, step by step (as the shape rewrites do), ints where static."""
    forms = []
    entry = shape_entry(node, axis)
    for _ in range(64):
        forms.append(entry)
        if not isinstance(entry, Node) or entry.op is not SHAPE_I or entry.src[0].is_leaf:
            break
        try:
            entry = output_shape(entry.src[0])[entry.arg]
        except MissingShapeRule:
            break
    return forms


def _is_class_count(n: Node, dist: Node) -> bool:
    """Whether ``n`` is provably the size of the last (class) axis of ``dist``."""
    forms = _size_forms(dist, dist.ndim - 1)
    value = const_value(n)
    if value is not None:
        return any(isinstance(f, int) and value == f for f in forms)
    return any(f is n for f in forms)


def _crossentropy(total, mask, dist, zero, x, y, n) -> Node | None:
    """``-crossentropy_softmax(x, y)`` if the matched graph is a per-example cross-entropy."""
    last = x.ndim - 1
    if (not _last_axis_only(dist.arg, x.ndim) or total.arg != ((last,), False)
            or mask.arg[0] != "bool" or not _is_class_count(n, dist)
            or not broadcasts_within(zero, mask, dist)):
        return None
    return gt.neg(make(CROSSENTROPY_SOFTMAX, (x, y)))


@STABILIZE.rule("local_crossentropy_softmax",
                P(LOG, P(SUM, _picked(SOFTMAX), name="total")))
def _crossentropy_of_softmax(total, mask, dist, zero, x, y, n):
    """log(sum(where(one_hot(y), softmax(x), 0), -1)) -> -crossentropy_softmax(x, y).

    What ``categorical_crossentropy(softmax(x), y)`` builds (under its negation).
    """
    return _crossentropy(total, mask, dist, zero, x, y, n)


@STABILIZE.rule("local_crossentropy_log_softmax", P(SUM, _picked(LOG_SOFTMAX), name="total"))
def _crossentropy_of_log_softmax(total, mask, dist, zero, x, y, n):
    """sum(where(one_hot(y), log_softmax(x), 0), -1) -> -crossentropy_softmax(x, y).

    What ``softmax_cross_entropy_with_logits(x, y)`` builds (under its negation).
    """
    return _crossentropy(total, mask, dist, zero, x, y, n)
