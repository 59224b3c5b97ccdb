"""Speed sanity check (not a test): graphc's JIT math loops vs NumPy on 2^22 float32 values.

Run: python benchmarks/mathlib_speed.py [function ...]   (default: exp tanh)
Prints elements per nanosecond (higher is better) for one thread.
"""
import ctypes
import functools
import sys
import time

import numpy as np
from llvmlite import ir

from graphc.codegen.jit import JitModule
from graphc.codegen.mathlib import unary_map_kernel

NUMPY = {"exp": np.exp, "tanh": np.tanh, "log": np.log, "log1p": np.log1p, "expm1": np.expm1,
         "sin": np.sin, "cos": np.cos, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
         "softplus": lambda x: np.logaddexp(np.float32(0), x)}


def best_time(call, repeat=7):
    """The fastest of ``repeat`` runs, in nanoseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    return min(times)


def main(names):
    size = 1 << 22
    x = np.random.default_rng(0).uniform(-10, 10, size).astype(np.float32)
    positive = np.abs(x)
    out = np.empty_like(x)
    module = ir.Module()
    for name in names:
        unary_map_kernel(module, name, name, "float32")
    compiled = JitModule(module)
    for name in names:
        kernel = compiled.cfunc(name, None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
        data = positive if name.startswith("log") else x
        ours = best_time(functools.partial(kernel, data.ctypes.data, out.ctypes.data, size))
        line = f"{name:9s} float32  graphc {size / ours:6.3f} elem/ns"
        if name in NUMPY:
            theirs = best_time(functools.partial(NUMPY[name], data))
            line += f"   numpy {size / theirs:6.3f} elem/ns   ratio {theirs / ours:5.2f}x"
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:] or ["exp", "tanh"])
