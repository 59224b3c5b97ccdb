"""Every elementwise op against NumPy: each dtype, awkward layouts, 0-size and broadcast shapes.

One row of ``OPS`` per op: its builder name, its NumPy reference and one input domain per
argument (values the op is defined on). NumPy decides which dtypes an op accepts: where NumPy
raises TypeError, graphc must raise TypeError naming the op; everywhere else results must
match NumPy's exactly (dtype, shape, values), except that graphc gives float32 where NumPy
would give float16.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from tests.helpers import check_against_numpy, layouts

DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64")


# --- input domains: (shape, dtype, rng) -> values the op is defined on ---------------------

def _ints(shape, dtype, rng, low, high):
    """Integers in [low, high], shifted to be non-negative for unsigned dtypes."""
    if np.dtype(dtype).kind == "u":
        low, high = max(low, 0), max(high, 1)
    return rng.integers(low, high + 1, size=shape).astype(dtype)


def _domain(floats, ints, bools=lambda shape, rng: rng.random(shape) < 0.5):
    def make_values(shape, dtype, rng):
        kind = np.dtype(dtype).kind
        if kind == "b":
            return np.asarray(bools(shape, rng))
        if kind in "iu":
            return _ints(shape, dtype, rng, *ints)
        return rng.uniform(*floats, size=shape).astype(dtype)

    return make_values


def _all_true(shape, rng):
    return np.ones(shape, bool)


def _nonzero(shape, dtype, rng):
    """Divisors: magnitudes in [0.5, 3) or [1, 3], random signs where the dtype has them."""
    kind = np.dtype(dtype).kind
    if kind == "b":
        return np.ones(shape, bool)
    sign = np.where(rng.random(shape) < 0.5, -1, 1) if kind != "u" else 1
    if kind in "iu":
        return (sign * rng.integers(1, 4, size=shape)).astype(dtype)
    return (sign * rng.uniform(0.5, 3.0, size=shape)).astype(dtype)


def _condition(shape, dtype, rng):
    return rng.random(shape) < 0.5


ANY = _domain((-3.0, 3.0), (-3, 3))
POSITIVE = _domain((0.2, 3.0), (1, 3), _all_true)
UNIT = _domain((-0.95, 0.95), (-1, 1))  # arcsin, arccos
ABOVE_MINUS_ONE = _domain((-0.9, 3.0), (0, 3))  # log1p
EXPONENT = _domain((-2.0, 2.0), (0, 3))  # small non-negative int exponents
BASE = _domain((0.2, 3.0), (-3, 3))  # positive float bases: no NaN from fractional powers


# --- references ------------------------------------------------------------------------------

def numpy_ref(fn):
    """``fn`` with graphc's dtype rule: where NumPy computes in float16, compute in float32."""

    def ref(*xs):
        with np.errstate(all="ignore"):
            out = np.asarray(fn(*xs))
            if out.dtype == np.float16:
                out = np.asarray(fn(*[x.astype(np.float32) for x in xs]))
        return out

    return ref


def as_float(x):
    """``x`` in the float dtype NumPy computes transcendental functions in (float16 -> float32)."""
    dtype = np.result_type(x.dtype, np.float16)
    return x.astype(np.float32 if dtype == np.float16 else dtype)


def elementwise_math(fn):
    def ref(x):
        xf = as_float(x)
        return np.asarray(np.frompyfunc(fn, 1, 1)(xf)).astype(xf.dtype)

    return ref


def sigmoid_ref(x):
    xf = as_float(x)
    return 1 / (1 + np.exp(-xf))


def softplus_ref(x):
    xf = as_float(x)
    return np.log1p(np.exp(xf))


@dataclass(frozen=True)
class Row:
    name: str  # the gt builder
    ref: Callable
    domains: tuple

    @property
    def build(self):
        return getattr(gt, self.name)

    @property
    def op_name(self) -> str:
        op = getattr(self.build, "op", None)
        return op.name if op is not None else self.name

    def __str__(self) -> str:
        return self.name


def row(name, ref, *domains):
    return Row(name, numpy_ref(ref), domains)


