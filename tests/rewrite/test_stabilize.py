"""The stabilize set: each rule's graph before/after with equal values on ordinary inputs, the
numerically hard value the naive graph gets wrong, the cases a rule must leave alone, and the
stable gradients ``grad`` builds by running these rules first."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from graphc.rewrite import Mode, PatternMatcher, graph_rewrite
from graphc.rewrite.registry import STABILIZE
from tests.helpers import FLOATS, assert_matches, layouts, random_array, tolerance
from tests.rewrite.util import check_rewrite, compiled_ops, op_names

NO_FUSION = ("fusion",)  # graph checks look at the rewritten ops, before fusion groups them


def fast_run(inputs, out):
    return gc.function(inputs, out, mode="FAST_RUN")


def naive(inputs, out):
    return gc.function(inputs, out, mode="reference")


def np_log_softmax(x, axis=-1):
    x64 = np.asarray(x, dtype=np.float64)
    m = np.max(x64, axis=axis, keepdims=True)
    return x64 - m - np.log(np.sum(np.exp(x64 - m), axis=axis, keepdims=True))


def np_crossentropy(x, y):
    """``-log_softmax(x)`` at the labels, in float64, rounded to ``x``'s dtype."""
    picked = np.take_along_axis(np_log_softmax(x), y.astype(np.int64)[..., None], -1)[..., 0]
    return (-picked).astype(x.dtype)


# --- elementwise rules -----------------------------------------------------------------------

# name: (build, rules that fire, ops present, ops absent, ordinary range, hard x, stable value)
ELEMWISE = {
    "log(1+x)": (lambda x: gt.log(1 + x), ["local_log1p"], ["log1p"], ["log", "add"],
                 (-0.9, 0.9), 1e-10, np.log1p),
    "log(x+1)": (lambda x: gt.log(x + 1), ["local_log1p"], ["log1p"], ["log", "add"],
                 (-0.9, 0.9), 1e-10, np.log1p),
    "log(ones+x)": (lambda x: gt.log(np.ones(1, x.dtype) + x), ["local_log1p"], ["log1p"], ["log"],
                    (-0.9, 0.9), 1e-10, np.log1p),
    "log(1-x)": (lambda x: gt.log(1 - x), ["local_log1m"], ["log1p"], ["log", "sub"],
                 (-0.9, 0.9), 1e-10, lambda v: np.log1p(-v)),
    "exp(x)-1": (lambda x: gt.exp(x) - 1, [], ["expm1"], ["exp"],
                 (-3, 3), 1e-10, np.expm1),
    "-1+exp(x)": (lambda x: -1 + gt.exp(x), ["local_expm1_add"], ["expm1"], ["exp", "add"],
                  (-3, 3), 1e-10, np.expm1),
    "log(sigmoid(x))": (lambda x: gt.log(gt.sigmoid(x)), ["local_log_sigmoid"], ["softplus"],
                        ["log", "sigmoid"], (-5, 5), -800.0, lambda v: -np.logaddexp(0, -v)),
    "log(1-sigmoid(x))": (lambda x: gt.log(1 - gt.sigmoid(x)),
                          ["local_one_minus_sigmoid", "local_log_sigmoid"], ["softplus"],
                          ["log", "sigmoid", "sub"], (-5, 5), 200.0, lambda v: -np.logaddexp(0, v)),
    "1-sigmoid(x)": (lambda x: 1 - gt.sigmoid(x), ["local_one_minus_sigmoid"], ["neg"],
                     ["sub"], (-5, 5), 40.0, lambda v: 1 / (1 + np.exp(v))),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(ELEMWISE))
def test_elementwise_rule_graph_and_values(case, dtype):
    build, fired, present, absent, (low, high), _, _ = ELEMWISE[case]
    x = gt.tensor(dtype, (None, None), "x")
    values = [random_array((3, 4), dtype, np.random.default_rng(0), low, high)]
    assert set(present) - set(op_names([build(x)])), "the naive graph already has the stable op"
    check_rewrite([x], build(x), values, fired=fired, present=present, absent=absent,
                  exclude=NO_FUSION)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(ELEMWISE))
