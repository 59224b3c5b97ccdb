"""Elementwise CUDA kernels: a grid-stride loop over the output's elements.

``emit_elemwise_kernel(module, name, program, params, out_dtype)`` adds the kernel

    void name(i64 n, i32 flat, ptr data_0, i64 stride_0_0 ... stride_0_{ndim-1}, ...,
              ptr data_out, i64 out_strides..., i64 size_1 ... size_{ndim-1})

(inputs first, then the output; byte strides; the output's sizes but the first). Thread
``t`` of the grid computes elements ``t, t + grid size, ...`` below ``n`` (the output's size).
The host (``graphc.cuda.launch.elemwise_args``) passes stride 0 on every axis where an input
has size 1, so broadcasting, negative and any other strides need nothing more here. With
``flat`` set (every operand C-contiguous with the output's shape, or one element) element i
is at ``i * last stride`` of every operand, no index arithmetic; otherwise the flat index is
split into coordinates over the sizes.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from llvmlite import ir

from ..codegen.elemwise import counted_loop, i64
from ..codegen.elemwise import offset as byte_offset
from ..codegen.scalar import emit_program, load_value, store_value
from ..ir.node import Node
from .nvvm import I32, I64, PTR, Threads, kernel_function

__all__ = ["byte_offset", "emit_elemwise_kernel", "grid_stride_loop", "unravel"]


def grid_stride_loop(builder: ir.IRBuilder, first, stop, step, body, carried=()) -> list:
    """``for i in range(first, stop, step): values = body(i, values)`` starting from
    ``carried``; returns the values after the loop, the builder ends after it."""
    return counted_loop(builder, first, stop, list(carried),
                        lambda i, values: list(body(i, values) or []), step=step)


def unravel(builder: ir.IRBuilder, index, sizes: Sequence[ir.Value]) -> list:
    """C-order coordinates of a flat ``index`` over axes of ``sizes`` (the first size is not
    needed: the first coordinate is what is left)."""
    if not sizes:
        return []
    coords = []
    for size in reversed(sizes[1:]):
        coords.append(builder.urem(index, size))
        index = builder.udiv(index, size)
    coords.append(index)
    return coords[::-1]


def dot(builder: ir.IRBuilder, coords, strides) -> ir.Value:
    """sum(coords[d] * strides[d]) (i64 0 for no axes)."""
    total = i64(0)
    for coord, stride in zip(coords, strides):
        total = builder.add(total, builder.mul(coord, stride))
    return total


def emit_elemwise_kernel(module: ir.Module, name: str, program: Node, params: Sequence[Node],
                         out_dtype: str) -> ir.Function:
    """Add the kernel ``name`` computing ``program`` elementwise (see the module doc)."""
    ndim = program.ndim
    n_ops = len(params) + 1
    arg_types = [I64, I32] + ([PTR] + [I64] * ndim) * n_ops + [I64] * max(ndim - 1, 0)
    fn = kernel_function(module, name, arg_types)
    n, flat = fn.args[0], fn.args[1]
    per_op = 1 + ndim
    datas = [fn.args[2 + k * per_op] for k in range(n_ops)]
    strides = [list(fn.args[3 + k * per_op: 2 + (k + 1) * per_op]) for k in range(n_ops)]
    sizes = [None] + list(fn.args[2 + n_ops * per_op:])
    dtypes = [p.dtype for p in params] + [out_dtype]
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    threads = Threads(builder)

    def element(offsets):
        values = [load_value(builder, byte_offset(builder, d, o), t)
                  for d, o, t in zip(datas[:-1], offsets[:-1], dtypes[:-1])]
        result = emit_program(builder, program, values)
        store_value(builder, result, byte_offset(builder, datas[-1], offsets[-1]), out_dtype)

    def flat_body(i, _):
        element([builder.mul(i, s[-1]) if ndim else i64(0) for s in strides])

    def nd_body(i, _):
        coords = unravel(builder, i, sizes)
        element([dot(builder, coords, s) for s in strides])

    is_flat = builder.icmp_signed("!=", flat, ir.Constant(I32, 0))
    with builder.if_else(is_flat) as (flat_path, nd_path):
        with flat_path:
            grid_stride_loop(builder, threads.global_id, n, threads.global_size, flat_body)
        with nd_path:
            if ndim > 1:
                grid_stride_loop(builder, threads.global_id, n, threads.global_size, nd_body)
            else:  # 0-d and 1-d have nothing to split
                grid_stride_loop(builder, threads.global_id, n, threads.global_size, flat_body)
    builder.ret_void()
    return fn


def itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize
