"""Conv2D, MaxPool2D, AvgPool2D and Dropout against NumPy loops, gradients, and errors."""

import numpy as np
import pytest

import graphc as gc
import graphc.nn as nn
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from tests.helpers import FLOATS, MODES, layouts, random_array
from tests.nn.nn_helpers import param_values, params_as_inputs, run_layer


def np_conv2d(x, w, b, stride, pad, dilation, groups):
    """Cross-correlation by summing shifted slices, one kernel tap at a time."""
    n = x.shape[0]
    out_c, c_per_group, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, out_c, oh, ow), "float64")
    per_group = out_c // groups
    for o in range(out_c):
        g = o // per_group
        for i in range(kh):
            for j in range(kw):
                r0, c0 = i * dilation[0], j * dilation[1]
                patch = xp[:, g * c_per_group:(g + 1) * c_per_group,
                           r0:r0 + stride[0] * (oh - 1) + 1:stride[0],
                           c0:c0 + stride[1] * (ow - 1) + 1:stride[1]]
                out[:, o] += np.einsum("nchw,c->nhw", patch, w[o, :, i, j])
    return (out + b[None, :, None, None]).astype(x.dtype)


CONV_CASES = [  # (input shape, n_out, kernel, layer kwargs, numpy (stride, pad, dilation, groups))
    ((2, 3, 6, 5), 4, 3, {}, ((1, 1), (0, 0), (1, 1), 1)),
    ((2, 3, 6, 5), 4, 3, {"padding": "same"}, ((1, 1), (1, 1), (1, 1), 1)),
    ((1, 2, 5, 4), 2, (2, 3), {"padding": "full"}, ((1, 1), (1, 2), (1, 1), 1)),
    ((2, 2, 7, 7), 3, 3, {"stride": 2, "padding": 1}, ((2, 2), (1, 1), (1, 1), 1)),
    ((1, 2, 7, 6), 2, 2, {"dilation": 2}, ((1, 1), (0, 0), (2, 2), 1)),
    ((2, 4, 5, 5), 6, 3, {"groups": 2}, ((1, 1), (0, 0), (1, 1), 2)),
    ((0, 3, 4, 4), 2, 3, {}, ((1, 1), (0, 0), (1, 1), 1)),
    ((3, 1, 3, 3), 1, 3, {}, ((1, 1), (0, 0), (1, 1), 1)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,n_out,kernel,kwargs,np_args", CONV_CASES)
def test_conv2d_matches_numpy(shape, n_out, kernel, kwargs, np_args, dtype, mode):
    layer = nn.Conv2D(shape[1], n_out, kernel, rng=0, dtype=dtype, **kwargs)
    layer.b.set_value(random_array(n_out, dtype, np.random.default_rng(1)))
    x = random_array(shape, dtype)
    expected = np_conv2d(x.astype("float64"), *[v.astype("float64") for v in param_values(layer)],
                         *np_args).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    for arr in layouts(x).values():
        got = run_layer(layer, arr, mode=mode)
        assert got.dtype == dtype and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, **tol)


def test_conv2d_activation_and_no_bias():
    layer = nn.Conv2D(1, 2, 2, activation="relu", bias=False, rng=0, dtype="float64")
    assert layer.params == [layer.W]
    x = random_array((2, 1, 3, 3), "float64")
    linear = np_conv2d(x, layer.W.get_value(), np.zeros(2), (1, 1), (0, 0), (1, 1), 1)
    expected = np.maximum(linear, 0)
    np.testing.assert_allclose(run_layer(layer, x), expected, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"stride": 2, "padding": 1}, {"groups": 2}])
def test_conv2d_gradient(kwargs):
    layer = nn.Conv2D(2, 2, 2, rng=0, dtype="float64", **kwargs)
    x = layouts(random_array((2, 2, 4, 3), "float64"))["strided"]
    verify_grad(params_as_inputs(layer), [x, *param_values(layer)])


