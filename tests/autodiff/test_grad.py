"""graphc.grad and friends: API semantics and composite checks against finite differences."""

import warnings

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import DisconnectedInputError, GradientError, verify_grad

RNG = np.random.default_rng(7)


def run(outputs, inputs=(), values=()):
    return gc.function(list(inputs), outputs, on_unused_input="ignore")(*values)


def test_grad_of_reused_variable_accumulates():
    x = gt.dscalar("x")
    y = x * x + 3 * x + gt.sin(x) * x
    g = gc.grad(y, x)
    v = 0.7
    assert np.isclose(run(g, [x], [v]), 2 * v + 3 + np.cos(v) * v + np.sin(v))


def test_grad_list_and_single_forms():
    x, y = gt.dscalar("x"), gt.dscalar("y")
    cost = x * y
    assert isinstance(gc.grad(cost, [x, y]), list)
    gx = gc.grad(cost, x)
    assert not isinstance(gx, list)
    assert run(gx, [x, y], [2.0, 5.0]) == 5.0


def test_grad_wrt_shared_variable():
    w = gc.shared(np.array([1.0, 2.0, 3.0]), name="w")
    x = gt.dvector("x")
    cost = (w * x).sum() ** 2
    gw = gc.grad(cost, w)
    xv = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(run(gw, [x], [xv]), 2 * (w.get_value() @ xv) * xv)


def test_disconnected_inputs_policies():
    x, y = gt.dvector("x"), gt.dvector("y")
    cost = (x ** 2).sum()
    with pytest.raises(DisconnectedInputError, match="does not depend on y"):
        gc.grad(cost, [x, y])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gx, gy = gc.grad(cost, [x, y], disconnected_inputs="warn")
    assert any("does not depend" in str(w.message) for w in caught)
    gx, gy = gc.grad(cost, [x, y], disconnected_inputs="ignore")
    out = run(gy, [x, y], [np.ones(2), np.ones(3)])
    np.testing.assert_array_equal(out, np.zeros(3))


def test_integer_wrt_and_integer_cost_are_errors():
    i = gt.ivector("i")
    x = gt.dvector("x")
    with pytest.raises(TypeError, match="integer"):
        gc.grad((x * i).sum(), i)
    with pytest.raises(TypeError, match="dtype int"):
        gc.grad(i.sum(), x)


def test_cost_must_be_scalar():
    x = gt.dvector("x")
    with pytest.raises(TypeError, match="scalar"):
        gc.grad(x * 2, x)


def test_known_grads_starts_backprop():
    x = gt.dvector("x")
    h = gt.tanh(x)
    gh = gt.dvector("gh")
    gx = gc.grad(None, x, known_grads={h: gh})
    xv, ghv = RNG.standard_normal(4), RNG.standard_normal(4)
    np.testing.assert_allclose(run(gx, [x, gh], [xv, ghv]), ghv * (1 - np.tanh(xv) ** 2))


def test_consider_constant_blocks_gradient():
    x = gt.dscalar("x")
    y = x * x
    g = gc.grad(y * x, x, consider_constant=[y])
    assert np.isclose(run(g, [x], [3.0]), 9.0)


def test_stop_gradient_zero_grad_grad_clip():
    x = gt.dscalar("x")
    assert np.isclose(run(gc.grad(gt.stop_gradient(x) * x, x), [x], [3.0]), 3.0)
    assert np.isclose(run(gc.grad(gt.disconnected_grad(x ** 2) + x, x), [x], [3.0]), 1.0)
    assert np.isclose(run(gc.grad(gt.zero_grad(x) * x, x), [x], [3.0]), 3.0)
    assert np.isclose(run(gc.grad(gt.grad_clip(x * 10, -1.0, 1.0) ** 2, x), [x], [3.0]), 10.0)
    assert np.isclose(run(gt.grad_clip(x * 10, -1.0, 1.0), [x], [3.0]), 30.0)


def test_stop_gradient_of_wrt_is_disconnected():
    x = gt.dscalar("x")
    with pytest.raises(DisconnectedInputError):
        gc.grad(gt.stop_gradient(x) * 2, x)


def test_second_derivative():
    x = gt.dscalar("x")
    y = x ** 4 + gt.exp(2 * x)
    g1 = gc.grad(y, x)
    g2 = gc.grad(g1, x)
    g3 = gc.grad(g2, x)
    v = 0.3
    assert np.isclose(run(g2, [x], [v]), 12 * v ** 2 + 4 * np.exp(2 * v))
    assert np.isclose(run(g3, [x], [v]), 24 * v + 8 * np.exp(2 * v))


def test_grad_of_broadcast_input_sums_back():
    x = gt.dmatrix("x")
    b = gt.dvector("b")
    r = gt.tensor("float64", shape=(1, None), name="r")
    cost = ((x + b) * r).sum()
    gb, gr = gc.grad(cost, [b, r])
    xv, bv, rv = np.ones((4, 3)), np.ones(3), np.arange(3.0).reshape(1, 3)
    out_b, out_r = run([gb, gr], [x, b, r], [xv, bv, rv])
    np.testing.assert_allclose(out_b, 4 * rv[0])
    np.testing.assert_allclose(out_r, (xv + bv).sum(axis=0, keepdims=True))


def test_grad_of_runtime_broadcast_dimension():
    # the size-1 dimension is only known at run time: the gradient sums back to it
    x = gt.dmatrix("x")
    y = gt.dmatrix("y")
    gy = gc.grad((x * y).sum(), y)
    xv = RNG.standard_normal((4, 3))
    out = run(gy, [x, y], [xv, np.ones((1, 3))])
    np.testing.assert_allclose(out, xv.sum(axis=0, keepdims=True))


