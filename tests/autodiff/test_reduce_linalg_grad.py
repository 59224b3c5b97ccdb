"""Gradients of the reductions and the linear-algebra builders against finite differences
(``verify_grad``), over axes, keepdims, 1-d / 2-d / batched operands and broadcast batch axes,
always at non-contiguous points."""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import GradientError, verify_grad
from tests.helpers import layouts

RNG = np.random.default_rng(11)


def strided(array):
    """A non-contiguous (every other column) view of ``array``'s values."""
    return layouts(array)["strided"] if array.ndim else array


def negative(array):
    return layouts(array)["negative"] if array.ndim else array


def point(*shapes, low=-2.0, high=2.0):
    return [strided(RNG.uniform(low, high, size=s)) for s in shapes]


# --- reductions ---------------------------------------------------------------------------------

REDUCTIONS = {
    "sum": gt.sum,
    "prod": gt.prod,
    "mean": gt.mean,
    "var": gt.var,
    "std": gt.std,
    "max": gt.max,
    "min": gt.min,
    "logsumexp": gt.logsumexp,
}
AXES = [None, 0, -1, 1, (0, 2), (-1, -2), ()]


# std over no axes is sqrt(0), whose derivative is undefined: that one pair is left out
REDUCTION_CASES = [
    (name, axis) for name in sorted(REDUCTIONS) for axis in AXES if (name, axis) != ("std", ())
]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name, axis", REDUCTION_CASES, ids=str)
def test_reduction_grad(name, axis, keepdims):
    reduce = REDUCTIONS[name]
    x = point((2, 3, 4), low=0.5, high=2.0) if name == "prod" else point((2, 3, 4))
    verify_grad(lambda v: reduce(v, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "logsumexp"])
def test_reduction_grad_through_broadcast(name):
    # the reduced result is broadcast back against a (3, 1) input: gradients flow through both
    reduce = REDUCTIONS[name]
    verify_grad(lambda v, w: reduce(v, axis=1, keepdims=True) * w + v, point((3, 4), (3, 1)))


def test_reduction_grad_negative_stride_point():
    verify_grad(
        lambda v: gt.var(v, axis=0) + gt.logsumexp(v, axis=1).sum(),
        [negative(RNG.normal(size=(4, 3)))],
    )


def test_var_std_ddof_grad():
    verify_grad(
        lambda v: gt.var(v, axis=1, ddof=1) + gt.std(v, axis=0, ddof=1).sum(), point((3, 4))
    )


@pytest.mark.parametrize(
    "row",
    [
        [
            1.5,
            0.0,
            -2.0,
            0.5,
        ],  # one zero: only the zero gets a gradient (the product of the others)
        [0.0, 0.0, 3.0, -1.0],  # two zeros in a row: every gradient is zero
        [0.0, 2.0, 0.0, 0.0],  # three zeros
        [1.5, -0.5, 2.0, 0.5],  # no zero
    ],
)
@pytest.mark.parametrize("axis", [None, 1, 0])
def test_prod_grad_with_zeros(row, axis):
    x = np.array([row, [0.5, 1.5, -1.0, 2.0]])
    verify_grad(lambda v: gt.prod(v, axis=axis), [strided(x)])


def test_prod_grad_with_zeros_exact_values():
    x = gt.dmatrix("x")
    g = gc.function([x], gc.grad(gt.prod(x, axis=1).sum(), x))
    out = g(strided(np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 4.0]])))
    np.testing.assert_array_equal(out, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [8.0, 4.0, 2.0]])


@pytest.mark.parametrize("name", ["max", "min"])
def test_extremum_grad_goes_to_the_extremum(name):
    x = gt.dmatrix("x")
    g = gc.function([x], gc.grad(REDUCTIONS[name](x, axis=1).sum(), x))
    xv = strided(np.array([[1.0, 5.0, -2.0], [3.0, -4.0, 0.5]]))
    expected = np.zeros((2, 3))
    index = np.argmax(xv, 1) if name == "max" else np.argmin(xv, 1)
    expected[np.arange(2), index] = 1.0
    np.testing.assert_array_equal(g(xv), expected)


def test_logsumexp_grad_is_stable_for_large_inputs():
    x = gt.dvector("x")
    g = gc.function([x], gc.grad(gt.logsumexp(x), x))
    np.testing.assert_allclose(g(np.array([1000.0, 1000.0, -np.inf])), [0.5, 0.5, 0.0])
    verify_grad(gt.logsumexp, [np.array([700.0, 701.0, 699.5])])


