"""Random draws: they are the reference generator's numbers, have the right dtype, shape and
moments, take symbolic sizes and parameters in awkward layouts, and match in every mode."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.random
import graphc.tensor as gt
from graphc.random import philox
from tests.helpers import MODES, layouts
from tests.random.test_kernels import draw_kernels

ALL_MODES = MODES + ("FAST_COMPILE",)
N = 100_000


def _draw(build, seed=7, mode="FAST_RUN", inputs=(), values=(), kernels=None):
    """One call of a function of a draw ``build(srng)`` from a fresh stream (``kernels``: how
    many native draw kernels the FAST_RUN function must have)."""
    srng = gc.random.RandomStream(seed)
    f = gc.function(list(inputs), build(srng), mode=mode)
    if kernels is not None and mode == "FAST_RUN":
        assert len(draw_kernels(f)) == kernels
    return f(*values)


def _words(seed, n, index=0):
    return philox.random_words(philox.initial_state(seed, index), n)


# --- the reference generator's numbers --------------------------------------------------------

@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_is_the_reference_stream(mode, dtype):
    got = _draw(lambda s: s.uniform(size=(3, 5), dtype=dtype), mode=mode, kernels=1)
    per = 1 if dtype == "float32" else 2
    expected = philox.uniform01(_words(7, 15 * per), dtype).reshape(3, 5)
    assert got.dtype == dtype and got.shape == (3, 5)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_normal_and_integers_are_the_reference_stream(mode):
    z = _draw(lambda s: s.normal(size=(7,), dtype="float64"), mode=mode, kernels=1)
    np.testing.assert_array_equal(z, philox.standard_normal(_words(7, 16), "float64", 7))
    ints = _draw(lambda s: s.integers(-5, 1000, size=(9,)), mode=mode)
    pairs = _words(7, 18).reshape(-1, 2)
    assert ints.tolist() == [-5 + (((int(h) << 32 | int(lo)) * 1005) >> 64) for h, lo in pairs]


def test_the_nth_draw_of_a_stream_reads_the_nth_state():
    srng = gc.random.RandomStream(11)
    first, second = srng.uniform(size=(4,)), srng.uniform(size=(4,))
    a, b = gc.function([], [first, second])()
    np.testing.assert_array_equal(a, philox.uniform01(_words(11, 8, index=0), "float64"))
    np.testing.assert_array_equal(b, philox.uniform01(_words(11, 8, index=1), "float64"))


# --- moments on 10^5 draws: mean and variance within 5 sigma -----------------------------------

def _check_moments(sample, mean, var, fourth_central):
    sample = np.asarray(sample, dtype=np.float64).reshape(-1)
    n = sample.size
    assert abs(sample.mean() - mean) < 5 * np.sqrt(var / n), (sample.mean(), mean)
    var_sd = np.sqrt((fourth_central - var**2) / n)
    assert abs(sample.var() - var) < 5 * var_sd, (sample.var(), var)


def _uniform_moments(low, high):
    w = high - low
    return (low + high) / 2, w**2 / 12, w**4 / 80


def _discrete_uniform_moments(low, high):
    n = high - low
    return (low + high - 1) / 2, (n**2 - 1) / 12, (n**2 - 1) * (3 * n**2 - 7) / 240


def _binomial_moments(n, p):
    var = n * p * (1 - p)
    return n * p, var, var * (1 + 3 * (n - 2) * p * (1 - p))


MOMENT_CASES = {
    "uniform32": (lambda s: s.uniform(size=(N,), low=-2, high=3, dtype="float32"),
                  _uniform_moments(-2, 3)),
    "uniform64": (lambda s: s.uniform(size=(100, N // 100), low=1.5, high=2.0, dtype="float64"),
                  _uniform_moments(1.5, 2.0)),
    "normal32": (lambda s: s.normal(size=(N,), avg=1.0, std=2.0, dtype="float32"),
                 (1.0, 4.0, 48.0)),
    "normal64": (lambda s: s.normal(size=(N - 1,), dtype="float64"), (0.0, 1.0, 3.0)),
    "integers": (lambda s: s.integers(-3, 10, size=(N,)), _discrete_uniform_moments(-3, 10)),
    "integers_wide": (lambda s: s.integers(0, 2**40, size=(N,)),
                      _discrete_uniform_moments(0, 2**40)),
    "binomial": (lambda s: s.binomial(size=(N,), n=10, p=0.3), _binomial_moments(10, 0.3)),
    "bernoulli": (lambda s: s.bernoulli(p=0.8, size=(N,), dtype="float32"),
                  _binomial_moments(1, 0.8)),
    "choice": (lambda s: s.choice(6, size=(N,)), _discrete_uniform_moments(0, 6)),
    "choice_p": (lambda s: s.choice(np.array([0.0, 1.0]), size=(N,), p=np.array([0.25, 0.75])),
                 _binomial_moments(1, 0.75)),
    "permutation": (lambda s: s.permutation(N), _discrete_uniform_moments(0, N)),
}


@pytest.mark.parametrize("case", list(MOMENT_CASES))
def test_moments(case):
    build, moments = MOMENT_CASES[case]
    native = case.startswith(("uniform", "normal", "integers", "binomial", "bernoulli"))
    _check_moments(_draw(build, kernels=1 if native else 0), *moments)


def test_choice_frequencies_follow_p():
    p = np.array([0.1, 0.0, 0.2, 0.3, 0.4])
    got = _draw(lambda s: s.choice(5, size=(N,), p=p))
    counts = np.bincount(got, minlength=5)
    assert counts[1] == 0
    np.testing.assert_array_less(np.abs(counts - N * p), 5 * np.sqrt(N * p * (1 - p)) + 1e-9)


def test_without_replace_draws_are_distinct_and_fair():
    draws = _draw(lambda s: [s.choice(10, size=(3,), replace=False) for _ in range(3000)])
    assert all(len(set(d.tolist())) == 3 for d in draws)
    counts = np.bincount(np.concatenate(draws), minlength=10)  # each member in 3 of 10 samples
    np.testing.assert_array_less(np.abs(counts - 900), 5 * np.sqrt(3000 * 0.3 * 0.7))
    weighted = _draw(lambda s: [s.choice(4, size=(2,), replace=False, p=[0.7, 0.1, 0.1, 0.1])
                                for _ in range(2000)])
    assert all(len(set(d.tolist())) == 2 for d in weighted)
    assert sum(0 in d for d in weighted) > 1600  # the heavy member is nearly always taken


def test_permutation_is_a_permutation():
    perm = _draw(lambda s: s.permutation(1000))
    assert perm.dtype == np.int64 and sorted(perm.tolist()) == list(range(1000))
    assert perm.tolist() != list(range(1000))
    x = np.arange(12.0).reshape(6, 2)
    shuffled = _draw(lambda s: s.permutation(gt.constant(x)))
    assert shuffled.shape == (6, 2)
    assert sorted(map(tuple, shuffled.tolist())) == sorted(map(tuple, x.tolist()))


# --- dtypes, shapes, symbolic sizes ------------------------------------------------------------

DTYPE_CASES = [
    ("uniform", lambda s, d: s.uniform(size=(2, 3), dtype=d), ["float32", "float64"]),
    ("normal", lambda s, d: s.normal(size=(2, 3), dtype=d), ["float32", "float64"]),
    ("integers", lambda s, d: s.integers(0, 100, size=(2, 3), dtype=d),
     ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]),
    ("binomial", lambda s, d: s.binomial(size=(2, 3), n=3, p=0.5, dtype=d),
     ["bool", "int8", "int32", "int64", "uint8", "float32", "float64"]),
]


@pytest.mark.parametrize("name,build,dtypes", DTYPE_CASES, ids=[c[0] for c in DTYPE_CASES])
def test_dtypes(name, build, dtypes):
    for dtype in dtypes:
        node = build(gc.random.RandomStream(1), dtype)
        assert node.dtype == dtype and node.type.shape == (2, 3)
        for mode in MODES:
            got = gc.function([], build(gc.random.RandomStream(1), dtype), mode=mode)()
            assert got.dtype == dtype and got.shape == (2, 3)


def test_integers_bounds_of_small_dtypes():
    got = _draw(lambda s: s.integers(-128, 128, size=(5000,), dtype="int8"))
    assert got.min() == -128 and got.max() == 127
    got = _draw(lambda s: s.integers(2**63 - 3, size=(100,), dtype="uint64"))
    assert got.dtype == np.uint64 and int(got.max()) < 2**63 - 3


def test_default_dtype_is_floatx():
    with gc.config.change_flags(floatX="float32"):
        assert gc.random.RandomStream(0).uniform(size=(2,)).dtype == "float32"
        assert gc.random.RandomStream(0).normal(size=(2,)).dtype == "float32"
    assert gc.random.RandomStream(0).uniform(size=(2,)).dtype == "float64"


@pytest.mark.parametrize("mode", MODES)
def test_symbolic_sizes(mode):
    n = gt.lscalar("n")
    m = gt.iscalar("m")
    x = gt.dmatrix("x")
    vec = gt.lvector("size", shape=(2,))
    srng = gc.random.RandomStream(3)
    draws = [srng.uniform(size=(n, 3)), srng.normal(size=(m, n)), srng.integers(0, 5, size=x.shape),
             srng.binomial(size=vec, p=0.5), srng.choice(7, size=(n,)), srng.permutation(n)]
    assert draws[0].type.shape == (None, 3)
    assert draws[2].type.shape == (None, None)
    f = gc.function([n, m, x, vec], draws, mode=mode)
    shapes = [d.shape for d in f(4, 2, np.zeros((5, 6)), np.array([3, 0]))]
    assert shapes == [(4, 3), (2, 4), (5, 6), (3, 0), (4,), (4,)]
    # a symbolic size draws what the same static size draws
    fixed = gc.function([], gc.random.RandomStream(3).uniform(size=(4, 3)), mode=mode)()
    np.testing.assert_array_equal(gc.function([n], gc.random.RandomStream(3).uniform(size=(n, 3)),
                                              mode=mode)(4), fixed)


def test_sizes_of_zero_and_scalars():
    srng = gc.random.RandomStream(2)
    draws = [srng.uniform(size=(0, 3)), srng.normal(size=()), srng.integers(3, size=(0,)),
             srng.binomial(size=(4, 0), n=2), srng.choice(0, size=(0,)), srng.permutation(0),
             srng.uniform(), srng.integers(5, size=7)]
    for mode in MODES:
        got = gc.function([], draws, mode=mode)()
        assert [g.shape for g in got] == [(0, 3), (), (0,), (4, 0), (0,), (0,), (), (7,)]


# --- parameters: broadcasting, symbolic, awkward layouts ----------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_uniform_and_normal_broadcast_their_parameters(mode):
    low = np.array([[0.0], [10.0], [20.0]])  # (3, 1) against size (3, 4)
    high = low + np.arange(1.0, 5.0)  # (3, 4)
    for name, value in layouts(high).items():
        lo, hi = gt.col("lo", dtype="float64"), gt.dmatrix("hi")
        f = gc.function([lo, hi], gc.random.RandomStream(5).uniform(size=(3, 4), low=lo, high=hi),
                        mode=mode)
        got = f(low, value)
        u = philox.uniform01(_words(5, 24), "float64").reshape(3, 4)
        np.testing.assert_allclose(got, low + (high - low) * u, rtol=1e-14, err_msg=name)
    std = gt.dvector("std")
    z = gc.random.RandomStream(5).normal(size=(2, 3), avg=1.0, std=std)
    f = gc.function([std], z, mode=mode)
    got = f(np.array([0.0, 1.0, 0.0])[::-1])
    assert (got[:, [0, 2]] == 1.0).all() and (got[:, 1] != 1.0).all()


@pytest.mark.parametrize("mode", MODES)
def test_integer_and_binomial_parameters_broadcast(mode):
    low, high = gt.lvector("low"), gt.lmatrix("high")
    n, p = gt.lvector("n"), gt.dmatrix("p")
    srng = gc.random.RandomStream(9)
    draws = [srng.integers(low, high), srng.binomial(size=(4, 3), n=n, p=p)]
    f = gc.function([low, high, n, p], draws, mode=mode)
    lows = np.array([0, 100, -50])
    highs = np.array([[101], [300], [1000], [201]])  # integers' size is the broadcast: (4, 3)
    ps = np.array([[0.0], [1.0], [0.5], [0.5]])
    for layout in layouts(lows):
        lo_v, p_v = layouts(lows)[layout], layouts(ps)[layout]
        ints, counts = f(lo_v, highs, np.array([5, 0, 3]), p_v)
        assert ints.shape == (4, 3) and counts.shape == (4, 3), layout
        assert ((ints >= lows) & (ints < highs)).all()
        assert ints[0, 1] == 100  # [100, 101) holds one value
        assert (counts[0] == 0).all() and counts[1].tolist() == [5, 0, 3]
        assert ((counts >= 0) & (counts <= np.array([5, 0, 3]))).all()


def test_choice_of_a_symbolic_population():
    a = gt.fvector("a")
    srng = gc.random.RandomStream(4)
    f = gc.function([a], [srng.choice(a, size=(2, 3)), srng.permutation(a)])
    values = np.array([1.5, -2.0, 7.0, 3.0], np.float32)
    for name, v in layouts(values).items():
        picks, shuffled = f(v)
        assert picks.dtype == np.float32 and picks.shape == (2, 3), name
        assert set(picks.reshape(-1).tolist()) <= set(values.tolist())
        assert sorted(shuffled.tolist()) == sorted(values.tolist())
