"""Indexing ops against NumPy: basic and advanced reads, set/inc writes, take, static and
symbolic shapes, and the errors for bad indices."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.ir.node import Node
from graphc.opdefs.common import shape_entry
from graphc.opdefs.indexing import IndexingError, slice_length
from graphc.runtime.reference import RunError
from tests.helpers import MODES, assert_matches, layouts, random_array, symbolic_like

DTYPES = ("float32", "float64", "int32", "bool")
MASK_3 = np.array([True, False, True])
MASK_5 = np.array([True, False, True, True, False])
MASK_34 = np.array([[True, False, False, True], [False, False, False, False], [True, True, False, True]])

# (id, x shape, index)
BASIC_CASES = [
    ("int", (5, 4), 1),
    ("negative_int", (5, 4), -1),
    ("int_pair", (5, 4), (2, -3)),
    ("slice", (5, 4), slice(1, 3)),
    ("slice_negative_bounds", (5, 4), slice(-4, -1)),
    ("slice_out_of_range", (5, 4), slice(-10, 10)),
    ("slice_step", (7, 3), slice(None, None, 2)),
    ("slice_negative_step", (7, 3), slice(None, None, -1)),
    ("slice_negative_step_bounds", (7, 3), slice(5, 1, -2)),
    ("slice_negative_step_out_of_range", (7, 3), slice(20, -20, -3)),
    ("slice_negative_step_negative_bounds", (7, 3), slice(-2, -6, -1)),
    ("slice_empty", (5, 4), slice(3, 1)),
    ("slice_second_axis", (3, 5), (slice(None), slice(4, 0, -1))),
    ("newaxis", (5, 4), (None, slice(1, 3), None)),
    ("ellipsis_then_int", (2, 3, 4), (Ellipsis, 1)),
    ("int_ellipsis_slice", (2, 3, 4), (0, Ellipsis, slice(None, None, -2))),
    ("ellipsis_only", (2, 3), Ellipsis),
    ("scalar_result", (2, 3), (1, 2)),
    ("zero_size_input", (0, 3), slice(None, None, -1)),
    ("zero_size_axis", (3, 0), 1),
    ("zero_d_input_empty_tuple", (), ()),
    ("zero_d_input_newaxis", (), None),
]

# (id, x shape, index)
ADVANCED_CASES = [
    ("int_list", (5, 3), [0, -1, 2, 2]),
    ("int_array_2d", (5, 3), np.array([[0, 1], [-1, 4]])),
    ("array_then_slice", (5, 4), (np.array([1, 3]), slice(1, None, 2))),
    ("slice_then_array", (5, 4), (slice(None, None, -1), [0, 0, 3])),
    ("two_arrays_broadcast", (5, 4), (np.array([[0], [2]]), np.array([1, 3, -1]))),
    ("separated_by_slice", (3, 4, 5), ([0, 2], slice(None), [1, 4])),
    ("separated_by_newaxis", (3, 4, 5), (slice(None), [0, 1], None, [0, 1])),
    ("separated_by_empty_ellipsis", (3, 4, 5), (slice(None), [0], Ellipsis, [0])),
    ("int_and_array_separated", (3, 4, 5), (0, slice(None), [1, 2])),
    ("int_and_array_adjacent", (3, 4, 5), (slice(None), [0, 2], 1)),
    ("newaxis_before_arrays", (4, 3), (None, [0, 1], [0, 1])),
    ("empty_int_array", (4, 3), np.array([], dtype="int64")),
    ("empty_list", (4, 3), []),
    ("zero_size_input", (0, 3), (slice(None), [0, 2])),
    ("uint8_index", (5, 3), np.array([4, 0], dtype="uint8")),
    ("int16_negative_index", (5, 3), (slice(1, None), np.array([-1, 0], dtype="int16"))),
    ("mask_1d", (5, 3), MASK_5),
    ("mask_2d", (3, 4), MASK_34),
    ("mask_second_axis", (3, 4), (slice(None), MASK_34[0])),
    ("mask_and_array_separated", (3, 4, 2), (MASK_3, slice(None), [1, 0])),
    ("mask_all_false", (5, 3), np.zeros(5, dtype=bool)),
    ("mask_covering_last_axes", (2, 3, 4), (slice(None), MASK_34)),
    ("mask_0d_true", (2, 3), True),
    ("mask_0d_false", (2, 3), (slice(None), False)),
]


def _scalar_input(value: int):
    return gt.tensor("int32" if value < 0 else "uint8", shape=(), name="i")


def symbolize(index):
    """``index`` with its ints, slice bounds and arrays replaced by symbolic inputs."""
    inputs, values = [], []

    def sym(item):
        if isinstance(item, slice):
            return slice(sym(item.start), sym(item.stop), sym(item.step))
        if isinstance(item, (bool, np.bool_)) or item is None or item is Ellipsis:
            return item
        if isinstance(item, int):
            var = _scalar_input(item)
            value = np.asarray(item, dtype=var.dtype)
        else:
            value = np.asarray(item) if np.size(item) else np.asarray(item, dtype="int64")
            var = symbolic_like(value, "idx")
        inputs.append(var)
        values.append(value)
        return var

    items = index if isinstance(index, tuple) else (index,)
    out = tuple(sym(item) for item in items)
    return (out if isinstance(index, tuple) else out[0]), inputs, values


def run_both_modes(inputs, output, values):
    return [gc.function(inputs, output, mode=mode, on_unused_input="ignore")(*values) for mode in MODES]


def eval_shape_rule(node: Node, inputs, values) -> tuple:
    """The op's symbolic shape rule, evaluated on concrete input values."""
    in_shapes = [tuple(shape_entry(s, a) for a in range(s.ndim)) for s in node.src]
    entries = node.op.shape(node, in_shapes)
    nodes = [e for e in entries if isinstance(e, Node)]
    got = iter(gc.function(inputs, nodes, on_unused_input="ignore")(*values) if nodes else ())
    return tuple(int(next(got)) if isinstance(e, Node) else e for e in entries)


