"""Losses against NumPy (labels and distributions, probabilities and logits, reductions),
their gradients, and their errors."""

import numpy as np
import pytest

import graphc as gc
import graphc.nn as nn
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from tests.helpers import FLOATS, MODES, assert_matches, layouts, random_array, symbolic_like


def np_log_softmax(z):
    shifted = z - z.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def np_categorical(pred, target, from_logits):
    log_p = np_log_softmax(pred) if from_logits else np.log(pred)
    if target.dtype.kind in "iu":
        return -np.take_along_axis(log_p, target[..., None].astype(np.intp), -1)[..., 0]
    return -(target * log_p).sum(-1)


def np_binary(pred, target, from_logits):
    p = 1 / (1 + np.exp(-pred)) if from_logits else pred
    return -(target * np.log(p) + (1 - target) * np.log(1 - p))


REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}


def compare(loss, pred, target, expected, mode, **kw):
    p, t = symbolic_like(pred, "p"), symbolic_like(target, "t")
    f = gc.function([p, t], loss(p, t, **kw), mode=mode)
    got = f(pred, target)
    assert got.dtype == pred.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-5 if pred.dtype == np.float32 else 1e-11,
                               atol=1e-6 if pred.dtype == np.float32 else 1e-12)


def probabilities(shape, dtype, seed=0):
    z = random_array(shape, "float64", np.random.default_rng(seed))
    return np.exp(np_log_softmax(z)).astype(dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reduction", list(REDUCE))
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("labels", ["int32", "int64", "distribution"])
def test_categorical_crossentropy(labels, from_logits, dtype, reduction, mode):
    rng = np.random.default_rng(1)
    pred = (random_array((5, 4), dtype, rng) if from_logits else probabilities((5, 4), dtype))
    target = (probabilities((5, 4), dtype, 3) if labels == "distribution"
              else rng.integers(0, 4, 5).astype(labels))
    expected = REDUCE[reduction](np_categorical(pred.astype("float64"), target, from_logits))
    for arr in layouts(pred).values():
        compare(nn.categorical_crossentropy, arr, target, expected, mode,
                from_logits=from_logits, reduction=reduction)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("shape", [(6,), (3, 2), (1, 4)])
def test_binary_crossentropy(shape, from_logits, dtype, mode):
    rng = np.random.default_rng(2)
    pred = (random_array(shape, dtype, rng) if from_logits
            else rng.uniform(0.05, 0.95, shape).astype(dtype))
    target = (rng.random(shape) < 0.5).astype(dtype)
    expected = np.mean(np_binary(pred.astype("float64"), target, from_logits))
    for arr in layouts(pred).values():
        compare(nn.binary_crossentropy, arr, target, expected, mode, from_logits=from_logits)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", list(REDUCE))
@pytest.mark.parametrize("shapes", [((4, 3), (4, 3)), ((4, 3), (1, 3)), ((0, 2), (0, 2))])
def test_mse(shapes, reduction, dtype, mode):
    if reduction == "mean" and 0 in shapes[0]:
        pytest.skip("the mean of nothing is NaN with a warning in NumPy too")
    rng = np.random.default_rng(4)
    pred, target = random_array(shapes[0], dtype, rng), random_array(shapes[1], dtype, rng)
    expected = REDUCE[reduction]((pred - target) ** 2)
    for arr in layouts(pred).values():
        compare(nn.mse, arr, target, expected, mode, reduction=reduction)


def test_mse_accepts_integer_targets():
    p = gt.dvector("p")
    f = gc.function([p], nn.mse(p, gt.constant(np.array([1, 2], "int32"))))
    assert_matches(f(np.array([0.0, 4.0])), np.float64(2.5))


def test_crossentropy_from_logits_is_stable():
    z, y = gt.dmatrix("z"), gt.ivector("y")
    f = gc.function([z, y], nn.categorical_crossentropy(z, y, from_logits=True))
    assert f(np.array([[1000.0, -1000.0]]), np.array([1], "int32")) == pytest.approx(2000.0)


@pytest.mark.parametrize("loss", [
    lambda p: nn.categorical_crossentropy(p, gt.constant(np.array([0, 2, 1], "int64")),
                                          from_logits=True),
    lambda p: nn.categorical_crossentropy(gt.nnet.softmax(p),
                                          gt.constant(np.full((3, 3), 1 / 3))),
    lambda p: nn.binary_crossentropy(p, gt.constant(np.eye(3)), from_logits=True),
    lambda p: nn.binary_crossentropy(gt.sigmoid(p), gt.constant(np.eye(3)), reduction="sum"),
    lambda p: nn.mse(p, gt.constant(np.ones((1, 3))), reduction="none"),
])
def test_loss_gradients(loss):
    verify_grad(loss, [layouts(random_array((3, 3), "float64"))["strided"]])


@pytest.mark.parametrize("call,error,match", [
    (lambda: nn.categorical_crossentropy(gt.imatrix("p"), gt.ivector("y")), TypeError, "floats"),
    (lambda: nn.categorical_crossentropy(gt.dmatrix("p"), gt.imatrix("y")), ValueError,
     "one more axis"),
    (lambda: nn.categorical_crossentropy(gt.dmatrix("p"), gt.dvector("y")), ValueError,
     "predictions' shape"),
    (lambda: nn.mse(gt.dvector("p"), gt.dvector("t"), reduction="avg"), ValueError, "reduction"),
    (lambda: nn.losses.get_loss("hinge"), ValueError, "unknown loss"),
])
def test_loss_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
