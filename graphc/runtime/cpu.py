"""The CPU backend: the rewritten graph as a schedule of compiled kernels.

Each step of the schedule is one of

- a **kernel**: an elementwise node (plain or fused) or a reduction (plain or with its fused
  elementwise input), compiled to native code by ``graphc.codegen`` and called through
  ``graphc.runtime.kernels`` (big work is split over the cores, the GIL released);
- a **BLAS call**: matrix products through NumPy's ``matmul`` (OpenBLAS/MKL);
- a **reference step**: every other op (shape ops, indexing, sorting, ...) and any node the
  emitter declines runs its NumPy reference, exactly as in ``mode="reference"``.

The in-place plan and the order of steps are those of the reference backend
(``graphc.runtime.inplace``), so both backends keep the same guarantees.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from ..ir.node import Node
from ..ir.op import ELEMWISE, REDUCE
from .kernels import LIBRARY
from .reference import Program, RunError, can_write_into, run_error_message, run_node, run_step

# below this many output elements a kernel runs on the calling thread
PARALLEL_MIN_SIZE = 1 << 16
N_THREADS = max(1, os.cpu_count() or 1)
_pool: ThreadPoolExecutor | None = None

# reductions whose identity is undefined: an empty reduced axis is an error (raised by the
# reference, which has the message)
NEEDS_ELEMENTS = ("max", "min", "argmax", "argmin")


def _threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(N_THREADS, thread_name_prefix="graphc")
    return _pool


def kernel_source_or_none(node: Node):
    """The node's kernel, or None when it has none (then its reference runs)."""
    # other ops name their kernel kind in props["kernel"] (rows, pool, conv, random)
    if node.op.kind not in (ELEMWISE, REDUCE) and node.op.props.get("kernel") is None:
        return None
    # NOTE: imported here: a process whose kernels all come from the cache never loads the emitter
    from ..codegen.kernel import CannotEmit, kernel_source

    try:
        return kernel_source(node)
    except CannotEmit:
        return None


