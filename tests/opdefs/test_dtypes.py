"""Dtype promotion: NumPy 2's rules, Python scalars weak (NEP 50), float16 read as float32.

Every case compares graphc's static dtype *and* the computed values with what NumPy gives for
the same expression on arrays, so a wrong promotion shows up even if the values agree.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.ir.node import Node
from tests.helpers import assert_matches, check_against_numpy, layouts
from tests.opdefs.test_elementwise import DTYPES

STRONG = [(a, b) for a in DTYPES for b in DTYPES]


def sample(dtype, seed=0, shape=(2, 3)):
    """Small non-negative values every op and dtype below is defined on (no zero divisors)."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return np.ones(shape, bool)
    return rng.integers(1, 4, size=shape).astype(dtype)


def graphc_dtype(numpy_dtype) -> str:
    return "float32" if np.dtype(numpy_dtype) == np.float16 else np.dtype(numpy_dtype).name


def numpy_result(fn, *values):
    """NumPy's result, computed in float32 where NumPy would use float16; None if it refuses."""
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(fn(*values))
            if out.dtype == np.float16:
                out = np.asarray(fn(*[np.asarray(v, np.float32) if isinstance(v, np.ndarray) else v
                                      for v in values]))
    except TypeError:
        return None
    return out


def check_build(build, reference, values):
    """``build`` on symbolic inputs matches ``reference`` on ``values``, or both refuse."""
    expected = numpy_result(reference, *values)
    inputs = [gt.tensor(v.dtype.name, shape=(None,) * v.ndim) for v in values]
    if expected is None:
        with pytest.raises(TypeError):
            build(*inputs)
        return
    out = build(*inputs)
    assert out.dtype == graphc_dtype(expected.dtype), f"{out.dtype} != NumPy's {expected.dtype}"
    check_against_numpy(build, lambda *v: numpy_result(reference, *v), values)


# --- two tensors: every pair of dtypes -------------------------------------------------------

BINARY = [("add", np.add), ("true_div", np.true_divide), ("int_div", np.floor_divide),
          ("maximum", np.maximum), ("lt", np.less), ("arctan2", np.arctan2), ("pow", np.power)]


@pytest.mark.parametrize("a,b", STRONG)
@pytest.mark.parametrize("name,ref", BINARY, ids=[n for n, _ in BINARY])
def test_two_tensors_promote_like_numpy(name, ref, a, b):
    check_build(getattr(gt, name), ref, [sample(a), sample(b, seed=1)])


@pytest.mark.parametrize("a,b", STRONG)
def test_where_branches_promote_like_numpy(a, b):
    cond = np.array([[True, False, True], [False, True, True]])
    check_build(gt.where, np.where, [cond, sample(a), sample(b, seed=1)])


def test_named_promotions():
    i8, i16 = gt.tensor("int8", shape=(None,)), gt.tensor("int16", shape=(None,))
    i32, u64 = gt.ivector(), gt.tensor("uint64", shape=(None,))
    assert (i8 + i16).dtype == "int16"
    assert (i32 / i32).dtype == "float64"
    assert (i8 / i8).dtype == "float64"
    assert (u64 + gt.lvector()).dtype == "float64"
    assert (i32 < gt.ivector()).dtype == "bool"
    assert gt.eq(gt.fvector(), gt.dvector()).dtype == "bool"
    assert gt.exp(i32).dtype == "float64"
    assert gt.exp(i8).dtype == "float32"
    assert gt.sqrt(gt.tensor("bool", shape=(None,))).dtype == "float32"
    assert gt.sigmoid(i16).dtype == "float32" and gt.erf(i32).dtype == "float64"
    assert gt.round(i32).dtype == "int32"


# --- a tensor and a Python scalar (weak) ------------------------------------------------------

# operator -> the NumPy ufunc it means (``array ** 2`` has a square fast path in NumPy that
# types ``bool ** 2`` as int8; the ufunc, which graphc follows, gives int64)
SCALAR_OPS = {
    "+": (operator.add, np.add), "-": (operator.sub, np.subtract), "*": (operator.mul, np.multiply),
    "/": (operator.truediv, np.true_divide), "//": (operator.floordiv, np.floor_divide),
    "%": (operator.mod, np.remainder), "**": (operator.pow, np.power), "<": (operator.lt, np.less),
    ">=": (operator.ge, np.greater_equal), "==": (gt.eq, np.equal),
    "&": (operator.and_, np.bitwise_and),
    "|": (operator.or_, np.bitwise_or), "^": (operator.xor, np.bitwise_xor),
}
SCALARS = (2, 2.5, True, -1, 300)


