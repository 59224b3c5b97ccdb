"""The shape ops (reshape, flatten, dimshuffle, transpose, squeeze, expand_dims, shape, shape_i,
broadcast_to, make_vector) against NumPy: every dtype, awkward layouts, 0-size inputs, static
shape inference and errors."""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.opdefs.infer_shape import output_shape
from tests.helpers import MODES, assert_matches, check_against_numpy, layouts, random_array

DTYPES = ("float32", "float64", "int8", "int32", "int64", "uint16", "bool")
RNG = np.random.default_rng(11)


def _dimshuffle_np(x, pattern):
    kept = [p for p in pattern if p != "x"]
    dropped = tuple(a for a in range(x.ndim) if a not in kept)
    y = np.squeeze(x, dropped) if dropped else x
    order = sorted(kept)
    y = np.transpose(y, [order.index(p) for p in kept])
    return (
        np.expand_dims(y, tuple(i for i, p in enumerate(pattern) if p == "x"))
        if "x" in pattern
        else y
    )


# (label, input shape, graphc builder, NumPy reference)
CASES = [
    ("reshape -1", (2, 3, 4), lambda x: gt.reshape(x, (-1,)), lambda x: x.reshape(-1)),
    ("reshape 2d", (2, 3, 4), lambda x: gt.reshape(x, (4, -1)), lambda x: x.reshape(4, -1)),
    ("reshape to 0-d", (1, 1), lambda x: gt.reshape(x, ()), lambda x: x.reshape(())),
    ("reshape from 0-d", (), lambda x: gt.reshape(x, (1, 1, 1)), lambda x: x.reshape(1, 1, 1)),
    ("reshape 0-size", (0, 3), lambda x: gt.reshape(x, (3, 0, 5)), lambda x: x.reshape(3, 0, 5)),
    ("reshape 0-size -1", (0, 3), lambda x: gt.reshape(x, (-1, 3)), lambda x: x.reshape(-1, 3)),
    (
        "reshape symbolic",
        (2, 6),
        lambda x: gt.reshape(x, (gt.shape_i(x, 1), -1)),
        lambda x: x.reshape(6, -1),
    ),
    (
        "reshape shape vector",
        (2, 6),
        lambda x: gt.reshape(x, gt.shape(gt.transpose(x))),
        lambda x: x.reshape(6, 2),
    ),
    ("flatten", (2, 3, 4), lambda x: gt.flatten(x), lambda x: x.reshape(-1)),
    ("flatten ndim 2", (2, 3, 4), lambda x: gt.flatten(x, 2), lambda x: x.reshape(2, -1)),
    ("flatten ndim 3", (2, 3, 4), lambda x: gt.flatten(x, 3), lambda x: x),
    ("flatten 0-size", (2, 0, 4), lambda x: gt.flatten(x, 2), lambda x: x.reshape(2, 0)),
    ("flatten 0-d", (), lambda x: gt.flatten(x), lambda x: x.reshape(1)),
    (
        "dimshuffle permute",
        (2, 3, 4),
        lambda x: gt.dimshuffle(x, (2, 0, 1)),
        lambda x: x.transpose(2, 0, 1),
    ),
    (
        "dimshuffle x",
        (2, 3),
        lambda x: gt.dimshuffle(x, ("x", 1, "x", 0)),
        lambda x: _dimshuffle_np(x, ("x", 1, "x", 0)),
    ),
    ("dimshuffle drop", (1, 3, 1), lambda x: gt.dimshuffle(x, (1,)), lambda x: x.reshape(3)),
    ("dimshuffle drop+x", (2, 1), lambda x: gt.dimshuffle(x, ("x", 0)), lambda x: x.reshape(1, 2)),
    ("dimshuffle 0-d", (), lambda x: gt.dimshuffle(x, ("x", "x")), lambda x: x.reshape(1, 1)),
    (
        "dimshuffle 0-size",
        (0, 3),
        lambda x: gt.dimshuffle(x, (1, "x", 0)),
        lambda x: _dimshuffle_np(x, (1, "x", 0)),
    ),
    (
        "dimshuffle method",
        (2, 3),
        lambda x: x.dimshuffle(1, "x", 0),
        lambda x: _dimshuffle_np(x, (1, "x", 0)),
    ),
    ("transpose", (2, 3, 4), lambda x: gt.transpose(x), lambda x: x.T),
    (
        "transpose axes",
        (2, 3, 4),
        lambda x: gt.transpose(x, (1, -1, 0)),
        lambda x: np.transpose(x, (1, 2, 0)),
    ),
    ("transpose .T", (2, 3), lambda x: x.T, lambda x: x.T),
    ("transpose 0-size", (0, 2), lambda x: x.T, lambda x: x.T),
    ("squeeze named", (2, 1, 3), lambda x: gt.squeeze(x, 1), lambda x: np.squeeze(x, 1)),
    ("squeeze negative", (2, 3, 1), lambda x: gt.squeeze(x, -1), lambda x: np.squeeze(x, -1)),
    ("squeeze tuple", (1, 3, 1), lambda x: gt.squeeze(x, (0, 2)), lambda x: np.squeeze(x, (0, 2))),
    ("squeeze to 0-d", (1, 1), lambda x: gt.squeeze(x, (0, 1)), lambda x: np.squeeze(x)),
    ("expand_dims", (2, 3), lambda x: gt.expand_dims(x, 0), lambda x: np.expand_dims(x, 0)),
    ("expand_dims -1", (2, 3), lambda x: gt.expand_dims(x, -1), lambda x: np.expand_dims(x, -1)),
    (
        "expand_dims tuple",
        (2, 3),
        lambda x: gt.expand_dims(x, (0, 3)),
        lambda x: np.expand_dims(x, (0, 3)),
    ),
    ("expand_dims 0-d", (), lambda x: gt.expand_dims(x, 0), lambda x: np.expand_dims(x, 0)),
    ("expand_dims 0-size", (0,), lambda x: gt.expand_dims(x, 1), lambda x: np.expand_dims(x, 1)),
    ("shape", (2, 0, 3), lambda x: gt.shape(x), lambda x: np.array(x.shape, "int64")),
    ("shape 0-d", (), lambda x: x.shape, lambda x: np.array(x.shape, "int64")),
    ("shape_i", (2, 5), lambda x: gt.shape_i(x, 1), lambda x: np.int64(x.shape[1])),
    ("shape_i negative", (2, 5), lambda x: gt.shape_i(x, -2), lambda x: np.int64(x.shape[0])),
    (
        "broadcast_to",
        (3,),
        lambda x: gt.broadcast_to(x, (2, 3)),
        lambda x: np.broadcast_to(x, (2, 3)),
    ),
    (
        "broadcast_to size 1",
        (1, 3),
        lambda x: gt.broadcast_to(x, (4, 2, 3)),
        lambda x: np.broadcast_to(x, (4, 2, 3)),
    ),
    (
        "broadcast_to 0-size",
        (1, 3),
        lambda x: gt.broadcast_to(x, (0, 3)),
        lambda x: np.broadcast_to(x, (0, 3)),
    ),
    (
        "broadcast_to 0-d",
        (),
        lambda x: gt.broadcast_to(x, (2, 2)),
        lambda x: np.broadcast_to(x, (2, 2)),
    ),
    (
        "broadcast_to symbolic",
        (3, 1),
        lambda x: gt.broadcast_to(x, (gt.shape_i(x, 0), 4)),
        lambda x: np.broadcast_to(x, (3, 4)),
    ),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label,shape,build,ref", CASES, ids=[c[0] for c in CASES])
def test_shape_ops_match_numpy(label, shape, build, ref, dtype):
    value = random_array(shape, dtype, RNG)
    for v in layouts(value).values():
        check_against_numpy(build, ref, [v])


@pytest.mark.parametrize("label,shape,build,ref", CASES, ids=[c[0] for c in CASES])
def test_symbolic_shape_rules(label, shape, build, ref):
    x = gt.tensor("float64", (None,) * len(shape))
    out = build(x)
    value = random_array(shape, "float64", RNG)
    entries = [
        gt.as_tensor(s) if not isinstance(s, int) else gt.constant(np.int64(s))
        for s in output_shape(out)
    ]
    got = gc.function([x], entries, on_unused_input="ignore")(value) if entries else []
    assert tuple(int(v) for v in got) == np.shape(ref(value))


@pytest.mark.parametrize("dtype", DTYPES)
def test_make_vector_matches_numpy(dtype):
    a, b = gt.scalar("a", dtype), gt.scalar("b", dtype)
    values = [random_array((), dtype, RNG), random_array((), dtype, RNG)]
    for mode in MODES:
        out = gc.function([a, b], gt.make_vector([a, b, a]), mode=mode)(*values)
        assert_matches(out, np.array([values[0], values[1], values[0]], dtype))


def test_make_vector_promotes_and_folds_constants():
    a = gt.iscalar("a")
    v = gt.make_vector([a, 2.5])
    assert v.dtype == "float64" and v.type.shape == (2,)
    assert_matches(gc.function([a], v)(np.int32(3)), np.array([3.0, 2.5]))
    const = gt.make_vector([1, 2, 3])
    assert const.op.name == "constant"
    assert_matches(gc.function([], const)(), np.array([1, 2, 3]))
    empty = gt.make_vector([], "int64")
    assert_matches(gc.function([], empty)(), np.zeros(0, "int64"))


# --- static shape inference ----------------------------------------------------------------------

STATIC_CASES = [
    (lambda: gt.reshape(gt.tensor("float64", (2, 3)), (-1,)), (6,)),
    (lambda: gt.reshape(gt.tensor("float64", (2, 3)), (3, -1)), (3, 2)),
    (lambda: gt.reshape(gt.tensor("float64", (2, None)), (-1,)), (None,)),
    (lambda: gt.reshape(gt.tensor("float64", (2, None)), (gt.lscalar(), 4)), (None, 4)),
    (lambda: gt.reshape(gt.tensor("float64", (0, 3)), (-1, 3)), (0, 3)),
    (lambda: gt.reshape(gt.tensor("float64", (0, 3)), (-1, 0)), (None, 0)),
    (lambda: gt.flatten(gt.tensor("float32", (2, 3, 4)), 2), (2, 12)),
    (lambda: gt.flatten(gt.tensor("float32", (None, 3, 4)), 2), (None, 12)),
    (lambda: gt.dimshuffle(gt.tensor("float32", (2, None)), (1, "x", 0)), (None, 1, 2)),
    (lambda: gt.dimshuffle(gt.tensor("float32", (1, None)), (1,)), (None,)),
    (lambda: gt.transpose(gt.tensor("int8", (2, 3, 4)), (2, 0, 1)), (4, 2, 3)),
    (lambda: gt.squeeze(gt.tensor("float64", (1, None, 1))), (None,)),
    (lambda: gt.squeeze(gt.tensor("float64", (None, 3)), 0), (3,)),
    (lambda: gt.expand_dims(gt.tensor("float64", (2, 3)), (0, -1)), (1, 2, 3, 1)),
    (lambda: gt.shape(gt.tensor("float64", (None, None, None))), (3,)),
    (lambda: gt.shape_i(gt.dmatrix(), 0), ()),
    (lambda: gt.broadcast_to(gt.tensor("float64", (3,)), (gt.lscalar(), 3)), (None, 3)),
    (lambda: gt.broadcast_to(gt.tensor("float64", (None,)), (2, 5)), (2, 5)),
    (lambda: gt.broadcast_to(gt.tensor("float64", (4, 1)), (4, gt.lscalar())), (4, None)),
]


@pytest.mark.parametrize("build,expected", STATIC_CASES)
def test_static_shape_inference(build, expected):
    assert build().type.shape == expected


def test_reshape_symbolic_vector_needs_ndim():
    x, shp = gt.dvector("x"), gt.lvector("shp")
    with pytest.raises(ValueError, match="ndim"):
        gt.reshape(x, shp)
    out = gt.reshape(x, shp, ndim=2)
    assert out.type.shape == (None, None)
    value = np.arange(6.0)
    for mode in MODES:
        assert_matches(
            gc.function([x, shp], out, mode=mode)(value, np.array([3, 2])), value.reshape(3, 2)
        )


# --- errors --------------------------------------------------------------------------------------

BUILD_ERRORS = [
    (lambda: gt.reshape(gt.tensor("float64", (2, 3)), (4, 2)), ValueError),
    (lambda: gt.reshape(gt.dmatrix(), (-1, -1)), ValueError),
    (lambda: gt.reshape(gt.dmatrix(), (2.5, 2)), TypeError),
    (lambda: gt.reshape(gt.dmatrix(), gt.dvector()), TypeError),
    (lambda: gt.flatten(gt.dmatrix(), 3), ValueError),
    (lambda: gt.flatten(gt.dmatrix(), 0), ValueError),
    (lambda: gt.dimshuffle(gt.dmatrix(), (0, 0)), ValueError),
    (lambda: gt.dimshuffle(gt.dmatrix(), (0, 2)), ValueError),
    (lambda: gt.dimshuffle(gt.tensor("float64", (2, 3)), (1,)), ValueError),
    (lambda: gt.transpose(gt.dmatrix(), (0, 0)), ValueError),
    (lambda: gt.transpose(gt.dmatrix(), (0, 2)), ValueError),
    (lambda: gt.squeeze(gt.tensor("float64", (2, 3)), 0), ValueError),
    (lambda: gt.squeeze(gt.dmatrix(), 2), ValueError),
    (lambda: gt.expand_dims(gt.dmatrix(), 3), ValueError),
    (lambda: gt.shape_i(gt.dmatrix(), 2), ValueError),
    (lambda: gt.broadcast_to(gt.tensor("float64", (3,)), (2, 4)), ValueError),
    (lambda: gt.broadcast_to(gt.dmatrix(), (3,)), ValueError),
    (lambda: gt.make_vector([gt.dvector()]), ValueError),
]


@pytest.mark.parametrize("build,error", BUILD_ERRORS)
def test_build_errors(build, error):
    with pytest.raises(error):
        build()


RUN_ERRORS = [  # (builder, bad value, message fragment)
    (lambda x: gt.squeeze(x, 1), np.zeros((2, 3)), "cannot drop axis 1"),
    (lambda x: gt.dimshuffle(x, (1,)), np.zeros((2, 3)), "cannot drop axis 0"),
    (lambda x: gt.reshape(x, (4, -1)), np.zeros((2, 3)), "cannot reshape"),
    (lambda x: gt.reshape(x, (5, 5)), np.zeros((2, 3)), "cannot reshape"),
    (lambda x: gt.reshape(x, (-1, 0)), np.zeros((0, 3)), "cannot reshape"),
    (lambda x: gt.broadcast_to(x, (2, 4)), np.zeros((2, 3)), "broadcast"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("build,value,message", RUN_ERRORS)
def test_run_time_errors(build, value, message, mode):
    x = gt.dmatrix("x")
    f = gc.function([x], build(x), mode=mode)
    with pytest.raises(ValueError, match=message) as info:
        f(value)
    assert info.value.args[0].split(":")[0] in ("dimshuffle", "reshape", "broadcast_to")
