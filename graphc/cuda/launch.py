"""Host side of a kernel launch: argument lists and launch sizes (pure NumPy, no GPU needed).

An operand is described by ``Layout(pointer, shape, strides, dtype)`` (what a device array or
a NumPy array has); the functions here turn the operands of one node into the argument list of
its kernel (see ``graphc.cuda.elemwise`` / ``graphc.cuda.reduce`` for the signatures) and the
grid to run it on. Arguments are NumPy scalars: ``int64`` for sizes and strides, ``int32`` for
flags and ``uintp`` for pointers, which pycuda packs as they are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["BLOCK", "DeviceLimits", "Launch", "Layout", "ReducePlan", "broadcast_strides",
           "elemwise_launch", "is_flat", "layout_of", "reduce_plan"]

BLOCK = 256  # threads per block (whole warps)
WARP = 32
SPLIT_MIN = 4096  # elements of R one block takes at least before R is split further


@dataclass(frozen=True)
class Layout:
    pointer: int
    shape: tuple
    strides: tuple  # bytes
    dtype: np.dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def layout_of(array, pointer: int | None = None) -> Layout:
    """The layout of a NumPy array or a device array (``ptr``/``gpudata`` or
    ``__cuda_array_interface__``)."""
    if pointer is None:
        pointer = _pointer(array)
    return Layout(int(pointer), tuple(array.shape), tuple(array.strides), np.dtype(array.dtype))


def _pointer(array) -> int:
    if isinstance(array, np.ndarray):
        return array.ctypes.data
    interface = getattr(array, "__cuda_array_interface__", None)
    if interface is not None:
        return int(interface["data"][0])
    return int(array.gpudata)


@dataclass(frozen=True)
class DeviceLimits:
    """What launch sizes depend on: the number of multiprocessors and the grid's limit."""

    multiprocessors: int = 108
    max_grid: int = 2 ** 31 - 1
    max_block: int = 1024

    @property
    def busy_blocks(self) -> int:
        """Blocks that keep every multiprocessor busy (a grid-stride loop does the rest)."""
        return self.multiprocessors * 32


@dataclass(frozen=True)
class Launch:
    kernel: str  # entry name
    grid: int
    block: int
    args: tuple


def broadcast_strides(layout: Layout, out_shape: tuple) -> tuple:
    """The operand's byte strides against ``out_shape``: 0 on every axis where its size is 1
    (broadcast), and on the leading axes it lacks (NumPy aligns shapes on the right)."""
    missing = len(out_shape) - len(layout.shape)
    if missing < 0:
        raise ValueError(f"operand of shape {layout.shape} for an output of shape {out_shape}")
    strides = tuple(0 if size == 1 else stride
                    for size, stride in zip(layout.shape, layout.strides))
    return (0,) * missing + strides


def _c_contiguous(layout: Layout, shape: tuple) -> bool:
    if tuple(layout.shape) != tuple(shape):
        return False
    expected = layout.dtype.itemsize
    for size, stride in zip(reversed(layout.shape), reversed(layout.strides)):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def is_flat(inputs: list, out: Layout) -> bool:
    """Whether every operand is C-contiguous with the output's shape or one element."""
    return all(_c_contiguous(op, out.shape) or op.size == 1 for op in [*inputs, out])