def test_elementwise_rule_gets_the_hard_value_right(case, dtype):
    build, *_, hard, stable = ELEMWISE[case]
    x = gt.tensor(dtype, (None,), "x")
    point = np.array([hard, 0.5], dtype=dtype)
    expected = stable(point.astype(np.float64)).astype(dtype)
    got = fast_run([x], build(x))(point)
    assert got.dtype == expected.dtype
    # relative error only: the hard values are tiny, an absolute tolerance would hide them
    np.testing.assert_allclose(got, expected, rtol=tolerance(dtype)["rtol"], atol=0)
    if dtype == "float64":  # the naive graph is wrong there: the rule is what fixes it
        assert not np.allclose(naive([x], build(x))(point)[0], expected[0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("case", sorted(ELEMWISE))
def test_elementwise_rule_alone_as_grad_runs_it(case):
    # grad runs the stabilize set without canonicalize: each rule must match the raw graph
    build, _, present, absent, *_ = ELEMWISE[case]
    x = gt.dmatrix("x")
    fired = []
    (out,) = graph_rewrite([build(x)], PatternMatcher(STABILIZE.rules), fired=fired)
    assert fired and set(present) <= set(op_names([out]))
    assert not set(absent) & set(op_names([out])) - {"add", "sub"}


@pytest.mark.parametrize("layout", ["strided", "negative"])
def test_elementwise_rules_on_non_contiguous_and_empty_inputs(layout):
    x = gt.dmatrix("x")
    for case, (build, fired, *_rest) in sorted(ELEMWISE.items()):
        value = random_array((3, 4), "float64", np.random.default_rng(1), -0.9, 0.9)
        value = layouts(value)[layout]
        check_rewrite([x], build(x), [value], fired=fired)
        check_rewrite([x], build(x), [np.zeros((0, 4))], fired=fired)


def test_log1p_keeps_a_constant_that_broadcasts_x():
    # ones((3, 1)) makes log(1 + x) 3 rows for a vector x: log1p(x) would have the wrong shape
    x = gt.dvector("x")
    f = check_rewrite([x], gt.log(np.ones((3, 1)) + x), [np.array([0.5, 1e-3])],
                      present=["log", "add"], absent=["log1p"], exclude=NO_FUSION)
    assert f(np.array([0.5, 1e-3])).shape == (3, 2)
    assert "local_log1p" not in f.fgraph.fired
    # the same for 1 - sigmoid(x) with a (2, 1) constant
    f = check_rewrite([x], np.ones((2, 1)) - gt.sigmoid(x), [np.array([0.5, 3.0])],
                      present=["sub"], exclude=NO_FUSION)
    assert "local_one_minus_sigmoid" not in f.fgraph.fired


@pytest.mark.parametrize("build", [lambda x: gt.log(2 + x), lambda x: gt.exp(x) - 2,
                                   lambda x: gt.log(x - 1)], ids=["log(2+x)", "exp-2", "log(x-1)"])
def test_other_constants_are_left_alone(build):
    x = gt.dvector("x")
    f = check_rewrite([x], build(x), [np.array([1.5, 3.0])], exclude=NO_FUSION)
    assert not {"log1p", "expm1"} & set(compiled_ops(f))


def test_sqrt_of_square_is_not_x():
    x = gt.dvector("x")
    value = np.array([-3.0, -0.5, 0.0, 2.0])
    f = check_rewrite([x], gt.sqrt(x * x), [value], present=["sqrt"], exclude=NO_FUSION)
    np.testing.assert_array_equal(f(value), np.abs(value))


# --- softmax family --------------------------------------------------------------------------

SPREAD = np.array([[1000.0, 0.0, -1000.0], [3.0, 1.0, 2.0], [-1000.0, -1000.0, 1000.0]])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", [-1, 0, None], ids=str)
def test_log_softmax(axis, dtype):
    x = gt.tensor(dtype, (None, None), "x")
    out = gt.log(gt.nnet.softmax(x, axis))
    check_rewrite([x], out, [random_array((3, 4), dtype)], fired=["local_log_softmax"],
                  present=["log_softmax"], absent=["softmax", "log"], exclude=NO_FUSION)
    got = fast_run([x], out)(SPREAD.astype(dtype))
    assert np.isfinite(got).all()
    assert_matches(got, np_log_softmax(SPREAD, axis).astype(dtype))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [1, 0, (0, 1), None], ids=str)
def test_logsumexp(axis, keepdims):
    x = gt.dmatrix("x")
    out = gt.log(gt.sum(gt.exp(x), axis, keepdims=keepdims))
    values = [layouts(random_array((3, 4), "float64"))["negative"]]
    check_rewrite([x], out, values, fired=["local_logsumexp"], present=["logsumexp"], absent=["exp"],
                  exclude=NO_FUSION)
    got = fast_run([x], out)(SPREAD)
    m = np.max(SPREAD, axis=axis, keepdims=True)
    expected = m + np.log(np.sum(np.exp(SPREAD - m), axis=axis, keepdims=True))
    assert_matches(got, expected if keepdims else np.squeeze(expected, axis))


@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp_of_equal_large_values_is_max_plus_log_n(dtype):
    v = gt.tensor(dtype, (None,), "v")
    out = gt.log(gt.sum(gt.exp(v)))
    assert naive([v], out)(np.array([1000.0, 1000.0], dtype)) == np.inf
    assert_matches(fast_run([v], out)(np.array([1000.0, 1000.0], dtype)),
                   np.array(1000.0 + np.log(2.0), dtype))


def test_logsumexp_keeps_infinities_and_empty_axes():
    x = gt.dmatrix("x")
    out = gt.log(gt.sum(gt.exp(x), 1))
    special = np.array([[-np.inf, -np.inf], [np.inf, 0.0], [np.inf, np.inf], [np.nan, 0.0]])
    check_rewrite([x], out, [special], fired=["local_logsumexp"])
    check_rewrite([x], out, [np.zeros((0, 3))], fired=["local_logsumexp"])
    empty = gt.tensor("float64", (2, 0), "empty")  # max of an empty axis has no value: declined
    f = check_rewrite([empty], gt.log(gt.sum(gt.exp(empty), 1)), [np.zeros((2, 0))])
    assert "local_logsumexp" not in f.fgraph.fired


def test_logsumexp_that_is_already_shifted_is_left_alone():
    x = gt.dmatrix("x")
    f = check_rewrite([x], gt.logsumexp(x, 1), [SPREAD])
    assert "local_logsumexp" not in f.fgraph.fired
    assert np.isfinite(f(SPREAD)).all()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("form", ["keepdims", "expand_dims", "axis0", "all"])
def test_naive_softmax(form, dtype):
    x = gt.tensor(dtype, (None, None), "x")
    e = gt.exp(x)
    out, axis = {
        "keepdims": (e / gt.sum(e, 1, keepdims=True), 1),
        "expand_dims": (e / gt.expand_dims(gt.sum(e, 1), 1), 1),
        "axis0": (e / gt.sum(e, 0, keepdims=True), 0),
        "all": (e / gt.sum(e, None, keepdims=True), None),
    }[form]
    check_rewrite([x], out, [random_array((3, 4), dtype)], fired=["local_softmax"],
                  present=["softmax"], absent=["exp", "true_div"], exclude=NO_FUSION)
    got = fast_run([x], out)(SPREAD.astype(dtype))
    assert_matches(got, np.exp(np_log_softmax(SPREAD, axis)).astype(dtype))


def test_softmax_over_a_different_sum_is_left_alone():
    x, y = gt.dmatrix("x"), gt.dmatrix("y")
    out = gt.exp(x) / gt.sum(gt.exp(y), 1, keepdims=True)
    f = check_rewrite([x, y], out, [SPREAD / 1000, SPREAD / 500], exclude=NO_FUSION)
    assert "softmax" not in compiled_ops(f)
    f = check_rewrite([x], gt.exp(x) / gt.sum(gt.exp(x), 1), [np.ones((3, 3))], exclude=NO_FUSION)
    assert "softmax" not in compiled_ops(f)  # keepdims=False divides across rows


def test_dense_target_crossentropy_becomes_log_softmax():
    x, t = gt.dmatrix("x"), gt.dmatrix("t")
    out = gt.nnet.categorical_crossentropy(gt.nnet.softmax(x), t)
    targets = np.exp(np_log_softmax(random_array((3, 3), "float64")))
    check_rewrite([x, t], out, [random_array((3, 3), "float64"), targets],
                  present=["log_softmax"], absent=["softmax", "log"], exclude=NO_FUSION)
    got = fast_run([x, t], out)(SPREAD, targets)
    np.testing.assert_allclose(got, -np.sum(targets * np_log_softmax(SPREAD), -1), rtol=1e-12)


# --- cross-entropy of softmax ----------------------------------------------------------------

XENT = {
    "categorical_crossentropy": (
        lambda x, y: gt.nnet.categorical_crossentropy(gt.nnet.softmax(x), y),
        "local_crossentropy_softmax"),
    "softmax_cross_entropy_with_logits": (
        gt.nnet.softmax_cross_entropy_with_logits, "local_crossentropy_log_softmax"),
}
LABELS = np.array([0, 2, 1])


@pytest.mark.parametrize("label_dtype", ["int32", "int64", "uint8"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(XENT))
def test_crossentropy_becomes_one_op(case, dtype, label_dtype):
    build, rule = XENT[case]
    x, y = gt.tensor(dtype, (None, None), "x"), gt.tensor(label_dtype, (None,), "y")
    labels = LABELS.astype(label_dtype)
    check_rewrite([x, y], build(x, y), [random_array((3, 3), dtype), labels], fired=[rule],
                  present=["crossentropy_softmax"], absent=["softmax", "log_softmax", "log"],
                  exclude=NO_FUSION)
    got = fast_run([x, y], build(x, y))(SPREAD.astype(dtype), labels)
    assert np.isfinite(got).all()
    assert_matches(got, np_crossentropy(SPREAD.astype(dtype), labels))


@pytest.mark.parametrize("case", sorted(XENT))
def test_crossentropy_of_higher_rank_static_and_empty_batches(case):
    build, rule = XENT[case]
    x, y = gt.tensor("float64", (None, None, 4), "x"), gt.lmatrix("y")
    value = layouts(random_array((2, 3, 4), "float64"))["strided"]
    labels = np.random.default_rng(2).integers(0, 4, (2, 3))
    check_rewrite([x, y], build(x, y), [value, labels], fired=[rule],
                  present=["crossentropy_softmax"], exclude=NO_FUSION)
    check_rewrite([x, y], build(x, y), [np.zeros((0, 3, 4)), np.zeros((0, 3), "int64")],
                  fired=[rule])


def test_crossentropy_with_labels_out_of_range_still_raises():
    x, y = gt.dmatrix("x"), gt.lvector("y")
    f = fast_run([x, y], gt.nnet.categorical_crossentropy(gt.nnet.softmax(x), y))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        f(SPREAD, np.array([0, 3, 1]))


def test_crossentropy_over_another_axis_or_class_count_is_left_alone():
    x, y = gt.dmatrix("x"), gt.lvector("y")
    # softmax over the batch axis: not a per-example cross-entropy
    out = gt.nnet.categorical_crossentropy(gt.nnet.softmax(x, axis=0), y)
    f = check_rewrite([x, y], out, [random_array((3, 3), "float64"), LABELS], exclude=NO_FUSION)
    assert "crossentropy_softmax" not in compiled_ops(f)
    # a one_hot of 3 classes against logits whose class count is not known to be 3
    picked = gt.switch(gt.nnet.one_hot(y, 3), gt.nnet.softmax(x), 0)
    values = [random_array((3, 3), "float64"), LABELS]
    f = check_rewrite([x, y], -gt.log(gt.sum(picked, -1)), values, exclude=NO_FUSION)
    assert "crossentropy_softmax" not in compiled_ops(f)
    # ... while logits statically of 3 classes make the same graph a cross-entropy
    xs = gt.tensor("float64", (None, 3), "xs")
    picked = gt.switch(gt.nnet.one_hot(y, 3), gt.nnet.softmax(xs), 0)
    check_rewrite([xs, y], -gt.log(gt.sum(picked, -1)), values, present=["crossentropy_softmax"],
                  exclude=NO_FUSION)


# --- stable gradients: grad runs the stabilize rules first ------------------------------------

def analytic_crossentropy_grad(logits, labels):
    """d mean(crossentropy) / d logits = (softmax - one_hot) / batch, computed stably."""
    softmax = np.exp(np_log_softmax(logits))
    return (softmax - np.eye(logits.shape[-1])[labels]) / logits.shape[0]


@pytest.mark.parametrize("mode", ["reference", "FAST_RUN"])
@pytest.mark.parametrize("case", sorted(XENT))
def test_crossentropy_gradient_is_finite_for_extreme_logits(case, mode):
    build, _ = XENT[case]
    x, y = gt.dmatrix("x"), gt.lvector("y")
    cost = gt.mean(build(x, y))
    got = gc.function([x, y], gc.grad(cost, x), mode=mode)(SPREAD, LABELS)
    np.testing.assert_allclose(got, analytic_crossentropy_grad(SPREAD, LABELS), atol=1e-15)


def test_gradient_of_the_naive_graph_is_nan_without_stabilize():
    x, y = gt.dmatrix("x"), gt.lvector("y")
    cost = gt.mean(gt.nnet.categorical_crossentropy(gt.nnet.softmax(x), y))
    plain = gc.function([x, y], gc.grad(cost, x, stabilize=False), mode="reference")
    assert np.isnan(plain(SPREAD, LABELS)).any()
    assert "crossentropy_softmax" not in op_names([gc.grad(cost, x, stabilize=False)])
    assert "crossentropy_softmax" in op_names([gc.grad(cost, x)])


@pytest.mark.parametrize("build", [
    lambda x: gt.log(1 + x * x), lambda x: gt.log(gt.sigmoid(x)),
    lambda x: gt.log(1 - gt.sigmoid(x)), lambda x: gt.log(gt.sum(gt.exp(x), 1)),
    lambda x: gt.exp(x) / gt.sum(gt.exp(x), 1, keepdims=True),
    lambda x: gt.exp(x) - 1,
    lambda x: gt.nnet.categorical_crossentropy(gt.nnet.softmax(x), gt.constant(LABELS)),
], ids=["log1p", "log_sigmoid", "log1m_sigmoid", "logsumexp", "softmax", "expm1", "xent"])
def test_gradients_of_stabilized_formulas(build):
    verify_grad(build, [layouts(random_array((3, 3), "float64"))["strided"]])


def test_grad_with_respect_to_an_intermediate_node():
    x, y = gt.dmatrix("x"), gt.lvector("y")
    probs = gt.nnet.softmax(x)
    cost = gt.mean(gt.nnet.categorical_crossentropy(probs, y))
    logits = random_array((3, 3), "float64")
    g_probs = gc.function([x, y], gc.grad(cost, probs))(logits, LABELS)
    p = np.exp(np_log_softmax(logits))
    expected = np.zeros_like(p)
    expected[np.arange(3), LABELS] = -1 / (3 * p[np.arange(3), LABELS])
    np.testing.assert_allclose(g_probs, expected, rtol=1e-12)
    # both the probabilities and the logits (one depends on the other): the graph as built
    g_both = gc.function([x, y], gc.grad(cost, [probs, x]))(logits, LABELS)
    np.testing.assert_allclose(g_both[0], expected, rtol=1e-12)
    np.testing.assert_allclose(g_both[1], analytic_crossentropy_grad(logits, LABELS), atol=1e-15)


def test_grad_keeps_consider_constant_and_second_derivatives():
    x = gt.dvector("x")
    h = gt.sigmoid(x)
    cost = gt.sum(gt.log(h) * x)
    held = gc.function([x], gc.grad(cost, x, consider_constant=[h]))(np.array([0.5, -2.0]))
    np.testing.assert_allclose(held, np.log(1 / (1 + np.exp(-np.array([0.5, -2.0])))), rtol=1e-12)
    verify_grad(lambda v: gc.grad(gt.sum(gt.log(gt.sigmoid(v)) * v), v), [np.array([0.3, -1.2])])


def test_grad_of_a_stabilized_cost_in_a_training_step_is_finite():
    x, y = gt.dmatrix("x"), gt.lvector("y")
    W = gc.shared(np.array([[100.0, 0.0, -100.0], [0.0, 50.0, 0.0], [-100.0, 0.0, 100.0]]), "W")
    cost = gt.mean(gt.nnet.categorical_crossentropy(gt.nnet.softmax(gt.dot(x, W)), y))
    gW = gc.grad(cost, W)
    step = gc.function([x, y], cost, updates=[(W, W - 0.1 * gW)], mode=Mode("FAST_RUN"))
    loss = step(SPREAD / 10, LABELS)
    assert np.isfinite(loss) and np.isfinite(W.get_value()).all()