def scalar_cases():
    for symbol in SCALAR_OPS:
        for scalar in SCALARS:
            for dtype in DTYPES:
                yield pytest.param(symbol, scalar, dtype, id=f"{dtype}{symbol}{scalar!r}")


def numpy_outcome(fn, *args):
    """``fn``'s result on NumPy arrays, or the exception type NumPy raises."""
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(fn(*args))
    except (TypeError, OverflowError, ValueError) as exc:
        return type(exc)
    return out


def flipped(fn, scalar, side):
    return (lambda x: fn(x, scalar)) if side == "right" else (lambda x: fn(scalar, x))


@pytest.mark.parametrize("side", ("right", "left"))
@pytest.mark.parametrize("symbol,scalar,dtype", list(scalar_cases()))
def test_python_scalars_are_weak(symbol, scalar, dtype, side):
    build, ref = (flipped(fn, scalar, side) for fn in SCALAR_OPS[symbol])
    value = sample(dtype)
    expected = numpy_outcome(ref, value)
    x = gt.tensor(dtype, shape=(None, None))
    if expected is OverflowError:  # e.g. uint8 + 300: graphc names the op and the user's line
        with pytest.raises(OverflowError, match=r"out of bounds[\s\S]*test_dtypes.py"):
            build(x)
        return
    if expected is TypeError:  # e.g. float & 2, bool - True
        with pytest.raises(TypeError):
            build(x)
        return
    f = gc.function([x], build(x))
    if expected is ValueError:  # int ** -1: refused at run time, like NumPy
        with pytest.raises(ValueError, match="pow"):
            f(value)
        return
    if expected.dtype == np.float16:
        expected = numpy_outcome(ref, value.astype(np.float32))
    assert build(x).dtype == expected.dtype.name
    assert_matches(f(value), expected)


def test_named_weak_scalar_cases():
    f32, i32 = gt.fvector(), gt.ivector()
    assert (f32 * 2).dtype == "float32"
    assert (f32 * 2.5).dtype == "float32"
    assert (2.5 * f32).dtype == "float32"
    assert (i32 * 2).dtype == "int32"
    assert (i32 * 2.5).dtype == "float64"
    assert (gt.tensor("int8", shape=(None,)) + 1).dtype == "int8"
    assert (gt.tensor("bool", shape=(None,)) + 1).dtype == "int64"
    assert (gt.tensor("bool", shape=(None,)) * 1.5).dtype == "float64"


def test_numpy_scalars_are_strong():
    f32 = gt.fvector()
    for scalar in (np.float64(2.0), np.array(2.0)):
        assert (f32 * scalar).dtype == np.result_type(np.float32, scalar).name == "float64"
    assert (f32 * np.float32(2.0)).dtype == "float32"
    assert (gt.tensor("int8", shape=(None,)) + np.int16(1)).dtype == "int16"


@pytest.mark.parametrize("dtype", ("uint8", "int8", "int16"))
def test_out_of_range_python_int_raises_naming_the_op(dtype):
    x = gt.tensor(dtype, shape=(None,), name="x")
    info = np.iinfo(dtype)
    with pytest.raises(OverflowError):
        np.ones(2, dtype) + (int(info.max) + 1)  # NumPy 2 refuses too
    message = rf"^add: Python integer {info.max + 1} out of bounds for {dtype}"
    with pytest.raises(TypeError, match=message):
        x + (int(info.max) + 1)
    with pytest.raises(OverflowError, match=r"mul: .*out of bounds[\s\S]*test_dtypes.py"):
        (int(info.min) - 1) * x


# --- operator overloads ----------------------------------------------------------------------

BINARY_OPERATORS = {symbol: fn for symbol, (fn, _) in SCALAR_OPS.items() if symbol != "=="}
BINARY_OPERATORS.update({"<=": operator.le, ">": operator.gt, "@": operator.matmul})
UNARY_OPERATORS = {"neg": operator.neg, "abs": abs, "invert": operator.invert}


