"""LSTM and GRU (on scan) against step-by-step NumPy loops, their gradients, and errors."""

import numpy as np
import pytest

import graphc as gc
import graphc.nn as nn
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from tests.helpers import FLOATS, MODES, layouts, random_array
from tests.nn.nn_helpers import param_values, params_as_inputs, run_layer


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def np_lstm_step(x_t, states, W, U, b):
    h, c = states
    z = x_t @ W + h @ U + b
    i, f, g, o = np.split(z, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return [sigmoid(o) * np.tanh(c), c]


def np_gru_step(x_t, states, W, U, b):
    (h,) = states
    n = h.shape[-1]
    xz, xr, xh = np.split(x_t @ W + b, 3, axis=-1)
    z = sigmoid(xz + h @ U[:, :n])
    r = sigmoid(xr + h @ U[:, n:2 * n])
    candidate = np.tanh(xh + (r * h) @ U[:, 2 * n:])
    return [z * h + (1 - z) * candidate]


STEPS = {nn.LSTM: (np_lstm_step, 2), nn.GRU: (np_gru_step, 1)}


def np_recurrent(cls, x, W, U, b, return_sequences, backwards):
    step, n_states = STEPS[cls]
    states = [np.zeros((x.shape[0], U.shape[0]), x.dtype)] * n_states
    times = range(x.shape[1])[::-1] if backwards else range(x.shape[1])
    outputs = {}
    for t in times:
        states = step(x[:, t], states, W, U, b)
        outputs[t] = states[0]
    if not return_sequences:
        return states[0]
    return np.stack([outputs[t] for t in range(x.shape[1])], axis=1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("return_sequences,backwards", [(True, False), (True, True), (False, False),
                                                        (False, True)])
@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_recurrent_matches_numpy(cls, return_sequences, backwards, dtype, mode):
    layer = cls(3, 4, return_sequences=return_sequences, backwards=backwards, rng=0, dtype=dtype)
    layer.b.set_value(random_array(layer.b.get_value().shape, dtype, np.random.default_rng(1)))
    x = random_array((2, 5, 3), dtype)
    weights = [p.astype("float64") for p in param_values(layer)]
    expected = np_recurrent(cls, x.astype("float64"), *weights, return_sequences, backwards)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
    for arr in layouts(x).values():
        got = run_layer(layer, arr, mode=mode)
        assert got.dtype == dtype and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, **tol)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("shape", [(1, 1, 3), (4, 2, 3)])
def test_recurrent_awkward_sizes(cls, shape):
    layer = cls(3, 2, rng=0, dtype="float64")
    x = random_array(shape, "float64")
    expected = np_recurrent(cls, x, *param_values(layer), True, False)
    np.testing.assert_allclose(run_layer(layer, x), expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_recurrent_gradient(cls):
    layer = cls(2, 3, rng=0, dtype="float64")
    x = layouts(random_array((2, 3, 2), "float64", low=-1, high=1))["strided"]
    verify_grad(params_as_inputs(layer), [x, *param_values(layer)])


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_step_by_step_equals_the_whole_sequence(cls):
    layer = cls(3, 4, rng=2, dtype="float64")
    x = random_array((2, 4, 3), "float64")
    x_t = gt.dmatrix("x_t")
    states = [gt.dmatrix(f"s{i}") for i in range(layer.n_states)]
    step = gc.function([x_t, *states], layer.step(x_t, *states))
    values = [np.zeros((2, 4))] * layer.n_states
    hidden = []
    for t in range(x.shape[1]):
        values = step(x[:, t], *values)
        hidden.append(values[0])
    np.testing.assert_allclose(np.stack(hidden, 1), run_layer(layer, x), rtol=1e-12, atol=1e-13)


def test_lstm_initial_state_and_forget_bias():
    layer = nn.LSTM(2, 3, return_sequences=False, rng=0, dtype="float64")
    np.testing.assert_array_equal(layer.b.get_value()[3:6], 1.0)
    x, h0, c0 = gt.dtensor3("x"), gt.dmatrix("h0"), gt.dmatrix("c0")
    f = gc.function([x, h0, c0], layer(x, initial_state=[h0, c0]))
    xv, hv, cv = (random_array(s, "float64") for s in ((2, 3, 2), (2, 3), (2, 3)))
    states = [hv, cv]
    for t in range(3):
        states = np_lstm_step(xv[:, t], states, *param_values(layer))
    np.testing.assert_allclose(f(xv, hv, cv), states[0], rtol=1e-12)


def test_recurrent_params_and_orthogonal_recurrence():
    layer = nn.GRU(5, 4, rng=0)
    assert layer.params == [layer.W, layer.U, layer.b]
    U = layer.U.get_value()
    assert U.shape == (4, 12)
    for block in np.split(U, 3, axis=1):
        np.testing.assert_allclose(block.T @ block, np.eye(4), atol=1e-12)


@pytest.mark.parametrize("arg,error,match", [
    (gt.dmatrix("x"), TypeError, "at least 3 dimensions"),
    (gt.dtensor4("x"), TypeError, r"\(batch, time, features\)"),
    (gt.tensor("float64", shape=(None, None, 2)), ValueError, "expects 3 features"),
    (gt.itensor3("x"), TypeError, "float input"),
])
def test_recurrent_input_errors(arg, error, match):
    with pytest.raises(error, match=match):
        nn.LSTM(3, 2)(arg)


def test_recurrent_construction_errors():
    with pytest.raises(ValueError, match="must be positive"):
        nn.GRU(3, 0)
