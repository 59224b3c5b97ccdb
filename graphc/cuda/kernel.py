"""One graph node -> the LLVM IR (and PTX) of its CUDA kernels.

``cuda_kernel_source(node)`` takes what the CPU emitter takes (an elementwise node, plain or
``fused_elemwise``; a reduction, plain or ``fused_reduce``): the program comes from
``graphc.codegen.kernel.program_of`` and the scalar code from ``graphc.codegen.scalar``, only
the loops differ (``graphc.cuda.elemwise`` / ``graphc.cuda.reduce``). The IR depends only on
the node's structure; sizes and strides are kernel arguments.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from llvmlite import ir

from ..codegen.elemwise import finish_ir
from ..codegen.kernel import program_of
from ..codegen.scalar import CannotEmit, check_program
from ..ir.node import Node
from .elemwise import emit_elemwise_kernel
from .reduce import emit_reduce_kernels
from .target import DEFAULT_ARCH, TRIPLE, check_lowerable, data_layout, ptx

__all__ = ["CannotEmit", "CudaKernelSource", "cuda_kernel_source", "kernel_ptx"]

_PLACEHOLDER = "__graphc_cuda__"


@dataclass(frozen=True)
class CudaKernelSource:
    name: str  # elementwise: the kernel; reductions: NAME_block, NAME_serial, NAME_merge
    ir: str  # a whole NVPTX module (triple and data layout included)
    kind: str  # "elemwise" | "reduce"
    in_dtypes: tuple
    out_dtype: str
    ndim: int  # of the inputs (and, elementwise, of the output)
    axes: tuple = ()  # reduced axes
    keepdims: bool = True
    reduction: str = ""
    state_slots: int = 0  # int64 slots of one partial reduction state

    @property
    def n_inputs(self) -> int:
        return len(self.in_dtypes)

    @property
    def entries(self) -> tuple:
        """The kernels (``.entry`` functions) of the module."""
        if self.kind == "elemwise":
            return (self.name,)
        return tuple(f"{self.name}_{part}" for part in ("block", "serial", "merge"))


def cuda_kernel_source(node: Node, arch: str = DEFAULT_ARCH) -> CudaKernelSource:
    """The CUDA kernels computing ``node`` (raises ``CannotEmit``)."""
    root, params, reduction = program_of(node)
    check_program(root)
    module = ir.Module(name="graphc_cuda_kernel")
    module.triple = TRIPLE
    module.data_layout = data_layout(arch)
    in_dtypes = tuple(p.dtype for p in params)
    if reduction is None:
        emit_elemwise_kernel(module, _PLACEHOLDER, root, params, node.dtype)
        extra: dict = {"kind": "elemwise"}
    else:
        name, axes, keepdims = reduction
        slots = emit_reduce_kernels(module, _PLACEHOLDER, root, params, name, axes, node.dtype)
        extra = {"kind": "reduce", "axes": tuple(sorted(set(axes))), "keepdims": keepdims,
                 "reduction": name, "state_slots": slots}
    text = finish_ir(str(module))
    check_lowerable(text)
    name = "g_" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return CudaKernelSource(name, text.replace(_PLACEHOLDER, name), in_dtypes=in_dtypes,
                            out_dtype=node.dtype, ndim=root.ndim, **extra)


def kernel_ptx(source: CudaKernelSource, arch: str = DEFAULT_ARCH, use_cache: bool = True) -> str:
    """The PTX of ``source`` for ``arch`` (through the disk cache)."""
    return ptx(source.ir, arch, use_cache)
