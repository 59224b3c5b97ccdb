"""Reductions against NumPy: axes (None, int, negative, tuple), keepdims, dtypes, 0-size inputs,
awkward layouts, float32 accuracy on long sums and a stable logsumexp."""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.runtime.reference import RunError
from tests.helpers import assert_matches, check_against_numpy, layouts, random_array, symbolic_like

INTS = ("int8", "uint8", "int16", "int32", "int64", "uint64")
FLOATS = ("float32", "float64")
ALL = ("bool",) + INTS + FLOATS


def np_logsumexp(x, axis=None, keepdims=False):
    """The stable formula: the (finite) maximum is taken out before exponentiating."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
    with np.errstate(divide="ignore"):  # log(0) = -inf for rows of -inf
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _np_arg(fn):
    def ref(x, axis=None, keepdims=False):
        return fn(x, axis=axis, keepdims=keepdims)

    return ref


# name: (graphc builder, NumPy reference, dtypes it takes)
REDUCTIONS = {
    "sum": (gt.sum, np.sum, ALL),
    "prod": (gt.prod, np.prod, ALL),
    "mean": (gt.mean, np.mean, ALL),
    "var": (gt.var, np.var, ALL),
    "std": (gt.std, np.std, ALL),
    "max": (gt.max, np.max, ALL),
    "min": (gt.min, np.min, ALL),
    "argmax": (gt.argmax, _np_arg(np.argmax), ALL),
    "argmin": (gt.argmin, _np_arg(np.argmin), ALL),
    "any": (gt.any, np.any, ALL),
    "all": (gt.all, np.all, ALL),
    "logsumexp": (gt.logsumexp, np_logsumexp, FLOATS),
}
ARG_REDUCTIONS = ("argmax", "argmin")
AXES = [None, 0, 2, -1, (0, 2), (-1, 0), (0, 1, 2), ()]
ARG_AXES = [None, 0, 2, -1]


def _cases(axes_of):
    return [(name, axis) for name in sorted(REDUCTIONS) for axis in axes_of(name)]


def _axes(name):
    return ARG_AXES if name in ARG_REDUCTIONS else AXES


def _check(name, x, axis, keepdims=False):
    build, reference, _ = REDUCTIONS[name]
    for value in layouts(x).values():
        check_against_numpy(
            lambda v: build(v, axis=axis, keepdims=keepdims),
            lambda v: reference(v, axis=axis, keepdims=keepdims),
            [value],
        )


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name, axis", _cases(_axes), ids=str)
def test_reduction_axes(name, axis, keepdims):
    x = random_array((2, 3, 4), "float64", np.random.default_rng(0))
    _check(name, x, axis, keepdims)


@pytest.mark.parametrize(
    "name, dtype", [(n, d) for n in sorted(REDUCTIONS) for d in REDUCTIONS[n][2]], ids=str
)
def test_reduction_dtypes(name, dtype):
    x = random_array((3, 5), dtype, np.random.default_rng(1))
    for axis in (None, 1):
        _check(name, x, axis)


@pytest.mark.parametrize(
    "dtype, expected",
    [
        ("int8", "int64"),
        ("int32", "int64"),
        ("uint8", "uint64"),
        ("uint16", "uint64"),
        ("bool", "int64"),
        ("float32", "float32"),
        ("float64", "float64"),
    ],
)
@pytest.mark.parametrize("name", ["sum", "prod"])
def test_sum_prod_accumulate_like_numpy(name, dtype, expected):
    x = gt.tensor(dtype, shape=(None, None))
    assert REDUCTIONS[name][0](x, axis=0).dtype == expected
    assert (
        REDUCTIONS[name][1](np.ones((2, 2), dtype), axis=0).dtype == expected
    )  # the same as NumPy


@pytest.mark.parametrize(
    "dtype, expected",
    [
        ("int8", "float64"),
        ("int64", "float64"),
        ("bool", "float64"),
        ("float32", "float32"),
        ("float64", "float64"),
    ],
)
@pytest.mark.parametrize("name", ["mean", "var", "std"])
def test_mean_var_std_dtype(name, dtype, expected):
    assert REDUCTIONS[name][0](gt.tensor(dtype, shape=(None,))).dtype == expected


def test_sum_int8_does_not_overflow():
    x = np.full(300, 100, "int8")
    check_against_numpy(gt.sum, np.sum, [x])
    assert int(gc.function([v := gt.bvector()], gt.sum(v))(x)) == 30000


def test_sum_with_dtype_argument():
    x = random_array((3, 4), "float64")
    check_against_numpy(
        lambda v: gt.sum(v, 0, dtype="float32"), lambda v: np.sum(v, 0, dtype="float32"), [x]
    )


# --- 0-size inputs ------------------------------------------------------------------------------

EMPTY_CASES = [
    ((0,), None),
    ((0, 3), 0),
    ((0, 3), 1),
    ((2, 0, 3), (0, 1)),
    ((2, 0, 3), 2),
    ((0, 3), None),
]


def _reduces_empty(shape, axis):
    axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
    return any(shape[a] == 0 for a in axes)


@pytest.mark.filterwarnings(
    "ignore:Mean of empty slice",
    "ignore:Degrees of freedom <= 0",
    "ignore:invalid value encountered",
)
@pytest.mark.parametrize("shape, axis", EMPTY_CASES, ids=str)
@pytest.mark.parametrize("name", ["sum", "prod", "mean", "var", "std", "any", "all"])
def test_reduction_of_empty_input(name, shape, axis):
    # sum of an empty axis is 0, prod 1, any False, all True, mean/var/std NaN: as NumPy
    for dtype in ("float32", "int64", "bool"):
        with np.errstate(all="ignore"):
            _check(name, np.zeros(shape, dtype), axis, keepdims=False)


# (name, shape, axis): the argreductions take one axis; logsumexp is only checked where the
# reduced axes are not empty (it takes the maximum first, which has no value on an empty axis)
EXTREMUM_EMPTY_CASES = [
    (name, shape, axis)
    for name in ("max", "min", "argmax", "argmin", "logsumexp")
    for shape, axis in EMPTY_CASES
    if not (name in ARG_REDUCTIONS and isinstance(axis, tuple))
    and not (name == "logsumexp" and _reduces_empty(shape, axis))
]


@pytest.mark.parametrize("name, shape, axis", EXTREMUM_EMPTY_CASES, ids=str)
def test_extremum_of_empty_input(name, shape, axis):
    x = np.zeros(shape, "float64")
    if not _reduces_empty(shape, axis):
        _check(name, x, axis, keepdims=True)
        return
    with pytest.raises(ValueError):  # NumPy raises too
        REDUCTIONS[name][1](x, axis=axis)
    f = gc.function([v := symbolic_like(x)], REDUCTIONS[name][0](v, axis=axis))
    with pytest.raises(RunError, match=rf"{name}: {name} of an empty axis"):
        f(x)


def test_sum_of_empty_axis_is_zero():
    x = gt.fmatrix("x")
    out = gc.function([x], gt.sum(x, axis=0))(np.zeros((0, 3), "float32"))
    assert_matches(out, np.zeros(3, "float32"))


# --- static shapes and bad axes -----------------------------------------------------------------


@pytest.mark.parametrize(
    "axis, keepdims, expected",
    [
        (None, False, ()),
        (None, True, (1, 1, 1)),
        (1, False, (2, 4)),
        (1, True, (2, 1, 4)),
        (-1, False, (2, None)),
        ((0, 2), True, (1, None, 1)),
        ((), False, (2, None, 4)),
    ],
)
@pytest.mark.parametrize("name", ["sum", "max", "mean", "logsumexp", "any"])
def test_static_shape(name, axis, keepdims, expected):
    x = gt.tensor("float32", shape=(2, None, 4))
    assert REDUCTIONS[name][0](x, axis=axis, keepdims=keepdims).type.shape == expected


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_out_of_range_axis_is_a_clear_error(name):
    x = gt.dmatrix("x")
    with pytest.raises(ValueError, match="axis 2 is out of range for a 2-d input"):
        REDUCTIONS[name][0](x, axis=2)


@pytest.mark.parametrize(
    "name", ["sum", "prod", "max", "min", "any", "all", "mean", "var", "logsumexp"]
)
def test_repeated_axis_is_a_clear_error(name):
    with pytest.raises(ValueError, match="repeated axis"):
        REDUCTIONS[name][0](gt.dmatrix("x"), axis=(1, -1))


def test_argmax_takes_one_axis():
    with pytest.raises(ValueError, match="argmax: axis must be one int or None"):
        gt.argmax(gt.dmatrix("x"), axis=(0, 1))


# --- accuracy and stability ---------------------------------------------------------------------

N = 2**22
EXACT = N * 0.1  # in float64


@pytest.mark.parametrize(
    "shape, axis",
    [
        ((N,), None),
        ((N,), 0),
        ((2**11, 2**11), None),
        ((N, 2), 0),
        ((2, N), 1),
        ((2**11, 2**11), (0, 1)),
    ],
    ids=str,
)
def test_float32_sum_of_many_tenths_is_accurate(shape, axis):
    x = np.full(shape, 0.1, "float32")
    v = symbolic_like(x)
    f = gc.function([v], [gt.sum(v, axis=axis), gt.mean(v, axis=axis)])
    views = layouts(x) if len(shape) == 1 else {"contiguous": x, "transposed": np.asfortranarray(x)}
    for name, value in views.items():
        total, mean = (np.asarray(r, "float64").reshape(-1)[0] for r in f(value))
        assert abs(total - EXACT) <= 1e-3 * EXACT, f"{name}: float32 sum {total} vs {EXACT}"
        assert abs(mean - 0.1) <= 1e-3 * 0.1, f"{name}: float32 mean {mean}"


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "rows",
    [
        [[1000.0, 1000.0]],
        [[-1000.0, -1000.0, -999.0]],
        [[-np.inf, -np.inf], [0.0, 1.0]],
        [[-np.inf, 0.0], [5.0, -np.inf]],
        [[np.inf, 1.0], [0.0, 0.0]],
        [[88.0, 89.0, 90.0]],
    ],
    ids=str,
)
@pytest.mark.parametrize("axis, keepdims", [(1, False), (-1, True), (None, False), (0, False)])
def test_logsumexp_is_stable(rows, dtype, axis, keepdims):
    x = np.array(rows, dtype)
    check_against_numpy(
        lambda v: gt.logsumexp(v, axis, keepdims), lambda v: np_logsumexp(v, axis, keepdims), [x]
    )


def test_logsumexp_known_values():
    x = gt.dmatrix("x")
    out = gc.function([x], gt.logsumexp(x, axis=1))(
        np.array([[1000.0, 1000.0], [-np.inf, -np.inf]])
    )
    np.testing.assert_allclose(out, [1000.0 + np.log(2.0), -np.inf])