OPS = [
    # arithmetic
    row("add", np.add, ANY, ANY),
    row("sub", np.subtract, ANY, ANY),
    row("mul", np.multiply, ANY, ANY),
    row("true_div", np.true_divide, ANY, _nonzero),
    row("int_div", np.floor_divide, ANY, _nonzero),
    row("mod", np.remainder, ANY, _nonzero),
    row("pow", np.power, BASE, EXPONENT),
    row("neg", np.negative, ANY),
    row("abs", np.absolute, ANY),
    row("sign", np.sign, ANY),
    row("sqr", np.square, ANY),
    row("maximum", np.maximum, ANY, ANY),
    row("minimum", np.minimum, ANY, ANY),
    # transcendental
    row("exp", np.exp, ANY),
    row("exp2", np.exp2, ANY),
    row("log", np.log, POSITIVE),
    row("log2", np.log2, POSITIVE),
    row("log10", np.log10, POSITIVE),
    row("log1p", np.log1p, ABOVE_MINUS_ONE),
    row("expm1", np.expm1, ANY),
    row("sqrt", np.sqrt, POSITIVE),
    row("sin", np.sin, ANY),
    row("cos", np.cos, ANY),
    row("tan", np.tan, ANY),
    row("arcsin", np.arcsin, UNIT),
    row("arccos", np.arccos, UNIT),
    row("arctan", np.arctan, ANY),
    row("arctan2", np.arctan2, ANY, _nonzero),
    row("sinh", np.sinh, ANY),
    row("cosh", np.cosh, ANY),
    row("tanh", np.tanh, ANY),
    row("sigmoid", sigmoid_ref, ANY),
    row("softplus", softplus_ref, ANY),
    row("erf", elementwise_math(math.erf), ANY),
    row("erfc", elementwise_math(math.erfc), ANY),
    # rounding
    row("round", np.round, ANY),
    row("floor", np.floor, ANY),
    row("ceil", np.ceil, ANY),
    # comparisons
    row("eq", np.equal, EXPONENT, EXPONENT),  # small ints/floats: some ties
    row("neq", np.not_equal, EXPONENT, EXPONENT),
    row("lt", np.less, ANY, ANY),
    row("le", np.less_equal, EXPONENT, EXPONENT),
    row("gt", np.greater, ANY, ANY),
    row("ge", np.greater_equal, EXPONENT, EXPONENT),
    # bitwise (ints) / logical (bool)
    row("and_", np.bitwise_and, ANY, ANY),
    row("or_", np.bitwise_or, ANY, ANY),
    row("xor", np.bitwise_xor, ANY, ANY),
    row("invert", np.invert, ANY),
    row("logical_and", np.logical_and, EXPONENT, EXPONENT),
    row("logical_or", np.logical_or, EXPONENT, EXPONENT),
    row("logical_xor", np.logical_xor, EXPONENT, EXPONENT),
    row("logical_not", np.logical_not, EXPONENT),
    # classification
    row("isnan", np.isnan, ANY),
    row("isinf", np.isinf, ANY),
    row("isfinite", np.isfinite, ANY),
    # ternary
    row("clip", np.clip, ANY, _domain((-2.0, 0.0), (-2, 0)), _domain((0.0, 2.0), (0, 2))),
    row("where", np.where, _condition, ANY, ANY),
    row("switch", np.where, _condition, ANY, ANY),
]


