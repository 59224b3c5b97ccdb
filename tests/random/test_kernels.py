"""The CPU backend's native draw kernels: compiled FAST_RUN draws are the reference's numbers bit
for bit (every size, both dtypes, any range of positions, split over threads), on every call,
and a warm process loads the kernels from the disk cache like any other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc as gc
import graphc.random
import graphc.tensor as gt
from graphc.random import kernel_step, philox
from graphc.random.kernel_step import RandomKernelStep
from graphc.random.ops import kernel_params
from tests.helpers import layouts
from graphc.runtime import cpu

DRAWS = {"uniform": lambda s, size, d: s.uniform(size=size, dtype=d),
         "normal": lambda s, size, d: s.normal(size=size, dtype=d),
         "integers": lambda s, size, d: s.integers(-100 if d[0] == "i" else 0, 100, size, d),
         "integers_wide": lambda s, size, d: s.integers(-2**62 if d[0] == "i" else 0,
                                                        2**63 - 1, size, d),
         "binomial": lambda s, size, d: s.binomial(size=size, n=3, p=0.4, dtype=d),
         "bernoulli": lambda s, size, d: s.bernoulli(p=np.float32(0.3), size=size, dtype=d)}
FLOATS = ["float32", "float64"]
INTS = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
CASES = [("uniform", FLOATS), ("normal", FLOATS), ("integers", INTS),
         ("integers_wide", ["int64", "uint64"]),
         ("binomial", ["bool", "int8", "uint16", "int32", "int64", "float32", "float64"]),
         ("bernoulli", ["bool", "int64", "float32"])]
KIND_DTYPES = [(kind, dtype) for kind, dtypes in CASES for dtype in dtypes]
SIZES = [(), (0,), (1,), (2,), (3,), (5,), (7,), (9,), (4, 0), (3, 5), (2, 3, 7), (1001,)]


def draw_kernels(f) -> list:
    """The native draw steps of a compiled function."""
    return [k for k in f.program.kernels.values() if isinstance(k, RandomKernelStep)]


def assert_same_bits(got, expected, message=""):
    assert got.dtype == expected.dtype and got.shape == expected.shape, message
    if got.tobytes() != expected.tobytes():
        np.testing.assert_array_equal(got, expected, err_msg=message)  # shows where
        raise AssertionError(f"{message}: equal values, different bits (signed zeros)")


def _compiled_and_reference(kind, size, dtype, seed=5):
    fast = gc.function([], DRAWS[kind](gc.random.RandomStream(seed), size, dtype))
    ref = gc.function([], DRAWS[kind](gc.random.RandomStream(seed), size, dtype),
                      mode="reference")
    return fast, ref


@pytest.mark.parametrize("kind,dtype", KIND_DTYPES)
def test_compiled_draws_are_the_reference_bit_for_bit(kind, dtype):
    for size in SIZES:
        fast, ref = _compiled_and_reference(kind, size, dtype)
        assert len(draw_kernels(fast)) == 1, size
        first = fast()
        for call in range(3):  # the state advances: every call is the reference's call
            got = first if call == 0 else fast()
            assert_same_bits(got, ref(), f"{kind} {dtype} {size} call {call}")
        if first.size > 16:
            assert not np.array_equal(first, got)


@pytest.mark.parametrize("kind,dtype", [("uniform", "float32"), ("uniform", "float64"),
                                        ("normal", "float32"), ("normal", "float64"),
                                        ("integers", "int16"), ("binomial", "float32")])
def test_any_range_of_positions_is_the_reference(kind, dtype):
    """The kernel over [start, stop) writes those positions only: partial blocks at both ends,
    a range inside one block, empty ranges."""
    n = 23
    fast, ref = _compiled_and_reference(kind, (n,), dtype, seed=12)
    (step,) = draw_kernels(fast)
    state = philox.initial_state(12, 0)  # draw 0 of seed 12, before its first call
    expected = ref()
    _, params = kernel_params(step.node, np.array([n]), [c.arg.value for c in step.node.src[2:]])
    untouched = np.array(99, dtype)
    out = np.full(n, untouched)
    cuts = [0, 1, 2, 2, 5, 6, 9, 11, 12, 13, 21, 23]
    for start, stop in zip(cuts, cuts[1:]):
        step.ranged(state, *params, out, start, stop)
        assert_same_bits(out[:stop], expected[:stop], f"after [{start}, {stop})")
        assert (out[stop:] == untouched).all()  # nothing written past stop


BIG = [("uniform", "float32", 1001), ("uniform", "float64", 4099), ("normal", "float32", 1001),
       ("normal", "float64", 70_001), ("integers", "int32", 1001), ("integers", "uint64", 4099),
       ("binomial", "int64", 1001), ("bernoulli", "float64", 4099)]


def test_big_draws_are_split_over_threads(monkeypatch):
    monkeypatch.setattr(cpu, "N_THREADS", 3)
    monkeypatch.setattr(kernel_step, "PARALLEL_MIN_SIZE", 64)
    for kind, dtype, n in BIG:
        fast, ref = _compiled_and_reference(kind, (n,), dtype)
        (step,) = draw_kernels(fast)
        ranges = []
        ranged = step.ranged
        step.ranged = lambda *args: (ranges.append(args[-2:]), ranged(*args))
        assert_same_bits(fast(), ref(), f"{kind} {dtype} {n}")
        assert len(ranges) == 3 and ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert all(a % step.per_block == 0 for a, _ in ranges)  # whole blocks per thread


def test_parameters_in_any_layout_are_the_references():
    """Parameters broadcast against the size, strided and reversed: the kernel reads them flat
    with their stride (0 for a scalar), after the reference's own checks."""
    low, high = gt.lvector("low"), gt.lmatrix("high")
    n, p = gt.lvector("n"), gt.fmatrix("p")

    def draws(seed):
        srng = gc.random.RandomStream(seed)
        return [srng.integers(low, high, dtype="int32"), srng.binomial(size=(4, 3), n=n, p=p),
                srng.integers(low, 1000, size=(5, 3), dtype="int16"),
                srng.bernoulli(p=p, dtype="bool")]

    f = gc.function([low, high, n, p], draws(4))
    assert len(draw_kernels(f)) == 4
    g = gc.function([low, high, n, p], draws(4), mode="reference")
    lows, ns = np.array([0, 100, -50]), np.array([5, 0, 3])
    highs = np.array([[101], [300], [1000], [201]])
    ps = np.array([[0.0, 0.5, 1.0], [1.0, 0.2, 0.5], [0.5, 0.5, 0.5], [0.9, 0.1, 0.7]], np.float32)
    for name in layouts(lows):
        values = [layouts(v)[name] for v in (lows, highs, ns, ps)]
        for call in range(2):
            for got, expected in zip(f(*values), g(*values)):
                assert_same_bits(got, expected, f"{name} call {call}")