def _grid(work: int, block: int, limits: DeviceLimits) -> int:
    return max(1, min(-(-work // block), limits.busy_blocks, limits.max_grid))


def elemwise_launch(name: str, inputs: list, out: Layout, limits: DeviceLimits) -> Launch | None:
    """The launch of elementwise kernel ``name`` over ``out`` (None for an empty output)."""
    n = out.size
    if n == 0:
        return None
    ndim = len(out.shape)
    if any(len(op.shape) > ndim for op in inputs):
        raise ValueError(f"elementwise kernel {name}: an input has more axes than the output "
                         f"{out.shape}")
    flat = is_flat(inputs, out)
    args = [np.int64(n), np.int32(flat)]
    for op in [*inputs, out]:
        strides = broadcast_strides(op, out.shape)
        if flat and ndim:  # element i sits at i * the last stride
            strides = strides[:-1] + ((0 if op.size == 1 else op.dtype.itemsize),)
        args.append(np.uintp(op.pointer))
        args.extend(np.int64(s) for s in strides)
    args.extend(np.int64(s) for s in out.shape[1:])
    return Launch(name, _grid(n, BLOCK, limits), BLOCK, tuple(args))


@dataclass(frozen=True)
class ReducePlan:
    """How a reduction runs: a first launch and, with ``splits > 1``, the merge launch
    (``partials``: how many int64 slots its scratch buffer needs; its pointer is filled in by
    ``with_partials``)."""

    first: Launch
    merge: Launch | None
    splits: int
    partial_slots: int

    def with_partials(self, pointer: int) -> ReducePlan:
        first = self.first
        args = list(first.args)
        args[4] = np.uintp(pointer)
        merge = None
        if self.merge is not None:
            margs = list(self.merge.args)
            margs[2] = np.uintp(pointer)
            merge = Launch(self.merge.kernel, self.merge.grid, self.merge.block, tuple(margs))
        first = Launch(first.kernel, first.grid, first.block, tuple(args))
        return ReducePlan(first, merge, self.splits, self.partial_slots)


def _full_shape(inputs: list) -> tuple:
    return tuple(np.broadcast_shapes(*(op.shape for op in inputs))) if inputs else ()


def reduce_plan(name: str, axes: tuple, state_slots: int, inputs: list, out: Layout,
                limits: DeviceLimits) -> ReducePlan | None:
    """The launches of reduction kernels ``name_*`` over the inputs' broadcast shape.

    ``out`` is the result array (keepdims or not); only its kept axes are addressed. Returns
    None when the output is empty.
    """
    shape = _full_shape(inputs)
    kept = [d for d in range(len(shape)) if d not in axes]
    M = math.prod(shape[d] for d in kept)
    R = math.prod(shape[d] for d in axes)
    if M == 0:
        return None
    out_kept_strides = _kept_strides(out, shape, axes)
    operand_args = []
    for op in inputs:
        strides = broadcast_strides(op, shape)
        operand_args.append(np.uintp(op.pointer))
        operand_args.extend(np.int64(strides[d]) for d in kept)
        operand_args.extend(np.int64(strides[d]) for d in axes)
    tail = ([np.uintp(out.pointer)] + [np.int64(s) for s in out_kept_strides]
            + [np.int64(shape[d]) for d in kept] + [np.int64(shape[d]) for d in axes])
    if _serial(shape, kept, M, R):
        args = (np.int64(M), np.int64(R), np.int64(1), np.int64(max(R, 1)), np.uintp(0),
                *operand_args, *tail)
        return ReducePlan(Launch(f"{name}_serial", _grid(M, BLOCK, limits), BLOCK, args),
                          None, 1, 0)
    block = min(BLOCK, WARP * max(1, -(-R // WARP)))
    splits = max(1, min(-(-limits.multiprocessors * 4 // M), -(-R // SPLIT_MIN)))
    chunk = max(1, -(-R // splits))
    splits = max(1, -(-R // chunk))
    args = (np.int64(M), np.int64(R), np.int64(splits), np.int64(chunk), np.uintp(0),
            *operand_args, *tail)
    first = Launch(f"{name}_block", _grid(M * splits, 1, limits), block, args)
    if splits == 1:
        return ReducePlan(first, None, 1, 0)
    merge_args = (np.int64(M), np.int64(splits), np.uintp(0), np.uintp(out.pointer),
                  *[np.int64(s) for s in out_kept_strides], *[np.int64(shape[d]) for d in kept])
    merge_block = min(BLOCK, WARP * -(-splits // WARP))
    merge = Launch(f"{name}_merge", _grid(M, 1, limits), merge_block, merge_args)
    return ReducePlan(first, merge, splits, M * splits * state_slots)


def _serial(shape: tuple, kept: list, M: int, R: int) -> bool:
    """A thread per output: few elements each, or many outputs along the innermost axis
    (neighbouring threads then read neighbouring elements)."""
    if R <= WARP:
        return True
    return bool(kept) and kept[-1] == len(shape) - 1 and M >= 1024


def _kept_strides(out: Layout, shape: tuple, axes: tuple) -> list:
    """The output's byte strides on the kept axes (its shape may or may not keep dims)."""
    kept = [d for d in range(len(shape)) if d not in axes]
    if len(out.shape) == len(shape):  # keepdims
        return [out.strides[d] for d in kept]
    if len(out.shape) != len(kept):
        raise ValueError(f"reduction output of shape {out.shape} for input shape {shape}")
    return list(out.strides)
