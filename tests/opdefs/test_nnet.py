"""gt.nnet against NumPy: softmax, log_softmax, one_hot, relu and the cross-entropy losses.

The oracles below are written independently of graphc's references (log-sum-exp in float64,
then rounded to the result dtype), on awkward inputs: 0-size batches and class axes, size-1
axes, strided and negative-stride layouts, extreme logits and every claimed dtype.
"""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.ir import make
from graphc.ir.types import TensorType
from graphc.opdefs.nnet import SOFTMAX
from tests.helpers import FLOATS, assert_matches, check_against_numpy, layouts, random_array

LAYOUTS = ("contiguous", "strided", "negative")
LABEL_DTYPES = ("int8", "uint8", "int32", "int64", "uint64")


# --- oracles ---------------------------------------------------------------------------------

def exp_dtype(dtype):
    """The float dtype NumPy computes ``exp`` of ``dtype`` in (float16 read as float32)."""
    out = np.exp(np.zeros(1, dtype)).dtype
    return np.dtype("float32") if out == np.float16 else out


def np_log_softmax64(x, axis):
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x.copy()
    m = np.max(x, axis=axis, keepdims=True)
    return x - (m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)))


def np_log_softmax(x, axis=-1):
    return np_log_softmax64(x, axis).astype(exp_dtype(x.dtype))


def np_softmax(x, axis=-1):
    return np.exp(np_log_softmax64(x, axis)).astype(exp_dtype(x.dtype))


def pick(values, labels):
    """``values[i, labels[i]]`` for a batch of rows (advanced indexing, for the oracle only)."""
    return values[np.arange(values.shape[0]), labels.astype(np.int64)]


def with_layout(values, kind):
    return [layouts(v)[kind] for v in values]


# --- softmax / log_softmax -------------------------------------------------------------------

NORMALIZERS = {
    "softmax": (gt.nnet.softmax, np_softmax),
    "log_softmax": (gt.nnet.log_softmax, np_log_softmax),
}
AXIS_CASES = [
    ((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1), ((2, 3, 4), (0, 2)), ((2, 3, 4), None), ((6,), 0),
    ((0, 5), -1), ((0, 5), 0), ((4, 0), -1), ((1, 5), -1), ((5, 1), -1), ((1, 1), 0),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,axis", AXIS_CASES, ids=str)
@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_normalizer_matches_numpy(name, shape, axis, dtype, layout):
    build, oracle = NORMALIZERS[name]
    x = layouts(random_array(shape, dtype, np.random.default_rng(1), -5, 5))[layout]
    check_against_numpy(lambda v: build(v, axis=axis), lambda v: oracle(v, axis), [x])


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64", "bool"])
@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_normalizer_of_integers_is_float_like_numpy_exp(name, dtype):
    build, oracle = NORMALIZERS[name]
    x = random_array((3, 4), dtype, np.random.default_rng(2))
    check_against_numpy(build, oracle, [x])


EXTREME = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [1e4, 1e4, -1e4],
                    [1e30, 0, -1e30]])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_normalizer_is_stable_for_extreme_logits(name, dtype):
    build, oracle = NORMALIZERS[name]
    x = EXTREME.astype(dtype)
    out = gc.function([v := gt.matrix("x", dtype=dtype)], build(v))(x)
    assert np.all(np.isfinite(out))
    assert_matches(out, oracle(x))


def test_softmax_rows_sum_to_one_and_log_softmax_is_its_log():
    x = gt.dmatrix("x")
    f = gc.function([x], [gt.nnet.softmax(x), gt.nnet.log_softmax(x)])
    sm, lsm = f(random_array((4, 6), "float64"))
    np.testing.assert_allclose(sm.sum(axis=-1), np.ones(4), rtol=1e-14)
    np.testing.assert_allclose(np.log(sm), lsm, rtol=1e-13)


