"""Dense, Flatten, Activation, Embedding, BatchNorm and Sequential against NumPy, their
gradients against finite differences, and their errors."""

import numpy as np
import pytest

import graphc as gc
import graphc.nn as nn
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from tests.helpers import FLOATS, MODES, assert_matches, layouts, random_array, tolerance
from tests.nn.nn_helpers import ACTIVATIONS, param_values, params_as_inputs, run_layer

DENSE_CASES = [  # (input shape, n_out, activation)
    ((5, 4), 3, None),
    ((5, 4), 3, "relu"),
    ((1, 4), 2, "tanh"),
    ((0, 4), 3, "sigmoid"),
    ((2, 3, 4), 5, "softmax"),
    ((4,), 2, None),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,n_out,act", DENSE_CASES)
def test_dense_matches_numpy(shape, n_out, act, dtype, mode):
    layer = nn.Dense(shape[-1], n_out, act, rng=0, dtype=dtype)
    layer.b.set_value(random_array(n_out, dtype, np.random.default_rng(1)))
    x = random_array(shape, dtype)
    W, b = param_values(layer)
    expected = ACTIVATIONS[act](x @ W + b).astype(dtype)
    for arr in layouts(x).values():
        assert_matches(run_layer(layer, arr, mode=mode), expected)


@pytest.mark.parametrize("act", [None, "tanh", "softmax"])
def test_dense_gradient(act):
    layer = nn.Dense(3, 2, act, rng=0, dtype="float64")
    x = layouts(random_array((4, 3), "float64"))["strided"]
    verify_grad(params_as_inputs(layer), [x, *param_values(layer)])


def test_dense_without_bias_has_one_param():
    layer = nn.Dense(3, 2, bias=False, rng=0, dtype="float64")
    assert layer.params == [layer.W] and layer.b is None
    x = random_array((2, 3), "float64")
    assert_matches(run_layer(layer, x), x @ layer.W.get_value())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,ndim", [((2, 3, 4, 5), 2), ((0, 3, 2), 2), ((2, 3, 4), 3),
                                        ((1, 1), 1)])
def test_flatten_matches_numpy(shape, ndim, mode):
    x = random_array(shape, "float32")
    expected = x.reshape(shape[:ndim - 1] + (int(np.prod(shape[ndim - 1:])),))
    for arr in layouts(x).values():
        assert_matches(run_layer(nn.Flatten(ndim), arr, mode=mode), expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "softmax"])
def test_activation_layer(act, mode):
    x = random_array((3, 4), "float64")
    assert_matches(run_layer(nn.Activation(act), x, mode=mode), ACTIVATIONS[act](x))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index_dtype", ["int32", "int64", "uint8"])
@pytest.mark.parametrize("index_shape", [(3,), (2, 4), (0,), (1, 1)])
def test_embedding_matches_numpy(index_shape, index_dtype, mode):
    layer = nn.Embedding(6, 3, rng=0, dtype="float32")
    indices = np.random.default_rng(2).integers(0, 6, index_shape).astype(index_dtype)
    expected = layer.W.get_value()[indices]
    for arr in layouts(indices).values():
        assert_matches(run_layer(layer, arr, mode=mode), expected)


def test_embedding_gradient_accumulates_repeated_indices():
    layer = nn.Embedding(4, 2, rng=0, dtype="float64")
    indices = gt.constant(np.array([[0, 2], [2, 2]], "int64"))
    fn = params_as_inputs(layer, n_inputs=0, constants=(indices,))
    verify_grad(fn, param_values(layer))


def batchnorm_reference(x, gamma, beta, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = [1] * x.ndim
    shape[1] = -1
    mean, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    out = (x - mean) / np.sqrt(var + eps) * gamma.reshape(shape) + beta.reshape(shape)
    count = x.size // x.shape[1]
    return out, mean.reshape(-1), var.reshape(-1) * count / max(count - 1, 1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 5), (1, 3, 2, 2)])
def test_batchnorm_training_output_and_running_stats(shape, dtype, mode):
    rng = np.random.default_rng(3)
    layer = nn.BatchNorm(3, momentum=0.25, epsilon=1e-3, dtype=dtype)
    layer.gamma.set_value(random_array(3, dtype, rng))
    layer.beta.set_value(random_array(3, dtype, rng))
    x = random_array(shape, dtype, rng)
    expected, mean, var = batchnorm_reference(x, *param_values(layer), 1e-3)
    out = run_layer(layer, layouts(x)["negative"], mode=mode, training=True, with_updates=True)
    assert out.dtype == dtype
    if dtype == "float64":
        assert_matches(out, expected)
    else:  # normalising divides by small standard deviations: float32 keeps about 1e-5
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    tol = tolerance(dtype) if dtype == "float64" else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_mean.get_value(), 0.25 * mean, **tol)
    np.testing.assert_allclose(layer.running_var.get_value(), 0.75 + 0.25 * var, **tol)
    assert layer.running_mean.get_value().dtype == dtype


