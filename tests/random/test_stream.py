"""RandomStream: states advance through default updates, re-seeding reproduces, updates can be
turned off or overridden, bad input errors, gradients through the parameters, the graph cache."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.random
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from graphc.random import philox
from tests.helpers import MODES, layouts
from tests.random.test_kernels import draw_kernels


def _all_draws(srng):
    return [srng.uniform(size=(3,)), srng.normal(size=(2, 2), dtype="float32"),
            srng.integers(0, 2**31, size=(4,)), srng.binomial(size=(5,), n=4, p=0.5),
            srng.choice(1000, size=(3,)), srng.permutation(20)]


@pytest.mark.parametrize("mode", MODES)
def test_two_calls_differ_and_reseeding_reproduces(mode):
    srng = gc.random.RandomStream(seed=123)
    f = gc.function([], _all_draws(srng), mode=mode)
    if mode == "FAST_RUN":  # all but choice and permutation run as native kernels
        assert len(draw_kernels(f)) == 4
    first, second = f(), f()
    for a, b in zip(first, second):
        assert not np.array_equal(a, b)
    srng.seed(123)
    for a, b in zip(first, f()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(second, f()):
        np.testing.assert_array_equal(a, b)
    srng.seed(124)
    assert not any(np.array_equal(a, b) for a, b in zip(first, f()))


def test_states_count_calls():
    srng = gc.random.RandomStream(0)
    u = srng.uniform(size=(1000,))
    f = gc.function([], u * 2)  # FAST_RUN: the advance writes into the state's buffer
    for _ in range(3):
        f()
    (state,) = srng.states
    assert [int(w) for w in state.get_value()[2:]] == [3, 0]
    np.testing.assert_array_equal(state.get_value()[:2], philox.initial_state(0, 0)[:2])


def test_every_mode_draws_the_same_numbers():
    results = {}
    for mode in MODES + ("FAST_COMPILE",):
        srng = gc.random.RandomStream(42)
        draws = _all_draws(srng) + [srng.uniform(size=(3,), low=-1.0, high=4.0),
                                    srng.normal(size=(3,), avg=2.0, std=0.5)]
        f = gc.function([], draws, mode=mode)
        results[mode] = [f(), f()]
    for mode, calls in results.items():
        for call, ref_call in zip(calls, results["reference"]):
            for got, expected in zip(call, ref_call):
                assert got.dtype == expected.dtype
                np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0, err_msg=mode)


def test_same_seed_same_numbers_in_another_stream_and_function():
    a = gc.function([], gc.random.RandomStream(5).normal(size=(4,)))
    b = gc.function([], gc.random.RandomStream(5).normal(size=(4,)) + 0)
    np.testing.assert_array_equal(a(), b())
    np.testing.assert_array_equal(a(), b())


def test_no_default_updates_repeats_draws():
    srng = gc.random.RandomStream(1)
    u, v = srng.uniform(size=(3,)), srng.uniform(size=(3,))
    frozen = gc.function([], [u, v], no_default_updates=True)
    first = frozen()
    for a, b in zip(first, frozen()):
        np.testing.assert_array_equal(a, b)
    u_state, v_state = srng.states
    partly = gc.function([], [u, v], no_default_updates=[u_state])
    second, third = partly(), partly()
    np.testing.assert_array_equal(second[0], third[0])
    assert not np.array_equal(second[1], third[1])
    assert int(u_state.get_value()[2]) == 0 and int(v_state.get_value()[2]) == 2


def test_user_updates_win_and_updates_lists_the_states():
    srng = gc.random.RandomStream(2)
    u = srng.uniform(size=(3,))
    (state,) = srng.states
    pinned = gc.function([], u, updates=[(state, state)])
    np.testing.assert_array_equal(pinned(), pinned())
    (pair,) = srng.updates()
    assert pair[0] is state and pair[1] is state.default_update
    explicit = gc.function([], u, updates=srng.updates(), no_default_updates=True)
    assert not np.array_equal(explicit(), explicit())
    assert len(explicit.updates) == 1


def test_only_draws_in_the_graph_advance():
    srng = gc.random.RandomStream(3)
    u, v = srng.uniform(size=(2,)), srng.uniform(size=(2,))
    f = gc.function([], u)
    f()
    f()
    assert [int(s.get_value()[2]) for s in srng.states] == [2, 0]
    g = gc.function([], v)
    assert len(f.updates) == 1 and len(g.updates) == 1


def test_givens_replace_a_draw_and_its_state():
    srng = gc.random.RandomStream(4)
    u = srng.uniform(size=(2,))
    (state,) = srng.states
    fixed = gt.constant(np.array([1, 2, 3, 4], np.uint32))
    f = gc.function([], u, givens={state: fixed})
    np.testing.assert_array_equal(f(), f())  # the state is not read: its update reads the constant
    words = philox.random_words(np.array([1, 2, 3, 4], np.uint32), 4)
    np.testing.assert_array_equal(f(), philox.uniform01(words, "float64"))


def test_default_update_is_a_shared_variable_attribute():
    counter = gc.shared(np.int64(0), name="counter")
    assert counter.default_update is None
    counter.default_update = counter + 1
    f = gc.function([], counter * 10)
    assert [int(f()) for _ in range(3)] == [0, 10, 20]
    assert int(counter.get_value()) == 3
    with pytest.raises(AttributeError):
        counter.op = None  # the node itself stays immutable


def test_a_bad_default_update_is_reported():
    var = gc.shared(np.zeros(3), name="v")
    var.default_update = gt.cast(var, "float32")
    with pytest.raises(TypeError, match="keep dtype"):
        gc.function([], var * 2)


# --- bad input ------------------------------------------------------------------------------------

BUILD_ERRORS = [
    (lambda s: s.uniform(size=(2, -1)), ValueError, "negative dimension"),
    (lambda s: s.uniform(size=(2.5,)), TypeError, "size"),
    (lambda s: s.uniform(size=(2,), dtype="int32"), TypeError, "float32 or float64"),
    (lambda s: s.uniform(size=(3,), low=np.zeros(4)), ValueError, "cannot be broadcast"),
    (lambda s: s.normal(size=(3,), avg=np.zeros((2, 3))), ValueError, "does not fit"),
    (lambda s: s.integers(0, 10, dtype="float32"), TypeError, "integer type"),
    (lambda s: s.integers(0.5, 10), TypeError, "low must be an integer"),
    (lambda s: s.binomial(size=(2,), p=gt.lscalar()), TypeError, "p must be a float"),
    (lambda s: s.choice(np.zeros((2, 2))), ValueError, "vector or an int"),
    (lambda s: s.choice(-3), ValueError, ">= 0"),
    (lambda s: s.choice(3, p=np.ones((3, 1)) / 3), ValueError, "p must be a vector"),
    (lambda s: s.uniform(size=gt.lvector("s")), ValueError, "length must be known"),
]


@pytest.mark.parametrize("build,error,match", BUILD_ERRORS, ids=[e[2] for e in BUILD_ERRORS])
def test_build_errors(build, error, match):
    with pytest.raises(error, match=match):
        build(gc.random.RandomStream(0))


@pytest.mark.parametrize("seed,error", [(-1, ValueError), (2**64, ValueError), (1.5, TypeError),
                                        ("7", TypeError)])
def test_bad_seeds(seed, error):
    with pytest.raises(error, match="seed"):
        gc.random.RandomStream(seed)
    with pytest.raises(error, match="seed"):
        gc.random.RandomStream(0).seed(seed)


def test_no_seed_gives_fresh_streams():
    a = gc.function([], gc.random.RandomStream().uniform(size=(4,)))()
    b = gc.function([], gc.random.RandomStream().uniform(size=(4,)))()
    assert not np.array_equal(a, b)


N, LO, HI, P = gt.lscalar("n"), gt.lscalar("lo"), gt.lscalar("hi"), gt.dscalar("p")
P_PAIR = gt.stack([P, 1 - P])
IN_01 = r"p must be in \[0, 1\]"
# (id, draw of stream s over the inputs N, LO, HI, P, values of (N, LO, HI, P), message)
CALL_ERRORS = [
    ("negative size", lambda s: s.uniform(size=(N, 2)), (-1, 0, 1, 0.5), "negative dimension"),
    ("high == low", lambda s: s.integers(LO, HI, size=(3,)), (1, 4, 4, 0.5), "must be greater"),
    ("high < low", lambda s: s.integers(LO, HI, size=(3,)), (1, 4, 2, 0.5), "must be greater"),
    ("out of int8", lambda s: s.integers(LO, HI, size=(3,), dtype="int8"), (1, 0, 300, 0.5),
     "does not fit int8"),
    ("p > 1", lambda s: s.binomial(size=(2,), p=P), (1, 0, 1, 1.5), IN_01),
    ("p < 0", lambda s: s.bernoulli(p=P, size=(2,)), (1, 0, 1, -0.1), IN_01),
    ("p nan", lambda s: s.bernoulli(p=P, size=(2,)), (1, 0, 1, np.nan), IN_01),
    ("n < 0", lambda s: s.binomial(size=(2,), n=LO), (1, -2, 1, 0.5), "n must be >= 0"),
    ("sample > population", lambda s: s.choice(HI, size=(N,), replace=False), (5, 0, 4, 0.5),
     "without replace"),
    ("empty population", lambda s: s.choice(HI, size=(N,)), (2, 0, 0, 0.5), "population of 0"),
    ("p sum", lambda s: s.choice(2, p=gt.stack([P, P])), (1, 0, 1, 0.3), "sum to"),
    ("p negative", lambda s: s.choice(2, p=P_PAIR), (1, 0, 1, -0.5), "non-negative"),
    ("too few p", lambda s: s.choice(2, size=(2,), replace=False, p=P_PAIR), (1, 0, 1, 1.0),
     "fewer than 2 non-zero"),
    ("p length", lambda s: s.choice(HI, p=P_PAIR), (1, 0, 3, 0.5), "2 entries"),
    ("size vs params", lambda s: s.integers(gt.arange(HI), 10, size=(3,)), (1, 0, 4, 0.5),
     "does not broadcast"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CALL_ERRORS, ids=[c[0] for c in CALL_ERRORS])
def test_call_time_errors_leave_the_state(case, mode):
    _, build, values, match = case
    srng = gc.random.RandomStream(0)
    f = gc.function([N, LO, HI, P], build(srng), mode=mode, on_unused_input="ignore")
    before = [s.get_value() for s in srng.states]
    with pytest.raises(ValueError, match=match):
        f(*values)
    for state, value in zip(srng.states, before):
        np.testing.assert_array_equal(state.get_value(), value)


# --- gradients ------------------------------------------------------------------------------------

def test_gradients_flow_through_uniform_parameters():
    rng = np.random.default_rng(0)
    low = rng.uniform(-1, 0, size=(3, 1))
    high = rng.uniform(1, 2, size=(4,))

    def fn(lo, hi):
        return gc.random.RandomStream(8).uniform(size=(3, 4), low=lo, high=hi)

    for hi in layouts(high).values():
        verify_grad(fn, [low, hi])
    lo, hi = gt.col("lo", dtype="float64"), gt.dvector("hi")
    u = gc.random.RandomStream(8).uniform(size=(3, 4), low=lo, high=hi)
    g_lo, g_hi = gc.grad(u.sum(), [lo, hi])
    f = gc.function([lo, hi], [u, g_lo, g_hi], no_default_updates=True)
    draw, d_lo, d_hi = f(low, high)
    frac = (draw - low) / (high - low)  # the raw uniforms
    np.testing.assert_allclose(d_lo, (1 - frac).sum(axis=1, keepdims=True), rtol=1e-10)
    np.testing.assert_allclose(d_hi, frac.sum(axis=0), rtol=1e-10)


def test_gradients_flow_through_normal_parameters():
    rng = np.random.default_rng(1)
    avg, std = rng.normal(size=(2, 3)), rng.uniform(0.5, 2, size=(1, 3))
    for a in layouts(avg).values():
        verify_grad(lambda m, s: gc.random.RandomStream(9).normal(size=(2, 3), avg=m, std=s),
                    [a, std])


def test_gradient_through_a_choice_of_values():
    values = np.arange(5.0) * 1.5
    for v in layouts(values).values():
        verify_grad(lambda a: gc.random.RandomStream(3).choice(a, size=(4, 2)) ** 2, [v])
        verify_grad(lambda a: gc.random.RandomStream(3).permutation(a) * a, [v])


def test_draws_are_not_differentiable():
    p = gt.dscalar("p")
    draw = gc.random.RandomStream(0).binomial(size=(3,), p=p, dtype="float64")
    with pytest.raises(gc.autodiff.DisconnectedInputError):
        gc.grad(draw.sum(), p)
    g = gc.grad(draw.sum(), p, disconnected_inputs="ignore")
    assert float(gc.function([p], g, on_unused_input="ignore")(0.5)) == 0.0


# --- the graph cache ------------------------------------------------------------------------------

def test_graph_cache_stores_and_reloads_random_graphs():
    def build(seed):
        srng = gc.random.RandomStream(seed)
        x = gt.dvector("x")
        return x, [x * srng.uniform(size=(4,)) + srng.normal(size=(4,)), srng.permutation(6)]

    x, outs = build(77)
    f = gc.function([x], outs)
    x2, outs2 = build(77)
    g = gc.function([x2], outs2)
    assert f.graph_cache in ("miss", "hit") and g.graph_cache == "hit"
    ones = np.ones(4)
    for a, b in zip(f(ones), g(ones)):
        np.testing.assert_array_equal(a, b)
    assert len(g.updates) == 3
    assert not np.array_equal(g(ones)[0], g(ones)[0])


def test_random_graphs_serialise():
    from graphc.ir.serialize import dumps, loads, shared_order

    srng = gc.random.RandomStream(6)
    n = gt.lscalar("n")
    outs = [srng.integers(0, 9, size=(n, 2)), srng.choice(5, size=(n,), p=[0.2] * 5)]
    outs = outs + [s.default_update for s in srng.states]
    shared = shared_order(outs, [n])
    rebuilt = loads(dumps([n], outs, shared), [n], shared)
    assert all(a is b for a, b in zip(rebuilt, outs))  # hash-consing: the very same nodes
