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
from graphc.runtime import cpu

DRAWS = {"uniform": lambda s, size, d: s.uniform(size=size, dtype=d),
         "normal": lambda s, size, d: s.normal(size=size, dtype=d)}
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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", list(DRAWS))
def test_compiled_draws_are_the_reference_bit_for_bit(kind, dtype):
    for size in SIZES:
        fast, ref = _compiled_and_reference(kind, size, dtype)
        assert len(draw_kernels(fast)) == 1, size
        first = fast()
        for call in range(3):  # the state advances: every call is the reference's call
            got = first if call == 0 else fast()
            assert_same_bits(got, ref(), f"{kind} {dtype} {size} call {call}")
        if first.size > 1:
            assert not np.array_equal(first, got)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", list(DRAWS))
def test_any_range_of_positions_is_the_reference(kind, dtype):
    """The kernel over [start, stop) writes those positions only: partial blocks at both ends,
    a range inside one block, empty ranges."""
    n = 23
    fast, ref = _compiled_and_reference(kind, (n,), dtype, seed=12)
    (step,) = draw_kernels(fast)
    state = philox.initial_state(12, 0)  # draw 0 of seed 12, before its first call
    expected = ref()
    out = np.full(n, np.nan, dtype)
    cuts = [0, 1, 2, 2, 5, 6, 9, 11, 12, 13, 21, 23]
    for start, stop in zip(cuts, cuts[1:]):
        step.ranged(state, out, start, stop)
        filled = out[:stop]
        assert_same_bits(filled, expected[:stop], f"after [{start}, {stop})")
        assert np.isnan(out[stop:]).all()  # nothing written past stop


def test_big_draws_are_split_over_threads(monkeypatch):
    monkeypatch.setattr(cpu, "N_THREADS", 3)
    monkeypatch.setattr(kernel_step, "PARALLEL_MIN_SIZE", 64)
    for kind in DRAWS:
        for dtype, n in [("float32", 1001), ("float64", 4099), ("float32", 70_001)]:
            fast, ref = _compiled_and_reference(kind, (n,), dtype)
            (step,) = draw_kernels(fast)
            ranges = []
            ranged = step.ranged
            step.ranged = lambda s, out, a, b: (ranges.append((a, b)), ranged(s, out, a, b))
            assert_same_bits(fast(), ref(), f"{kind} {dtype} {n}")
            assert len(ranges) == 3 and ranges[0][0] == 0 and ranges[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
            per = philox.values_per_block(dtype)
            assert all(a % per == 0 for a, _ in ranges)  # whole blocks per thread


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
