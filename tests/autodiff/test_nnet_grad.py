"""Gradients of gt.nnet against finite differences (verify_grad), on broadcast shapes and
non-contiguous points, plus closed forms where the loss has one."""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import GradientError, verify_grad
from graphc.tensor import nnet
from tests.helpers import layouts

RNG = np.random.default_rng(11)
LAYOUTS = ("contiguous", "strided", "negative")
NORMALIZERS = {"softmax": gt.nnet.softmax, "log_softmax": gt.nnet.log_softmax}


def point(shape, low=-3.0, high=3.0, layout="contiguous", seed=0):
    values = np.random.default_rng(seed).uniform(low, high, size=shape)
    return layouts(values)[layout]


AXIS_CASES = [((3, 4), -1), ((3, 4), 0), ((2, 3, 2), (0, 2)), ((2, 3), None), ((1, 4), -1),
              ((4, 1), -1)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape,axis", AXIS_CASES, ids=str)
@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_normalizer_grad(name, shape, axis, layout):
    build = NORMALIZERS[name]
    verify_grad(lambda x: build(x, axis=axis), [point(shape, layout=layout)])


@pytest.mark.parametrize("b_shape", [(1, 4), (4,), (3, 1)], ids=str)
@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_normalizer_grad_through_broadcasting(name, b_shape):
    build = NORMALIZERS[name]
    points = [point((3, 4), layout="strided"), point(b_shape, 0.5, 2.0, seed=1)]
    verify_grad(lambda x, b: build(x * b + b), points)


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_normalizer_second_derivative(name):
    build = NORMALIZERS[name]
    w = gt.constant(RNG.standard_normal((2, 3)))
    verify_grad(lambda x: gc.grad(gt.sum(build(x) * w), x), [point((2, 3), layout="negative")])


def test_normalizer_grad_with_large_logits():
    # large logits, but finite differences stay meaningful: the gradient is not tiny everywhere
    verify_grad(lambda x: gt.nnet.log_softmax(x), [point((3, 4), 40.0, 60.0, "strided")])


def test_verify_grad_notices_a_wrong_softmax_gradient():
    wrong = lambda x: gt.nnet.softmax(gt.stop_gradient(x) + 0 * x)  # noqa: E731  (gradient cut off)
    with pytest.raises(GradientError):
        verify_grad(wrong, [point((2, 3))])


# --- losses ----------------------------------------------------------------------------------

LABELS = np.array([2, 0, 3])


def const_labels(dtype="int32"):
    return gt.constant(LABELS.astype(dtype))


def P(shape, low=-3.0, high=3.0):
    """An input of ``shape`` drawn uniformly from [low, high)."""
    return shape, low, high


LOSS_GRADS = {
    "categorical_crossentropy-labels-of-softmax": (
        lambda x: nnet.categorical_crossentropy(nnet.softmax(x), const_labels()), [P((3, 4))]),
    "categorical_crossentropy-labels": (
        lambda p: nnet.categorical_crossentropy(p, const_labels("uint8")), [P((3, 4), 0.1, 1.0)]),
    "categorical_crossentropy-dist": (
        nnet.categorical_crossentropy, [P((3, 4), 0.1, 1.0), P((1, 4), 0.0, 1.0)]),
    "softmax_cross_entropy_with_logits-labels": (
        lambda x: gt.nnet.softmax_cross_entropy_with_logits(x, const_labels("int64")), [P((3, 4))]),
    "softmax_cross_entropy_with_logits-dist": (
        gt.nnet.softmax_cross_entropy_with_logits, [P((3, 4)), P((3, 4), 0.0, 1.0)]),
    "binary_crossentropy": (nnet.binary_crossentropy, [P((3, 4), 0.05, 0.95), P((4,), 0.0, 1.0)]),
    "sigmoid_binary_crossentropy": (
        nnet.sigmoid_binary_crossentropy, [P((3, 4), -8.0, 8.0), P((1, 4), 0.0, 1.0)]),
    "relu": (gt.nnet.relu, [P((3, 4))]),
    "relu-leaky": (lambda x: gt.nnet.relu(x, 0.1), [P((3, 4))]),
    "relu-symbolic-alpha": (gt.nnet.relu, [P((3, 4)), P((), 0.2, 0.4)]),
}


def _points(specs, layout):
    """One point per spec; the 2-d ones in ``layout`` (the others are broadcast against them)."""
    return [point(shape, low, high, layout if len(shape) == 2 else "contiguous", seed=i)
            for i, (shape, low, high) in enumerate(specs)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", sorted(LOSS_GRADS))
def test_loss_grad(case, layout):
    fn, specs = LOSS_GRADS[case]
    values = _points(specs, layout)
    if case.startswith("relu"):
        values[0] = np.where(np.abs(values[0]) < 0.1, 0.5, values[0])  # keep away from the kink
    verify_grad(fn, values)


def test_softmax_cross_entropy_grad_is_softmax_minus_one_hot_for_extreme_logits():
    x, y = gt.dmatrix("x"), gt.lvector("y")
    cost = gt.mean(gt.nnet.softmax_cross_entropy_with_logits(x, y))
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]])
    labels = np.array([1, 2])
    got = gc.function([x, y], gc.grad(cost, x))(logits, labels)
    expected = (np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]) - np.eye(3)[labels]) / 2
    np.testing.assert_allclose(got, expected, atol=1e-15)


