"""Gradients of the shape, join and sorting/scan ops against central differences, at
non-contiguous and negative-stride points, on shapes that exercise broadcasting."""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from tests.helpers import layouts

RNG = np.random.default_rng(5)


def _awkward(value, layout):
    """``value`` as a strided view, or as a view with negative strides on every axis."""
    if layout == "strided":
        return layouts(value)["strided"]
    out = np.flip(np.flip(value).copy()) if value.ndim else value
    assert np.array_equal(out, value)
    return out


def _point(shape, zeros=()):
    value = RNG.uniform(-2.0, 2.0, size=shape)
    for index in zeros:
        value[index] = 0.0
    return value


# (label, fn of symbolic inputs, input shapes)
GRAD_CASES = [
    ("reshape", lambda x: gt.reshape(x, (3, -1)), [(2, 6)]),
    ("reshape symbolic", lambda x: gt.reshape(x, (gt.shape_i(x, 1), -1)), [(2, 3)]),
    ("flatten", lambda x: gt.flatten(x), [(2, 3, 2)]),
    ("flatten ndim 2", lambda x: gt.flatten(x, 2), [(2, 3, 2)]),
    ("dimshuffle", lambda x: gt.dimshuffle(x, (1, "x", 0)), [(2, 3)]),
    ("dimshuffle drop", lambda x: gt.dimshuffle(gt.reshape(x, (1, 3, 1)), ("x", 1)), [(3,)]),
    ("transpose", lambda x: gt.transpose(x, (2, 0, 1)), [(2, 3, 2)]),
    ("transpose .T", lambda x: x.T, [(2, 3)]),
    ("squeeze", lambda x: gt.squeeze(x, (0, 2)), [(1, 3, 1)]),
    ("expand_dims", lambda x: gt.expand_dims(x, (0, -1)), [(2, 3)]),
    ("broadcast_to", lambda x: gt.broadcast_to(x, (2, 3)), [(3,)]),
    ("broadcast_to size 1", lambda x: gt.broadcast_to(x, (4, 2, 3)), [(1, 3)]),
    ("broadcast_to symbolic", lambda x, y: gt.broadcast_to(x, gt.shape(y)), [(3, 1), (3, 4)]),
    ("make_vector", lambda x: gt.make_vector([gt.sum(x), gt.max(x), gt.sum(x * x)]), [(2, 3)]),
    ("concatenate", lambda x, y: gt.concatenate([x, y, x], 1), [(2, 3), (2, 1)]),
    ("concatenate axis 0", lambda x, y: gt.concatenate([x, y], 0), [(3, 2), (1, 2)]),
    ("concatenate axis None", lambda x, y: gt.concatenate([x, y], None), [(2, 2), (3,)]),
    ("concatenate broadcast", lambda x, y: gt.concatenate([x, y], 0) * y, [(3, 2), (1, 2)]),
    ("stack", lambda x, y: gt.stack([x, y, x * y], 1), [(2, 3), (2, 3)]),
    ("stack scalars", lambda x: gt.stack([x.sum(), x.max()]), [(4,)]),
    ("hstack", lambda x, y: gt.hstack([x, y]), [(2, 3), (2, 2)]),
    ("vstack", lambda x, y: gt.vstack([x, y]), [(3,), (2, 3)]),
    ("split", lambda x: gt.split(x, [1, 3], axis=1)[1], [(2, 4)]),
    ("split both pieces", lambda x: gt.concatenate(gt.split(x, [2, 1])[::-1]) * 2, [(3, 2)]),
    ("split symbolic", lambda x: gt.split(x, [1, gt.shape_i(x, 0) - 1])[1] ** 2, [(4,)]),
    ("split empty piece", lambda x: gt.split(x, [0, 3], axis=1)[1], [(2, 3)]),
    ("sort", lambda x: gt.sort(x), [(3, 4)]),
    ("sort axis 0", lambda x: gt.sort(x, 0), [(3, 4)]),
    ("sort axis None", lambda x: gt.sort(x, None), [(2, 3)]),
    ("sort broadcast", lambda x, y: gt.sort(x * y, 0), [(3, 4), (1, 4)]),
    ("cumsum", lambda x: gt.cumsum(x, 1), [(3, 4)]),
    ("cumsum axis None", lambda x: gt.cumsum(x), [(2, 3)]),
    ("cumsum axis 0", lambda x: gt.cumsum(x, 0), [(4, 2)]),
    ("cumprod", lambda x: gt.cumprod(x, 1), [(3, 4)]),
    ("cumprod axis None", lambda x: gt.cumprod(x), [(2, 3)]),
    ("cumprod broadcast", lambda x, y: gt.cumprod(x + y, 0), [(4, 3), (1, 3)]),
]