def make_values(op: Row, shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [domain(shape, dtype, rng) for domain, shape in zip(op.domains, shapes)]


def numpy_accepts(op: Row, dtype) -> bool:
    try:
        op.ref(*make_values(op, [(1,)] * len(op.domains), dtype))
    except TypeError:
        return False
    return True


def accepted(dtypes):
    """(op, dtype) pairs for the dtypes of ``dtypes`` that NumPy accepts for the op."""
    return [(op, d) for op in OPS for d in dtypes if numpy_accepts(op, d)]


# --- every dtype -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS, ids=str)
def test_every_dtype_matches_numpy(op, dtype):
    values = make_values(op, [(3, 4)] * len(op.domains), dtype)
    if not numpy_accepts(op, dtype):
        inputs = [gt.tensor(v.dtype.name, shape=(None, None)) for v in values]
        with pytest.raises(TypeError, match=rf"^{op.op_name}: "):
            op.build(*inputs)
        return
    check_against_numpy(op.build, op.ref, values)


def test_the_table_covers_every_elementwise_op():
    from graphc.opdefs.elementwise import ELEMWISE_OPS

    covered = {op.op_name for op in OPS}
    assert set(ELEMWISE_OPS) - {"cast"} <= covered, set(ELEMWISE_OPS) - covered


# --- layouts: contiguous, strided and negative-stride inputs --------------------------------

LAYOUTS = ("contiguous", "strided", "negative", "mixed")


def laid_out(values, layout):
    """Every input in ``layout``; "mixed" gives the inputs different layouts."""
    kinds = ("strided", "negative", "contiguous")
    return [layouts(v)[kinds[i % 3] if layout == "mixed" else layout] for i, v in enumerate(values)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op,dtype", accepted(("float32", "int16")), ids=str)
def test_layouts_match_numpy(op, dtype, layout):
    values = laid_out(make_values(op, [(3, 4)] * len(op.domains), dtype, seed=1), layout)
    if layout != "contiguous":
        assert not all(v.flags.c_contiguous for v in values)
    check_against_numpy(op.build, op.ref, values)


# --- 0-size arrays, size-1 broadcasting, 1-d with 2-d, 0-d ----------------------------------

SHAPES = {
    1: [((0, 3),), ((1, 1),), ((),), ((2, 1, 3),)],
    2: [((3, 1), (1, 4)), ((4,), (3, 4)), ((3, 4), (4,)), ((0, 3), (1, 3)), ((0, 3), (3,)),
        ((2, 1), (2, 0)), ((), (2, 3)), ((1,), ())],
    3: [((3, 1), (1, 4), (3, 4)), ((4,), (3, 1), ()), ((0, 3), (3,), (1, 1)), ((1,), (2, 3), (3,))],
}


def shape_cases():
    for op, dtype in accepted(("float64", "int32", "bool")):
        for shapes in SHAPES[len(op.domains)]:
            yield pytest.param(op, dtype, shapes, id=f"{op}-{dtype}-{shapes}")


@pytest.mark.parametrize("op,dtype,shapes", list(shape_cases()))
def test_broadcast_and_empty_shapes_match_numpy(op, dtype, shapes):
    values = make_values(op, shapes, dtype, seed=2)
    check_against_numpy(op.build, op.ref, values)


def test_static_broadcast_shape():
    x = gt.tensor("float64", shape=(3, 1))
    y = gt.tensor("float64", shape=(None, 4))
    assert (x + y).type.shape == (3, 4)
    empty = gt.tensor("float64", shape=(0, 1)) * gt.tensor("float64", shape=(5,))
    assert empty.type.shape == (0, 5)
    assert gt.where(gt.tensor("bool", shape=(2, 1, 1)), x, 1.0).type.shape == (2, 3, 1)


# --- special values ----------------------------------------------------------------------------

SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-30, -1e30])


