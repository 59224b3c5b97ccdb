"""scan gradients (backpropagation through time) against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from tests.helpers import MODES, assert_matches, layouts


def _rng(seed=0):
    return np.random.default_rng(seed)


def _rnn(x, h0, w, u, b, **kw):
    h, _ = gc.scan(lambda x_t, h: gt.tanh(gt.dot(x_t, w) + gt.dot(h, u) + b),
                   sequences=x, outputs_info=h0, **kw)
    return h


@pytest.mark.parametrize("mode", MODES)
def test_rnn_gradient(mode):
    rng = _rng(1)
    # batch 2, input 3, hidden 4; b (4,) broadcasts against the (2, 4) state
    x = rng.standard_normal((5, 2, 3))
    point = [x, rng.standard_normal((2, 4)), rng.standard_normal((3, 4)),
             rng.standard_normal((4, 4)) * 0.5, rng.standard_normal(4)]
    for xl in layouts(x).values():
        verify_grad(_rnn, [xl] + point[1:], mode=mode, n_tests=1)


@pytest.mark.parametrize("mode", MODES)
def test_rnn_gradient_of_the_last_state_through_a_broadcast_initial_row(mode):
    rng = _rng(2)

    def last_state(x, h0, w, u, b):
        h0 = gt.broadcast_to(h0, (x.shape[1], h0.shape[1]))  # one (1, H) row for the batch
        return _rnn(x, h0, w, u, b)[-1]

    verify_grad(last_state, [rng.standard_normal((4, 3, 2)), rng.standard_normal((1, 3)),
                             rng.standard_normal((2, 3)), rng.standard_normal((3, 3)) * 0.5,
                             rng.standard_normal(3)], mode=mode)


def _lstm(x, h0, c0, w, u, b):
    hidden = h0.shape[-1]

    def step(x_t, h, c):
        z = gt.dot(x_t, w) + gt.dot(h, u) + b
        i = gt.sigmoid(z[:, :hidden])
        f = gt.sigmoid(z[:, hidden:2 * hidden])
        o = gt.sigmoid(z[:, 2 * hidden:3 * hidden])
        g = gt.tanh(z[:, 3 * hidden:])
        c_new = f * c + i * g
        return o * gt.tanh(c_new), c_new

    (hs, cs), _ = gc.scan(step, sequences=x, outputs_info=[h0, c0])
    return hs, cs


@pytest.mark.parametrize("mode", MODES)
def test_lstm_loss_gradient(mode):
    rng = _rng(3)
    hidden, n_in, batch = 3, 2, 2
    target = rng.standard_normal((4, batch, hidden))

    def loss(x, h0, c0, w, u, b):
        hs, cs = _lstm(x, h0, c0, w, u, b)
        return ((hs - target) ** 2).mean() + (cs[-1] ** 2).sum()

    point = [rng.standard_normal((4, batch, n_in)), rng.standard_normal((batch, hidden)),
             rng.standard_normal((batch, hidden)), rng.standard_normal((n_in, 4 * hidden)),
             rng.standard_normal((hidden, 4 * hidden)) * 0.5, rng.standard_normal(4 * hidden)]
    verify_grad(loss, point, mode=mode, n_tests=1)


def _numeric_shared_grad(f_cost, var, eps=1e-6):
    base = var.get_value()
    out = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        for sign in (1, -1):
            value = base.copy()
            value[index] += sign * eps
            var.set_value(value)
            out[index] += sign * float(f_cost()) / (2 * eps)
    var.set_value(base)
    return out


@pytest.mark.parametrize("mode", MODES)
def test_gradient_with_respect_to_a_shared_weight_read_inside_the_step(mode):
    rng = _rng(4)
    w = gc.shared(rng.standard_normal((3, 3)) * 0.5, name="w")
    x = gt.constant(rng.standard_normal((5, 3)))
    h, _ = gc.scan(lambda x_t, h: gt.tanh(x_t + gt.dot(h, w)), sequences=x,
                   outputs_info=gt.zeros((3,), dtype="float64"))
    cost = (h ** 2).sum() + h[-1].sum()
    f_cost = gc.function([], cost, mode=mode)
    f_grad = gc.function([], gc.grad(cost, w), mode=mode)
    np.testing.assert_allclose(f_grad(), _numeric_shared_grad(f_cost, w), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_through_several_taps(mode):
    rng = _rng(5)

    def mixed(x, h0, g0, v):
        def step(x_prev, x_next, h2, h1, g):
            return h1 * 0.5 + gt.sin(h2) * x_prev + v, g * x_next + h1

        (hs, gs), _ = gc.scan(step, sequences=dict(input=x, taps=[-1, 1]),
                              outputs_info=[dict(initial=h0, taps=[-2, -1]), g0])
        return hs.sum() + (gs * gs).sum()

    verify_grad(mixed, [rng.standard_normal(7), rng.standard_normal(2), rng.standard_normal(()),
                        rng.standard_normal(())], mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_of_map_outputs_go_backwards_and_reduce(mode):
    rng = _rng(6)

    def f(x, s0):
        mapped, _ = gc.scan(lambda x_t, s: [gt.exp(x_t) * s, s + x_t], sequences=x,
                            outputs_info=[None, s0], go_backwards=True)
        folded, _ = gc.foldl(lambda x_t, acc: acc * gt.cos(x_t), sequences=x, outputs_info=s0)
        return mapped[0].sum() + (mapped[1] ** 2).sum() + folded.sum()

    verify_grad(f, [rng.standard_normal((4, 2)), rng.standard_normal(2)], mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_of_a_while_loop(mode):
    def f(x):
        out, _ = gc.scan(lambda p: (p * 1.5 + 0.1, gc.until(p.sum() > 5)), outputs_info=x, n_steps=20)
        return out

    verify_grad(f, [np.array([0.4, 0.7])], mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_with_updates_recomputes_with_history(mode):
    counter = gc.shared(np.array(0.0), name="counter")

    def f(x, h0):
        h, updates = gc.scan(lambda x_t, h: (gt.tanh(h * x_t + counter), {counter: counter + 1}),
                             sequences=x, outputs_info=h0)
        assert updates
        return h

    verify_grad(f, [_rng(7).standard_normal((4, 2)), _rng(8).standard_normal(2)], mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_truncate_gradient(mode):
    rng = _rng(9)
    steps, k = 6, 2
    x_val = rng.standard_normal((steps, 3))
    h0_val = rng.standard_normal(3)
    w_val = rng.standard_normal((3, 3)) * 0.5
    x, h0, w = gt.dmatrix("x"), gt.dvector("h0"), gt.dmatrix("w")
    grads = {}
    for trunc in (-1, k):
        h, _ = gc.scan(lambda x_t, h: gt.tanh(x_t + gt.dot(h, w)), sequences=x, outputs_info=h0,
                       truncate_gradient=trunc)
        cost = h.sum()
        grads[trunc] = gc.function([x, h0, w], gc.grad(cost, [x, h0, w]), mode=mode)(x_val, h0_val, w_val)
    full, cut = grads[-1], grads[k]
    # the last k rows of x see every path to the cost; earlier rows and h0 get nothing
    np.testing.assert_allclose(cut[0][-k:], full[0][-k:], rtol=1e-12)
    assert np.all(cut[0][:-k] == 0) and np.any(full[0][:-k] != 0)
    assert np.all(cut[1] == 0) and np.any(full[1] != 0)
    assert not np.allclose(cut[2], full[2])
    # w sums its gradient over the last k steps only: finite differences through those steps
    one_step = []
    for t in range(steps):
        h_prev = h0_val
        for s in range(t):
            h_prev = np.tanh(x_val[s] + h_prev @ w_val)
        one_step.append(h_prev)
    expected = np.zeros_like(w_val)
    upstream = np.zeros(3)
    for t in reversed(range(steps - k, steps)):
        h_t = np.tanh(x_val[t] + one_step[t] @ w_val)
        g = (upstream + 1.0) * (1 - h_t ** 2)
        expected += np.outer(one_step[t], g)
        upstream = g @ w_val.T
    np.testing.assert_allclose(cut[2], expected, rtol=1e-10)


def test_truncated_gradient_reaches_the_initial_state_when_the_scan_is_short():
    x, h0 = gt.dmatrix("x"), gt.dvector("h0")
    h, _ = gc.scan(lambda x_t, h: h * x_t, sequences=x, outputs_info=h0, truncate_gradient=5)
    g = gc.function([x, h0], gc.grad(h[-1].sum(), h0))
    x_val = np.full((3, 2), 2.0)
    np.testing.assert_allclose(g(x_val, np.ones(2)), np.full(2, 8.0))


@pytest.mark.parametrize("mode", MODES)
def test_weight_gradients_of_a_scan_that_ran_no_steps_are_zero(mode):
    xs, h0 = gt.dtensor3("xs"), gt.dmatrix("h0")
    w, u, b = gt.dmatrix("w"), gt.dmatrix("u"), gt.dvector("b")
    h, _ = gc.scan(lambda x_t, h: gt.tanh(gt.dot(x_t, w) + b + gt.dot(h, u)), sequences=xs,
                   outputs_info=h0)
    f = gc.function([xs, h0, w, u, b], gc.grad((h ** 2).sum(), [w, u, b]), mode=mode)
    rng = _rng(12)
    weights = [rng.standard_normal(s) for s in [(2, 3), (3, 3), (3,)]]
    got = f(np.zeros((0, 4, 2)), rng.standard_normal((4, 3)), *weights)
    for g, weight in zip(got, weights):
        assert_matches(g, np.zeros_like(weight))


@pytest.mark.parametrize("mode", MODES)
def test_batched_rnn_weight_gradients_match_finite_differences(mode):
    def rnn(x, h0, w, u, b):
        h, _ = gc.scan(lambda x_t, h: gt.tanh(gt.dot(x_t, w) + gt.dot(h, u) + b), sequences=x,
                       outputs_info=h0)
        return (h * h).sum()

    rng = _rng(13)
    point = [rng.standard_normal(s) * 0.5 for s in [(4, 3, 2), (3, 5), (2, 5), (5, 5), (5,)]]
    verify_grad(rnn, point, mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_sequence_gradient_when_the_scan_reads_fewer_rows_than_the_sequence_has(mode):
    x, h0 = gt.dmatrix("x"), gt.dvector("h0")

    def cost(x, h0):
        h, _ = gc.scan(lambda x_t, h: gt.tanh(x_t + h), sequences=x, outputs_info=h0, n_steps=3)
        return (h * h).sum()

    rng = _rng(14)
    point = [rng.standard_normal((5, 2)), rng.standard_normal(2)]
    verify_grad(cost, point, mode=mode)
    g = gc.function([x, h0], gc.grad(cost(x, h0), x), mode=mode)(*point)
    assert np.all(g[3:] == 0) and np.all(g[:3] != 0)


@pytest.mark.parametrize("mode", MODES)
def test_sequence_gradient_of_a_sequence_read_in_full(mode):
    def cost(x, h0):
        h, _ = gc.scan(lambda x_t, h: gt.tanh(x_t * 2.0 + h), sequences=x, outputs_info=h0)
        return (h * h).sum()

    rng = _rng(15)
    point = [layouts(rng.standard_normal((4, 3)))["negative"], rng.standard_normal(3)]
    verify_grad(cost, point, mode=mode)
