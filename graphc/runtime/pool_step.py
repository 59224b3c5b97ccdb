"""The CPU backend's step for a pooling node with a native kernel
(``graphc.codegen.pool_kernels``): ``pool_2d``, ``max_pool_grad``, ``max_pool_select``,
``pool_2d_grad``.

The step checks the shapes as the reference does and allocates the output (zeroed for the
gradients, which the kernels add into); anything unusual (a shape the reference rejects, an
empty input or output, an unexpected dtype) runs the reference, which raises its own error or
computes the result. Big work is cut into ranges of the leading axis that the threads run at
once, with the GIL released.
"""

from __future__ import annotations

import numpy as np

from ..opdefs.pool import _pooled_shape
from . import cpu
from .kernels import LIBRARY
from .reference import run_node

__all__ = ["PoolKernelStep"]

# below this many input cells a node runs on the calling thread (a cell costs ~1 ns)
PARALLEL_MIN_SIZE = 1 << 16


class PoolKernelStep:
    """A pooling node: its output allocated here, filled by the kernel over ranges of axis 0."""

    __slots__ = (
        "_pooled",
        "dtype",
        "fast",
        "in_dtypes",
        "name",
        "ndim",
        "node",
        "params",
        "ranged",
        "source",
    )

    def __init__(self, node, source):
        self.node, self.source = node, source
        self.fast = LIBRARY.fast_call(source)
        self.ranged = LIBRARY.range_call(source)
        self.dtype = np.dtype(node.dtype)
        self.name = node.op.name
        self.params = node.arg[:5]
        self.ndim = node.ndim
        # the kernel's array inputs: pool_2d_grad's second input (the spatial size) is not one
        self.in_dtypes = tuple(np.dtype(s.dtype) for s in node.src[:source.n_inputs])
        self._pooled: dict = {}  # pooled shapes by input shape

    def pooled(self, shape: tuple) -> tuple:
        found = self._pooled.get(shape)
        if found is None:
            if len(self._pooled) > 256:
                self._pooled.clear()
            found = self._pooled[shape] = _pooled_shape(self.params, shape)
        return found

    def __call__(self, args: list, target=None) -> np.ndarray:
        plan = self._plan(args)
        if plan is None:
            return run_node(self.node, args)  # the reference's result, or its error
        arrays, out_shape, zeroed, work = plan
        out = np.zeros(out_shape, self.dtype) if zeroed else np.empty(out_shape, self.dtype)
        rows = out_shape[0]
        if work < PARALLEL_MIN_SIZE or self.ndim == 2 or rows < 2 or cpu.N_THREADS == 1:
            self.fast(*arrays, out)
            return out
        n = min(cpu.N_THREADS, rows)
        bounds = [rows * i // n for i in range(n + 1)]
        pool = cpu._threads()
        futures = [pool.submit(self.ranged, *arrays, out, bounds[i], bounds[i + 1])
                   for i in range(n)]
        for future in futures:
            future.result()
        return out

    def _plan(self, args: list):
        """``(kernel arrays, out shape, zeroed, input cells)``, or None for the reference."""
        arrays = args[:len(self.in_dtypes)]
        for array, dtype in zip(arrays, self.in_dtypes):
            if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != self.ndim:
                return None
        name = self.name
        if name == "pool_2d_grad":
            x_shape = _spatial_shape(args[0].shape, args[1])
            if x_shape is None or args[0].shape != self.pooled(x_shape):
                return None
            pooled, out_shape, zeroed = args[0].shape, x_shape, True
        else:
            x_shape = arrays[0].shape
            pooled = self.pooled(x_shape)
            if name == "max_pool_grad" and arrays[1].shape != pooled:
                return None
            if name == "max_pool_select" and arrays[1].shape != x_shape:
                return None
            out_shape = x_shape if name == "max_pool_grad" else pooled
            zeroed = name == "max_pool_grad"
        work = _size(x_shape)
        if work == 0 or _size(pooled) == 0:
            return None  # the reference's zeros (or empty result)
        return arrays, out_shape, zeroed, work


def _spatial_shape(g_shape: tuple, hw) -> tuple | None:
    """The input shape of ``pool_2d_grad``: g's batch axes and the spatial size ``hw``."""
    if not isinstance(hw, np.ndarray) or hw.shape != (2,) or hw.dtype != np.int64:
        return None
    h, w = int(hw[0]), int(hw[1])
    if h < 0 or w < 0:
        return None
    return g_shape[:-2] + (h, w)


def _size(shape: tuple) -> int:
    size = 1
    for n in shape:
        size *= n
    return size
