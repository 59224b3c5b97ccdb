"""Each optimiser against a hand-written NumPy update for two steps, with and without gradient
clipping; symbolic learning rates; errors."""

import numpy as np
import pytest

import graphc as gc
import graphc.nn as nn
import graphc.tensor as gt
from tests.helpers import MODES

C1 = np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]])
P1 = np.array([[0.3, -0.7], [1.2, 0.4], [-0.9, 2.0]], "float32")
P2 = np.array([0.5, -1.0, 2.5, 0.0])


def numpy_grads(p1, p2):
    """Gradients of ``sum(C1 * p1**2) + sum(sin(p2))``."""
    return [2 * C1 * p1, np.cos(p2)]


def numpy_clip(grads, clip_norm, clip_value):
    if clip_norm is not None:
        norm = np.sqrt(sum(np.sum(np.square(g, dtype="float64")) for g in grads))
        grads = [g * (clip_norm / max(norm, clip_norm)) for g in grads]
    if clip_value is not None:
        grads = [np.clip(g, -clip_value, clip_value) for g in grads]
    return grads


def numpy_sgd(params, grads, state, lr=0.1):
    return [p - lr * g for p, g in zip(params, grads)]


def numpy_momentum(params, grads, state, lr=0.1, mu=0.9):
    v = state.setdefault("v", [np.zeros_like(p) for p in params])
    state["v"] = [mu * vi - lr * g for vi, g in zip(v, grads)]
    return [p + vi for p, vi in zip(params, state["v"])]


def numpy_nesterov(params, grads, state, lr=0.1, mu=0.9):
    v = state.setdefault("v", [np.zeros_like(p) for p in params])
    state["v"] = [mu * vi - lr * g for vi, g in zip(v, grads)]
    return [p + mu * vi - lr * g for p, vi, g in zip(params, state["v"], grads)]


def numpy_rmsprop(params, grads, state, lr=0.1, rho=0.9, eps=1e-7):
    acc = state.setdefault("a", [np.zeros_like(p) for p in params])
    state["a"] = [rho * a + (1 - rho) * g * g for a, g in zip(acc, grads)]
    return [p - lr * g / (np.sqrt(a) + eps) for p, g, a in zip(params, grads, state["a"])]


def numpy_adam(params, grads, state, lr=0.1, b1=0.9, b2=0.999, eps=1e-8):
    t = state["t"] = state.get("t", 0) + 1
    m = state.setdefault("m", [np.zeros_like(p) for p in params])
    v = state.setdefault("v", [np.zeros_like(p) for p in params])
    state["m"] = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads)]
    state["v"] = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads)]
    lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    return [p - lr_t * mi / (np.sqrt(vi) + eps)
            for p, mi, vi in zip(params, state["m"], state["v"])]


OPTIMISERS = {
    "sgd": (nn.sgd, numpy_sgd),
    "momentum": (nn.momentum, numpy_momentum),
    "nesterov": (nn.nesterov, numpy_nesterov),
    "rmsprop": (nn.rmsprop, numpy_rmsprop),
    "adam": (nn.adam, numpy_adam),
}
CLIPPING = [(None, None), (1.0, None), (None, 0.5), (2.0, 0.3)]


def build(optimiser, mode, clip_norm=None, clip_value=None, learning_rate=0.1):
    p1, p2 = gc.shared(P1, name="p1"), gc.shared(P2, name="p2")
    cost = gt.sum(gt.constant(C1.astype("float32")) * p1 ** 2) + gt.sum(gt.sin(p2))
    updates = optimiser(cost, [p1, p2], learning_rate=learning_rate, clip_norm=clip_norm,
                        clip_value=clip_value)
    return (p1, p2), gc.function([], cost, updates=updates, mode=mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("clip_norm,clip_value", CLIPPING)
@pytest.mark.parametrize("name", list(OPTIMISERS))
def test_two_steps_match_numpy(name, clip_norm, clip_value, mode):
    optimiser, reference = OPTIMISERS[name]
    (p1, p2), step = build(optimiser, mode, clip_norm, clip_value)
    params, state = [P1.astype("float64"), P2.copy()], {}
    for _ in range(2):
        step()
        grads = numpy_clip(numpy_grads(*params), clip_norm, clip_value)
        params = reference(params, grads, state)
    assert p1.get_value().dtype == np.float32 and p2.get_value().dtype == np.float64
    np.testing.assert_allclose(p1.get_value(), params[0], rtol=2e-5, atol=2e-6)
    # the global norm includes p1's float32 gradient, so it scales p2's step at float32 precision
    p2_tol = dict(rtol=1e-10, atol=1e-12) if clip_norm is None else dict(rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p2.get_value(), params[1], **p2_tol)
    assert not np.allclose(p2.get_value(), P2)


def test_clip_norm_bounds_the_step():
    (p1, p2), step = build(nn.sgd, "FAST_RUN", clip_norm=0.01, learning_rate=1.0)
    step()
    moved = np.concatenate([(p1.get_value() - P1).ravel(), p2.get_value() - P2])
    assert np.linalg.norm(moved) == pytest.approx(0.01, rel=1e-5)


def test_symbolic_learning_rate_follows_a_schedule():
    lr = gc.shared(np.float64(0.1), name="lr")
    p = gc.shared(np.array([1.0, 2.0], "float32"), name="p")
    step = gc.function([], updates=nn.sgd(gt.sum(p ** 2), [p], learning_rate=lr))
    step()
    lr.set_value(0.0)
    step()
    np.testing.assert_allclose(p.get_value(), [0.8, 1.6], rtol=1e-6)
    assert p.get_value().dtype == np.float32


def test_gradients_may_be_given_instead_of_a_loss():
    p = gc.shared(np.array([1.0, -1.0]), name="p")
    updates = nn.momentum([gt.constant(np.array([2.0, 4.0]))], [p], learning_rate=0.5)
    step = gc.function([], updates=updates)
    step()
    step()
    np.testing.assert_allclose(p.get_value(), [1.0 - 1.0 - 1.9, -1.0 - 2.0 - 3.8])


@pytest.mark.parametrize("call,error,match", [
    (lambda p, c: nn.sgd(c, []), ValueError, "no parameters"),
    (lambda p, c: nn.sgd(c, [p, p]), ValueError, "listed twice"),
    (lambda p, c: nn.sgd(c, [gt.dvector("x")]), TypeError, "must be shared variables"),
    (lambda p, c: nn.sgd(c, [gc.shared(np.arange(3))]), TypeError, "only float"),
    (lambda p, c: nn.sgd([c, c], [p]), ValueError, "2 gradients for 1 parameters"),
    (lambda p, c: nn.sgd([c], [p]), ValueError, "the gradient of p"),
    (lambda p, c: nn.adam(c, [p], clip_norm=0), ValueError, "clip_norm must be positive"),
    (lambda p, c: nn.rmsprop(c, [p], clip_value=-1), ValueError, "clip_value must be positive"),
    (lambda p, c: nn.optimizers.get_optimizer("adamw"), ValueError, "unknown optimiser"),
])
def test_optimiser_errors(call, error, match):
    p = gc.shared(np.ones(3), name="p")
    with pytest.raises(error, match=match):
        call(p, gt.sum(p ** 2))
