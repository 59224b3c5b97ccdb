"""Shared helpers of the kernel tests: compile KernelSources (once per process), call them
through ctypes exactly as the CPU runtime does, and compare with NumPy in ulps."""
from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
import numpy as np

from graphc.codegen.jit import JitModule

_FUNCTIONS: dict = {}  # kernel name -> ctypes function


def compile_kernels(sources) -> None:
    """Compile ``sources`` (KernelSources) into one JIT module; later runs find them."""
    todo = {s.name: s for s in sources if s.name not in _FUNCTIONS}
    if not todo:
        return
    items = list(todo.values())
    module = llvm.parse_assembly(items[0].ir)
    for source in items[1:]:
        module.link_in(llvm.parse_assembly(source.ir))
    jit = JitModule(str(module))
    for source in items:
        argtypes = [ctypes.py_object] * (source.n_inputs + 1) + [ctypes.c_int64] * 2
        _FUNCTIONS[source.name] = jit.cfunc(source.name, None, *argtypes)


def kernel_function(source):
    compile_kernels([source])
    return _FUNCTIONS[source.name]


def run_kernel(source, inputs, out_shape, ranges=None, out=None):
    """Run ``source`` on ``inputs`` into a new array of ``out_shape`` (or ``out``), over the
    given ``[start, stop)`` ranges of axis 0 (default: all of it in one call)."""
    function = kernel_function(source)
    if out is None:
        out = np.empty(out_shape, source.out_dtype)
    assert out.dtype.name == source.out_dtype
    if ranges is None:
        ranges = [(0, out.shape[0] if out.ndim else 1)]
    for start, stop in ranges:
        function(*inputs, out, start, stop)
    return out


def ulp_distance(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """|got - expected| in ulps of ``expected`` (0 where both are NaN or the same inf)."""
    dtype = expected.dtype
    with np.errstate(all="ignore"):
        same = (got == expected) | (np.isnan(got) & np.isnan(expected))
        finite = np.isfinite(got) & np.isfinite(expected)
        spacing = np.spacing(np.abs(expected).astype(dtype)).astype(np.float64)
        error = np.abs(got.astype(np.float64) - expected.astype(np.float64)) / spacing
    return np.where(same, 0.0, np.where(finite, error, np.inf))


def assert_identical(got: np.ndarray, expected: np.ndarray, context: str = "") -> None:
    """Same dtype, shape and values; floats also NaN where NumPy's and with its signs of zero."""
    assert got.dtype == expected.dtype, f"{context}: dtype {got.dtype} != NumPy's {expected.dtype}"
    assert got.shape == expected.shape, f"{context}: shape {got.shape} != {expected.shape}"
    if expected.dtype.kind != "f":
        bad = got != expected
    else:
        nan = np.isnan(expected)
        bad = (np.isnan(got) != nan) | (~nan & ((got != expected) |
                                                 (np.signbit(got) != np.signbit(expected))))
    if np.any(bad):
        where = np.argwhere(bad)[:5]
        raise AssertionError(f"{context}: {int(np.sum(bad))} differences, first at "
                             f"{where.tolist()}: got {got[bad][:5]}, NumPy {expected[bad][:5]}")


def assert_within_ulps(got, expected, ulps: float, context: str = "") -> None:
    assert got.dtype == expected.dtype, f"{context}: dtype {got.dtype} != NumPy's {expected.dtype}"
    assert got.shape == expected.shape, f"{context}: shape {got.shape} != {expected.shape}"
    error = ulp_distance(got, expected)
    if error.size and error.max() > ulps:
        worst = np.unravel_index(int(np.argmax(error)), error.shape)
        raise AssertionError(f"{context}: {error[worst]:.1f} ulp (bar {ulps}) at {worst}: got "
                             f"{got[worst]!r}, NumPy {expected[worst]!r}")
