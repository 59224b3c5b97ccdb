"""The CPU backend's step for a draw with a native kernel (``graphc.codegen.random_kernels``).

The kernel writes positions ``[start, stop)`` of the draw into a flat output, each a pure
function of its position, so a big draw is cut into ranges (on whole Philox blocks) that the
threads fill at once, with the GIL released. Parameters are checked and flattened by
``ops.kernel_params``, the reference's own code.
"""

from __future__ import annotations

import numpy as np

from ..runtime import cpu
from ..runtime.kernels import LIBRARY
from ..runtime.reference import run_node
from .ops import kernel_params
from .philox import values_per_block

__all__ = ["RandomKernelStep"]

# below this much work (values, or trials for a binomial) a draw runs on the calling thread;
# a value costs ~2-10 ns
PARALLEL_MIN_SIZE = 1 << 15


def _positions_per_block(node) -> int:
    """The alignment of thread ranges: the positions one Philox block serves (1: none)."""
    name = node.op.name
    if name in ("random_uniform01", "random_normal01"):
        return values_per_block(node.dtype)
    return 2 if name == "random_integers" else 1


class RandomKernelStep:
    """A draw: out of the size's shape, filled by the kernel over ranges of positions."""

    __slots__ = ("node", "source", "fast", "ranged", "dtype", "per_block")

    def __init__(self, node, source):
        self.node, self.source = node, source
        self.fast = LIBRARY.fast_call(source)
        self.ranged = LIBRARY.range_call(source)
        self.dtype = np.dtype(node.dtype)
        self.per_block = _positions_per_block(node)

    def __call__(self, args: list, target=None) -> np.ndarray:
        state, size = args[0], args[1]
        try:
            if state.shape != (4,):
                raise ValueError("bad state")
            shape, params = kernel_params(self.node, size, args[2:])
            if not self.node.type.accepts_shape(shape):
                raise ValueError("bad shape")
        except ValueError:
            return run_node(self.node, args)  # the reference raises the error, with its message
        out = np.empty(shape, self.dtype)
        flat = out.reshape(-1)
        n = flat.size
        work = n
        if self.node.op.name == "random_binomial" and n:  # a value per trial
            work *= max(1, int(params[0].max()))
        if work < PARALLEL_MIN_SIZE or cpu.N_THREADS == 1:
            if n:
                self.fast(state, *params, flat)
            return out
        blocks = -(-n // self.per_block)
        k = min(cpu.N_THREADS, blocks)
        bounds = [min(n, blocks * i // k * self.per_block) for i in range(k + 1)]
        pool = cpu._threads()
        futures = [pool.submit(self.ranged, state, *params, flat, bounds[i], bounds[i + 1])
                   for i in range(k)]
        for future in futures:
            future.result()
        return out