def test_mlp_loss_gradient_all_weights():
    def mlp(x, w1, b1, w2, b2):
        h = gt.tanh(gt.dot(x, w1) + b1)
        logits = gt.dot(h, w2) + b2
        return gt.logsumexp(logits, axis=1).mean() - logits[:, 0].mean()

    point = [RNG.standard_normal((5, 4)), RNG.standard_normal((4, 6)) * 0.5, RNG.standard_normal(6) * 0.1,
             RNG.standard_normal((6, 3)) * 0.5, RNG.standard_normal(3) * 0.1]
    verify_grad(mlp, point)


def test_logsumexp_gradient_is_softmax():
    x = gt.dmatrix("x")
    g = gc.grad(gt.logsumexp(x, axis=1).sum(), x)
    xv = RNG.standard_normal((3, 5)) * 10
    e = np.exp(xv - xv.max(axis=1, keepdims=True))
    np.testing.assert_allclose(run(g, [x], [xv]), e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    verify_grad(lambda a: gt.logsumexp(a, axis=0), [xv])


def test_softmax_cross_entropy_gradient():
    logits = RNG.standard_normal((4, 5))
    onehot = np.eye(5)[[0, 3, 1, 4]]

    def loss(z):
        return gt.nnet.categorical_crossentropy(gt.nnet.softmax(z), gt.constant(onehot)).mean()

    verify_grad(loss, [logits])
    z = gt.dmatrix("z")
    g = gc.grad(loss(z), z)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(run(g, [z], [logits]), (e / e.sum(1, keepdims=True) - onehot) / 4, atol=1e-12)


def test_hessian_of_quadratic_form_is_the_matrix():
    a = RNG.standard_normal((4, 4))
    a = a + a.T
    x = gt.tensor("float64", shape=(4,), name="x")
    cost = 0.5 * gt.dot(x, gt.dot(gt.constant(a), x))
    h = gc.hessian(cost, x)
    np.testing.assert_allclose(run(h, [x], [RNG.standard_normal(4)]), a, atol=1e-12)


def test_jacobian_of_elementwise_function_is_diagonal():
    x = gt.tensor("float64", shape=(5,), name="x")
    j = gc.jacobian(gt.tanh(x) * 2, x)
    xv = RNG.standard_normal(5)
    np.testing.assert_allclose(run(j, [x], [xv]), np.diag(2 * (1 - np.tanh(xv) ** 2)), atol=1e-12)


def test_jacobian_matrix_expression_shape():
    x = gt.tensor("float64", shape=(3,), name="x")
    m = gt.constant(RNG.standard_normal((2, 3)))
    j = gc.jacobian(gt.dot(m, x) ** 2, x)
    xv = RNG.standard_normal(3)
    expected = 2 * (m.arg.value @ xv)[:, None] * m.arg.value
    np.testing.assert_allclose(run(j, [x], [xv]), expected, atol=1e-12)


def test_lop_and_rop_match_the_jacobian():
    x = gt.tensor("float64", shape=(3,), name="x")
    m = gt.constant(RNG.standard_normal((2, 3)))
    f = gt.tanh(gt.dot(m, x))
    u = gt.dvector("u")
    v = gt.dvector("v")
    lop = gc.Lop(f, x, u)
    rop = gc.Rop(f, x, v)
    xv, uv, vv = RNG.standard_normal(3), RNG.standard_normal(2), RNG.standard_normal(3)
    jac = (1 - np.tanh(m.arg.value @ xv) ** 2)[:, None] * m.arg.value
    np.testing.assert_allclose(run(lop, [x, u], [xv, uv]), uv @ jac, atol=1e-12)
    np.testing.assert_allclose(run(rop, [x, v], [xv, vv]), jac @ vv, atol=1e-12)


def test_verify_grad_reports_a_wrong_gradient():
    with pytest.raises(GradientError, match="max abs error"):
        verify_grad(lambda a: gt.zero_grad(a) * a, [RNG.standard_normal(3)])


def test_non_differentiable_ops_give_zero_gradient():
    x = gt.dvector("x")
    cost = (gt.cast(gt.argmax(x), "float64") * x).sum() + (gt.cast(x > 0, "float64") * x).sum()
    g = gc.grad(cost, x)
    xv = np.array([0.5, -2.0, 3.0])
    np.testing.assert_allclose(run(g, [x], [xv]), np.argmax(xv) + (xv > 0))


@pytest.mark.parametrize("label,fn,shapes", [
    ("alloc", lambda x: gt.alloc(x, 4, 3) * 2, [(3,)]),
    ("alloc size-1", lambda x: gt.alloc(x, 2, 4, 3) ** 2, [(1, 3)]),
    ("alloc symbolic shape", lambda x, y: gt.alloc(x, gt.shape_i(y, 0), 3) * y, [(1, 3), (4, 3)]),
    ("sum_to runtime", lambda x, y: gt.sum_to(gt.sin(x * 3), y) * y, [(4, 3), (1, 3)]),
    ("full_like", lambda x: gt.ones_like(x) * x, [(2, 3)]),
])
def test_constructor_gradients(label, fn, shapes):
    point = [np.repeat(RNG.standard_normal(s), 2, axis=-1)[..., ::2] for s in shapes]
    assert not any(p.flags.c_contiguous for p in point if p.size > 1)
    verify_grad(fn, point, n_tests=1)