@pytest.mark.parametrize("layout", ["strided", "negative"])
@pytest.mark.parametrize("label,fn,shapes", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradient_matches_finite_differences(label, fn, shapes, layout):
    point = [_awkward(_point(s), layout) for s in shapes]
    assert not any(p.flags.c_contiguous for p in point)
    verify_grad(fn, point, n_tests=1)


# cumprod at zeros: one zero, several zeros in a lane, a zero first and last
CUMPROD_ZEROS = [
    ((5,), [(2,)]),
    ((6,), [(1,), (4,)]),
    ((6,), [(0,), (5,)]),
    ((6,), [(2,), (3,)]),
    ((3, 4), [(0, 1), (1, 0), (1, 2), (2, 3)]),
]


@pytest.mark.parametrize("axis", [0, -1, None])
@pytest.mark.parametrize("shape,zeros", CUMPROD_ZEROS)
def test_cumprod_gradient_with_zeros(shape, zeros, axis):
    if axis == 0 and len(shape) == 1:
        axis = None
    point = _awkward(_point(shape, zeros), "strided")
    verify_grad(lambda x: gt.cumprod(x, axis), [point], n_tests=2)


SECOND_ORDER = [
    ("concatenate", lambda x: gt.concatenate([x, x * x]) ** 2, (4,)),
    ("split", lambda x: gt.split(x * x, [1, 3])[1] ** 2, (4,)),
    ("sort", lambda x: gt.sort(x) ** 3 * gt.arange(4.0), (4,)),
    ("cumsum", lambda x: gt.cumsum(x * x), (4,)),
    ("cumprod", lambda x: gt.cumprod(x), (5,)),
    ("broadcast_to", lambda x: gt.broadcast_to(x * x, (3, 2)) ** 2, (2,)),
]


@pytest.mark.parametrize("label,fn,shape", SECOND_ORDER, ids=[c[0] for c in SECOND_ORDER])
def test_second_order(label, fn, shape):
    point = _awkward(_point(shape, [(1,)] if label == "cumprod" else []), "negative")
    verify_grad(lambda v: gc.grad(gt.sum(fn(v) ** 2), v), [point], n_tests=1)


def test_sort_gradient_follows_the_permutation():
    x = gt.dvector("x")
    cost = gt.sum(gt.sort(x) * gt.constant(np.array([1.0, 2.0, 3.0, 4.0])))
    g = gc.function([x], gc.grad(cost, x))(np.array([3.0, -1.0, 2.0, 0.5]))
    np.testing.assert_array_equal(g, np.array([4.0, 1.0, 3.0, 2.0]))  # sorted order: x1, x3, x2, x0


def test_integer_gradient_paths_are_disconnected():
    x = gt.dvector("x")
    cost = gt.sum(gt.cast(gt.argsort(x), "float64") * x)
    g = gc.function([x], gc.grad(cost, x))(np.array([2.0, 0.0, 1.0]))
    np.testing.assert_array_equal(g, np.array([1.0, 2.0, 0.0]))