def test_draws_inside_bigger_graphs_use_the_kernel():
    n = gt.lscalar("n")
    x = gt.fvector("x")
    srng = gc.random.RandomStream(3)
    outs = [x * srng.uniform(size=(n,), low=-1.0, high=1.0, dtype="float32"),
            srng.normal(size=(2, n), avg=1.0, std=3.0, dtype="float64")]
    f = gc.function([n, x], outs)
    assert len(draw_kernels(f)) == 2
    srng = gc.random.RandomStream(3)
    ref_outs = [x * srng.uniform(size=(n,), low=-1.0, high=1.0, dtype="float32"),
                srng.normal(size=(2, n), avg=1.0, std=3.0, dtype="float64")]
    g = gc.function([n, x], ref_outs, mode="reference")
    values = np.linspace(0, 1, 7, dtype=np.float32)
    for got, expected in zip(f(7, values), g(7, values)):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_a_bad_size_raises_the_references_error():
    n = gt.lscalar("n")
    f = gc.function([n], gc.random.RandomStream(0).normal(size=(n, 3)))
    assert draw_kernels(f)
    with pytest.raises(ValueError, match="negative dimension"):
        f(-2)
    assert f(2).shape == (2, 3)


WARM_SCRIPT = textwrap.dedent("""
    import json, sys
    import graphc as gc, graphc.random
    from graphc.runtime.kernels import LIBRARY
    srng = gc.random.RandomStream(31)
    f = gc.function([], [srng.uniform(size=(5,), dtype="float32"), srng.normal(size=(3,))])
    kinds = sorted(type(k).__name__ for k in f.program.kernels.values())
    print(json.dumps({"cache": f.graph_cache, "values": [a.tolist() for a in f()], "kinds": kinds,
                      "stats": LIBRARY.stats, "emitter": "graphc.codegen.kernel" in sys.modules}))
""")


def test_a_warm_process_loads_the_draw_kernels_from_the_cache(tmp_path):
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path))

    def run():
        done = subprocess.run([sys.executable, "-c", WARM_SCRIPT], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    cold, warm = run(), run()
    assert (cold["cache"], warm["cache"]) == ("miss", "hit")
    assert cold["kinds"] == warm["kinds"] == ["RandomKernelStep"] * 2
    assert warm["values"] == cold["values"]
    srng = gc.random.RandomStream(31)
    ref = gc.function([], [srng.uniform(size=(5,), dtype="float32"), srng.normal(size=(3,))],
                      mode="reference")()
    assert [a.tolist() for a in ref] == cold["values"]
    assert cold["stats"]["compiled"] >= 2 and cold["emitter"]
    assert warm["stats"]["compiled"] == 0 and not warm["emitter"]
