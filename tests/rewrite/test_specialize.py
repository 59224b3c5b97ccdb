"""specialize: cheaper equivalents (powers, reciprocal, squares, scaled sums, transposed
matmul operands) — the graph before and after, and the same values as the unrewritten graph."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.ir import toposort
from tests.helpers import FLOATS, layouts, random_array
from tests.rewrite.util import check_rewrite, compiled_ops, op_names

NO_FUSION = ("fusion",)  # keep the specialized ops visible in the rewritten graph
INTS = ("int32", "int64", "uint8")


def _matrix(dtype, shape=(None, None), name="x"):
    return gt.tensor(dtype, shape, name)


def _values(dtype, shape=(3, 4), low=-3.0):
    return [random_array(shape, dtype, np.random.default_rng(1), low=low)]


def _positive(dtype, shape=(3, 4)):
    return [random_array(shape, dtype, np.random.default_rng(2), low=0.5, high=2.0)]


# --- powers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS + INTS)
@pytest.mark.parametrize("exponent, present", [(2, ["sqr"]), (3, ["sqr", "mul"]), (1, [])])
def test_small_integer_powers(dtype, exponent, present):
    x = _matrix(dtype)
    out = x ** exponent
    assert "pow" in op_names([out])
    f = check_rewrite([x], out, _values(dtype), fired=["local_pow_specialize"], present=present,
                      absent=["pow"], exclude=NO_FUSION)
    assert sorted(compiled_ops(f)) == sorted(present)
    assert f.fgraph.outputs[0].dtype == dtype


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("exponent, present", [(0.5, "sqrt"), (-1, "true_div")])
def test_float_only_powers(dtype, exponent, present):
    x = _matrix(dtype)
    check_rewrite([x], x ** exponent, _positive(dtype), fired=["local_pow_specialize"],
                  present=[present], absent=["pow"], exclude=NO_FUSION)


def test_sqrt_keeps_numpys_special_values():
    x = _matrix("float64", (None,))
    special = np.array([-1.0, -0.0, 0.0, np.inf, np.nan, 4.0])
    check_rewrite([x], x ** 0.5, [special], present=["sqrt"], absent=["pow"], exclude=NO_FUSION)


def test_int_to_half_power_runs_in_float64():
    x = _matrix("int32")
    f = check_rewrite([x], x ** 0.5, _positive("int32"), present=["cast", "sqrt"], absent=["pow"],
                      exclude=NO_FUSION)
    assert f.fgraph.outputs[0].dtype == "float64"


def test_int_to_minus_one_is_left_alone():
    # NumPy refuses negative integer powers of integers: no reciprocal for ints
    x = _matrix("int64")
    f = gc.function([x], x ** -1, mode=gc.rewrite.Mode("FAST_RUN", NO_FUSION))
    assert compiled_ops(f) == ["pow"]


@pytest.mark.parametrize("dtype", FLOATS)
def test_uniform_exponent_array_of_x_shape(dtype):
    x = _matrix(dtype, (None, 4))
    exponent = np.full((1, 4), 2, dtype)
    check_rewrite([x], x ** exponent, _values(dtype), fired=["local_pow_specialize"],
                  present=["sqr"], absent=["pow"], exclude=NO_FUSION)


@pytest.mark.parametrize("shape, exponent, value_shape", [
    ((None, None), np.full((1, 4), 2.0), (3, 1)),   # x may be 1 wide at run time: it broadcasts
    ((None, 1), np.full((1, 4), 2.0), (3, 1)),      # x is 1 wide: the result is 4 wide
    ((None, None), np.array([2.0, 3.0]), (3, 2)),   # not one value
    ((None, None), np.array([[]]).reshape(1, 0), (3, 0)),  # empty: no value at all
])
def test_exponent_that_broadcasts_or_differs_is_kept(shape, exponent, value_shape):
    x = _matrix("float64", shape)
    check_rewrite([x], x ** exponent, _values("float64", value_shape), present=["pow"],
                  exclude=NO_FUSION)


# --- x * x, x / c ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS + INTS)
def test_mul_by_itself_is_sqr(dtype):
    x = _matrix(dtype)
    for value in layouts(_values(dtype)[0]).values():
        f = check_rewrite([x], x * x, [value], fired=["local_mul_to_sqr"], present=["sqr"],
                          absent=["mul"], exclude=NO_FUSION)
    assert f.fgraph.outputs[0].dtype == dtype


def test_bool_mul_by_itself_stays_bool():
    x = _matrix("bool")
    f = check_rewrite([x], x * x, _values("bool"), absent=["sqr"], exclude=NO_FUSION)
    assert f.fgraph.outputs[0].dtype == "bool"


def test_mul_of_two_inputs_is_not_sqr():
    x, y = _matrix("float64", name="x"), _matrix("float64", name="y")
    check_rewrite([x, y], x * y, _values("float64") * 2, present=["mul"], absent=["sqr"],
                  exclude=NO_FUSION)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("divisor", [
    4.0, 3.0, np.array([1.0, 2.0, -8.0, 0.25]), np.array([[3.0], [5.0], [7.0]]),
])
def test_div_by_constant_is_mul_by_reciprocal(dtype, divisor):
    x = _matrix(dtype)
    divisor = np.asarray(divisor, dtype) if isinstance(divisor, np.ndarray) else divisor
    for value in layouts(_values(dtype)[0]).values():
        f = check_rewrite([x], x / divisor, [value], fired=["local_div_to_mul"], present=["mul"],
                          absent=["true_div"], exclude=NO_FUSION)
    assert f.fgraph.outputs[0].dtype == dtype


def test_div_by_transposed_constant():
    # the reciprocal keeps the dimshuffle that lays the constant out against x
    table = gt.constant(np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 0.5]])).T
    x = _matrix("float64")
    check_rewrite([x], x / table, _values("float64", (3, 2)), fired=["local_div_to_mul"],
                  absent=["true_div"], exclude=NO_FUSION)


def test_int_div_by_constant_runs_in_float64():
    x = _matrix("int32")
    f = check_rewrite([x], x / 4, _values("int32"), fired=["local_div_to_mul"],
                      absent=["true_div"], exclude=NO_FUSION)
    assert f.fgraph.outputs[0].dtype == "float64"


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("divisor", [
    lambda info: 0.0,
    lambda info: np.array([1.0, 0.0, 2.0, 3.0]),
    lambda info: info.smallest_subnormal,  # 1 / c overflows
    lambda info: info.max / 2,             # 1 / c is subnormal: it loses digits
    lambda info: np.inf,
])
def test_div_without_a_safe_reciprocal_is_kept(dtype, divisor):
    x = _matrix(dtype)
    divisor = np.asarray(divisor(np.finfo(dtype)), dtype)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        check_rewrite([x], x / divisor, _values(dtype), present=["true_div"], exclude=NO_FUSION)


# --- sum of a constant-scaled input ------------------------------------------------------------

def _sum_inputs(f):
    return [n.src[0] for n in toposort(f.fgraph.outputs) if n.op.name == "sum"]


SUM_CASES = [
    (lambda x: gt.sum(x * 3), "local_sum_of_mul_by_constant"),
    (lambda x: gt.sum(3 * x, axis=0), "local_sum_of_mul_by_constant"),
    (lambda x: gt.sum(x * np.full((1, 4), 2, x.dtype), axis=1, keepdims=True),
     "local_sum_of_mul_by_constant"),
    (lambda x: gt.sum(x * 5, axis=(0, 1), keepdims=True), "local_sum_of_mul_by_constant"),
]


@pytest.mark.parametrize("dtype", FLOATS + ("int64", "uint64"))
@pytest.mark.parametrize("build, rule", SUM_CASES)
def test_sum_of_scaled_input(dtype, build, rule):
    x = _matrix(dtype, (None, 4))
    out = build(x)
    for value in layouts(_positive(dtype)[0]).values():
        f = check_rewrite([x], out, [value], fired=[rule], present=["sum", "mul"],
                          exclude=NO_FUSION)
    assert _sum_inputs(f) == [x]
    assert f.fgraph.outputs[0].type == out.type


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, True), ((0, 2), False)])
def test_sum_of_div_by_constant(dtype, axis, keepdims):
    x = gt.tensor(dtype, (None, None, None), "x")
    out = gt.sum(x / 4, axis=axis, keepdims=keepdims)
    # the division itself becomes a product first; without that rule the sum rule sees it
    f = check_rewrite([x], out, _positive(dtype, (2, 3, 4)), fired=["local_sum_of_div_by_constant"],
                      present=["true_div"], exclude=NO_FUSION + ("local_div_to_mul",))
    assert _sum_inputs(f) == [x]
    f = check_rewrite([x], out, _positive(dtype, (2, 0, 4)), fired=["local_sum_of_mul_by_constant"],
                      exclude=NO_FUSION)
    assert _sum_inputs(f) == [x]


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "uint8"])
def test_sum_of_narrow_int_product_is_kept(dtype):
    # int8 * 2 wraps in int8 before the sum widens to int64: 100 * 2 -> -56
    x = _matrix(dtype)
    value = np.full((2, 3), np.iinfo(dtype).max, dtype)
    out = gt.sum(x * 2)
    f = check_rewrite([x], out, [value], exclude=NO_FUSION)
    assert "local_sum_of_mul_by_constant" not in f.fgraph.fired
    assert _sum_inputs(f)[0] is not x


@pytest.mark.parametrize("scale, shape", [
    (np.array([[1.0, 2.0, 3.0]]), (None, None)),  # not one value
    (np.full((1, 3), 2.0), (None, 1)),            # makes x 3 times wider: the sum triples
    (np.full((1, 3), 2.0), (None, None)),         # may broadcast a 1-wide x at run time
    (0.0, (None, None)),                          # 0 * inf is nan, 0 * sum(x) may not be
    (np.inf, (None, None)),
])
def test_sum_of_product_that_is_not_a_scaling_is_kept(scale, shape):
    x = _matrix("float64", shape)
    out = gt.sum(x * scale, axis=0)
    value = np.array([[1e308], [1e308]])  # the sum overflows: 0 * sum(x) would be nan
    with np.errstate(invalid="ignore", over="ignore"):
        f = check_rewrite([x], out, [value], exclude=NO_FUSION)
    assert "local_sum_of_mul_by_constant" not in f.fgraph.fired
    assert _sum_inputs(f)[0] is not x


# --- matmul of transposed operands -------------------------------------------------------------

def _swap(x):
    return gt.dimshuffle(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


TRANSPOSE_CASES = [  # (build, shapes of the values, the flags the gemm gets)
    (lambda a, b: gt.dot(a.T, b), [(3, 2), (3, 4)], (True, False)),
    (lambda a, b: gt.dot(a, b.T), [(2, 3), (4, 3)], (False, True)),
    (lambda a, b: gt.dot(a.T, b.T), [(3, 2), (4, 3)], (True, True)),
    (lambda a, b: gt.dot(a.T, b), [(3, 2), (3,)], (True, False)),
    (lambda a, b: gt.matmul(b, a.T), [(4, 3), (3,)], (False, True)),
    (lambda a, b: gt.matmul(_swap(a), b), [(5, 3, 2), (5, 3, 4)], (True, False)),
    (lambda a, b: gt.matmul(a, _swap(b)), [(5, 2, 3), (1, 4, 3)], (False, True)),
    (lambda a, b: gt.matmul(a.T, _swap(b)), [(3, 2), (2, 4, 3)], (True, True)),
    (lambda a, b: gt.dot(a.T, b), [(0, 2), (0, 4)], (True, False)),
    (lambda a, b: gt.dot(a, b.T), [(2, 3), (0, 3)], (False, True)),
]


@pytest.mark.parametrize("dtype", FLOATS + ("int32",))
@pytest.mark.parametrize("build, shapes, flags", TRANSPOSE_CASES)
def test_transposed_operand_becomes_a_gemm_flag(dtype, build, shapes, flags):
    rng = np.random.default_rng(5)
    values = [random_array(s, dtype, rng) for s in shapes]
    inputs = [_matrix(dtype, (None,) * len(s), name) for s, name in zip(shapes, "ab")]
    out = build(*inputs)
    assert "dimshuffle" in op_names([out])
    for layout in layouts(values[0]):
        laid_out = [layouts(v)[layout] for v in values]
        f = check_rewrite(inputs, out, laid_out, fired=["local_matmul_transpose_flags"],
                          present=["gemm"], absent=["dimshuffle", "matmul"], exclude=NO_FUSION)
    (gemm,) = [n for n in toposort(f.fgraph.outputs) if n.op.name == "gemm"]
    assert gemm.arg == flags and set(gemm.src) == set(inputs)


def test_transposed_product_of_one_input():
    x = _matrix("float64")
    f = check_rewrite([x], gt.dot(x, x.T), _values("float64"), present=["gemm"],
                      absent=["dimshuffle"], exclude=NO_FUSION)
    (gemm,) = [n for n in toposort(f.fgraph.outputs) if n.op.name == "gemm"]
    assert gemm.src == (x, x) and gemm.arg == (False, True)


def test_a_gemm_of_a_transposed_operand_flips_its_flag():
    a, b = _matrix("float64", name="a"), _matrix("float64", name="b")
    out = gt.gemm(a.T, b, trans_a=True)  # (a.T).T @ b == a @ b
    f = check_rewrite([a, b], out, _values("float64", (2, 3)) + _values("float64", (3, 4)),
                      fired=["local_matmul_transpose_flags"], present=["matmul"],
                      absent=["gemm", "dimshuffle"], exclude=NO_FUSION)
    assert compiled_ops(f) == ["matmul"]


@pytest.mark.parametrize("build, shapes", [
    (lambda a, b: gt.matmul(gt.transpose(a, (1, 0, 2)), b), [(3, 2, 4), (4, 5)]),  # batch axes
    (lambda a, b: gt.matmul(a.dimshuffle(1, "x", 0), b), [(3, 2), (1, 3, 4)]),      # adds an axis
    (lambda a, b: gt.matmul(gt.dimshuffle(a, (2, 1)), b), [(1, 3, 2), (3, 4)]),     # drops an axis
])
def test_other_dimshuffles_are_not_absorbed(build, shapes):
    inputs = [_matrix("float64", (1,) + (None,) * (len(s) - 1) if s[0] == 1 else (None,) * len(s),
                      name) for s, name in zip(shapes, "ab")]
    values = [random_array(s, "float64") for s in shapes]
    f = check_rewrite(inputs, build(*inputs), values, present=["dimshuffle", "matmul"],
                      absent=["gemm"], exclude=NO_FUSION)
    assert "local_matmul_transpose_flags" not in f.fgraph.fired


def test_gradient_of_a_dense_layer_uses_gemm():
    # d(sum(x @ W))/dW is x.T @ g and d/dx is g @ W.T: both become transpose flags
    x, w = _matrix("float64", name="x"), _matrix("float64", name="W")
    cost = gt.sum(gt.tanh(gt.dot(x, w)))
    gx, gw = gc.grad(cost, [x, w])
    values = _values("float64", (5, 3)) + _values("float64", (3, 4))
    f = check_rewrite([x, w], [gx, gw], values, fired=["local_matmul_transpose_flags"],
                      present=["gemm"], exclude=NO_FUSION)
    gemms = [n for n in toposort(f.fgraph.outputs) if n.op.name == "gemm"]
    assert sorted(n.arg for n in gemms) == [(False, True), (True, False)]


def test_excluding_the_rule_keeps_the_transpose():
    a, b = _matrix("float64", name="a"), _matrix("float64", name="b")
    f = check_rewrite([a, b], gt.dot(a.T, b), _values("float64", (3, 2)) * 2,
                      present=["dimshuffle", "matmul"], absent=["gemm"],
                      exclude=NO_FUSION + ("local_matmul_transpose_flags",))
    assert "local_matmul_transpose_flags" not in f.fgraph.fired


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("trans", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("dtype", FLOATS)
def test_sum_of_batched_products_is_one_product(dtype, trans, keepdims):
    rng = np.random.default_rng(2)
    for n, layout in ((5, "contiguous"), (5, "negative"), (0, "contiguous")):
        # equal batch sizes must be provable: static here, tied through shapes in a scan
        a = gt.tensor(dtype, (n, None, None), "a")
        b = gt.tensor(dtype, (n, None, None), "b")
        left = gt.transpose(a, (0, 2, 1)) if trans[0] else a
        right = gt.transpose(b, (0, 2, 1)) if trans[1] else b
        out = gt.sum(gt.matmul(left, right), axis=0, keepdims=keepdims)
        shape_a = (n, 4, 3) if trans[0] else (n, 3, 4)
        shape_b = (n, 2, 4) if trans[1] else (n, 4, 2)
        values = [layouts(random_array(s, dtype, rng))[layout] for s in (shape_a, shape_b)]
        check_rewrite([a, b], out, values, fired=["local_sum_of_batched_products"],
                      absent=["sum"], exclude=NO_FUSION)


def test_sum_of_batched_products_declines_when_batches_may_broadcast():
    a = gt.tensor("float64", (None, None, None), "a")
    b = gt.tensor("float64", (None, None, None), "b")
    out = gt.sum(gt.matmul(a, b), axis=0)
    values = [random_array((1, 3, 4), "float64"), random_array((6, 4, 2), "float64")]
    f = check_rewrite([a, b], out, values, exclude=NO_FUSION)
    assert "local_sum_of_batched_products" not in f.fgraph.fired
