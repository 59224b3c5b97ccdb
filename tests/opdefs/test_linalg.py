"""matmul, dot, tensordot, outer and batched_dot against NumPy: dtypes, 1-d operands, 0-size and
broadcast batch axes, awkward layouts, static shapes and the errors for mismatched operands."""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.opdefs.infer_shape import output_shape
from graphc.runtime.reference import RunError
from tests.helpers import assert_matches, check_against_numpy, layouts, random_array

DTYPES = ("float32", "float64", "int32", "int64")

# (shape of a, shape of b): every 1-d rule, 0-size axes, batch axes broadcast both ways
MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((1, 3), (3, 1)),
    ((0, 3), (3, 4)),
    ((2, 0), (0, 4)),
    ((2, 3), (3, 0)),
    ((0,), (0,)),
    ((5, 2, 3), (3, 4)),
    ((2, 3, 2, 3), (3, 4)),
    ((5, 2, 0), (0, 4)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((2, 1, 2, 3), (4, 3, 2)),
    ((1, 2, 3), (4, 3, 2)),
    ((0, 2, 3), (1, 3, 2)),
]


def _pair(shape_a, shape_b, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return random_array(shape_a, dtype, rng), random_array(shape_b, dtype, rng)


def _check_layouts(build, reference, a, b):
    """Compare on contiguous, strided and negative-stride views of the same operands."""
    for name, la in layouts(a).items():
        lb = layouts(b).get(name, b)
        check_against_numpy(build, reference, [la, lb])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape_a, shape_b", MATMUL_SHAPES)
def test_matmul_matches_numpy(shape_a, shape_b, dtype):
    a, b = _pair(shape_a, shape_b, dtype)
    _check_layouts(gt.matmul, np.matmul, a, b)


def test_matmul_operator_and_bool():
    a, b = _pair((2, 3), (3, 2), "bool")
    check_against_numpy(lambda x, y: x @ y, np.matmul, [a, b])


@pytest.mark.parametrize(
    "dtype_a, dtype_b",
    [
        ("float32", "float64"),
        ("float32", "int32"),
        ("int32", "int64"),
        ("int8", "int8"),
        ("float32", "float32"),
    ],
)
def test_matmul_promotes_like_numpy(dtype_a, dtype_b):
    rng = np.random.default_rng(1)
    a, b = random_array((2, 3), dtype_a, rng), random_array((3, 2), dtype_b, rng)
    check_against_numpy(gt.matmul, np.matmul, [a, b])


def test_numpy_arrays_and_lists_as_operands():
    x = gt.dmatrix("x")
    eye, xv = np.eye(3), random_array((2, 3), "float64")
    f = gc.function([x], [x @ eye, eye[:2, :2] @ x, gt.matmul(x, [1.0, 2.0, 3.0]), gt.dot(x, eye)])
    right, left, vec, dot = f(xv)
    assert_matches(right, xv @ eye)
    assert_matches(left, eye[:2, :2] @ xv)
    assert_matches(vec, xv @ np.array([1.0, 2.0, 3.0]))
    assert_matches(dot, xv @ eye)
    xf = gt.fmatrix("xf")
    assert (xf @ np.eye(3, dtype="float32")).dtype == "float32"
    assert (xf @ np.eye(3)).dtype == "float64"  # NumPy promotion: the array is not weak


# (shape of a, shape of b) for np.dot: scalars, 1-d, 2-d and N-d contractions
DOT_SHAPES = [
    ((), (3,)),
    ((2, 3), ()),
    ((4,), (4,)),
    ((2, 3), (3,)),
    ((3,), (3, 2)),
    ((2, 3), (3, 4)),
    ((2, 2, 3), (3,)),
    ((3,), (2, 3, 4)),
    ((2, 2, 3), (4, 3, 2)),
    ((2, 3), (5, 3, 2)),
    ((2, 2, 3), (3, 4)),
    ((0, 3), (2, 3, 0)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape_a, shape_b", DOT_SHAPES)
def test_dot_matches_numpy(shape_a, shape_b, dtype):
    a, b = _pair(shape_a, shape_b, dtype)
    _check_layouts(gt.dot, np.dot, a, b)


def test_dot_with_python_scalar_is_weak():
    x = gt.fvector("x")
    xv = random_array((3,), "float32")
    out = gc.function([x], [gt.dot(2, x), gt.dot(x, 0.5), x.dot(x)])(xv)
    assert_matches(out[0], np.multiply(2, xv))  # np.dot(2, x) is multiply; the scalar stays weak
    assert_matches(out[1], np.multiply(xv, 0.5))
    assert_matches(out[2], np.dot(xv, xv))


# (shape of a, shape of b, axes) for np.tensordot
TENSORDOT_CASES = [
    ((2, 3, 4), (3, 4, 5), 2),
    ((2, 3), (3, 4), 1),
    ((2, 3), (4, 5), 0),
    ((3,), (3,), 1),
    ((), (2, 3), 0),
    ((2, 3, 4), (2, 3, 4), 3),
    ((2, 3, 4), (4, 3, 5), ([1, 2], [1, 0])),
    ((2, 3, 4), (5, 2), (0, 1)),
    ((2, 3, 4), (4, 2), ([-1, 0], [0, -1])),
    ((2, 3, 4), (3, 2, 6), ((), ())),
    ((0, 3), (3, 2), 1),
    ((2, 0, 4), (0, 4, 3), 2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape_a, shape_b, axes", TENSORDOT_CASES)
def test_tensordot_matches_numpy(shape_a, shape_b, axes, dtype):
    a, b = _pair(shape_a, shape_b, dtype)
    _check_layouts(
        lambda x, y: gt.tensordot(x, y, axes), lambda x, y: np.tensordot(x, y, axes), a, b
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape_a, shape_b", [((3,), (4,)), ((2, 2), (3,)), ((0,), (3,)), ((1,), (2, 0)), ((), (2,))]
)
def test_outer_matches_numpy(shape_a, shape_b, dtype):
    a, b = _pair(shape_a, shape_b, dtype)
    _check_layouts(gt.outer, np.outer, a, b)


def _np_batched_dot(a, b):
    """Theano's batched_dot: the last axis of each a[i] contracted with the first of b[i]."""
    if not len(a):
        return np.zeros(a.shape[:-1] + b.shape[2:], np.result_type(a, b))
    return np.stack([np.tensordot(x, y, ([x.ndim - 1], [0])) for x, y in zip(a, b)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape_a, shape_b",
    [
        ((4, 2, 3), (4, 3, 5)),
        ((4, 3), (4, 3)),
        ((4, 2, 3), (4, 3)),
        ((4, 3), (4, 3, 2)),
        ((2, 2, 3, 4), (2, 4, 5)),
        ((2, 3, 4), (2, 4, 2, 3)),
        ((0, 2, 3), (0, 3, 2)),
    ],
)
def test_batched_dot_matches_numpy(shape_a, shape_b, dtype):
    a, b = _pair(shape_a, shape_b, dtype)
    _check_layouts(gt.batched_dot, _np_batched_dot, a, b)


# --- gemm: matmul with transpose flags ----------------------------------------------------------

FLAGS = [(True, False), (False, True), (True, True)]


def _given(shape: tuple, swap: bool) -> tuple:
    """The shape of the operand gemm is given, whose (swapped when ``swap``) view is ``shape``."""
    return shape[:-2] + (shape[-1], shape[-2]) if swap else shape


def _np_gemm(flags):
    def reference(a, b):
        a = np.swapaxes(a, -1, -2) if flags[0] else a
        return np.matmul(a, np.swapaxes(b, -1, -2) if flags[1] else b)

    return reference


# every matmul shape pair whose flagged operands have two axes to swap, for every flag pair
GEMM_CASES = [
    (_given(sa, flags[0]), _given(sb, flags[1]), flags)
    for sa, sb in MATMUL_SHAPES
    for flags in FLAGS
    if all(len(s) >= 2 for s, f in zip((sa, sb), flags) if f)
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape_a, shape_b, flags", GEMM_CASES)
def test_gemm_matches_numpy(shape_a, shape_b, flags, dtype):
    a, b = _pair(shape_a, shape_b, dtype)
    _check_layouts(lambda x, y: gt.gemm(x, y, *flags), _np_gemm(flags), a, b)


def test_gemm_of_transposed_layouts_and_bool():
    # Fortran-ordered operands: their transposes are the contiguous ones
    a, b = _pair((3, 2), (4, 3), "float64")
    check_against_numpy(lambda x, y: gt.gemm(x, y, True, True), _np_gemm((True, True)),
                        [np.asfortranarray(a), np.asfortranarray(b)])
    a, b = _pair((3, 2), (3, 2), "bool")
    check_against_numpy(lambda x, y: gt.gemm(x, y, trans_a=True), _np_gemm((True, False)), [a, b])


def test_gemm_without_flags_is_matmul_and_promotes():
    a, b = gt.fmatrix("a"), gt.dmatrix("b")
    assert gt.gemm(a, b).op.name == "matmul"
    out = gt.gemm(a, b, trans_b=True)
    assert out.op.name == "gemm" and out.dtype == "float64" and out.arg == (False, True)


@pytest.mark.parametrize(
    "shape_a, shape_b, flags, expected",
    [
        ((3, 2), (3, 4), (True, False), (2, 4)),
        ((2, 3), (4, 3), (False, True), (2, 4)),
        ((None, 2), (4, None), (True, True), (2, 4)),
        ((5, 3, 2), (None, 3), (True, True), (5, 2, None)),
        ((1, 3, None), (7, 4, 3), (True, True), (7, None, 4)),
        ((None, 3), (None,), (True, False), (3,)),
    ],
)
def test_gemm_static_shape(shape_a, shape_b, flags, expected):
    a, b = gt.tensor("float64", shape=shape_a), gt.tensor("float64", shape=shape_b)
    assert gt.gemm(a, b, *flags).type.shape == expected


@pytest.mark.parametrize(
    "static_a, static_b, shape_a, shape_b, flags",
    [
        ((None, None), (None, None), (3, 2), (3, 4), (True, False)),
        ((None, 1, 3, None), (None, None, 3), (2, 1, 3, 2), (4, 5, 3), (True, True)),
        ((None, None, 3), (None, None), (1, 2, 3), (4, 3), (False, True)),
        ((3, None), (None,), (3, 0), (3,), (True, False)),
    ],
)
def test_gemm_symbolic_shape_rule(static_a, static_b, shape_a, shape_b, flags):
    rng = np.random.default_rng(2)
    a, b = gt.tensor("float64", static_a, "a"), gt.tensor("float64", static_b, "b")
    out = gt.gemm(a, b, *flags)
    shape = gt.make_vector(list(output_shape(out)), "int64")
    av, bv = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    value, computed = gc.function([a, b], [out, shape], mode="reference")(av, bv)
    assert tuple(computed) == value.shape == _np_gemm(flags)(av, bv).shape


def test_gemm_errors_name_the_op_and_the_flags():
    v, m = gt.dvector("v"), gt.tensor("float64", (2, 3), "m")
    with pytest.raises(TypeError, match=r"gemm: operand a is 1-d: only an operand of at least 2"):
        gt.gemm(v, m, trans_a=True)
    with pytest.raises(ValueError, match=r"gemm: inner dimensions differ: \(3, 2\) @ \(3, 2\) "
                       r"\(2 != 3\) \(operands \(2, 3\) transposed and \(2, 3\) transposed\)"):
        gt.gemm(m, m, trans_a=True, trans_b=True)
    with pytest.raises(TypeError, match="gemm: operands must be arrays"):
        gt.gemm(m, 2.0)
    a, b = gt.dmatrix("a"), gt.dmatrix("b")
    f = gc.function([a, b], gt.gemm(a, b, trans_a=True))
    with pytest.raises(RunError, match=r"gemm: inner dimensions differ.*\(2, 3\) transposed"):
        f(np.ones((2, 3)), np.ones((3, 4)))


# --- static shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape_a, shape_b, expected",
    [
        ((2, 3), (3, 4), (2, 4)),
        ((None, 3), (None, None), (None, None)),
        ((3,), (3, 4), (4,)),
        ((2, None), (None,), (2,)),
        ((None,), (None,), ()),
        ((5, 1, 2, 3), (4, 3, 2), (5, 4, 2, 2)),
        ((None, 2, 3), (1, 3, 2), (None, 2, 2)),
        ((None, 2, 3), (7, 3, 2), (7, 2, 2)),
    ],
)
def test_matmul_static_shape(shape_a, shape_b, expected):
    a, b = gt.tensor("float64", shape=shape_a), gt.tensor("float64", shape=shape_b)
    assert gt.matmul(a, b).type.shape == expected


@pytest.mark.parametrize(
    "static_a, static_b, shape_a, shape_b",
    [
        ((None,), (None,), (3,), (3,)),
        ((None, 3), (3,), (2, 3), (3,)),
        ((None,), (None, None, 4), (3,), (2, 3, 4)),
        ((None, 1, 2, 3), (None, 3, None), (2, 1, 2, 3), (4, 3, 5)),
        ((2, None, 3), (None, 3, 2), (2, 1, 3), (1, 3, 2)),
        ((None, None, 3), (None, 3, 2), (1, 2, 3), (4, 3, 2)),
    ],
)
def test_matmul_symbolic_shape_rule(static_a, static_b, shape_a, shape_b):
    rng = np.random.default_rng(2)
    a, b = (
        gt.tensor("float64", shape=static_a, name="a"),
        gt.tensor("float64", shape=static_b, name="b"),
    )
    out = gt.matmul(a, b)
    shape = gt.make_vector(list(output_shape(out)), "int64")
    av, bv = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    value, computed = gc.function([a, b], [out, shape])(av, bv)
    assert tuple(computed) == value.shape == np.matmul(av, bv).shape


def test_tensordot_static_shape():
    a, b = gt.tensor("float32", shape=(2, None, 4)), gt.tensor("float32", shape=(None, 4, 5))
    assert gt.tensordot(a, b, 2).type == gt.TensorType("float32", (2, 5))
    assert gt.dot(a, gt.tensor("float32", shape=(6, 4, 5))).type.shape == (2, None, 6, 5)


# --- errors -------------------------------------------------------------------------------------


def test_matmul_static_mismatch_is_a_build_error():
    a, b = (
        gt.tensor("float64", shape=(2, 3), name="a"),
        gt.tensor("float64", shape=(4, 5), name="b"),
    )
    with pytest.raises(
        ValueError, match=r"matmul: inner dimensions differ: \(2, 3\) @ \(4, 5\)"
    ) as info:
        gt.matmul(a, b)
    assert "test_linalg.py" in str(info.value) and "float64[2,3]" in str(info.value)


def test_matmul_static_batch_mismatch_is_a_build_error():
    a, b = gt.tensor("float64", shape=(2, 2, 3)), gt.tensor("float64", shape=(3, 3, 2))
    with pytest.raises(
        ValueError, match=r"matmul: batch dimensions of \(2, 2, 3\) and \(3, 3, 2\)"
    ):
        a @ b


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda x: gt.matmul(x, gt.dscalar("s")), TypeError, "at least 1-d"),
        (lambda x: x @ 2.0, TypeError, "not Python scalars"),
        (
            lambda x: gt.tensordot(x, gt.dmatrix("m"), ([0, 1], [0])),
            ValueError,
            "2 axes of a cannot be summed",
        ),
        (lambda x: gt.tensordot(x, gt.dmatrix("m"), 3), ValueError, "cannot sum over 3 axes"),
        (
            lambda x: gt.tensordot(x, gt.tensor("float64", shape=(4, 2)), (1, 0)),
            ValueError,
            r"\(3 != 4\)",
        ),
        (lambda x: gt.tensordot(x, x, ([0, 0], [0, 1])), ValueError, "repeated axis"),
        (
            lambda x: gt.batched_dot(x, gt.tensor("float64", shape=(5, 3))),
            ValueError,
            "batch sizes differ",
        ),
        (lambda x: gt.batched_dot(x, gt.dvector("v")), TypeError, "at least 2-d"),
    ],
)
def test_bad_operands_raise_clear_errors(build, error, message):
    x = gt.tensor("float64", shape=(2, 3), name="x")
    with pytest.raises(error, match=message):
        build(x)


@pytest.mark.parametrize(
    "shape_a, shape_b, message",
    [
        ((2, 3), (4, 5), r"inner dimensions differ: \(2, 3\) @ \(4, 5\)"),
        ((3,), (4,), r"inner dimensions differ: \(3,\) @ \(4,\)"),
        (
            (2, 2, 3),
            (3, 3, 2),
            r"batch dimensions of \(2, 2, 3\) and \(3, 3, 2\) cannot be broadcast",
        ),
    ],
)
@pytest.mark.parametrize("mode", ["reference", "FAST_RUN"])
def test_matmul_run_time_mismatch_names_op_and_shapes(shape_a, shape_b, message, mode):
    a = gt.tensor("float64", shape=(None,) * len(shape_a), name="a")
    b = gt.tensor("float64", shape=(None,) * len(shape_b), name="b")
    f = gc.function([a, b], gt.matmul(a, b), mode=mode)
    with pytest.raises(RunError, match="matmul: " + message) as info:
        f(np.ones(shape_a), np.ones(shape_b))
    assert "test_linalg.py" in str(info.value)


def test_dot_run_time_mismatch_names_matmul():
    a, b = gt.dmatrix("a"), gt.dvector("b")
    f = gc.function([a, b], gt.dot(a, b))
    with pytest.raises(RunError, match=r"matmul: inner dimensions differ: \(2, 3\) @ \(2,\)"):
        f(np.ones((2, 3)), np.ones(2))