# --- reads -----------------------------------------------------------------------------------

def _check_read(shape, index, dtype, symbolic):
    x_value = random_array(shape, dtype)
    expected = x_value[index]
    x = symbolic_like(x_value, "x")
    sym_index, idx_inputs, idx_values = symbolize(index) if symbolic else (index, [], [])
    out = x[sym_index]
    inputs = [x] + idx_inputs
    for layout in layouts(x_value).values():
        for got in run_both_modes(inputs, out, [layout] + idx_values):
            assert_matches(got, expected)
    assert eval_shape_rule(out, inputs, [x_value] + idx_values) == np.shape(expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", BASIC_CASES, ids=[c[0] for c in BASIC_CASES])
def test_basic_indexing(case, dtype):
    _, shape, index = case
    _check_read(shape, index, dtype, symbolic=False)


@pytest.mark.parametrize("case", BASIC_CASES, ids=[c[0] for c in BASIC_CASES])
def test_basic_indexing_symbolic_scalars(case):
    _, shape, index = case
    _check_read(shape, index, "float64", symbolic=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ADVANCED_CASES, ids=[c[0] for c in ADVANCED_CASES])
def test_advanced_indexing(case, dtype):
    _, shape, index = case
    _check_read(shape, index, dtype, symbolic=False)


@pytest.mark.parametrize("case", ADVANCED_CASES, ids=[c[0] for c in ADVANCED_CASES])
def test_advanced_indexing_symbolic_indices(case):
    _, shape, index = case
    _check_read(shape, index, "float32", symbolic=True)


def test_value_dependent_mask():
    x = gt.matrix("x", dtype="float64")
    value = random_array((4, 5), "float64")
    for got in run_both_modes([x], x[x > 0], [value]):
        assert_matches(got, value[value > 0])
    for got in run_both_modes([x], x.nonzero_values(), [value]):
        assert_matches(got, value[value != 0])


@pytest.mark.parametrize("index", [np.int64(2), np.array(-1), np.array([1, 0], dtype="uint16")])
def test_numpy_scalar_and_array_indices(index):
    value = random_array((3, 2), "float64")
    x = symbolic_like(value)
    for got in run_both_modes([x], x[index], [value]):
        assert_matches(got, value[index])


def test_list_of_symbolic_scalars_is_an_index_array():
    x, i, j = gt.dmatrix("x"), gt.lscalar("i"), gt.iscalar("j")
    value = random_array((3, 2), "float64")
    for got in run_both_modes([x, i, j], x[[i, j, -1]], [value, 2, np.int32(-3)]):
        assert_matches(got, value[[2, -3, -1]])


def test_advanced_subtensor_builder_matches_indexing():
    x = gt.matrix("x", dtype="float64")
    assert gt.advanced_subtensor(x, [0, 1], slice(None)) is x[[0, 1], :]
    assert gt.subtensor(x, (1, slice(None))) is x[1]


# --- static shapes and canonical nodes --------------------------------------------------------

I = gt.lscalar("i")
MASK_NODE = gt.tensor("bool", shape=(None,), name="mask")

# (id, static shape of x, build, expected static shape)
STATIC_CASES = [
    ("known_slice", (5, None), lambda x: x[1:3], (2, None)),
    ("reverse_keeps_size", (5, None), lambda x: x[::-1], (5, None)),
    ("reverse_unknown", (5, None), lambda x: x[:, ::-1], (5, None)),
    ("slice_of_unknown", (5, None), lambda x: x[:, 1:3], (5, None)),
    ("clipped_bounds", (5, 4), lambda x: x[-10:10:3], (2, 4)),
    ("int_newaxis", (5, 4), lambda x: x[None, 1, ..., None], (1, 4, 1)),
    ("symbolic_start", (5, 4), lambda x: x[I:], (None, 4)),
    ("symbolic_int", (5, 4), lambda x: x[:, I], (5,)),
    ("int_array", (5, 4), lambda x: x[[0, 1, 1]], (3, 4)),
    ("mask", (5, 4), lambda x: x[1:, MASK_NODE], (4, None)),
    ("adjacent_arrays", (5, 4, 3), lambda x: x[:, [[0], [1]], [0, 1, 2]], (5, 2, 3)),
    ("separated_arrays", (5, 4, 3), lambda x: x[[[0], [1]], :, [0, 1, 2]], (2, 3, 4)),
    ("unknown_arrays", (None, None), lambda x: x[gt.lvector(), gt.bmatrix()], (None, None)),
    ("index_array_static", (None, 2), lambda x: x[gt.tensor("int64", shape=(3, 1))], (3, 1, 2)),
    ("set_keeps_type", (5, 4), lambda x: gt.set_subtensor(x[0], 1.0), (5, 4)),
    ("inc_keeps_type", (5, None), lambda x: gt.inc_subtensor(x[[0, 0]], 1.0), (5, None)),
]


@pytest.mark.parametrize("case", STATIC_CASES, ids=[c[0] for c in STATIC_CASES])
def test_static_shape(case):
    _, shape, build, expected = case
    assert build(gt.tensor("float32", shape=shape)).type.shape == expected


def test_equivalent_indices_give_one_node():
    x = gt.tensor3("x")
    assert x[1] is x[1, :] is x[1, ...] is x[1, :, :]
    assert x[:, 0] is x[:, 0, ...]
    assert x[0:2:1] is x[0:2]


def test_shape_entry_indexing():
    x = gt.tensor("float32", shape=(5, None))
    assert x.shape[1].op.name == "shape_i"
    assert x.shape[-2].op.name == "constant" and int(x.shape[-2].arg.value) == 5
    with pytest.raises(IndexError, match="out of bounds"):
        x.shape[2]


@pytest.mark.parametrize("start", [None, -9, -3, 0, 2, 9])
@pytest.mark.parametrize("stop", [None, -9, -2, 0, 3, 9])
def test_slice_length_matches_python(start, stop):
    n, a, b, c = gt.lscalar("n"), gt.lscalar("a"), gt.iscalar("b"), gt.lscalar("c")
    sym = slice_length(n, a if start is not None else None, b if stop is not None else None, c)
    f = gc.function([n, a, b, c], sym, on_unused_input="ignore")
    for size in (0, 1, 6):
        for step in (-3, -1, 1, 2):
            expected = len(range(size)[start:stop:step])
            assert int(f(size, start or 0, stop or 0, step)) == expected, (size, start, stop, step)
            assert slice_length(size, start, stop, step) == expected


# --- writes ----------------------------------------------------------------------------------

# (id, x shape, index, y shape)
WRITE_CASES = [
    ("basic_int", (5, 3), 1, (3,)),
    ("basic_slice_broadcast_row", (5, 3), slice(1, 4), (1, 3)),
    ("basic_scalar_value", (5, 3), (slice(None, None, -2), 0), ()),
    ("basic_negative_steps", (6, 4), (slice(None, None, -2), slice(3, 0, -1)), (3, 3)),
    ("basic_newaxis", (4, 3), (None, 1), (1, 3)),
    ("basic_empty", (4, 3), slice(2, 2), (3,)),
    ("basic_zero_size_input", (0, 3), slice(None), (3,)),
    ("basic_zero_d", (), (), ()),
    ("advanced_repeated", (5, 3), [0, 2, 0, 0], (4, 3)),
    ("advanced_repeated_broadcast", (5, 3), [1, 1, -4], (3,)),
    ("advanced_two_arrays_repeated", (4, 5), ([0, 0, 3], [1, 1, -1]), (3,)),
    ("advanced_separated", (3, 4, 5), ([0, 2, 0], slice(None), [1, 4, 1]), (3, 1)),
    ("advanced_2d_index", (5, 2), np.array([[0, 4], [4, 4]]), (2, 2, 1)),
    ("advanced_mask", (5, 3), MASK_5, (1, 3)),
    ("advanced_mask_2d", (3, 4), MASK_34, ()),
    ("advanced_empty", (4, 3), [], (3,)),
    ("advanced_zero_size_input", (0, 3), (slice(None), [0, 2]), (2,)),
]


def numpy_write(x, index, y, accumulate):
    out = x.copy()
    if accumulate:
        np.add.at(out, index, y)
    else:
        out[index] = y
    return out


def _check_write(case, dtype, accumulate, symbolic):
    _, x_shape, index, y_shape = case
    x_value = np.asarray(random_array(x_shape, dtype, np.random.default_rng(1)))
    y_value = np.asarray(random_array(y_shape, dtype, np.random.default_rng(2)))
    expected = numpy_write(x_value, index, y_value, accumulate)
    x, y = symbolic_like(x_value, "x"), symbolic_like(y_value, "y")
    sym_index, idx_inputs, idx_values = symbolize(index) if symbolic else (index, [], [])
    write = gt.inc_subtensor if accumulate else gt.set_subtensor
    out = write(x[sym_index], y)
    inputs = [x, y] + idx_inputs
    for x_layout in layouts(x_value).values():
        kept = x_layout.copy()
        for y_layout in layouts(y_value).values():
            for got in run_both_modes(inputs, out, [x_layout, y_layout] + idx_values):
                assert_matches(got, expected)
        np.testing.assert_array_equal(x_layout, kept)  # the input is never written
    assert eval_shape_rule(out, inputs, [x_value, y_value] + idx_values) == expected.shape


@pytest.mark.parametrize("accumulate", [False, True], ids=["set", "inc"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", WRITE_CASES, ids=[c[0] for c in WRITE_CASES])
def test_write(case, dtype, accumulate):
    _check_write(case, dtype, accumulate, symbolic=False)


@pytest.mark.parametrize("accumulate", [False, True], ids=["set", "inc"])
@pytest.mark.parametrize("case", WRITE_CASES, ids=[c[0] for c in WRITE_CASES])
def test_write_symbolic_indices(case, accumulate):
    _check_write(case, "float64", accumulate, symbolic=True)


@pytest.mark.parametrize("write, numpy_op", [(gt.set_subtensor, "set"), (gt.inc_subtensor, "inc")])
@pytest.mark.parametrize("x_dtype, y", [
    ("float32", 2.5), ("float32", np.float64(-1.25)), ("float64", np.array([1, 2, 3], dtype="int32")),
    ("int32", 7), ("int64", np.array([3], dtype="int8")), ("bool", True),
])
def test_write_casts_value(write, numpy_op, x_dtype, y):
    x_value = random_array((4, 3), x_dtype)
    x = symbolic_like(x_value)
    out = write(x[1:3], y, inplace=True, tolerate_inplace_aggregate_error=True)
    assert out.dtype == x_dtype
    expected = numpy_write(x_value, slice(1, 3), np.asarray(y).astype(x_dtype), numpy_op == "inc")
    for got in run_both_modes([x], out, [x_value]):
        assert_matches(got, expected)


def test_write_is_relative_to_the_immediate_base():
    x = gt.dmatrix("x")
    value = random_array((3, 4), "float64")
    row = x[1]
    out = gt.set_subtensor(row[::2], 0.0)
    expected = value[1].copy()
    expected[::2] = 0.0
    for got in run_both_modes([x], out, [value]):
        assert_matches(got, expected)


# --- take ------------------------------------------------------------------------------------

TAKE_CASES = [
    ("flat", (5,), [0, -1, 2], None),
    ("flat_from_matrix", (3, 4), [[0, 11], [5, 5]], None),
    ("axis_1", (3, 4), [2, 0, 2], 1),
    ("negative_axis", (2, 3, 4), np.array([[3], [-4]], dtype="int16"), -1),
    ("scalar_index", (3, 4), 1, 0),
    ("bool_as_int", (3, 4), [True, False], -1),
    ("empty", (2, 3, 4), np.array([], dtype="int64"), 2),
    ("zero_d_input", (), [0, 0], None),
]


@pytest.mark.parametrize("dtype", ("float32", "int32"))
@pytest.mark.parametrize("case", TAKE_CASES, ids=[c[0] for c in TAKE_CASES])
def test_take(case, dtype):
    _, shape, indices, axis = case
    value = random_array(shape, dtype)
    x = symbolic_like(value)
    expected = np.take(value, indices, axis=axis)
    for layout in layouts(value).values():
        for got in run_both_modes([x], gt.take(x, indices, axis=axis), [layout]):
            assert_matches(got, expected)


def test_take_symbolic_indices():
    x, idx = gt.fmatrix("x"), gt.ivector("idx")
    value = random_array((3, 4), "float32")
    for got in run_both_modes([x, idx], gt.take(x, idx, axis=1), [value, np.array([3, -1, 0], "int32")]):
        assert_matches(got, np.take(value, [3, -1, 0], axis=1))


TAKE_ALONG_CASES = [
    ("axis_1", (3, 4), np.array([[0, 3], [1, 1], [-1, 2]]), 1),
    ("axis_0_broadcast_indices", (3, 4), np.array([[2, 0, 1, 2]]), 0),
    ("negative_axis_3d", (2, 3, 4), np.array([[[3, 0]], [[1, -4]]], dtype="int32"), -1),
    ("broadcast_input", (1, 3), np.array([[0, 2], [1, 1]], dtype="uint8"), 1),
    ("flattened", (2, 3), np.array([5, 0, 2]), None),
    ("empty", (3, 4), np.zeros((3, 0), dtype="int64"), 1),
]


@pytest.mark.parametrize("dtype", ("float64", "bool"))
@pytest.mark.parametrize("case", TAKE_ALONG_CASES, ids=[c[0] for c in TAKE_ALONG_CASES])
def test_take_along_axis(case, dtype):
    _, shape, indices, axis = case
    value = random_array(shape, dtype)
    x, idx = symbolic_like(value), symbolic_like(indices)
    expected = np.take_along_axis(value, indices, axis=axis)
    for layout in layouts(value).values():
        for got in run_both_modes([x, idx], gt.take_along_axis(x, idx, axis), [layout, indices]):
            assert_matches(got, expected)


def test_take_along_axis_needs_matching_ndim():
    with pytest.raises(TypeError, match="take_along_axis: indices must be an integer tensor of ndim 2"):
        gt.take_along_axis(gt.dmatrix(), gt.lvector(), 1)


# --- errors ----------------------------------------------------------------------------------

THIS_FILE = "test_indexing.py"
FIXED = gt.tensor("float64", shape=(5, 3), name="fixed")
ROWS = gt.tensor("float64", shape=(5, None), name="rows")

# (id, build, exception type, message fragment)
BUILD_ERRORS = [
    ("float_index", lambda: FIXED[1.5], TypeError, "indices must be integers"),
    ("float_array_index", lambda: FIXED[np.array([0.0])], TypeError, "integer/bool arrays"),
    ("float_symbolic_index", lambda: FIXED[gt.dscalar()], TypeError, "indices must be integers"),
    ("float_slice_bound", lambda: FIXED[: gt.dscalar()], TypeError, "slice bounds must be integer"),
    ("too_many_indices", lambda: FIXED[0, 0, 0], IndexError, "too many indices"),
    ("two_ellipses", lambda: FIXED[..., 0, ...], IndexError, "single ellipsis"),
    ("int_out_of_range", lambda: ROWS[5], IndexError, "index 5 is out of bounds for axis 0 with size 5"),
    ("negative_out_of_range", lambda: FIXED[:, -4], IndexError, "out of bounds for axis 1"),
    ("zero_step", lambda: FIXED[::0], ValueError, "slice step cannot be zero"),
    ("mask_mismatch", lambda: FIXED[np.array([True, False])], IndexError, "boolean index did not match"),
    ("arrays_not_broadcastable", lambda: FIXED[[0, 1], [0, 1, 2]], IndexError, "cannot be broadcast"),
    ("set_needs_index_node", lambda: gt.set_subtensor(FIXED, 1.0), TypeError, "indexing expression"),
    ("value_too_many_dims", lambda: gt.set_subtensor(FIXED[0], np.zeros((2, 3))), ValueError,
     "cannot be broadcast to the indexed shape"),
    ("value_wrong_shape", lambda: gt.inc_subtensor(FIXED[1:3], np.zeros(2)), ValueError,
     "cannot be broadcast to the indexed shape (2, 3)"),
    ("float_into_int", lambda: gt.set_subtensor(gt.imatrix()[0], gt.dvector()), TypeError,
     "float64 value cannot be written into a int32"),
    ("python_float_into_int", lambda: gt.inc_subtensor(gt.imatrix()[0], 0.5), TypeError,
     "cannot be written into a int32"),
    ("value_overflow", lambda: gt.set_subtensor(gt.bmatrix()[0], 300), ValueError, "does not fit in int8"),
]


@pytest.mark.parametrize("case", BUILD_ERRORS, ids=[c[0] for c in BUILD_ERRORS])
def test_build_errors(case):
    _, build, exc_type, fragment = case
    with pytest.raises(exc_type) as info:
        build()
    assert fragment in str(info.value)


@pytest.mark.parametrize("build", [lambda: ROWS[5], lambda: FIXED[np.array([0, 7])],
                                   lambda: gt.set_subtensor(FIXED[1:3], np.zeros(2))])
def test_build_errors_name_op_and_line(build):
    with pytest.raises((IndexError, ValueError)) as info:
        build()
    message = str(info.value)
    assert "subtensor" in message and THIS_FILE in message and "float64[5" in message


def test_out_of_range_is_both_index_and_value_error():
    assert issubclass(IndexingError, IndexError) and issubclass(IndexingError, ValueError)


# (id, build(x, i, v), value of i, message fragment); x is 5x3, v has 4 elements
RUN_ERRORS = [
    ("symbolic_int", lambda x, i, v: x[i], 7, "index 7 is out of bounds"),
    ("symbolic_negative_int", lambda x, i, v: x[:, i], -4, "index -4 is out of bounds"),
    ("symbolic_zero_step", lambda x, i, v: x[::i], 0, "slice step cannot be zero"),
    ("index_array", lambda x, i, v: x[[0, 1]][i], 2, "index 2 is out of bounds"),
    ("index_array_value", lambda x, i, v: x[gt.cast(v, "int64")], 0, "out of bounds"),
    ("value_shape", lambda x, i, v: gt.set_subtensor(x[:i], v), 2, "could not be broadcast"),
]


@pytest.mark.parametrize("case", RUN_ERRORS, ids=[c[0] for c in RUN_ERRORS])
def test_run_time_errors(case):
    _, build, i_value, fragment = case
    x, i, v = gt.dmatrix("x"), gt.lscalar("i"), gt.dvector("v")
    out = build(x, i, v)
    values = [random_array((5, 3), "float64"), i_value, np.array([0.0, 9.0, 1.0, 2.0])]
    for mode in MODES:
        f = gc.function([x, i, v], out, mode=mode, on_unused_input="ignore")
        with pytest.raises(RunError) as info:
            f(*values)
        assert fragment in str(info.value) and THIS_FILE in str(info.value)


def test_run_time_mask_mismatch():
    x = gt.dmatrix("x")
    mask = gt.tensor("bool", shape=(None,), name="mask")
    f = gc.function([x, mask], x[mask])
    with pytest.raises(RunError, match="boolean index did not match"):
        f(np.zeros((3, 2)), np.array([True, False]))
