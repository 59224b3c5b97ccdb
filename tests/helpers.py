"""Shared test helpers: awkward input layouts and the NumPy-oracle comparison."""

from __future__ import annotations

import numpy as np

import graphc as gc
import graphc.tensor as gt

MODES = ("reference", "FAST_RUN")
# ``pytest --cuda`` adds "cuda": every check_against_numpy then also runs on the GPU
DEVICES = ["cpu"]
FLOATS = ("float32", "float64")


def random_array(shape, dtype, rng=None, low=-3.0, high=3.0):
    """Random values of ``dtype``: floats in [low, high), ints in a small range, bools."""
    rng = rng if rng is not None else np.random.default_rng(0)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        lo = 0 if dtype.kind == "u" else int(low)
        return rng.integers(lo, max(int(high), lo + 1) + 1, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def layouts(array):
    """The same values as a contiguous array, a non-contiguous view and a negative-stride view."""
    out = {"contiguous": np.asarray(array, order="C")}  # ascontiguousarray makes 0-d 1-d
    if array.ndim:
        wide = np.repeat(array, 2, axis=-1)[..., ::2]  # every other column: strided
        assert np.array_equal(wide, array)
        out["strided"] = wide
        flipped = np.ascontiguousarray(np.flip(array, axis=0))[::-1]  # negative stride on axis 0
        assert np.array_equal(flipped, array)
        out["negative"] = flipped
    return out


def symbolic_like(value, name=None, broadcastable=False):
    """A symbolic input with the dtype and ndim of ``value`` (static 1 where asked)."""
    shape = tuple(1 if broadcastable and s == 1 else None for s in value.shape)
    return gt.tensor(value.dtype.name, shape=shape, name=name)


def tolerance(dtype):
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return dict(rtol=2e-5, atol=1e-6)
    if dtype == np.float64:
        return dict(rtol=1e-12, atol=1e-14)
    return dict(rtol=0, atol=0)


def assert_matches(result, expected, exact_dtype=True):
    expected = np.asarray(expected)
    result = np.asarray(result)
    if exact_dtype:
        assert result.dtype == expected.dtype, f"dtype {result.dtype} != NumPy's {expected.dtype}"
    assert result.shape == expected.shape, f"shape {result.shape} != NumPy's {expected.shape}"
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(result, expected, equal_nan=True, **tolerance(expected.dtype))
    else:
        np.testing.assert_array_equal(result, expected)


def check_against_numpy(build, reference, values, modes=MODES, exact_dtype=True):
    """Compile ``build(*symbolic_inputs)`` and compare with ``reference(*values)``, in every mode."""
    expected = reference(*values)
    inputs = [symbolic_like(v, f"in{i}") for i, v in enumerate(values)]
    runs = [(mode, "cpu") for mode in modes] + [("FAST_RUN", d) for d in DEVICES if d != "cpu"]
    for mode, device in runs:
        f = gc.function(inputs, build(*inputs), mode=mode, on_unused_input="ignore",
                        device=device)
        got = f(*values)
        if isinstance(expected, (list, tuple)):
            for g, e in zip(got, expected):
                assert_matches(g, e, exact_dtype)
        else:
            assert_matches(got, expected, exact_dtype)


def neg_chain(x, length):
    """``x`` negated ``length`` times, one node per step: a deep graph for recursion tests."""
    from graphc.ir import make

    neg = gt.neg(x).op
    y = x
    for _ in range(length):
        y = make(neg, (y,))
    return y