class KernelStep:
    """An elementwise or reduction kernel: allocates the output, runs over ranges of its axis 0."""

    __slots__ = ("node", "source", "fast", "ranged", "dtype", "reduce_axes", "keepdims")
    # an out of this many dimensions or fewer is one range (a row kernel's 1-d out is one row)
    single_range_ndim = 0

    def __init__(self, node: Node, source):
        self.node, self.source = node, source
        self.fast = LIBRARY.fast_call(source)
        self.ranged = LIBRARY.range_call(source)
        self.dtype = np.dtype(node.dtype)
        if node.op.kind == REDUCE:
            axes, self.keepdims = _reduce_arg(node)
            self.reduce_axes = frozenset(axes)
        else:
            self.reduce_axes, self.keepdims = None, True

    def __call__(self, args: list, target=None) -> np.ndarray:
        shape = _broadcast(self.node, args)
        if self.reduce_axes is not None:
            return self._reduce(args, shape)
        out = target if target is not None and target.shape == shape else np.empty(shape, self.dtype)
        if out.size < PARALLEL_MIN_SIZE:
            if out.size:
                self.fast(*args, out)
        else:
            self._launch(args, out)
        return out

    def _reduce(self, args: list, shape: tuple) -> np.ndarray:
        axes = self.reduce_axes
        if self.node_name() in NEEDS_ELEMENTS and any(shape[a] == 0 for a in axes):
            return run_node(self.node, args)  # raises the reference's error
        # the kernel writes the keepdims shape; the result owns its memory either way
        kept = tuple(1 if a in axes else s for a, s in enumerate(shape))
        if self.keepdims:
            out = result = np.empty(kept, self.dtype)
        else:
            result = np.empty(tuple(s for a, s in enumerate(shape) if a not in axes), self.dtype)
            out = result.reshape(kept)
        # an empty reduced axis: the kernel writes the identity (0 for sum, 1 for prod, ...)
        self._launch(args, out)
        return result

    def node_name(self) -> str:
        node = self.node
        return node.arg[0] if node.op.name == "fused_reduce" else node.op.name

    def _launch(self, args: list, out: np.ndarray, work: int | None = None) -> None:
        if out.size == 0:
            return
        rows = out.shape[0] if out.ndim > self.single_range_ndim else 1
        if work is None:
            work = out.size if self.reduce_axes is None else max(out.size, _input_size(args))
        if work < PARALLEL_MIN_SIZE or rows < 2 or N_THREADS == 1:
            self.fast(*args, out)
            return
        n = min(N_THREADS, rows)
        bounds = [rows * i // n for i in range(n + 1)]
        futures = [_threads().submit(self.ranged, *args, out, bounds[i], bounds[i + 1]) for i in range(n)]
        for f in futures:
            f.result()


class RowKernelStep(KernelStep):
    """softmax / log_softmax (out shaped like x) or logsumexp (one element per row) over the
    last axis (``codegen/rows.py``): the kernel runs over ranges of rows."""

    __slots__ = ()
    single_range_ndim = 1

    def __init__(self, node: Node, source):
        super().__init__(node, source)
        self.reduce_axes, self.keepdims = None, True
        if node.op.name == "logsumexp":
            self.reduce_axes, self.keepdims = frozenset(node.arg[0]), node.arg[1]

    def __call__(self, args: list, target=None) -> np.ndarray:
        (x,) = args
        if self.reduce_axes is None:
            fits = target is not None and target.shape == x.shape
            out = result = target if fits else np.empty(x.shape, self.dtype)
        else:
            out = result = np.empty(x.shape[:-1] + (1,), self.dtype)
            if not self.keepdims:
                result = out.reshape(x.shape[:-1])
        if out.size:
            self._launch([x], out, x.size)
        return result


def _step_class(kind: str):
    if kind == "random":  # a draw (props["kernel"] == "random"); imported here: no import cycle
        from ..random.kernel_step import RandomKernelStep

        return RandomKernelStep
    if kind == "pool":  # pool_2d and its gradients
        from .pool_step import PoolKernelStep

        return PoolKernelStep
    if kind == "conv":  # conv2d and its gradients
        from .conv_step import ConvKernelStep

        return ConvKernelStep
    return RowKernelStep if kind == "rows" else KernelStep


def _input_size(args) -> int:
    return max((a.size for a in args), default=0)


def _reduce_arg(node: Node):
    if node.op.name == "fused_reduce":
        return node.arg[1]
    return node.arg


_SHAPES: dict[tuple, tuple] = {}  # broadcast results by input shapes (a few per program)


def _broadcast(node: Node, args: list) -> tuple:
    shapes = tuple([a.shape for a in args])  # a list comprehension is faster than a generator here
    found = _SHAPES.get(shapes)
    if found is not None:
        return found
    try:
        result = np.broadcast_shapes(*shapes)
    except ValueError:
        run_node(node, args)  # the reference raises the error (a fused op names the user's op)
        raise RunError(run_error_message(node, args, "operands could not be broadcast together with shapes "
                                         + " ".join(str(a.shape) for a in args))) from None
    if len(_SHAPES) > 4096:
        _SHAPES.clear()
    _SHAPES[shapes] = result
    return result


class CpuProgram:
    """Like ``reference.Program``, with compiled kernels where the emitter has them."""

    def __init__(self, inputs: Sequence[Node], outputs: Sequence[Node], inplace: bool = False,
                 update_vars: dict | None = None, kernel_table: dict | None = None):
        from .kernels import KernelStub

        # the reference program fixes the order, the slots and the in-place plan
        self.base = Program(inputs, outputs, inplace=inplace, update_vars=update_vars)
        sources = {}
        if kernel_table is not None:  # known from the graph cache: no IR is built
            for index, (name, n_inputs, kind, out_dtype) in kernel_table.items():
                node = self.base.order[index]
                sources[node] = KernelStub(name, n_inputs, kind, out_dtype, node)
        else:
            for node in self.base.order:
                source = kernel_source_or_none(node)
                if source is not None:
                    sources[node] = source
        position = {node: i for i, node in enumerate(self.base.order)}
        # position in the schedule -> the kernel's identity, for the graph cache
        self.kernel_table = {position[n]: (s.name, s.n_inputs, s.kind, s.out_dtype) for n, s in sources.items()}
        if sources:
            LIBRARY.load(sources.values())
        self.kernels = {node: _step_class(src.kind)(node, src) for node, src in sources.items()}
        self.steps = [self._step(step) for step in self.base.steps]
        self.update_steps = [self._step(step) for step in self.base.update_steps]
        base = self.base
        self._template: list = [None] * len(base.order)
        for slot, value in base.constants:
            self._template[slot] = value
        # (slot, input index) of the inputs the graph reads (an unused input has no slot)
        self._inputs = [(slot, i) for i, slot in enumerate(base.input_slots) if slot is not None]
        self._shared = base.shared
        self._output_slots = base.output_slots
        self._single = self._single_kernel()

    def _step(self, step):
        node, in_slots, out_slot, free, reuse = step
        return (self.kernels.get(node), node, in_slots, out_slot, free, reuse)

    def _single_kernel(self):
        """(kernel, [(input index or None, constant)]) when the program is one kernel over
        inputs and constants (``x + 1``): ``run`` then skips the storage list."""
        base = self.base
        if len(self.steps) != 1 or self.update_steps or base.shared or len(base.output_slots) != 1:
            return None
        kernel, node, in_slots, out_slot, free, reuse = self.steps[0]
        if kernel is None or reuse is not None or base.output_slots[0] != out_slot:
            return None
        by_slot = {slot: i for i, slot in enumerate(base.input_slots) if slot is not None}
        gather = []
        for slot in in_slots:
            if slot in by_slot:
                gather.append((by_slot[slot], None))
            elif self._template[slot] is not None:
                gather.append((None, self._template[slot]))
            else:
                return None
        return kernel, gather

    @property
    def direct(self):
        """``run_single`` when the program is one elementwise, reduction or row kernel over
        inputs and constants: its result is always a new array. None otherwise."""
        single = self._single
        return self.run_single if single and type(single[0]) in (KernelStep, RowKernelStep) else None

    def run_single(self, input_values: Sequence[np.ndarray]) -> np.ndarray:
        """The one result of a program that is one kernel (``_single``)."""
        kernel, gather = self._single
        return kernel([input_values[i] if i is not None else c for i, c in gather])

    def run(self, input_values: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self._single is not None:
            return [self.run_single(input_values)]
        storage = self._template.copy()  # constants already in place
        for slot, i in self._inputs:
            storage[slot] = input_values[i]
        for slot, node in self._shared:
            storage[slot] = node.container[0]
        for step in self.steps:
            kernel, node, in_slots, out_slot, free, reuse = step
            if kernel is not None and reuse is None:
                storage[out_slot] = kernel([storage[i] for i in in_slots])
                for i in free:
                    storage[i] = None
            else:
                _run(storage, step)
        if self.update_steps:
            # every other step succeeded; write into a variable's buffer only if all can
            ok = all(can_write_into(storage, step[1:]) for step in self.update_steps)
            for kernel, node, in_slots, out_slot, free, target in self.update_steps:
                _run(storage, (kernel, node, in_slots, out_slot, free, target if ok else None))
        return [storage[i] for i in self._output_slots]


def _run(storage: list, step) -> None:
    kernel, node, in_slots, out_slot, free, reuse = step
    if kernel is None:
        run_step(storage, node, in_slots, out_slot, free, reuse)
        return
    target = storage[reuse] if reuse is not None else None
    if target is not None and not (target.flags.writeable and target.dtype == kernel.dtype):
        target = None
    storage[out_slot] = kernel([storage[i] for i in in_slots], target)
    for i in free:
        storage[i] = None