@pytest.mark.parametrize("mode", MODES)
def test_batchnorm_inference_uses_running_stats(mode):
    layer = nn.BatchNorm(2, epsilon=1e-5, dtype="float64")
    layer.running_mean.set_value(np.array([1.0, -2.0]))
    layer.running_var.set_value(np.array([4.0, 0.25]))
    layer.gamma.set_value(np.array([2.0, 1.0]))
    x = random_array((3, 2, 4), "float64")
    mean, var, gamma = (np.array(v)[:, None] for v in ([1.0, -2.0], [4.0, 0.25], [2.0, 1.0]))
    expected = (x - mean) / np.sqrt(var + 1e-5) * gamma
    assert_matches(run_layer(layer, x, mode=mode), expected)
    assert layer.updates == []


def test_batchnorm_gradient():
    layer = nn.BatchNorm(2, dtype="float64")
    x = layouts(random_array((4, 2, 3), "float64"))["strided"]
    values = [x, random_array(2, "float64", np.random.default_rng(5)), random_array(2, "float64")]
    verify_grad(params_as_inputs(layer, training=True), values)


def test_sequential_composes_and_collects():
    model = nn.Sequential(nn.Dense(4, 3, "relu", rng=0, dtype="float64"),
                          nn.BatchNorm(3, dtype="float64"), nn.Dense(3, 2, rng=1, dtype="float64"))
    assert len(model) == 3 and model[0] is model.layers[0]
    assert model.params == [model[0].W, model[0].b, model[1].gamma, model[1].beta, model[2].W,
                            model[2].b]
    assert list(model.variables()) == ["0.W", "0.b", "1.gamma", "1.beta", "1.running_mean",
                                       "1.running_var", "2.W", "2.b"]
    assert model.n_params() == 4 * 3 + 3 + 3 + 3 + 3 * 2 + 2
    x = random_array((5, 4), "float64")
    h = np.maximum(x @ model[0].W.get_value() + model[0].b.get_value(), 0)
    h = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5)
    expected = h @ model[2].W.get_value() + model[2].b.get_value()
    assert_matches(run_layer(model, x, training=True), expected)
    assert [var for var, _ in model.updates] == [model[1].running_mean, model[1].running_var]
    assert_matches(run_layer(model, x), np.maximum(x @ model[0].W.get_value(), 0)
                   / np.sqrt(1 + 1e-5) @ model[2].W.get_value())


def test_sequential_gradient_reaches_every_layer():
    model = nn.Sequential(nn.Dense(3, 4, "tanh", rng=0, dtype="float64"),
                          nn.Dense(4, 2, rng=1, dtype="float64"))
    x = layouts(random_array((2, 3), "float64"))["negative"]
    verify_grad(params_as_inputs(model), [x, *param_values(model)])


def test_same_seed_same_weights():
    a, b = nn.Dense(5, 4, rng=7), nn.Dense(5, 4, rng=7)
    np.testing.assert_array_equal(a.W.get_value(), b.W.get_value())
    assert not np.array_equal(a.W.get_value(), nn.Dense(5, 4, rng=8).W.get_value())
    assert a.W.name == "dense.W" and nn.Dense(5, 4, name="fc1").W.name == "fc1.W"


@pytest.mark.parametrize("build,arg,error,match", [
    (lambda: nn.Dense(3, 2), gt.matrix("x", shape=(None, 4)), ValueError, "expects 3 features"),
    (lambda: nn.Dense(3, 2), gt.imatrix("x"), TypeError, "expects a float input"),
    (lambda: nn.BatchNorm(3), gt.tensor("float64", shape=(None, 2)), ValueError,
     "expects 3 features"),
    (lambda: nn.BatchNorm(3), gt.dvector("x"), TypeError, "at least 2 dimensions"),
    (lambda: nn.Embedding(4, 2), gt.dvector("i"), TypeError, "integer indices"),
])
def test_layer_input_errors(build, arg, error, match):
    with pytest.raises(error, match=match):
        build()(arg)


@pytest.mark.parametrize("build,error,match", [
    (lambda: nn.Dense(0, 2), ValueError, "must be positive"),
    (lambda: nn.Dense(2, 2, activation="swishy"), ValueError, "unknown activation"),
    (lambda: nn.Dense(2, 2, init="uniformish"), ValueError, "unknown initialiser"),
    (lambda: nn.BatchNorm(2, momentum=2.0), ValueError, "momentum"),
    (lambda: nn.Dropout(1.0), ValueError, "rate"),
    (lambda: nn.Sequential(nn.Dense(2, 2), "relu"), TypeError, "not a Layer"),
])
def test_layer_construction_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_training_flag_must_be_a_bool():
    with pytest.raises(TypeError, match="training must be True or False"):
        nn.Dense(2, 2)(gt.matrix("x"), training="yes")


def test_layer_without_forward_says_so():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Layer()(gt.matrix("x"))


def test_a_trained_step_changes_the_parameters():
    layer = nn.Dense(3, 2, rng=0, dtype="float64")
    x, y = gt.dmatrix("x"), gt.ivector("y")
    cost = nn.categorical_crossentropy(layer(x), y, from_logits=True)
    step = gc.function([x, y], cost, updates=nn.sgd(cost, layer.params, 0.5))
    before = param_values(layer)
    data = random_array((4, 3), "float64"), np.array([0, 1, 1, 0], "int32")
    first = step(*data)
    assert all(not np.array_equal(a, b) for a, b in zip(before, param_values(layer)))
    assert step(*data) < first