def test_normalizer_static_types():
    x = gt.tensor("float32", shape=(None, 3), name="x")
    assert gt.nnet.softmax(x).type == TensorType("float32", (None, 3))
    assert gt.nnet.log_softmax(x, axis=0).type == TensorType("float32", (None, 3))
    assert gt.nnet.softmax(gt.imatrix("i")).type == TensorType("float64", (None, None))
    assert gt.nnet.log_softmax(gt.bvector("b")).type == TensorType("float32", (None,))


def test_softmax_and_log_softmax_are_distinct_ops():
    x = gt.dmatrix("x")
    assert gt.nnet.softmax(x).op.name == "softmax"
    assert gt.nnet.log_softmax(x).op.name == "log_softmax"
    assert gt.nnet.softmax(x, axis=1) is gt.nnet.softmax(x, axis=-1)


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_normalizer_bad_input(name):
    build, _ = NORMALIZERS[name]
    with pytest.raises(TypeError, match=f"{name}.*scalar"):
        build(gt.dscalar("s"))
    with pytest.raises(ValueError, match=f"{name}: axis 2 is out of range for a 2-d input"):
        build(gt.dmatrix("m"), axis=2)
    with pytest.raises(TypeError, match="axis must be an int"):
        build(gt.dmatrix("m"), axis=1.0)


def test_softmax_node_rejects_integer_input_with_op_and_line():
    with pytest.raises(TypeError, match=r"softmax: dtype int32 is not(.|\n)*test_nnet.py"):
        make(SOFTMAX, (gt.imatrix("i"),), (1,))


# --- one_hot ---------------------------------------------------------------------------------

def np_one_hot(labels, n, dtype):
    return (labels.astype(np.int64)[..., None] == np.arange(n)).astype(dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(6,), (0,), (2, 3), (1,)], ids=str)
@pytest.mark.parametrize("label_dtype", LABEL_DTYPES)
def test_one_hot_matches_numpy(label_dtype, shape, layout):
    labels = np.random.default_rng(3).integers(0, 4, size=shape).astype(label_dtype)
    labels = layouts(labels)[layout]
    check_against_numpy(lambda v: gt.nnet.one_hot(v, 4), lambda v: np_one_hot(v, 4, bool), [labels])


@pytest.mark.parametrize("dtype", ["bool", "int64", "float32", "float64"])
def test_one_hot_dtype_and_symbolic_class_count(dtype):
    labels, n = gt.ivector("labels"), gt.lscalar("n")
    out = gt.nnet.one_hot(labels, n, dtype)
    assert out.type == TensorType(dtype, (None, None))
    assert gt.nnet.one_hot(labels, 5, dtype).type == TensorType(dtype, (None, 5))
    values = np.array([0, 4, 2, 4], dtype="int32")
    assert_matches(gc.function([labels, n], out)(values, 5), np_one_hot(values, 5, dtype))
    assert gc.function([labels, n], out)(values[:0], 0).shape == (0, 0)


def test_one_hot_bad_input():
    labels = gt.ivector("labels")
    f = gc.function([labels], gt.nnet.one_hot(labels, 3))
    for bad in ([0, 3], [-1, 1]):
        with pytest.raises(ValueError, match=r"one_hot: labels must lie in \[0, 3\)"):
            f(np.array(bad, dtype="int32"))
    with pytest.raises(TypeError, match="one_hot: labels must have an integer dtype, got float64"):
        gt.nnet.one_hot(gt.dvector("x"), 3)
    with pytest.raises(ValueError, match="one_hot: the number of classes must be non-negative"):
        gt.nnet.one_hot(labels, -2)