# --- linear algebra -----------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((1, 3), (3, 1)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((3,), (2, 3, 4)),
    ((2, 1, 2, 3), (4, 3, 2)),
    ((1, 2, 3), (4, 3, 2)),
    ((4, 2, 3), (1, 3, 2)),
]


@pytest.mark.parametrize("shape_a, shape_b", MATMUL_SHAPES)
def test_matmul_grad(shape_a, shape_b):
    verify_grad(gt.matmul, point(shape_a, shape_b))


@pytest.mark.parametrize("shape_a, shape_b", MATMUL_SHAPES)
def test_matmul_grad_with_static_shapes(shape_a, shape_b):
    # static shapes take the compile-time summing path over broadcast batch axes
    def fn(a, b):
        return gt.matmul(gt.reshape(a, shape_a), gt.reshape(b, shape_b))

    verify_grad(fn, point(shape_a, shape_b))


def test_matmul_grad_negative_stride_point():
    verify_grad(
        gt.matmul, [negative(RNG.normal(size=(3, 2, 4))), negative(RNG.normal(size=(1, 4, 2)))]
    )


def test_matmul_second_order():
    verify_grad(lambda a, b: gc.grad(gt.sum(gt.matmul(a, b) ** 2), a), point((2, 3), (3, 4)))


@pytest.mark.parametrize(
    "shape_a, shape_b, flags",
    [
        ((3, 2), (3, 4), (True, False)),
        ((2, 3), (4, 3), (False, True)),
        ((3, 2), (4, 3), (True, True)),
        ((3, 2), (3,), (True, False)),
        ((3,), (4, 3), (False, True)),
        ((5, 3, 2), (3, 4), (True, False)),
        ((2, 3), (5, 4, 3), (False, True)),
        ((1, 3, 2), (4, 2, 3), (True, True)),
        ((4, 3, 2), (1, 4, 3), (True, True)),
    ],
)
def test_gemm_grad(shape_a, shape_b, flags):
    verify_grad(lambda a, b: gt.gemm(a, b, *flags), point(shape_a, shape_b))
    verify_grad(lambda a, b: gt.gemm(a, b, *flags),
                [negative(RNG.normal(size=shape_a)), negative(RNG.normal(size=shape_b))])


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [
        ((), (3,)),
        ((3,), (3,)),
        ((2, 3), (3,)),
        ((3,), (3, 2)),
        ((2, 3), (3, 4)),
        ((2, 2, 3), (3,)),
        ((2, 2, 3), (4, 3, 2)),
        ((2, 3), (2, 3, 4)),
    ],
)
def test_dot_grad(shape_a, shape_b):
    verify_grad(gt.dot, point(shape_a, shape_b))


@pytest.mark.parametrize(
    "shape_a, shape_b, axes",
    [
        ((2, 3, 4), (3, 4, 2), 2),
        ((2, 3), (3, 4), 1),
        ((2, 3), (4,), 0),
        ((2, 3, 4), (4, 3, 2), ([1, 2], [1, 0])),
        ((2, 3, 4), (2, 3, 4), 3),
        ((2, 3, 4), (4, 2), ([-1, 0], [0, -1])),
    ],
)
def test_tensordot_grad(shape_a, shape_b, axes):
    verify_grad(lambda a, b: gt.tensordot(a, b, axes), point(shape_a, shape_b))


@pytest.mark.parametrize("shape_a, shape_b", [((3,), (4,)), ((2, 2), (3,)), ((1,), (2,))])
def test_outer_grad(shape_a, shape_b):
    verify_grad(gt.outer, point(shape_a, shape_b))


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [
        ((3, 2, 4), (3, 4, 2)),
        ((3, 4), (3, 4)),
        ((2, 2, 3, 4), (2, 4, 3)),
        ((2, 3), (2, 3, 2)),
    ],
)
def test_batched_dot_grad(shape_a, shape_b):
    verify_grad(gt.batched_dot, point(shape_a, shape_b))


def test_verify_grad_catches_a_wrong_matmul_gradient():
    # the checks above can fail: a gradient that drops a factor of 2 is caught
    def wrong(a, b):
        return gt.matmul(a, b) + gt.stop_gradient(gt.matmul(a, b))

    with pytest.raises(GradientError):
        verify_grad(wrong, point((2, 3), (3, 4)))
