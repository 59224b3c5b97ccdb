"""Joins (concatenate, stack, split, hstack, vstack), arange/eye, and sort/argsort/cumsum/cumprod
against NumPy: every dtype, awkward layouts, 0-size inputs, static shapes and errors."""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.opdefs.infer_shape import output_shape
from tests.helpers import MODES, assert_matches, check_against_numpy, layouts, random_array

DTYPES = ("float32", "float64", "int8", "int32", "int64", "uint8", "bool")
RNG = np.random.default_rng(7)


def _layout_values(shapes, dtype):
    """For each layout name, one value per shape, all in that layout."""
    arrays = [random_array(s, dtype, RNG) for s in shapes]
    per_array = [layouts(a) for a in arrays]
    return {name: [p.get(name, p["contiguous"]) for p in per_array] for name in per_array[0]}


def _run(inputs, outputs, values, mode="reference"):
    return gc.function(inputs, outputs, mode=mode, on_unused_input="ignore")(*values)


# --- concatenate / stack / hstack / vstack -------------------------------------------------------

CONCAT_CASES = [  # (shapes, axis)
    ([(2, 3), (4, 3)], 0),
    ([(2, 3), (2, 1), (2, 5)], 1),
    ([(2, 3), (2, 3)], -1),
    ([(3, 0), (3, 2)], 1),  # a 0-size piece
    ([(0, 4), (0, 4)], 0),  # all empty
    ([(1, 2, 3), (1, 4, 3)], -2),
    ([(5,), (1,)], 0),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes,axis", CONCAT_CASES)
def test_concatenate_matches_numpy(shapes, axis, dtype):
    for values in _layout_values(shapes, dtype).values():
        check_against_numpy(
            lambda *xs: gt.concatenate(xs, axis), lambda *xs: np.concatenate(xs, axis), values
        )


@pytest.mark.parametrize(
    "dtypes",
    [
        ("int8", "uint8"),
        ("float32", "int64"),
        ("bool", "int8"),
        ("float32", "float64"),
        ("int32", "float32"),
        ("bool", "bool"),
    ],
)
def test_concatenate_promotes_like_numpy(dtypes):
    values = [random_array((2, 2), d, RNG) for d in dtypes]
    check_against_numpy(lambda *xs: gt.concatenate(xs), lambda *xs: np.concatenate(xs), values)


def test_concatenate_axis_none_flattens():
    values = [random_array((2, 3), "float64", RNG), random_array((4,), "float64", RNG)]
    check_against_numpy(
        lambda a, b: gt.concatenate([a, b], axis=None),
        lambda a, b: np.concatenate([a, b], axis=None),
        values,
    )


def test_concatenate_with_constants_keeps_numpy_dtypes():
    x = gt.fvector("x")
    out = gt.concatenate([x, [1.5, 2.5]])
    value = np.array([1, 2], "float32")
    assert_matches(_run([x], out, [value]), np.concatenate([value, [1.5, 2.5]]))


def test_concatenate_static_shape():
    a = gt.tensor("float64", (2, None, 3))
    b = gt.tensor("float64", (None, 4, 3))
    assert gt.concatenate([a, b], 1).type.shape == (2, None, 3)
    assert gt.concatenate([a, gt.tensor("float64", (None, 5, 3))], 0).type.shape == (None, 5, 3)
    c = gt.tensor("float32", (2, 4, 3))
    assert gt.concatenate([c, c], 1).type.shape == (2, 8, 3)
    assert gt.concatenate([c, c, c], -1).type.shape == (2, 4, 9)


def test_concatenate_symbolic_shape_rule():
    a, b = gt.dmatrix("a"), gt.tensor("float64", (None, 2))
    out = gt.concatenate([a, b], 1)
    rows, cols = output_shape(out)
    out = _run(
        [a, b], [gt.as_tensor(rows), gt.as_tensor(cols)], [np.zeros((3, 5)), np.zeros((3, 2))]
    )
    assert [int(v) for v in out] == [3, 7]


@pytest.mark.parametrize(
    "build,error",
    [
        (lambda: gt.concatenate([gt.dmatrix(), gt.dvector()]), TypeError),
        (lambda: gt.concatenate([gt.dscalar(), gt.dscalar()]), TypeError),
        (lambda: gt.concatenate([]), ValueError),
        (lambda: gt.concatenate([gt.dmatrix(), gt.dmatrix()], axis=2), ValueError),
        (
            lambda: gt.concatenate([gt.tensor("float64", (2, 3)), gt.tensor("float64", (3, 3))], 1),
            ValueError,
        ),
        (lambda: gt.stack([gt.dmatrix(), gt.dvector()]), TypeError),
    ],
)
def test_join_build_errors(build, error):
    with pytest.raises(error):
        build()


def test_concatenate_run_time_shape_mismatch():
    a, b = gt.dmatrix("a"), gt.dmatrix("b")
    f = gc.function([a, b], gt.concatenate([a, b], 0))
    with pytest.raises(ValueError, match="concatenate"):
        f(np.zeros((2, 3)), np.zeros((2, 4)))


STACK_CASES = [((3,), 0), ((3,), 1), ((3,), -1), ((2, 3), 1), ((0, 2), 2), ((), 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", STACK_CASES)
def test_stack_matches_numpy(shape, axis, dtype):
    for values in _layout_values([shape] * 3, dtype).values():
        check_against_numpy(lambda *xs: gt.stack(xs, axis), lambda *xs: np.stack(xs, axis), values)


def test_stack_static_shape_and_scalars():
    x = gt.tensor("float32", (None, 3))
    assert gt.stack([x, x], 1).type.shape == (None, 2, 3)
    s = gt.dscalar("s")
    v = gt.as_tensor([s, 1.0])
    assert v.type.shape == (2,) and v.dtype == "float64"
    assert_matches(_run([s], v, [np.float64(3.0)]), np.array([3.0, 1.0]))
    m = gt.as_tensor([[s, 2.0], [0.5, s]])
    assert_matches(_run([s], m, [np.float64(4.0)]), np.array([[4.0, 2.0], [0.5, 4.0]]))


STACKERS = [
    ("hstack", [(), ()]),
    ("hstack", [(3,), (2,)]),
    ("hstack", [(2, 3), (2, 1)]),
    ("hstack", [(0,), (2,)]),
    ("hstack", [(2, 1, 2), (2, 3, 2)]),
    ("vstack", [(), ()]),
    ("vstack", [(3,), (3,)]),
    ("vstack", [(2, 3), (1, 3)]),
    ("vstack", [(0, 2), (3, 2)]),
    ("vstack", [(3,), (2, 3)]),
    ("vstack", [(1, 2, 2), (3, 2, 2)]),
]


@pytest.mark.parametrize("fn,shapes", STACKERS)
def test_hstack_vstack_match_numpy(fn, shapes):
    for values in _layout_values(shapes, "float64").values():
        check_against_numpy(
            lambda *xs: getattr(gt, fn)(xs), lambda *xs: getattr(np, fn)(xs), values
        )


# --- split ---------------------------------------------------------------------------------------

SPLIT_CASES = [  # (shape, sizes, axis)
    ((6,), [1, 2, 3], 0),
    ((4, 5), [2, 0, 3], 1),  # a 0-size piece
    ((4, 5), [4], 0),
    ((3, 4, 2), [1, 3], -2),
    ((0, 3), [0, 0], 0),
]


def _np_split(x, sizes, axis):
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,sizes,axis", SPLIT_CASES)
def test_split_matches_numpy(shape, sizes, axis, dtype):
    for values in _layout_values([shape], dtype).values():
        check_against_numpy(
            lambda x: gt.split(x, sizes, len(sizes), axis),
            lambda x: _np_split(x, sizes, axis),
            values,
        )


def test_split_static_shapes():
    x = gt.tensor("float64", (None, 5))
    pieces = gt.split(x, [2, 3], axis=1)
    assert [p.type.shape for p in pieces] == [(None, 2), (None, 3)]
    n = gt.lscalar("n")
    assert [p.type.shape for p in gt.split(x, [n, 5 - n], axis=1)] == [(None, None), (None, None)]


@pytest.mark.parametrize("mode", MODES)
def test_split_symbolic_sizes(mode):
    x, n = gt.dvector("x"), gt.lscalar("n")
    a, b = gt.split(x, [n, gt.shape_i(x, 0) - n])
    value = np.arange(7.0)
    out = gc.function([x, n], [a, b], mode=mode)(value, 3)
    for got, want in zip(out, np.split(value, [3])):
        assert_matches(got, want)


@pytest.mark.parametrize("mode", MODES)
def test_split_int_vector_sizes(mode):
    x, sizes = gt.dmatrix("x"), gt.ivector("sizes")
    pieces = gt.split(x, sizes, n_splits=3, axis=1)
    value = np.arange(12.0).reshape(2, 6)
    out = gc.function([x, sizes], pieces, mode=mode)(value, np.array([1, 3, 2], "int32"))
    for got, want in zip(out, _np_split(value, [1, 3, 2], 1)):
        assert_matches(got, want)
    with pytest.raises(ValueError, match="sum to 5"):
        gc.function([x, sizes], pieces, mode=mode)(value, np.array([1, 2, 2], "int32"))
    with pytest.raises(ValueError, match="expected 3 split sizes"):
        gc.function([x, sizes], pieces, mode=mode)(value, np.array([6], "int32"))


def test_split_run_time_check():
    x = gt.dvector("x")
    f = gc.function([x], gt.split(x, [1, 2]))
    with pytest.raises(ValueError, match="sum to 3, not to the axis length 4"):
        f(np.zeros(4))


@pytest.mark.parametrize(
    "build,error",
    [
        (lambda: gt.split(gt.tensor("float64", (5,)), [2, 2]), ValueError),
        (lambda: gt.split(gt.dvector(), [2, -1]), ValueError),
        (lambda: gt.split(gt.dvector(), gt.lvector()), ValueError),
        (lambda: gt.split(gt.dvector(), [1, 2], n_splits=3), ValueError),
        (lambda: gt.split(gt.dscalar(), [1]), TypeError),
        (lambda: gt.split(gt.dvector(), [1.5, 2.0]), TypeError),
    ],
)
def test_split_build_errors(build, error):
    with pytest.raises(error):
        build()


# --- arange / eye --------------------------------------------------------------------------------

ARANGE_CASES = [  # args, dtype
    ((5,), None),
    ((2, 9, 3), None),
    ((9, 2, -2), None),
    ((3, 3), None),
    ((5, 1), None),
    ((0.5, 3.0, 0.25), None),
    ((1, 2.5), None),
    ((-1.0, 1.0, 0.3), None),
    ((4,), "float32"),
    ((1, 7, 2), "int8"),
    ((0.0, 2.0, 0.5), "float32"),
]


@pytest.mark.parametrize("args,dtype", ARANGE_CASES)
@pytest.mark.parametrize("symbolic", [False, True])
def test_arange_matches_numpy(args, dtype, symbolic):
    expected = np.arange(*args, dtype=dtype)
    if not symbolic:
        out = gt.arange(*args, dtype=dtype)
        assert out.type.shape == expected.shape  # static length from constant arguments
        assert_matches(_run([], out, []), expected)
        return
    inputs = [gt.tensor("int64" if isinstance(a, int) else "float64", ()) for a in args]
    out = gt.arange(*inputs, dtype=dtype)
    assert out.type.shape == (None,)
    values = [np.asarray(a, dtype=v.dtype) for a, v in zip(args, inputs)]
    for mode in MODES:
        assert_matches(_run(inputs, out, values, mode), expected)
    (length,) = output_shape(out)
    assert int(_run(inputs, length, values)) == expected.shape[0]


@pytest.mark.parametrize("dtype", ["int8", "int32", "uint8", "float32", "float64"])
def test_arange_dtype_of_symbolic_scalars(dtype):
    n = gt.scalar("n", dtype=dtype)
    expected = np.arange(np.asarray(5, dtype)[()])
    out = gt.arange(n)
    assert out.dtype == expected.dtype.name
    assert_matches(_run([n], out, [np.asarray(5, dtype)]), expected)


def test_arange_errors():
    with pytest.raises(ValueError, match="step"):
        gt.arange(0, 5, 0)
    n = gt.lscalar("n")
    f = gc.function([n], gt.arange(0, 5, n))
    with pytest.raises(ValueError, match="step"):
        f(0)
    with pytest.raises(TypeError):
        gt.arange(gt.dvector())


EYE_CASES = [
    ((3,), {}),
    ((2, 4), {}),
    ((4, 2, 1), {}),
    ((3, 3, -2), {}),
    ((0,), {}),
    ((3, 5, 7), {}),
    ((3,), {"dtype": "int32"}),
    ((2,), {"dtype": "bool"}),
]


@pytest.mark.parametrize("args,kwargs", EYE_CASES)
def test_eye_matches_numpy(args, kwargs):
    expected = np.eye(*args, **kwargs)
    const = gt.eye(*args, **kwargs)
    assert const.type.shape == expected.shape
    assert_matches(_run([], const, []), expected)
    inputs = [gt.lscalar() for _ in args]
    out = gt.eye(*inputs, **kwargs)
    for mode in MODES:
        assert_matches(_run(inputs, out, [np.int64(a) for a in args], mode), expected)
    shape = output_shape(out)
    assert (
        tuple(int(v) for v in _run(inputs, [gt.as_tensor(s) for s in shape], list(args)))
        == expected.shape
    )


def test_eye_errors():
    with pytest.raises(ValueError):
        gt.eye(-1)
    with pytest.raises(TypeError):
        gt.eye(gt.dscalar())


# --- sort / argsort / cumsum / cumprod -----------------------------------------------------------

AXIS_CASES = [
    ((5,), -1),
    ((3, 4), 0),
    ((3, 4), 1),
    ((3, 4), None),
    ((2, 3, 4), -2),
    ((0, 3), 1),
    ((3, 0), 0),
    ((), None),
]
SCANS = {
    "sort": (gt.sort, np.sort),
    "argsort": (gt.argsort, lambda x, axis: np.argsort(x, axis, kind="stable")),
    "cumsum": (gt.cumsum, np.cumsum),
    "cumprod": (gt.cumprod, np.cumprod),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", AXIS_CASES)
@pytest.mark.parametrize("name", sorted(SCANS))
def test_axis_ops_match_numpy(name, shape, axis, dtype):
    build, ref = SCANS[name]
    low, high = (-1.5, 1.5) if name == "cumprod" else (-3, 3)
    value = random_array(shape, dtype, RNG, low, high)
    for v in layouts(value).values():
        check_against_numpy(lambda x: build(x, axis), lambda x: ref(x, axis=axis), [v])


def test_sort_special_values_and_ties():
    value = np.array([3.0, np.nan, -0.0, 1.0, np.inf, 0.0, -np.inf, 1.0, np.nan])
    check_against_numpy(gt.sort, np.sort, [value])
    check_against_numpy(gt.argsort, lambda x: np.argsort(x, kind="stable"), [value])
    ties = np.array([[2, 1, 2, 1, 2], [0, 0, 0, 0, 0]], "int32")
    check_against_numpy(gt.argsort, lambda x: np.argsort(x, kind="stable"), [ties])


@pytest.mark.parametrize(
    "dtype,expected",
    [
        ("int8", "int64"),
        ("uint8", "uint64"),
        ("bool", "int64"),
        ("int32", "int64"),
        ("uint32", "uint64"),
        ("float32", "float32"),
    ],
)
def test_scan_dtypes(dtype, expected):
    x = gt.tensor(dtype, (None,))
    assert gt.cumsum(x).dtype == expected == np.cumsum(np.ones(1, dtype)).dtype.name
    assert gt.cumprod(x).dtype == expected == np.cumprod(np.ones(1, dtype)).dtype.name
    assert gt.argsort(x).dtype == "int64"
    assert gt.sort(x).dtype == dtype


def test_axis_ops_static_shapes():
    x = gt.tensor("float32", (2, None, 3))
    for fn in (gt.sort, gt.argsort, gt.cumsum, gt.cumprod):
        assert fn(x, 1).type.shape == (2, None, 3)
    y = gt.tensor("float32", (2, 3))
    assert gt.sort(y, None).type.shape == (6,)
    assert gt.cumsum(y).type.shape == (6,)
    assert gt.cumprod(gt.tensor("float64", ())).type.shape == (1,)


def test_axis_ops_errors():
    with pytest.raises(ValueError):
        gt.sort(gt.dmatrix(), axis=2)
    with pytest.raises(ValueError):
        gt.cumsum(gt.dscalar(), axis=0)
    with pytest.raises(TypeError):
        gt.argsort(gt.dvector(), axis=0.5)


def test_methods_on_nodes():
    x = gt.dmatrix("x")
    value = random_array((3, 4), "float64", RNG)
    outs = _run([x], [x.sort(0), x.argsort(), x.cumsum(1), x.cumprod()], [value])
    for got, want in zip(
        outs, [np.sort(value, 0), np.argsort(value), np.cumsum(value, 1), np.cumprod(value)]
    ):
        assert_matches(got, want)


# --- symbolic shape rules of every op of this family, gradient-only ops included ---------------------


def _family_expressions(x, y, n):
    pieces = gt.split(x, [n, gt.shape_i(x, 0) - n], 2, axis=0)
    cost = gt.sum(pieces[1] ** 2) + gt.sum(gt.sort(x, 1) * y) + gt.sum(gt.cumprod(x, 0))
    return [
        gt.concatenate([x, y], 0),
        gt.stack([x, x], 1),
        *pieces,
        gt.arange(n, 10, 3),
        gt.eye(n, 4, 1),
        gt.sort(x),
        gt.argsort(x, 0),
        gt.cumsum(x, 1),
        gt.cumprod(x),
        gc.grad(cost, x),
    ]


def test_shape_rules_of_every_node():
    x, y, n = gt.dmatrix("x"), gt.tensor("float64", (1, None)), gt.lscalar("n")
    nodes = [node for e in _family_expressions(x, y, n) for node in gc.ir.toposort([e])]
    nodes = [node for node in dict.fromkeys(nodes) if not node.is_leaf]
    names = {node.op.name for node in nodes}
    assert {"split", "unsplit", "permute_along_axis", "concatenate", "cumprod", "eye"} <= names
    shapes = [
        [
            gt.as_tensor(s) if not isinstance(s, int) else gt.constant(np.int64(s))
            for s in output_shape(node)
        ]
        for node in nodes
    ]
    flat = [s for entries in shapes for s in entries]
    f = gc.function([x, y, n], nodes + flat, on_unused_input="ignore")
    out = f(random_array((5, 3), "float64", RNG), random_array((1, 3), "float64", RNG), 2)
    values, entries = out[: len(nodes)], iter(out[len(nodes) :])
    for node, value, rule in zip(nodes, values, shapes):
        assert tuple(int(next(entries)) for _ in rule) == value.shape, node.op.name