def operator_cases():
    for symbol in BINARY_OPERATORS:
        for dtype in ("int32", "float32", "bool", "uint8"):
            yield pytest.param(symbol, dtype, id=f"{dtype}{symbol}")


@pytest.mark.parametrize("symbol,dtype", list(operator_cases()))
def test_operators_between_tensors(symbol, dtype):
    fn = BINARY_OPERATORS[symbol]
    shapes = ((3, 3), (3, 3)) if symbol == "@" else ((2, 3), (3,))
    other = "float64" if dtype == "bool" else dtype
    values = [sample(dtype, 0, shapes[0]), sample(other, 1, shapes[1])]
    check_build(fn, fn, values)


@pytest.mark.parametrize("symbol", list(BINARY_OPERATORS))
@pytest.mark.parametrize("left_dtype", ("float64", "int16", "float32"))
def test_numpy_array_on_the_left(symbol, left_dtype):
    fn = BINARY_OPERATORS[symbol]
    left = sample(left_dtype, 2, (3,))
    value = sample("int32", 3, (3, 3) if symbol == "@" else (2, 3))
    x = gt.tensor("int32", shape=(None, None))
    expected = numpy_outcome(fn, left, value)
    if isinstance(expected, type):
        with pytest.raises(expected):
            fn(left, x)
        return
    out = fn(left, x)
    assert isinstance(out, Node)  # NumPy deferred to the reflected operator
    assert out.dtype == expected.dtype.name
    assert_matches(gc.function([x], out)(value), expected)


@pytest.mark.parametrize("symbol", list(UNARY_OPERATORS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_unary_operators(symbol, dtype):
    fn = UNARY_OPERATORS[symbol]
    value = layouts(sample(dtype, 4))["negative"]
    check_build(fn, fn, [value])


def test_unary_plus_is_the_identity():
    x = gt.fmatrix()
    assert +x is x


# --- where / clip with weak scalars ------------------------------------------------------------

WEAK_BRANCHES = [2.5, 2, True, -1]


@pytest.mark.parametrize("scalar", WEAK_BRANCHES)
@pytest.mark.parametrize("dtype", ("int8", "uint8", "int32", "float32", "float64", "bool"))
def test_where_with_a_weak_scalar_branch(dtype, scalar):
    cond = np.array([[True, False, True], [False, False, True]])
    value = sample(dtype)
    expected = numpy_outcome(lambda c, v: np.where(c, v, scalar), cond, value)
    c, x = gt.tensor("bool", shape=(None, None)), gt.tensor(dtype, shape=(None, None))
    if dtype == "uint8" and scalar == -1:
        # NumPy wraps -1 to 255 here; graphc refuses, like uint8 + -1
        with pytest.raises(OverflowError, match="where"):
            gt.where(c, x, scalar)
        return
    for out, want in ((gt.where(c, x, scalar), expected),
                      (gt.where(c, scalar, x), np.where(cond, scalar, value))):
        assert out.dtype == want.dtype.name
        assert_matches(gc.function([c, x], out)(cond, value), want)


def test_where_with_two_weak_scalars():
    c = gt.tensor("bool", shape=(None,))
    cond = np.array([True, False])
    for a, b in ((1, 2.5), (1, 2), (True, 2), (True, False)):
        out = gt.where(c, a, b)
        assert_matches(gc.function([c], out)(cond), np.where(cond, a, b))


@pytest.mark.parametrize("bounds", [(0, 2.5), (0, 2), (-1, 300), (0.5, 1.5), (-1000, 1000)])
@pytest.mark.parametrize("dtype", ("int8", "uint8", "int64", "float32", "bool"))
def test_clip_with_weak_scalar_bounds(dtype, bounds):
    value = sample(dtype) * np.asarray(2, dtype)
    x = gt.tensor(dtype, shape=(None, None))
    expected = numpy_outcome(np.clip, value, *bounds)
    out = gt.clip(x, *bounds)
    assert out.dtype == expected.dtype.name
    assert_matches(gc.function([x], out)(value), expected)


def test_float16_reads_as_float32():
    x = gt.tensor("float16", shape=(None,))
    assert x.dtype == "float32"
    assert gt.cast(gt.ivector(), "float16").dtype == "float32"
    assert (gt.tensor("int8", shape=(None,)) / gt.tensor("int8", shape=(None,))).dtype == "float64"
    assert gt.exp(gt.tensor("uint8", shape=(None,))).dtype == "float32"
