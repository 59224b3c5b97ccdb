"""The CPU backend's step for a draw with a native kernel (``graphc.codegen.random_kernels``).

The kernel writes positions ``[start, stop)`` of the draw into a flat output, each a pure
function of its position, so a big draw is cut into ranges (on whole Philox blocks) that the
threads fill at once, with the GIL released.
"""

from __future__ import annotations

import numpy as np

from ..runtime import cpu
from ..runtime.kernels import LIBRARY
from ..runtime.reference import run_node
from .philox import values_per_block

__all__ = ["RandomKernelStep"]

# below this many values a draw runs on the calling thread (a value costs ~2-10 ns)
PARALLEL_MIN_SIZE = 1 << 15


class RandomKernelStep:
    """``random_uniform01`` / ``random_normal01``: out of the size's shape, filled by the kernel."""

    __slots__ = ("node", "source", "fast", "ranged", "dtype", "per_block")

    def __init__(self, node, source):
        self.node, self.source = node, source
        self.fast = LIBRARY.fast_call(source)
        self.ranged = LIBRARY.range_call(source)
        self.dtype = np.dtype(node.dtype)
        self.per_block = values_per_block(node.dtype)

    def __call__(self, args: list, target=None) -> np.ndarray:
        state, size = args
        shape = tuple(size.tolist())
        if state.shape != (4,) or min(shape, default=0) < 0 or not self.node.type.accepts_shape(shape):
            return run_node(self.node, args)  # the reference raises the error
        out = np.empty(shape, self.dtype)
        flat = out.reshape(-1)
        n = flat.size
        if n < PARALLEL_MIN_SIZE or cpu.N_THREADS == 1:
            if n:
                self.fast(state, flat)
            return out
        blocks = -(-n // self.per_block)
        k = cpu.N_THREADS
        bounds = [min(n, blocks * i // k * self.per_block) for i in range(k + 1)]
        pool = cpu._threads()
        futures = [pool.submit(self.ranged, state, flat, bounds[i], bounds[i + 1]) for i in range(k)]
        for future in futures:
            future.result()
        return out
