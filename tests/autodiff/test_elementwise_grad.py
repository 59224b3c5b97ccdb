"""Gradients of the elementwise ops against central differences (``verify_grad``).

One row per differentiable op: its builder and one domain per input, chosen away from
singularities, kinks and discontinuities so finite differences are accurate. Binary and
ternary ops are checked on broadcasting shapes (the autodiff loop sums gradients back over
broadcast axes) and on non-contiguous points.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import GradientError, verify_grad
from tests.helpers import layouts

# --- domains: (shape, rng) -> float64 points ---------------------------------------------------

def uniform(low, high):
    return lambda shape, rng: rng.uniform(low, high, size=shape)


def signed(low, high):
    """Magnitudes in [low, high) with random signs: away from zero."""
    def make(shape, rng):
        return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)

    return make


def bands(*ranges):
    """Each value from one of ``ranges``, picked at random (keeps clear of the gaps)."""
    def make(shape, rng):
        picks = rng.integers(0, len(ranges), size=shape)
        out = np.empty(shape)
        for i, (low, high) in enumerate(ranges):
            out[picks == i] = rng.uniform(low, high, size=int(np.sum(picks == i)))
        return out

    return make


ANY = uniform(-2.0, 2.0)
POSITIVE = uniform(0.3, 3.0)
UNIT = uniform(-0.8, 0.8)
NEAR_ZERO = uniform(-0.3, 0.3)
CLIP_X = bands((-2.0, -0.7), (-0.3, 0.3), (0.7, 2.0))  # clear of the bounds below
CLIP_LOW, CLIP_HIGH = uniform(-0.6, -0.4), uniform(0.4, 0.6)

GRAD_OPS = [
    ("add", ANY, ANY), ("sub", ANY, ANY), ("mul", ANY, ANY),
    ("true_div", ANY, signed(0.5, 2.0)),
    ("mod", signed(0.1, 0.9), uniform(1.1, 2.0)),  # x / y in (-1, 1): no jumps
    ("pow", uniform(0.5, 2.0), ANY),
    ("neg", ANY), ("abs", signed(0.2, 2.0)), ("sqr", ANY),
    ("maximum", signed(0.5, 2.0), NEAR_ZERO), ("minimum", NEAR_ZERO, signed(0.5, 2.0)),
    ("exp", ANY), ("exp2", ANY), ("log", POSITIVE), ("log2", POSITIVE), ("log10", POSITIVE),
    ("log1p", uniform(-0.7, 2.0)), ("expm1", ANY), ("sqrt", POSITIVE),
    ("sin", ANY), ("cos", ANY), ("tan", uniform(-1.2, 1.2)),
    ("arcsin", UNIT), ("arccos", UNIT), ("arctan", ANY), ("arctan2", ANY, uniform(0.5, 2.0)),
    ("sinh", ANY), ("cosh", ANY), ("tanh", ANY),
    ("sigmoid", uniform(-3.0, 3.0)), ("softplus", uniform(-3.0, 3.0)),
    ("erf", ANY), ("erfc", ANY),
    ("clip", CLIP_X, CLIP_LOW, CLIP_HIGH),
]

BROADCAST = {
    1: [((2, 3),), ((),), ((4,),)],
    2: [((2, 3), (3,)), ((2, 3), (2, 1)), ((2, 1), (1, 3)), ((3,), ())],
    3: [((2, 3), (3,), (2, 1)), ((2, 1), (), (1, 3))],
}


def grad_cases():
    for name, *domains in GRAD_OPS:
        for shapes in BROADCAST[len(domains)]:
            yield pytest.param(name, domains, shapes, id=f"{name}-{shapes}")


def points(domains, shapes, layout="contiguous", seed=0):
    rng = np.random.default_rng(seed)
    values = [domain(shape, rng) for domain, shape in zip(domains, shapes)]
    return [layouts(v)[layout] if v.ndim else v for v in values]


@pytest.mark.parametrize("name,domains,shapes", list(grad_cases()))
def test_gradient_matches_finite_differences(name, domains, shapes):
    verify_grad(getattr(gt, name), points(domains, shapes))


@pytest.mark.parametrize("layout", ("strided", "negative"))
@pytest.mark.parametrize("name", [row[0] for row in GRAD_OPS])
def test_gradient_at_non_contiguous_points(name, layout):
    domains = next(row[1:] for row in GRAD_OPS if row[0] == name)
    values = points(domains, [(3, 4)] * len(domains), layout, seed=1)
    assert not any(v.flags.c_contiguous for v in values)
    verify_grad(getattr(gt, name), values)


def test_the_table_covers_every_differentiable_op():
    from graphc.opdefs.elementwise import ELEMWISE_OPS

    differentiable = {name for name, op in ELEMWISE_OPS.items() if op.grad is not None}
    assert differentiable - {"cast", "where"} == {row[0] for row in GRAD_OPS}


def test_verify_grad_catches_a_wrong_gradient():
    # the guard behind every test above: stop_gradient hides the 2v term from autodiff only
    with pytest.raises(GradientError):
        verify_grad(lambda v: gt.exp(v) + gt.stop_gradient(v * v), [np.array([0.5, 1.0, 1.5])])


# --- where: gradient flows to the branch each element takes -------------------------------

@pytest.mark.parametrize("shapes", [((2, 3), (2, 3), (2, 3)), ((2, 3), (3,), (2, 1)),
                                    ((3,), (2, 3), ())])
def test_where_gradient_reaches_both_branches(shapes):
    domains = (signed(0.5, 1.0), ANY, ANY)  # the condition c > 0 stays put under small steps
    verify_grad(lambda c, a, b: gt.where(c > 0, a, b), points(domains, shapes))
    verify_grad(lambda c, a, b: gt.switch(c > 0, a * b, gt.exp(a)), points(domains, shapes, seed=3))


def test_where_gradient_values():
    a, b = gt.dvector("a"), gt.dvector("b")
    cond = np.array([True, False, True])
    ga, gb = gc.grad(gt.where(gt.constant(cond), a, b).sum(), [a, b])
    got_a, got_b = gc.function([a, b], [ga, gb])(np.zeros(3), np.zeros(3))
    np.testing.assert_array_equal(got_a, cond.astype(float))
    np.testing.assert_array_equal(got_b, (~cond).astype(float))


# --- pow: both base and exponent ------------------------------------------------------------

def test_pow_gradient_in_base_and_exponent():
    verify_grad(gt.pow, points((uniform(0.5, 2.0), uniform(-2.0, 2.0)), ((2, 3), (3,))))
    domains = (uniform(0.5, 2.0), uniform(-2.0, 2.0))
    verify_grad(lambda x, y: x ** y, points(domains, ((2, 1), (1, 3))))


@pytest.mark.parametrize("exponent", (2, 3, -1, 0.5))
def test_pow_with_a_constant_exponent(exponent):
    domain = uniform(0.4, 2.0) if exponent in (-1, 0.5) else ANY  # integer powers of negatives
    verify_grad(lambda x: x ** exponent, points((domain,), ((2, 3),)))


def test_pow_gradient_of_exponent_at_zero_base_is_finite():
    x, y = gt.dvector("x"), gt.dvector("y")
    gx, gy = gc.grad((x ** y).sum(), [x, y])
    got_x, got_y = gc.function([x, y], [gx, gy])(np.array([0.0, 2.0]), np.array([2.0, 3.0]))
    np.testing.assert_allclose(got_x, [0.0, 12.0])
    np.testing.assert_allclose(got_y, [0.0, 8.0 * np.log(2.0)])


# --- cast -------------------------------------------------------------------------------------

def test_cast_float64_to_float32_and_back():
    # float32 rounding in the middle: larger steps and a float32-sized tolerance
    verify_grad(lambda x: gt.exp(gt.cast(x, "float32")), points((ANY,), ((2, 3),)),
                eps=1e-3, abs_tol=1e-4, rel_tol=1e-3)
    verify_grad(lambda x: gt.cast(gt.cast(x, "float32") * 3, "float64") * x,
                points((ANY,), ((4,),)), eps=1e-3, abs_tol=1e-4, rel_tol=1e-3)


def test_cast_gradient_keeps_the_input_dtype():
    xf = gt.fvector("xf")
    g = gc.grad((gt.cast(xf, "float64") ** 2).sum(), xf)
    assert g.dtype == "float32"
    value = np.array([1.0, -2.0, 0.5], dtype="float32")
    out = gc.function([xf], g)(value)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 2 * value, rtol=1e-6)
    xd = gt.dvector("xd")
    g = gc.grad(gt.cast(xd, "float32").sum(), xd)
    assert g.dtype == "float64"
    np.testing.assert_array_equal(gc.function([xd], g)(value.astype("float64")), np.ones(3))


@pytest.mark.parametrize("name,domain", [(row[0], row[1]) for row in GRAD_OPS if len(row) == 2])
def test_float32_gradients_stay_float32(name, domain):
    x = gt.fmatrix("x")
    g = gc.grad(getattr(gt, name)(x).sum(), x)
    assert g.dtype == "float32"
    value = points((domain,), ((2, 3),))[0]
    xd = gt.dmatrix("xd")
    g64 = gc.grad(getattr(gt, name)(xd).sum(), xd)
    got = gc.function([x], g)(value.astype("float32"))
    want = gc.function([xd], g64)(value)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# --- non-differentiable ops: zero gradient ------------------------------------------------------

NON_DIFFERENTIABLE = [
    ("round", gt.round, np.round),
    ("floor", gt.floor, np.floor),
    ("ceil", gt.ceil, np.ceil),
    ("sign", gt.sign, np.sign),
    ("int_div", lambda x: x // 0.7, lambda v: v // 0.7),
    ("lt", lambda x: gt.cast(x < 0.5, "float64"), lambda v: (v < 0.5).astype(float)),
    ("ge", lambda x: gt.cast(gt.ge(x, -0.5), "float64"), lambda v: (v >= -0.5).astype(float)),
    ("eq", lambda x: gt.cast(gt.eq(x, x), "float64"), lambda v: np.ones_like(v)),
    ("cast_int", lambda x: gt.cast(x, "int32"), lambda v: v.astype("int32")),
]


@pytest.mark.parametrize("name,build,ref", NON_DIFFERENTIABLE,
                         ids=[row[0] for row in NON_DIFFERENTIABLE])
def test_non_differentiable_ops_contribute_no_gradient(name, build, ref):
    x = gt.dvector("x")
    g = gc.grad((build(x) * x).sum(), x)  # d/dx [f(x) x] = f(x) when f' = 0
    value = layouts(np.array([0.3, 1.7, -2.2, 2.6, -0.4]))["negative"]
    np.testing.assert_allclose(gc.function([x], g)(value), ref(value))


# --- second order: gradient graphs differentiate again ---------------------------------------

@pytest.mark.parametrize("name,domain", [("tanh", ANY), ("sigmoid", ANY), ("erf", ANY),
                                         ("log", POSITIVE), ("sqrt", POSITIVE), ("arcsin", UNIT)])
def test_second_derivatives(name, domain):
    def first_derivative(x):
        return gc.grad(getattr(gt, name)(x).sum(), x)

    verify_grad(first_derivative, points((domain,), ((2, 3),)))


def test_second_derivative_of_binary_ops_with_broadcasting():
    def mixed(x, y):
        return gc.grad((gt.maximum(x, y) * gt.arctan2(x, y) + x ** y).sum(), x)

    verify_grad(mixed, points((uniform(1.0, 2.0), uniform(0.3, 0.6)), ((2, 3), (3,))))