# --- relu ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", FLOATS + ("int32", "int8"))
@pytest.mark.parametrize("alpha", [0, 0.1])
@pytest.mark.parametrize("shape", [(3, 4), (0, 4), (1,)], ids=str)
def test_relu_matches_numpy(shape, alpha, dtype, layout):
    x = layouts(random_array(shape, dtype, np.random.default_rng(4)))[layout]
    if alpha == 0:
        oracle = lambda v: np.maximum(v, 0)  # noqa: E731
    else:
        oracle = lambda v: np.where(v > 0, v, alpha * v)  # noqa: E731
    check_against_numpy(lambda v: gt.nnet.relu(v, alpha), oracle, [x])


def test_relu_with_symbolic_alpha():
    x, a = gt.dvector("x"), gt.dscalar("a")
    values = np.array([-2.0, 0.0, 3.0])
    out = gc.function([x, a], gt.nnet.relu(x, a))(values, 0.5)
    np.testing.assert_array_equal(out, [-1.0, 0.0, 3.0])
    per_unit = gc.function([x], gt.nnet.relu(x, np.array([0.0, 0.5, 0.25])))(values)
    np.testing.assert_array_equal(per_unit, [0.0, 0.0, 3.0])
    per_unit = gc.function([x], gt.nnet.relu(x, np.array([0.5, 0.5, 0.25])))(values)
    np.testing.assert_array_equal(per_unit, [-1.0, 0.0, 3.0])


def test_sigmoid_and_softplus_are_the_elementwise_ops():
    assert gt.nnet.sigmoid is gt.sigmoid and gt.nnet.softplus is gt.softplus


# --- losses ----------------------------------------------------------------------------------

def _probabilities(shape, dtype, rng):
    return np_softmax(random_array(shape, dtype, rng)).astype(dtype)


def _labels(n, k, dtype, rng):
    return rng.integers(0, k, size=n).astype(dtype)


def cce_labels_case(dtype, n, label_dtype="int32"):
    rng = np.random.default_rng(5)
    values = [_probabilities((n, 4), dtype, rng), _labels(n, 4, label_dtype, rng)]
    return gt.nnet.categorical_crossentropy, lambda p, y: -np.log(pick(p, y)), values


def cce_dist_case(dtype, n):
    rng = np.random.default_rng(6)
    values = [_probabilities((n, 4), dtype, rng), _probabilities((n, 4), dtype, rng)]
    return gt.nnet.categorical_crossentropy, lambda p, t: -np.sum(t * np.log(p), axis=-1), values


def sce_labels_case(dtype, n, label_dtype="int64"):
    rng = np.random.default_rng(7)
    values = [random_array((n, 5), dtype, rng, -20, 20), _labels(n, 5, label_dtype, rng)]
    oracle = lambda x, y: -pick(np_log_softmax(x), y)  # noqa: E731
    return gt.nnet.softmax_cross_entropy_with_logits, oracle, values


def sce_dist_case(dtype, n):
    rng = np.random.default_rng(8)
    values = [random_array((n, 5), dtype, rng, -20, 20), _probabilities((n, 5), dtype, rng)]
    oracle = lambda x, t: -np.sum(t * np_log_softmax(x), axis=-1)  # noqa: E731
    return gt.nnet.softmax_cross_entropy_with_logits, oracle, values


def bce_case(dtype, n):
    rng = np.random.default_rng(9)
    values = [random_array((n, 3), dtype, rng, 0.05, 0.95), random_array((1, 3), dtype, rng, 0, 1)]
    oracle = lambda o, t: -(t * np.log(o) + (1 - t) * np.log(1 - o))  # noqa: E731
    return gt.nnet.binary_crossentropy, oracle, values


def np_sigmoid_bce(x, t):
    x64, t64 = x.astype(np.float64), t.astype(np.float64)
    out = np.maximum(x64, 0) - x64 * t64 + np.log1p(np.exp(-np.abs(x64)))
    return out.astype(np.result_type(x, t))


def sigmoid_bce_case(dtype, n):
    rng = np.random.default_rng(10)
    values = [random_array((n, 3), dtype, rng, -30, 30), random_array((n, 3), dtype, rng, 0, 1)]
    return gt.nnet.sigmoid_binary_crossentropy, np_sigmoid_bce, values


