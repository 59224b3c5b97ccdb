"""The CUDA backend: a function's rewritten graph as a schedule of GPU steps.

Each step of the schedule (the order and storage slots of ``graphc.runtime.reference``) is

- a **kernel**: elementwise and reduction nodes (plain or fused), see ``graphc.cuda.kernel``;
- a **cuBLAS call**: ``matmul``/``gemm`` of float32/float64 2-d or 3-d operands;
- a **view**: ``dimshuffle`` (and ``reshape`` of a contiguous array) move no data;
- a **host step**: every other op, and any node the kernels or cuBLAS decline: its inputs
  are copied to the host, its NumPy reference runs, and its result stays on the host until a
  device step needs it (shape arithmetic stays on the host for free).

Storage slots hold ``DeviceArray``s or NumPy arrays; each step converts what it reads.
Shared variables live on the GPU (``DeviceContainer``) and their updates are written there,
after every step succeeded.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..ir.node import Node
from ..ir.op import ELEMWISE, REDUCE
from ..runtime.reference import Program, RunError, run_error_message, run_node
from .launch import elemwise_launch, layout_of, reduce_plan
from .memory import DeviceArray, DeviceContainer

__all__ = ["CudaProgram"]

NEEDS_ELEMENTS = ("max", "min", "argmax", "argmin")


class CudaProgram:
    def __init__(self, inputs: Sequence[Node], outputs: Sequence[Node], gpu,
                 update_vars: dict | None = None):
        self.base = Program(inputs, outputs, inplace=False, update_vars=update_vars)
        self.gpu = gpu
        self.steps = [(self._step_for(node), node, in_slots, out_slot, free)
                      for node, in_slots, out_slot, free, _ in self.base.steps]
        self.kernel_names = sorted({s[0].source.name for s in self.steps
                                    if isinstance(s[0], KernelStep)})
        # slots some GPU step reads: inputs there are copied in once per call, constants once
        self._device_slots = {i for step, _, in_slots, _, _ in self.steps
                              if not isinstance(step, HostStep) for i in in_slots}
        self._device_constants: dict = {}

    def _step_for(self, node: Node):
        if node.op.kind in (ELEMWISE, REDUCE):
            from .kernel import CannotEmit, cuda_kernel_source

            try:
                source = cuda_kernel_source(node, self.gpu.arch)
            except CannotEmit:
                return HostStep(node, self.gpu)
            self.gpu.load(source)
            return KernelStep(node, source, self.gpu)
        if node.op.name in ("matmul", "gemm"):
            return BlasStep(node, self.gpu)
        if node.op.name in ("dimshuffle", "reshape"):
            return ViewStep(node, self.gpu)
        return HostStep(node, self.gpu)

    def run(self, values: Sequence) -> list:
        """Run on ``values`` (DeviceArrays or NumPy arrays, one per input); the outputs in
        the order of the program's outputs (DeviceArrays or NumPy arrays)."""
        base = self.base
        storage: list = [None] * len(base.order)
        upload = self._device_slots
        for slot, value in zip(base.input_slots, values):
            if slot is not None:
                if slot in upload and isinstance(value, np.ndarray):
                    value = self.gpu.to_device(value)
                storage[slot] = value
        for slot, node in base.shared:
            storage[slot] = shared_container(node, self.gpu).device_value(self.gpu.to_device)
        for slot, value in base.constants:
            if slot in upload:
                if slot not in self._device_constants:
                    constant = self.gpu.to_device(value)
                    constant.fresh = False  # kept between calls: never handed out as a result
                    self._device_constants[slot] = constant
                value = self._device_constants[slot]
            storage[slot] = value
        for step, node, in_slots, out_slot, free in self.steps:
            storage[out_slot] = step([storage[i] for i in in_slots])
            for i in free:
                storage[i] = None
        return [storage[i] for i in base.output_slots]


def shared_container(var, gpu) -> DeviceContainer:
    """The variable's storage, made a ``DeviceContainer`` on first use by a CUDA function."""
    container = var.container
    if not isinstance(container, DeviceContainer):
        container = DeviceContainer(container[0], gpu.to_host)
        object.__setattr__(var, "container", container)
    return container


class _Step:
    def __init__(self, node: Node, gpu):
        self.node, self.gpu = node, gpu

    def device(self, value) -> DeviceArray:
        return value if isinstance(value, DeviceArray) else self.gpu.to_device(value)

    def host(self, value) -> np.ndarray:
        return value if isinstance(value, np.ndarray) else self.gpu.to_host(value)

    def on_host(self, args: list):
        """Run the node's NumPy reference (also to raise its error with the user's line)."""
        return run_node(self.node, [self.host(a) for a in args])


class HostStep(_Step):
    """Copy to the host, run the reference; the result stays on the host."""

    def __call__(self, args: list):
        return self.on_host(args)