@pytest.mark.parametrize("dtype", ("float32", "float64"))
@pytest.mark.parametrize("name,ref", [
    ("isnan", np.isnan), ("isinf", np.isinf), ("isfinite", np.isfinite), ("sign", np.sign),
    ("abs", np.absolute), ("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt), ("tanh", np.tanh),
    ("sigmoid", sigmoid_ref), ("softplus", softplus_ref), ("floor", np.floor), ("round", np.round),
])
def test_special_float_values(name, ref, dtype):
    check_against_numpy(getattr(gt, name), numpy_ref(ref), [SPECIAL.astype(dtype)])


@pytest.mark.parametrize("name,ref", [("maximum", np.maximum), ("minimum", np.minimum),
                                      ("int_div", np.floor_divide), ("mod", np.remainder)])
def test_binary_ops_on_special_values(name, ref):
    x = np.repeat(SPECIAL, SPECIAL.size)
    y = np.tile(SPECIAL, SPECIAL.size)
    check_against_numpy(getattr(gt, name), numpy_ref(ref), [x, y])


def test_sigmoid_and_softplus_are_stable_for_large_inputs():
    x = gt.dvector("x")
    f = gc.function([x], [gt.sigmoid(x), gt.softplus(x)])
    big = np.array([-800.0, -40.0, 40.0, 800.0])
    sig, soft = f(big)
    np.testing.assert_allclose(sig, [0.0, np.exp(-40.0), 1.0, 1.0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(soft, [0.0, np.exp(-40.0), 40.0, 800.0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", ("int8", "uint8", "int64"))
def test_integer_ops_wrap_like_numpy(dtype):
    info = np.iinfo(dtype)
    x = np.array([info.max, info.min, info.max - 1], dtype=dtype)
    y = np.array([1, 1, 3], dtype=dtype)
    for build, ref in ((gt.add, np.add), (gt.sub, np.subtract), (gt.mul, np.multiply)):
        check_against_numpy(build, ref, [x, y])


def test_int_div_and_mod_of_negative_ints_floor_like_numpy():
    x = np.array([-7, 7, -7, 7, 0], dtype="int32")
    y = np.array([2, -2, -2, 2, -3], dtype="int32")
    check_against_numpy(gt.int_div, np.floor_divide, [x, y])
    check_against_numpy(gt.mod, np.remainder, [x, y])


def test_round_is_round_half_to_even():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.4999], dtype="float64")
    check_against_numpy(gt.round, np.round, [x])


# --- cast ------------------------------------------------------------------------------------

def cast_source(dtype, to, rng):
    """Values every conversion defines: float to unsigned from non-negative values only."""
    if np.dtype(dtype).kind == "f" and np.dtype(to).kind in "ub":
        return rng.uniform(0.0, 3.0, size=(3, 4)).astype(dtype)
    return ANY((3, 4), dtype, rng)


@pytest.mark.parametrize("to", DTYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cast_matches_astype(dtype, to):
    values = laid_out([cast_source(dtype, to, np.random.default_rng(3))], "negative")
    check_against_numpy(lambda x: gt.cast(x, to), lambda x: x.astype(to), values)


def test_cast_to_the_same_dtype_is_the_input():
    x = gt.fmatrix("x")
    assert gt.cast(x, "float32") is x
    assert x.astype(np.float64).dtype == "float64"


def test_cast_keeps_static_shape_and_accepts_numpy_dtypes():
    x = gt.tensor("int32", shape=(0, 3))
    y = gt.cast(x, np.float32)
    assert y.dtype == "float32" and y.type.shape == (0, 3)


def test_cast_to_an_unsupported_dtype_raises():
    with pytest.raises(TypeError, match="complex128"):
        gt.cast(gt.dvector(), "complex128")


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ("and_", "or_", "xor", "invert"))
@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_bitwise_ops_refuse_floats_naming_the_op(name, dtype):
    x = gt.tensor(dtype, shape=(None, 3), name="x")
    op_name = getattr(gt, name).op.name
    args = (x,) if name == "invert" else (x, x)
    with pytest.raises(TypeError, match=rf"^{op_name}: [\s\S]*{dtype}[\s\S]*test_elementwise.py"):
        getattr(gt, name)(*args)


@pytest.mark.parametrize("name", ("sub", "neg", "sign"))
def test_ops_numpy_refuses_on_bool_raise_type_error(name):
    b = gt.tensor("bool", shape=(None,), name="b")
    args = (b,) if name in ("neg", "sign") else (b, b)
    with pytest.raises(TypeError, match=rf"^{name}: .*bool"):
        getattr(gt, name)(*args)


def test_wrong_number_of_arguments():
    with pytest.raises(TypeError, match="add takes 2 argument"):
        gt.add(gt.dvector())


def test_node_built_directly_with_mixed_dtypes_is_refused():
    from graphc.ir.node import make

    with pytest.raises(TypeError, match=r"^add: inputs must share one dtype"):
        make(gt.add.op, (gt.fvector(), gt.dvector()))
    with pytest.raises(TypeError, match=r"^where: .*bool condition"):
        make(gt.where.__globals__["WHERE"], (gt.dvector(), gt.dvector(), gt.dvector()))


@pytest.mark.parametrize("build,name", [
    (lambda a, b: a + b, "add"), (lambda a, b: gt.maximum(a, b), "maximum"),
    (lambda a, b: a < b, "lt"), (lambda a, b: gt.where(a > 0, a, b), "where"),
    (lambda a, b: gt.clip(a, b, 1.0), "clip"), (lambda a, b: gt.arctan2(a, b), "arctan2"),
])
def test_static_shape_mismatch_raises_at_build_time(build, name):
    a = gt.tensor("float64", shape=(None, 4), name="a")
    b = gt.tensor("float64", shape=(2, 3), name="b")
    with pytest.raises(ValueError) as info:
        build(a, b)
    message = str(info.value)
    assert message.startswith(f"{name}: ")
    assert "(?, 4)" in message and "(2, 3)" in message
    # the user's line: the innermost frame outside graphc, here the lambda of the table row
    assert f'test_elementwise.py", line {build.__code__.co_firstlineno}' in message


def test_build_error_quotes_the_users_line():
    a = gt.tensor("float32", shape=(None, 4), name="a")
    b = gt.tensor("float32", shape=(2, 3), name="b")
    with pytest.raises(ValueError, match=r"^sub: [\s\S]*the offending line"):
        a - b  # the offending line


@pytest.mark.parametrize("mode", ("reference", "FAST_RUN"))
@pytest.mark.parametrize("build,name", [
    (lambda a, b: a * b, "mul"), (lambda a, b: gt.where(a > 0, a, b), "where"),
    (lambda a, b: gt.pow(a, b), "pow"),
])
def test_run_time_shape_mismatch_raises_value_error(build, name, mode):
    a, b = gt.dmatrix("a"), gt.dmatrix("b")
    f = gc.function([a, b], build(a, b), mode=mode)
    with pytest.raises(ValueError) as info:
        f(np.ones((2, 3)), np.ones((2, 4)))
    message = str(info.value)
    assert message.startswith(f"{name}: ")
    assert "(2, 3)" in message and "(2, 4)" in message