LOSS_CASES = {
    "categorical_crossentropy-labels": cce_labels_case,
    "categorical_crossentropy-dist": cce_dist_case,
    "softmax_cross_entropy_with_logits-labels": sce_labels_case,
    "softmax_cross_entropy_with_logits-dist": sce_dist_case,
    "binary_crossentropy": bce_case,
    "sigmoid_binary_crossentropy": sigmoid_bce_case,
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n", [5, 1, 0])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_loss_matches_numpy(case, dtype, n, layout):
    build, oracle, values = LOSS_CASES[case](dtype, n)
    check_against_numpy(build, oracle, with_layout(values, layout))


@pytest.mark.parametrize("label_dtype", LABEL_DTYPES)
@pytest.mark.parametrize("case", [cce_labels_case, sce_labels_case], ids=["cce", "sce"])
def test_integer_labels_of_any_int_dtype(case, label_dtype):
    build, oracle, values = case("float32", 6, label_dtype)
    check_against_numpy(build, oracle, values)


def test_categorical_crossentropy_ignores_zero_probability_of_other_classes():
    p, y = gt.dmatrix("p"), gt.lvector("y")
    out = gc.function([p, y], gt.nnet.categorical_crossentropy(p, y))(
        np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]), np.array([0, 1]))
    np.testing.assert_allclose(out, [0.0, np.log(2.0)], rtol=1e-15)


@pytest.mark.parametrize("dtype", FLOATS)
def test_losses_on_logits_are_finite_for_extreme_logits(dtype):
    x, y = gt.matrix("x", dtype=dtype), gt.lvector("y")
    t = gt.matrix("t", dtype=dtype)
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0], [0.0, 0.0, -1000.0]],
                      dtype)
    labels = np.array([1, 0, 2])
    targets = (logits > 0).astype(dtype)
    f = gc.function([x, y, t], [gt.nnet.softmax_cross_entropy_with_logits(x, y),
                                gt.nnet.sigmoid_binary_crossentropy(x, t)])
    sce, sbce = f(logits, labels, targets)
    assert np.all(np.isfinite(sce)) and np.all(np.isfinite(sbce))
    assert_matches(sce, -pick(np_log_softmax(logits), labels))
    assert_matches(sbce, np_sigmoid_bce(logits, targets))
    np.testing.assert_allclose(sce, [2000.0, 2000.0 + np.log(2.0), 1000.0 + np.log(2.0)], rtol=1e-6)


def test_loss_bad_input():
    p, y = gt.dmatrix("p"), gt.lvector("y")
    with pytest.raises(ValueError, match="categorical_crossentropy: integer labels of type int64"):
        gt.nnet.categorical_crossentropy(p, gt.lmatrix("y2"))
    with pytest.raises(TypeError, match="with_logits: expected a float tensor, got int64"):
        gt.nnet.softmax_cross_entropy_with_logits(gt.lmatrix("i"), y)
    with pytest.raises(TypeError, match="categorical_crossentropy: expected at least one axis"):
        gt.nnet.categorical_crossentropy(gt.dscalar("s"), y)
    f = gc.function([p, y], gt.nnet.categorical_crossentropy(p, y))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        f(np.full((2, 2), 0.5), np.array([0, 2]))


# --- crossentropy_softmax (the fused op the stabilize rewrites produce) ------------------------

def np_crossentropy_softmax(logits, labels):
    """``-log_softmax(logits)`` at the labels (labels broadcast against the batch axes)."""
    batch = np.broadcast_shapes(logits.shape[:-1], labels.shape)
    log_p = np.broadcast_to(np_log_softmax64(logits, -1), batch + logits.shape[-1:])
    index = np.broadcast_to(labels.astype(np.int64), batch)[..., None]
    return (-np.take_along_axis(log_p, index, -1)[..., 0]).astype(logits.dtype)