def np_pool(x, size, stride, reduce):
    oh = (x.shape[2] - size[0]) // stride[0] + 1
    ow = (x.shape[3] - size[1]) // stride[1] + 1
    out = np.empty(x.shape[:2] + (oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            r, c = i * stride[0], j * stride[1]
            window = x[:, :, r:r + size[0], c:c + size[1]]
            out[:, :, i, j] = reduce(window, axis=(2, 3))
    return out


POOL_CASES = [  # (input shape, pool size, stride)
    ((2, 3, 4, 6), 2, None),
    ((1, 2, 5, 5), 2, None),
    ((2, 1, 5, 6), (3, 2), (1, 2)),
    ((0, 2, 4, 4), 2, None),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("layer_cls,reduce", [(nn.MaxPool2D, np.max), (nn.AvgPool2D, np.mean)])
@pytest.mark.parametrize("shape,size,stride", POOL_CASES)
def test_pooling_matches_numpy(shape, size, stride, layer_cls, reduce, dtype, mode):
    layer = layer_cls(size, stride)
    x = random_array(shape, dtype)
    pair = (size, size) if isinstance(size, int) else size
    expected = np_pool(x, pair, pair if stride is None else stride, reduce)
    for arr in layouts(x).values():
        got = run_layer(layer, arr, mode=mode)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=1e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("layer", [nn.MaxPool2D(2), nn.AvgPool2D((2, 1), stride=1)])
def test_pooling_gradient(layer):
    x = np.random.default_rng(3).permutation(24).reshape(1, 2, 4, 3) / 7.0  # distinct maxima
    verify_grad(lambda v: layer(v), [layouts(x)["negative"]])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_dropout_training_and_inference(dtype, mode):
    layer = nn.Dropout(0.25, seed=3)
    x = gt.tensor(dtype, shape=(None, None), name="x")
    train = gc.function([x], layer(x, training=True), mode=mode)
    infer = gc.function([x], layer(x, training=False), mode=mode)
    values = np.ones((200, 50), dtype)
    first, second = train(values), train(values)
    assert first.dtype == dtype
    assert set(np.unique(first).tolist()) <= {0.0, float(np.asarray(1 / 0.75, dtype))}
    assert abs(np.mean(first == 0) - 0.25) < 0.02
    assert not np.array_equal(first, second), "the mask must change from call to call"
    assert np.mean(first) == pytest.approx(1.0, abs=0.03)
    np.testing.assert_array_equal(infer(values), values)
    assert layer.params == [] and layer.updates == []


def test_dropout_same_seed_same_masks():
    x = gt.dmatrix("x")
    masks = [gc.function([x], nn.Dropout(0.5, seed=11)(x, training=True))(np.ones((4, 6)))
             for _ in range(2)]
    np.testing.assert_array_equal(*masks)


def test_dropout_rate_zero_is_the_identity():
    x = gt.dmatrix("x")
    assert nn.Dropout(0.0)(x, training=True) is x


@pytest.mark.parametrize("build,arg,error,match", [
    (lambda: nn.Conv2D(3, 2, 3), gt.tensor4("x", shape=(None, 2, None, None)), ValueError,
     "expects 3 input channels"),
    (lambda: nn.Conv2D(3, 2, 3), gt.dmatrix("x"), TypeError, "4-d"),
    (lambda: nn.MaxPool2D(2), gt.dvector("x"), TypeError, "at least 2 dimensions"),
])
def test_conv_layer_input_errors(build, arg, error, match):
    with pytest.raises(error, match=match):
        build()(arg)


@pytest.mark.parametrize("build,match", [
    (lambda: nn.Conv2D(3, 2, 2, padding="same"), "odd kernel"),
    (lambda: nn.Conv2D(3, 2, 3, groups=2), "groups=2 must divide"),
    (lambda: nn.Conv2D(3, 2, (3, 3, 3)), "kernel_size"),
    (lambda: nn.MaxPool2D(-1), "pool_size"),
])
def test_conv_layer_construction_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()