class KernelStep(_Step):
    def __init__(self, node: Node, source, gpu):
        super().__init__(node, gpu)
        self.source = source
        self.dtype = np.dtype(node.dtype)

    def __call__(self, args: list):
        arrays = [self.device(a) for a in args]
        try:
            shape = tuple(np.broadcast_shapes(*(a.shape for a in arrays)))
        except ValueError:
            self.on_host(args)  # the reference names the user's op
            raise RunError(run_error_message(self.node, [self.host(a) for a in args],
                                             "operands could not be broadcast together"))
        layouts = [layout_of(a, a.ptr) for a in arrays]
        if self.source.kind == "elemwise":
            out = self.gpu.empty(shape, self.dtype)
            launch = elemwise_launch(self.source.name, layouts, layout_of(out, out.ptr),
                                     self.gpu.limits)
            if launch is not None:
                self.gpu.launch(launch)
            return out
        return self._reduce(args, layouts, shape)

    def _reduce(self, args, layouts, shape):
        axes = self.source.axes
        if self.source.reduction in NEEDS_ELEMENTS and any(shape[a] == 0 for a in axes):
            return self.on_host(args)  # raises the reference's error
        kept = tuple(1 if a in axes else s for a, s in enumerate(shape))
        final = kept if self.source.keepdims else tuple(
            s for a, s in enumerate(shape) if a not in axes)
        out = self.gpu.empty(final, self.dtype)
        plan = reduce_plan(self.source.name, axes, self.source.state_slots, layouts,
                           layout_of(out, out.ptr), self.gpu.limits)
        if plan is None:
            return out
        scratch = None
        if plan.partial_slots:
            scratch = self.gpu.empty((plan.partial_slots,), np.int64)
            plan = plan.with_partials(scratch.ptr)
        self.gpu.launch(plan.first)
        if plan.merge is not None:
            self.gpu.launch(plan.merge)
        del scratch  # back to the pool: later work on the stream is ordered after these
        return out


class BlasStep(_Step):
    """``matmul``/``gemm`` through cuBLAS where ``blas_plan`` describes the operands."""

    def __call__(self, args: list):
        from .cublas import blas_plan

        if not all(isinstance(a, DeviceArray) for a in args):
            args = [self.device(a) for a in args]
        a, b = args
        if self.node.op.name == "gemm":
            a, b = (_swap_last(x) if flag else x for x, flag in zip((a, b), self.node.arg))
        plan = blas_plan(a, b)
        if plan is None:
            return self.on_host(args)
        shape = (plan.m, plan.n) if a.ndim == 2 else (plan.batch, plan.m, plan.n)
        out = self.gpu.empty(shape, a.dtype)
        if out.size == 0:
            return out
        if plan.k == 0:
            self.gpu.zero(out)
            return out
        self.gpu.cublas().gemm(plan, a.dtype, out.ptr)
        return out


def _swap_last(x: DeviceArray) -> DeviceArray:
    if x.ndim < 2:
        return x
    shape = x.shape[:-2] + (x.shape[-1], x.shape[-2])
    strides = x.strides[:-2] + (x.strides[-1], x.strides[-2])
    return x.view(shape, strides)


class ViewStep(_Step):
    """dimshuffle / contiguous reshape of a device array: a new view, no copy."""

    def __call__(self, args: list):
        x = args[0]
        if not isinstance(x, DeviceArray):
            return self.on_host(args)
        if self.node.op.name == "dimshuffle":
            return dimshuffle_view(x, self.node.arg)
        shape = tuple(int(s) for s in self.host(args[1]))
        if not x.c_contiguous or _resolve(shape, x.size) is None:
            return self.on_host(args)
        from .memory import c_strides

        shape = _resolve(shape, x.size)
        return x.view(shape, c_strides(shape, x.dtype.itemsize))


def dimshuffle_view(x: DeviceArray, pattern) -> DeviceArray:
    """The dimshuffle ``pattern`` ('x' inserts an axis, missing size-1 axes drop) as a view."""
    shape, strides = [], []
    for p in pattern:
        if p == "x":
            shape.append(1)
            strides.append(0)
        else:
            shape.append(x.shape[p])
            strides.append(x.strides[p])
    dropped = [a for a in range(x.ndim) if a not in pattern]
    if any(x.shape[a] != 1 for a in dropped):
        raise RunError(f"dimshuffle: cannot drop an axis of size > 1 (shape {x.shape})")
    return x.view(tuple(shape), tuple(strides))


def _resolve(shape: tuple, size: int):
    """``shape`` with one -1 filled in, or None if it does not hold ``size`` elements."""
    if shape.count(-1) > 1:
        return None
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1]))
        if known == 0 or size % known:
            return None
        shape = tuple(size // known if s == -1 else s for s in shape)
    return shape if int(np.prod(shape)) == size else None
