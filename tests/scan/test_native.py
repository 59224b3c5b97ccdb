"""The native step loop of compiled scans (graphc/scan/native.py): the loops it takes run there
and match NumPy loops; the ones it cannot take fall back to the Python loop, still right."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from graphc.runtime.blas import gemm_call, gemm_functions
from tests.helpers import assert_matches, layouts, random_array

native = importlib.import_module("graphc.scan.native")

pytestmark = pytest.mark.skipif(gemm_functions() is None, reason="NumPy's BLAS has no ILP64 cblas")


@pytest.fixture
def runs(monkeypatch):
    """How many scan calls ran their steps in the native loop."""
    count = {"native": 0}
    original = native.StepPlan.run

    def counted(self, *args):
        done = original(self, *args)
        count["native"] += 1
        return done

    monkeypatch.setattr(native.StepPlan, "run", counted)
    return count


def _rnn_numpy(x, h0, w, u, b):
    h, out = h0, []
    for row in x:
        h = np.tanh(row @ w + h @ u + b)
        out.append(h)
    return np.array(out)


def _rnn(dtype):
    x, h0 = gt.tensor3("x", dtype=dtype), gt.matrix("h0", dtype=dtype)
    w, u, b = gt.matrix("w", dtype=dtype), gt.matrix("u", dtype=dtype), gt.vector("b", dtype=dtype)
    h, _ = gc.scan(lambda x_t, h: gt.tanh(gt.dot(x_t, w) + gt.dot(h, u) + b), sequences=x,
                   outputs_info=h0)
    return [x, h0, w, u, b], h


@pytest.mark.parametrize("hidden", [5, 24])  # the step's product as a loop / through BLAS
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rnn_runs_natively_on_every_layout(dtype, hidden, runs):
    assert (8 * hidden * hidden > native.SMALL_PRODUCT) == (hidden == 24)
    inputs, h = _rnn(dtype)
    f = gc.function(inputs, h)
    rng = np.random.default_rng(0)
    shapes = [(7, 8, 3), (8, hidden), (3, hidden), (hidden, hidden), (hidden,)]
    values = [random_array(s, dtype, rng, -1, 1) for s in shapes]
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    for x in layouts(values[0]).values():
        for u in layouts(values[3]).values():  # transposed and strided weights: BLAS flags
            args = [x, values[1], values[2], u, values[4]]
            got = f(*args)
            assert got.dtype == dtype
            np.testing.assert_allclose(got, _rnn_numpy(*args), **tol)
    assert runs["native"] == len(layouts(values[0])) * len(layouts(values[3]))


def test_rnn_gradient_runs_natively_and_matches_finite_differences(runs):
    def cost(x, h0, w, u, b):
        h, _ = gc.scan(lambda x_t, h: gt.tanh(gt.dot(x_t, w) + gt.dot(h, u) + b), sequences=x,
                       outputs_info=h0)
        return (h * h).sum()

    rng = np.random.default_rng(1)
    point = [rng.standard_normal(s) * 0.5 for s in [(5, 3, 2), (3, 4), (2, 4), (4, 4), (4,)]]
    verify_grad(cost, point, mode="FAST_RUN")
    assert runs["native"] > 0


def test_vector_state_products_and_history_taps(runs):
    """1-d states (vector @ matrix products) and a state read two steps back."""
    x, h0, w = gt.dmatrix("x"), gt.dmatrix("h0"), gt.dmatrix("w")
    h, _ = gc.scan(lambda x_t, h2, h1: gt.tanh(x_t + gt.dot(h1, w) - 0.5 * h2), sequences=x,
                   outputs_info=dict(initial=h0, taps=[-2, -1]))
    rng = np.random.default_rng(2)
    xv, h0v = rng.standard_normal((6, 3)), rng.standard_normal((2, 3))
    wv = rng.standard_normal((3, 3))
    expected, states = [], [h0v[0], h0v[1]]
    for row in xv:
        states.append(np.tanh(row + states[-1] @ wv - 0.5 * states[-2]))
        expected.append(states[-1])
    assert_matches(gc.function([x, h0, w], h)(xv, h0v, wv), np.array(expected))
    assert runs["native"] == 1


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32"])
def test_map_outputs_and_integer_states(dtype, runs):
    x = gt.matrix("x", dtype=dtype)
    init = gt.zeros_like(x[0])
    (total, doubled), _ = gc.scan(lambda row, acc: [acc + row, row * 2], sequences=x,
                                  outputs_info=[init, None])
    value = random_array((5, 3), dtype)
    got = gc.function([x], [total, doubled])(value)
    assert_matches(got[0], np.cumsum(value, axis=0, dtype=dtype))
    assert_matches(got[1], value * 2)
    assert runs["native"] == 1


def test_until_stops_the_native_loop(runs):
    x0 = gt.dscalar("x0")
    values, _ = gc.scan(lambda v: (v * 2.0, gc.until(v * 2.0 > 100.0)), outputs_info=x0, n_steps=50)
    f = gc.function([x0], values)
    assert_matches(f(3.0), np.array([6.0, 12.0, 24.0, 48.0, 96.0, 192.0]))
    assert_matches(f(200.0), np.array([400.0]))  # stops after step 0: no native call needed
    assert runs["native"] == 1


def test_reducing_sum_to_in_the_step(runs):
    """The backward step of a bias gradient sums over the batch at every step (a kernel)."""
    x, h0, b = gt.dtensor3("x"), gt.dmatrix("h0"), gt.dvector("b")
    h, _ = gc.scan(lambda x_t, h: gt.tanh(x_t + h + b), sequences=x, outputs_info=h0)
    f = gc.function([x, h0, b], gc.grad((h ** 2).sum(), [b, h0]), mode="FAST_RUN")
    ref = gc.function([x, h0, b], gc.grad((h ** 2).sum(), [b, h0]), mode="reference")
    rng = np.random.default_rng(3)
    args = [rng.standard_normal((6, 4, 3)), rng.standard_normal((4, 3)), rng.standard_normal(3)]
    for got, expected in zip(f(*args), ref(*args)):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert runs["native"] == 2  # the forward and the backward scan


def test_ops_without_native_code_are_called_back(runs):
    x = gt.dmatrix("x")
    sorted_rows, _ = gc.scan(lambda row: gt.sort(row)[::-1] * 2, sequences=x)
    value = random_array((4, 5), "float64")
    assert_matches(gc.function([x], sorted_rows)(value), -np.sort(-value, axis=1) * 2)
    assert runs["native"] == 1


def test_a_per_step_index_is_not_a_fixed_view(runs):
    x, idx = gt.dmatrix("x"), gt.lvector("idx")
    picked, _ = gc.scan(lambda row, i: row[i:] * 1.5, sequences=[x, idx])
    value = random_array((4, 5), "float64")
    f = gc.function([x, idx], picked)
    with pytest.raises(Exception):  # rows of different lengths cannot stack
        f(value, np.array([0, 1, 2, 3]))
    got = gc.function([x, idx], gc.scan(lambda row, i: row[i] * 1.5, sequences=[x, idx])[0])(
        value, np.array([0, 3, 1, 4]))
    assert_matches(got, value[np.arange(4), [0, 3, 1, 4]] * 1.5)


def test_a_failing_step_names_its_step_and_keeps_the_error(runs):
    x, idx = gt.dmatrix("x"), gt.lvector("idx")
    picked, _ = gc.scan(lambda row, i: row[i] * 1.5, sequences=[x, idx])
    f = gc.function([x, idx], picked)
    with pytest.raises(Exception, match="step 2"):
        f(random_array((4, 5), "float64"), np.array([0, 1, 9, 2]))


def test_big_steps_keep_the_threaded_python_loop(runs):
    x = gt.dtensor3("x")
    init = gt.zeros_like(x[0])
    total, _ = gc.scan(lambda row, acc: acc + gt.exp(row), sequences=x, outputs_info=init)
    value = random_array((3, 300, 300), "float64")
    got = gc.function([x], total)(value)
    np.testing.assert_allclose(got, np.cumsum(np.exp(value), axis=0), rtol=1e-12)
    assert runs["native"] == 0


def test_one_step_and_zero_steps_need_no_native_loop(runs):
    inputs, h = _rnn("float64")
    f = gc.function(inputs, h)
    rng = np.random.default_rng(4)
    for steps in (0, 1):
        values = [rng.standard_normal(s) for s in [(steps, 2, 3), (2, 4), (3, 4), (4, 4), (4,)]]
        assert_matches(f(*values), _rnn_numpy(*values).reshape((steps, 2, 4)))
    assert runs["native"] == 0


@pytest.mark.parametrize("shape_a, shape_b, trans_a, trans_b", [
    ((2, 3), (3, 4), False, False), ((3, 2), (3, 4), True, False),
    ((2, 3), (4, 3), False, True), ((3, 2), (4, 3), True, True), ((3,), (3, 4), False, False),
    ((2, 3), (3,), False, False), ((1, 3), (3, 1), False, False),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemm_call_matches_numpy_on_every_layout(shape_a, shape_b, trans_a, trans_b, dtype):
    import ctypes

    rng = np.random.default_rng(5)
    a0, b0 = random_array(shape_a, dtype, rng), random_array(shape_b, dtype, rng)
    op_a = a0.T if trans_a else a0
    op_b = b0.T if trans_b else b0
    expected = op_a @ op_b
    for a in layouts(a0).values():
        for b in layouts(b0).values():
            out = np.empty(expected.shape, dtype)
            call = gemm_call(a, b, out, trans_a, trans_b)
            if call is None:  # only layouts BLAS cannot take are refused
                assert any(x.ndim and min(x.strides) < 0 or not _blas_layout(x) for x in (a, b))
                continue
            function, numbers = call
            scalar = ctypes.c_float if dtype == "float32" else ctypes.c_double
            i32, i64, ptr = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
            proto = ctypes.CFUNCTYPE(None, i32, i32, i32, i64, i64, i64, scalar, ptr, i64, ptr,
                                     i64, scalar, ptr, i64)
            order, ta, tb, m, n, k, lda, ldb, ldc = numbers
            proto(function)(order, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb,
                            0.0, out.ctypes.data, ldc)
            np.testing.assert_allclose(out, expected, rtol=1e-5)


def _blas_layout(x: np.ndarray) -> bool:
    item = x.itemsize
    return x.ndim == 1 and x.strides[0] == item or x.ndim == 2 and item in x.strides


def test_a_shape_that_changes_between_steps_goes_on_in_python(runs):
    """A called-back node whose shape changes stops the native loop; Python redoes that step."""
    x, idx = gt.dmatrix("x"), gt.lvector("idx")
    sums, _ = gc.scan(lambda row, i: row[:i].sum() * 2.0, sequences=[x, idx])
    value = random_array((5, 6), "float64")
    counts = np.array([2, 2, 3, 6, 1])
    got = gc.function([x, idx], sums)(value, counts)
    assert_matches(got, np.array([value[t, :c].sum() * 2.0 for t, c in enumerate(counts)]))
    assert runs["native"] == 1


def test_batched_products_in_the_step_run_on_the_python_loop(runs):
    x, w = gt.tensor4("x", dtype="float64"), gt.dtensor3("w")
    init = gt.zeros_like(x[0])
    total, _ = gc.scan(lambda row, acc: acc + gt.matmul(row, w), sequences=x, outputs_info=init)
    rng = np.random.default_rng(7)
    xv, wv = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((2, 3, 3))
    expected = np.cumsum(np.matmul(xv, wv), axis=0)
    np.testing.assert_allclose(gc.function([x, w], total)(xv, wv), expected, rtol=1e-12)
    assert runs["native"] == 0


def test_gradient_of_slices_is_native(monkeypatch, runs):
    """The backward step adds the gradients of gate slices into a buffer (inc_subtensor at a
    fixed index) with kernels, without calling back into Python."""
    bodies = []
    original = native.driver_source

    def spy(body):
        bodies.append([ins[0] for ins in body])
        return original(body)

    monkeypatch.setattr(native, "driver_source", spy)

    def cost(x, h0, w):
        def step(x_t, h):
            z = gt.dot(h, w) + x_t
            return gt.tanh(z[:, :3]) * gt.sigmoid(z[:, 3:])

        h, _ = gc.scan(step, sequences=x, outputs_info=h0)
        return (h * h).sum()

    rng = np.random.default_rng(8)
    point = [rng.standard_normal(s) * 0.5 for s in [(5, 2, 6), (2, 3), (3, 6)]]
    verify_grad(cost, point, mode="FAST_RUN")
    x, h0, w = gt.dtensor3("x"), gt.dmatrix("h0"), gt.dmatrix("w")
    f = gc.function([x, h0, w], gc.grad(cost(x, h0, w), [w, h0]))
    ref = gc.function([x, h0, w], gc.grad(cost(x, h0, w), [w, h0]), mode="reference")
    bodies.clear()
    for got, expected in zip(f(*point), ref(*point)):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert len(bodies) == 2 and all("call" not in body for body in bodies)


def test_row_pool_and_random_kernels_in_the_step_are_called_back(runs):
    x = gt.tensor4("x", dtype="float64")
    pooled, _ = gc.scan(lambda img: gt.nnet.pool_2d(gt.nnet.softmax(img), (2, 2)), sequences=x)
    value = random_array((3, 2, 4, 4), "float64")
    got = gc.function([x], pooled)(value)
    ref = gc.function([x], pooled, mode="reference")(value)
    assert_matches(got, ref)
    draws = {}
    for mode in ("FAST_RUN", "reference"):
        stream = gc.random.RandomStream(3)
        walk, updates = gc.scan(lambda h: h + stream.normal(size=(4,)), outputs_info=gt.zeros((4,)),
                                n_steps=5)
        draws[mode] = gc.function([], walk, updates=updates, mode=mode)()
    assert_matches(draws["FAST_RUN"], draws["reference"])  # the same numbers on every backend
    assert runs["native"] == 2


def test_rnn_gradient_through_blas_products_matches_the_reference(runs):
    inputs, h = _rnn("float64")
    cost = (h * h).sum()
    grads = gc.grad(cost, inputs[1:])
    rng = np.random.default_rng(9)
    shapes = [(6, 8, 3), (8, 24), (3, 24), (24, 24), (24,)]
    values = [rng.standard_normal(s) * 0.3 for s in shapes]
    got = gc.function(inputs, grads)(*values)
    expected = gc.function(inputs, grads, mode="reference")(*values)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
    assert runs["native"] == 2


def test_kernels_write_new_states_straight_into_their_rows(monkeypatch, runs):
    bodies = []
    original = native.driver_source
    monkeypatch.setattr(native, "driver_source",
                        lambda body: bodies.append([i[0] for i in body]) or original(body))
    inputs, h = _rnn("float64")
    (total, double), _ = gc.scan(lambda x_t, acc: [acc + x_t, gt.tanh(acc) * 2],
                                 sequences=inputs[0],
                                 outputs_info=[gt.zeros_like(inputs[0][0]), None])
    rng = np.random.default_rng(10)
    values = [rng.standard_normal(s) for s in [(6, 2, 3), (2, 4), (3, 4), (4, 4), (4,)]]
    f = gc.function(inputs, [h, total, double], on_unused_input="ignore")
    got = f(*values)
    assert_matches(got[0], _rnn_numpy(*values))
    assert_matches(got[1], np.cumsum(values[0], axis=0))
    previous = np.concatenate([np.zeros((1, 2, 3)), np.cumsum(values[0], axis=0)[:-1]])
    assert_matches(got[2], np.tanh(previous) * 2)
    assert bodies and all("copy" not in body for body in bodies)
