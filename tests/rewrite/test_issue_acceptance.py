"""The rewrite issue's "done when" list, end to end through graphc.function (FAST_RUN)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.ir.node import toposort


def _non_leaf(f):
    return [n for n in toposort(f.fgraph.outputs) if not n.is_leaf]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_one_plus_tiny_x_equals_log1p(dtype):
    x = gt.tensor(dtype, (None,), "x")
    f = gc.function([x], gt.log(1 + x))
    value = np.array([1e-10, 1e-20, 1e-5], dtype)
    np.testing.assert_allclose(f(value), np.log1p(value), rtol=1e-6 if dtype == "float32" else 1e-15)


def test_log_sigmoid_of_minus_200():
    x = gt.dscalar("x")
    f = gc.function([x], gt.log(gt.sigmoid(x)))
    assert float(f(-200.0)) == pytest.approx(-200.0, rel=1e-12)
    g = gc.function([x], gt.log(1 - gt.sigmoid(x)))
    assert float(g(200.0)) == pytest.approx(-200.0, rel=1e-12)


def test_naive_logsumexp_of_1000s():
    x = gt.dvector("x")
    f = gc.function([x], gt.log(gt.sum(gt.exp(x))))
    assert float(f(np.array([1000.0, 1000.0]))) == pytest.approx(1000 + np.log(2), rel=1e-15)


def test_log_softmax_over_a_spread_of_1000_is_finite():
    x = gt.dmatrix("x")
    f = gc.function([x], gt.log(gt.nnet.softmax(x)))
    value = np.array([[0.0, 1000.0, -1000.0], [5.0, 5.0, 5.0]])
    out = f(value)
    assert np.isfinite(out).all()
    shifted = value - value.max(1, keepdims=True)
    np.testing.assert_allclose(out, shifted - np.log(np.exp(shifted).sum(1, keepdims=True)))


@pytest.mark.parametrize("build", ["categorical", "with_logits"])
def test_softmax_crossentropy_gradient_at_logits_of_1000(build):
    x, y = gt.dmatrix("x"), gt.lvector("y")
    if build == "categorical":
        loss = gt.nnet.categorical_crossentropy(gt.nnet.softmax(x), y).mean()
    else:
        loss = gt.nnet.softmax_cross_entropy_with_logits(x, y).mean()
    f = gc.function([x, y], [loss, gc.grad(loss, x)])
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 3.0]])
    labels = np.array([1, 1])
    value, grad = f(logits, labels)
    shifted = logits - logits.max(1, keepdims=True)
    softmax = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    expected = (softmax - np.eye(3)[labels]) / 2
    assert np.isfinite(value) and np.isfinite(grad).all()
    np.testing.assert_allclose(grad, expected, atol=1e-12)
    assert float(value) == pytest.approx(1000.0, rel=1e-12)


def test_sqrt_of_a_square_is_not_rewritten():
    x = gt.dvector("x")
    f = gc.function([x], gt.sqrt(x * x))
    np.testing.assert_array_equal(f(np.array([-3.0, 2.0])), [3.0, 2.0])


def test_debugprint_shows_the_rewritten_graph():
    x = gt.dvector("x")
    f = gc.function([x], gt.log(1 + x))
    text = gc.printing.debugprint(f, file="str")
    assert "log1p" in text and "add" not in text


def test_ten_op_chain_and_a_sum_is_one_fused_node():
    x, y = gt.fvector("x"), gt.fvector("y")
    v = x
    ops = [lambda v: v * y, gt.exp, lambda v: v + 1.5, gt.tanh, lambda v: v - x, gt.sin,
           lambda v: v * v, gt.sqrt, lambda v: v / 3.0, gt.log1p]
    for op in ops:
        v = op(v)
    f = gc.function([x, y], v.sum())
    nodes = _non_leaf(f)
    assert [n.op.name for n in nodes] == ["fused_reduce"], [n.op.name for n in nodes]
    a = np.linspace(0.1, 1, 16, dtype="float32")
    b = np.linspace(1, 2, 16, dtype="float32")
    ref = gc.function([x, y], v.sum(), mode="reference")
    np.testing.assert_allclose(f(a, b), ref(a, b), rtol=1e-5)
