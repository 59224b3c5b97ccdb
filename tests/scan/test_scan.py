"""scan forward: every form of the loop against a NumPy loop, in every mode."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from tests.helpers import MODES, assert_matches, check_against_numpy, layouts, random_array


def _only(out):
    return out[0]


# --- cumulative sum over dtypes and layouts ----------------------------------------------------

CUMSUM_CASES = [
    ("float32", (5, 3)), ("float64", (5, 3)), ("int32", (4, 2)), ("int64", (6,)),
    ("float64", (0, 3)), ("float32", (1, 1)), ("float64", (7, 1, 2)),
]


@pytest.mark.parametrize("dtype,shape", CUMSUM_CASES)
def test_cumulative_sum(dtype, shape):
    value = random_array(shape, dtype)
    for arr in layouts(value).values():
        def build(x):
            init = gt.zeros_like(x[0]) if shape[0] else gt.zeros(shape[1:], dtype=dtype)
            return _only(gc.scan(lambda row, acc: acc + row, sequences=x, outputs_info=init))

        check_against_numpy(build, lambda x: np.cumsum(x, axis=0, dtype=dtype), [arr])


# --- RNN ---------------------------------------------------------------------------------------

def _numpy_rnn(x, h0, w, u, b):
    h, out = h0, []
    for row in x:
        h = np.tanh(row @ w + h @ u + b)
        out.append(h)
    return np.array(out, dtype=x.dtype).reshape((len(x),) + h0.shape)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("steps", [0, 1, 6])
def test_rnn_forward(dtype, steps):
    rng = np.random.default_rng(1)
    x = random_array((steps, 4, 3), dtype, rng, -1, 1)
    h0 = random_array((4, 5), dtype, rng, -1, 1)
    w = random_array((3, 5), dtype, rng, -0.5, 0.5)
    u = random_array((5, 5), dtype, rng, -0.5, 0.5)
    b = random_array((5,), dtype, rng, -0.5, 0.5)

    def build(x, h0, w, u, b):
        def step(x_t, h):
            return gt.tanh(gt.dot(x_t, w) + gt.dot(h, u) + b)

        return _only(gc.scan(step, sequences=x, outputs_info=h0))

    for xl in layouts(x).values():
        check_against_numpy(build, _numpy_rnn, [xl, h0, w, u, b])


def test_rnn_non_sequences_are_passed_to_the_step():
    rng = np.random.default_rng(2)
    values = [random_array(s, "float64", rng, -1, 1) for s in [(5, 2, 3), (2, 4), (3, 4), (4, 4), (4,)]]

    def build(x, h0, w, u, b):
        def step(x_t, h, w_, u_, b_):
            return gt.tanh(gt.dot(x_t, w_) + gt.dot(h, u_) + b_)

        return _only(gc.scan(step, sequences=x, outputs_info=h0, non_sequences=[w, u, b], strict=True))

    check_against_numpy(build, _numpy_rnn, values)


# --- n_steps only, taps, go_backwards, map outputs --------------------------------------------

def test_power_iteration_with_n_steps_only():
    m = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]])

    def build(a, v0):
        def step(v, a_):
            w = gt.dot(a_, v)
            return w / gt.sqrt((w * w).sum())

        vs, _ = gc.scan(step, outputs_info=v0, non_sequences=a, n_steps=60)
        assert vs.type.shape == (60, None)
        return vs[-1]

    def reference(a, v0):
        v = v0
        for _ in range(60):
            v = a @ v
            v = v / np.sqrt((v * v).sum())
        return v

    check_against_numpy(build, reference, [m, np.ones(3)])
    top = np.linalg.eigh(m)[1][:, -1]  # the loop converges to the top eigenvector
    assert np.allclose(np.abs(reference(m, np.ones(3))), np.abs(top), atol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "int64"])
def test_output_taps_fibonacci(dtype):
    def build(init):
        fib, _ = gc.scan(lambda a, b: a + b, outputs_info=dict(initial=init, taps=[-2, -1]), n_steps=8)
        return fib

    def reference(init):
        vals = list(init[:2])  # Theano reads the first -min(taps) rows
        for _ in range(8):
            vals.append(vals[-2] + vals[-1])
        return np.array(vals[2:], dtype=dtype)

    check_against_numpy(build, reference, [np.array([1, 1], dtype=dtype)])
    check_against_numpy(build, reference, [np.array([0, 1, 5], dtype=dtype)])  # the extra row is unused


@pytest.mark.parametrize("go_backwards", [False, True])
def test_sequence_taps(go_backwards):
    x = random_array((7, 2), "float64")

    def build(x):
        out, _ = gc.scan(lambda prev, cur, nxt: prev * 2 + cur - nxt,
                         sequences=dict(input=x, taps=[-1, 0, 2]), go_backwards=go_backwards)
        return out

    def reference(x):
        x = x[::-1] if go_backwards else x
        return np.array([x[t - 1] * 2 + x[t] - x[t + 2] for t in range(1, len(x) - 2)])

    for arr in layouts(x).values():
        check_against_numpy(build, reference, [arr])


def test_map_outputs_next_to_states():
    x = random_array((5, 3), "float32")

    def build(x):
        outs, _ = gc.scan(lambda row, acc: [row * 2, acc + row.sum()], sequences=x,
                          outputs_info=[None, gt.constant(np.float32(0))])
        return outs

    def reference(x):
        return [x * 2, np.cumsum(x.sum(axis=1), dtype="float32")]

    check_against_numpy(build, reference, [x])


def test_mixed_taps_several_outputs():
    x = random_array((6,), "float64")

    def build(x, h0, g0):
        def step(x_t, h2, h1, g):
            return h1 + 0.5 * h2 + x_t, g * x_t, x_t * h1

        outs, _ = gc.scan(step, sequences=x, outputs_info=[dict(initial=h0, taps=[-2, -1]), g0, None])
        return outs

    def reference(x, h0, g0):
        h, g, hs, gs, ms = list(h0), g0, [], [], []
        for x_t in x:
            ms.append(x_t * h[-1])
            h.append(h[-1] + 0.5 * h[-2] + x_t)
            g = g * x_t
            hs.append(h[-1])
            gs.append(g)
        return [np.array(hs), np.array(gs), np.array(ms)]

    check_against_numpy(build, reference, [x, np.array([0.5, -1.0]), np.array(2.0)])


def test_map_reduce_foldl_foldr():
    x = random_array((5, 2), "float64")
    for mode in MODES:
        xs = gt.dmatrix("xs")
        doubled, _ = gc.map(lambda row: row * 2, sequences=xs)
        total, _ = gc.reduce(lambda row, acc: acc + row, sequences=xs, outputs_info=gt.zeros_like(xs[0]))
        left, _ = gc.foldl(lambda row, acc: acc * 2 + row, sequences=xs, outputs_info=gt.zeros_like(xs[0]))
        right, _ = gc.foldr(lambda row, acc: acc * 2 + row, sequences=xs, outputs_info=gt.zeros_like(xs[0]))
        f = gc.function([xs], [doubled, total, left, right], mode=mode)
        got = f(x)
        ref_left = ref_right = np.zeros(2)
        for row in x:
            ref_left = ref_left * 2 + row
        for row in x[::-1]:
            ref_right = ref_right * 2 + row
        for g, e in zip(got, [x * 2, x.sum(axis=0), ref_left, ref_right]):
            assert_matches(g, e)


def test_reduce_of_no_steps_is_the_initial_value():
    for mode in MODES:
        xs = gt.dmatrix("xs")
        total, _ = gc.reduce(lambda row, acc: acc + row, sequences=xs, outputs_info=gt.ones_like(xs.sum(axis=0)))
        f = gc.function([xs], total, mode=mode)
        assert_matches(f(np.zeros((0, 3))), np.ones(3))


# --- while loops, updates -----------------------------------------------------------------------

def test_until_stops_after_the_condition_holds():
    for mode in MODES:
        x = gt.dscalar("x")
        out, _ = gc.scan(lambda p: (p * 2, gc.until(p * 2 > 50)), outputs_info=x, n_steps=100)
        assert out.type.shape == (None,)
        f = gc.function([x], [out, out.shape[0]], mode=mode)
        values, length = f(1.0)
        assert_matches(values, np.array([2.0, 4, 8, 16, 32, 64]))
        assert int(length) == 6
        assert_matches(f(100.0)[0], np.array([200.0]))


def test_until_bounded_by_sequences():
    for mode in MODES:
        x = gt.dvector("x")
        out, _ = gc.scan(lambda v, s: (s + v, gc.until(s + v > 100)), sequences=x,
                         outputs_info=gt.constant(0.0))
        f = gc.function([x], out, mode=mode)
        assert_matches(f(np.array([1.0, 2, 3])), np.array([1.0, 3, 6]))
        assert_matches(f(np.array([1.0, 200, 3])), np.array([1.0, 201]))


def test_updates_of_shared_variables():
    for mode in MODES:
        counter = gc.shared(np.array(0, "int64"), name="counter")
        acc = gc.shared(np.zeros(3), name="acc")
        xs = gt.dmatrix("xs")

        def step(row):
            return row * acc.sum(), {counter: counter + 1, acc: acc + row}

        ys, updates = gc.scan(step, sequences=xs)
        assert set(updates) == {counter, acc}
        f = gc.function([xs], ys, updates=updates, mode=mode)
        x = np.arange(6.0).reshape(3, 2).repeat([2, 1], axis=1)
        got = f(x)
        expected, running = [], np.zeros(3)
        for row in x:
            expected.append(row * running.sum())
            running = running + row
        assert_matches(got, np.array(expected))
        assert int(counter.get_value()) == 3
        assert_matches(acc.get_value(), running)
        f(x[:1])
        assert int(counter.get_value()) == 4


def test_random_draws_inside_the_step_differ_per_step_and_call():
    import graphc.random as gr

    results = []
    for mode in MODES:
        srng = gr.RandomStream(seed=7)
        xs = gt.dmatrix("xs")
        ys, updates = gc.scan(lambda row: row + srng.normal(size=(3,), dtype="float64"), sequences=xs)
        assert len(updates) == 1
        f = gc.function([xs], ys, updates=updates, mode=mode)
        first, second = f(np.zeros((4, 3))), f(np.zeros((4, 3)))
        assert len({tuple(r) for r in first}) == 4
        assert not np.array_equal(first, second)
        results.append(first)
    assert_matches(results[0], results[1])


# --- outer values, nesting, shapes --------------------------------------------------------------

def test_implicit_non_sequences_and_shared_weights():
    w = gc.shared(np.array([[1.0, 2.0], [3.0, 4.0]]), name="w")
    for mode in MODES:
        xs, scale = gt.dmatrix("xs"), gt.dscalar("scale")
        ys, _ = gc.scan(lambda row: gt.dot(row, w.T) * scale, sequences=xs)
        f = gc.function([xs, scale], ys, mode=mode)
        x = random_array((4, 2), "float64")
        assert_matches(f(x, 2.0), x @ w.get_value().T * 2)


def test_strict_rejects_values_not_given_as_non_sequences():
    w = gc.shared(np.ones(2), name="w")
    with pytest.raises(ValueError, match="strict=True.*w"):
        gc.scan(lambda row: row * w, sequences=gt.dmatrix("xs"), strict=True)


def test_nested_scan():
    x = random_array((3, 4), "float64")

    def build(xs):
        def row_cumsum(row):
            out, _ = gc.scan(lambda v, acc: acc + v, sequences=row, outputs_info=gt.constant(0.0))
            return out

        out, _ = gc.map(row_cumsum, sequences=xs)
        return out

    check_against_numpy(build, lambda x: np.cumsum(x, axis=1), [x])


def test_symbolic_n_steps_and_zero_steps():
    for mode in MODES:
        x, n = gt.dvector("x"), gt.lscalar("n")
        out, _ = gc.scan(lambda s: s * 2, outputs_info=x, n_steps=n)
        f = gc.function([x, n], out, mode=mode)
        assert_matches(f(np.ones(2), 3), np.array([[2.0, 2], [4, 4], [8, 8]]))
        assert_matches(f(np.ones(2), 0), np.zeros((0, 2)))


def test_n_steps_shorter_than_the_sequences_uses_their_first_rows():
    for mode in MODES:
        x = gt.dvector("x")
        out, _ = gc.scan(lambda v: v + 1, sequences=x, n_steps=2)
        assert_matches(gc.function([x], out, mode=mode)(np.arange(5.0)), np.array([1.0, 2.0]))