def test_categorical_crossentropy_grad_is_finite_with_zero_probabilities():
    p, y = gt.dmatrix("p"), gt.lvector("y")
    cost = gt.sum(gt.nnet.categorical_crossentropy(p, y))
    probs = np.array([[0.5, 0.0, 0.5], [0.0, 0.25, 0.75]])
    got = gc.function([p, y], gc.grad(cost, p))(probs, np.array([0, 2]))
    np.testing.assert_array_equal(got, [[-2.0, 0.0, 0.0], [0.0, 0.0, -1.0 / 0.75]])


def test_sigmoid_binary_crossentropy_grad_is_sigmoid_minus_target_for_extreme_logits():
    x, t = gt.dvector("x"), gt.dvector("t")
    cost = gt.sum(gt.nnet.sigmoid_binary_crossentropy(x, t))
    logits, targets = np.array([1000.0, -1000.0, 1000.0, 0.0]), np.array([1.0, 1.0, 0.25, 0.5])
    got = gc.function([x, t], gc.grad(cost, x))(logits, targets)
    np.testing.assert_allclose(got, [0.0, -1.0, 0.75, 0.0], atol=1e-15)


# --- crossentropy_softmax --------------------------------------------------------------------

XENT_GRADS = {  # logits shape, labels (constants, broadcast against the batch axes)
    "batch": ((3, 4), LABELS),
    "one-example-labels-broadcast": ((1, 4), LABELS),
    "one-label-broadcast": ((3, 4), np.array([1])),
    "3-d": ((2, 3, 4), np.array([[0, 3, 1], [2, 2, 0]])),
    "single": ((4,), np.array(3)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", sorted(XENT_GRADS))
def test_crossentropy_softmax_grad(case, layout):
    shape, labels = XENT_GRADS[case]
    verify_grad(lambda x: nnet.crossentropy_softmax(x, gt.constant(labels)),
                [point(shape, layout=layout)])


def test_crossentropy_softmax_second_derivative():
    verify_grad(lambda x: gc.grad(gt.sum(nnet.crossentropy_softmax(x, const_labels())), x),
                [point((3, 4), layout="negative")])


def test_crossentropy_softmax_grad_is_softmax_minus_one_hot_for_extreme_logits():
    x, y = gt.dmatrix("x"), gt.lvector("y")
    cost = gt.mean(nnet.crossentropy_softmax(x, y))
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]])
    got = gc.function([x, y], gc.grad(cost, x))(logits, np.array([1, 2]))
    expected = (np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]) - np.eye(3)[[1, 2]]) / 2
    np.testing.assert_allclose(got, expected, atol=1e-15)