XENT_SHAPES = [((5, 4), (5,)), ((0, 4), (0,)), ((1, 4), (1,)), ((3, 1), (3,)), ((2, 3, 4), (2, 3)),
               ((4,), ()), ((3, 4), (1,)), ((1, 4), (3,)), ((0, 0), (0,))]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shapes", XENT_SHAPES, ids=str)
def test_crossentropy_softmax_matches_numpy(shapes, dtype, layout):
    logits_shape, labels_shape = shapes
    rng = np.random.default_rng(12)
    logits = random_array(logits_shape, dtype, rng, -20, 20)
    labels = rng.integers(0, max(logits_shape[-1], 1), size=labels_shape)
    if logits.ndim:
        logits = layouts(logits)[layout]
    check_against_numpy(gt.nnet.crossentropy_softmax, np_crossentropy_softmax, [logits, labels])


@pytest.mark.parametrize("label_dtype", LABEL_DTYPES)
def test_crossentropy_softmax_labels_of_any_int_dtype(label_dtype):
    rng = np.random.default_rng(13)
    labels = layouts(_labels(6, 4, label_dtype, rng))["negative"]
    values = [random_array((6, 4), "float32", rng), labels]
    check_against_numpy(gt.nnet.crossentropy_softmax, np_crossentropy_softmax, values)


@pytest.mark.parametrize("dtype", FLOATS)
def test_crossentropy_softmax_is_stable_for_extreme_logits(dtype):
    x, y = gt.matrix("x", dtype=dtype), gt.lvector("y")
    logits, labels = EXTREME.astype(dtype), np.array([1, 0, 2, 2])
    out = gc.function([x, y], gt.nnet.crossentropy_softmax(x, y))(logits, labels)
    assert np.all(np.isfinite(out))
    assert_matches(out, np_crossentropy_softmax(logits, labels))
    np.testing.assert_allclose(out[:2], [2000.0, np.log(3.0)], rtol=1e-6)


def test_crossentropy_softmax_static_type():
    x = gt.tensor("float32", (None, 5), "x")
    assert gt.nnet.crossentropy_softmax(x, gt.ivector("y")).type == TensorType("float32", (None,))
    y3 = gt.tensor("int64", (3,), "y3")
    assert gt.nnet.crossentropy_softmax(gt.dmatrix("m"), y3).type == TensorType("float64", (3,))
    one = gt.tensor("float64", (1, 5), "one")
    assert gt.nnet.crossentropy_softmax(one, y3).type == TensorType("float64", (3,))


def test_crossentropy_softmax_bad_input():
    x, y = gt.dmatrix("x"), gt.lvector("y")
    f = gc.function([x, y], gt.nnet.crossentropy_softmax(x, y))
    for bad in ([0, 3], [-1, 1]):
        with pytest.raises(ValueError, match=r"crossentropy_softmax: labels must lie in \[0, 3\)"):
            f(np.zeros((2, 3)), np.array(bad))
    with pytest.raises(ValueError, match="crossentropy_softmax"):
        f(np.zeros((2, 3)), np.array([0, 1, 2]))  # 2 examples, 3 labels
    with pytest.raises(TypeError, match="crossentropy_softmax: logits must have a float dtype"):
        gt.nnet.crossentropy_softmax(gt.lmatrix("i"), y)
    with pytest.raises(TypeError, match="crossentropy_softmax: labels must have an integer dtype"):
        gt.nnet.crossentropy_softmax(x, gt.dvector("v"))
    with pytest.raises(TypeError, match=r"crossentropy_softmax: needs logits(.|\n)*test_nnet.py"):
        gt.nnet.crossentropy_softmax(x, gt.lmatrix("y2"))
    with pytest.raises(ValueError, match="crossentropy_softmax: shapes"):
        gt.nnet.crossentropy_softmax(gt.tensor("float64", (2, 3)), gt.tensor("int64", (4,)))
