"""The kernel emitter's entry point: one graph node -> the LLVM IR of one CPU kernel.

``kernel_source(node)`` takes an elementwise node (a plain op or ``fused_elemwise``) or a
reduction (sum prod max min any all argmax argmin, or ``fused_reduce``) and returns a
``KernelSource``. A plain op is first turned into a one-op program over params, so every node
takes one path: program -> scalar code (``scalar.py``) -> loops (``elemwise.py`` /
``reduce.py``, target-neutral cores) -> the CPU entry function below. The text depends only on
the node's structure (ops, program, dtypes, ndim, static size-1 dims, axes/keepdims); sizes are
run-time arguments, so one kernel serves every shape of its ndim.

CPU calling convention::

    void NAME(PyObject* in_0, ..., PyObject* in_{n-1}, PyObject* out, int64 start, int64 stop)

Each array is a NumPy ``PyArrayObject`` whose fields the kernel reads itself (see
``ARRAY_FIELDS``; ``array_layout_ok()`` checks them against a real array). ``[start, stop)`` is a
range of ``out``'s axis 0 (0-d: ``0, 1``). A reduction's ``out`` has the keepdims shape.
"""
from __future__ import annotations

import ctypes
import hashlib
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from ..ir.node import Node, make
from ..ir.op import ELEMWISE, REDUCE
from ..opdefs.fused import FUSABLE_REDUCTIONS, FUSED_ELEMWISE, FUSED_REDUCE, param, param_type
from .elemwise import I64, PTR, emit_elemwise_core, finish_ir, i64
from .scalar import CannotEmit, check_program

__all__ = ["ARRAY_FIELDS", "CannotEmit", "KernelSource", "array_layout_ok", "kernel_source",
           "program_of"]

# byte offsets in NumPy's PyArrayObject_fields (64-bit CPython, not free-threaded)
ARRAY_FIELDS = {"data": 16, "nd": 24, "dimensions": 32, "strides": 40}
_PLACEHOLDER = "__graphc_kernel__"


@dataclass(frozen=True)
class KernelSource:
    name: str  # the LLVM function to call
    ir: str  # an LLVM module defining ``name`` (no triple or data layout)
    n_inputs: int
    kind: str  # "elemwise" | "reduce" | "rows" (softmax, log_softmax, logsumexp: rows.py)
    #   | "random" | "pool" | "conv": the kind an op names in props["kernel"]
    #   (random_kernels.py, pool_kernels.py, conv_kernels.py)
    out_dtype: str


def program_of(node: Node) -> tuple[Node, tuple, tuple | None]:
    """``(program root, params, reduction)`` of a node; ``reduction`` is ``(name, axes,
    keepdims)`` for a reduction and None for an elementwise node."""
    if node.op is FUSED_ELEMWISE:
        return node.arg.node, node.arg.params, None
    if node.op is FUSED_REDUCE:
        name, (axes, keepdims), program = node.arg
        return program.node, program.params, (name, tuple(axes), bool(keepdims))
    params = tuple(param(i, param_type(s.type)) for i, s in enumerate(node.src))
    if node.op.kind == ELEMWISE:
        return make(node.op, params, node.arg), params, None
    if node.op.kind == REDUCE and node.op.name in FUSABLE_REDUCTIONS and len(params) == 1:
        axes, keepdims = node.arg
        return params[0], params, (node.op.name, tuple(axes), bool(keepdims))
    raise CannotEmit(f"{node.op.name} is neither elementwise nor a supported reduction")


def row_op(node: Node) -> str | None:
    """The name of a softmax/log_softmax/logsumexp node over its last axis (a row kernel)."""
    if node.op.props.get("kernel") != "rows" or node.src[0].dtype not in ("float32", "float64"):
        return None
    axes = node.arg[0] if node.op.name == "logsumexp" else node.arg
    ndim = node.src[0].ndim
    return node.op.name if ndim and tuple(axes) == (ndim - 1,) else None


def _row_kernel_source(node: Node, op_name: str) -> KernelSource:
    from .rows import emit_rows_core

    x = node.src[0]
    module = ir.Module(name="graphc_kernel")
    core = emit_rows_core(module, f"{_PLACEHOLDER}core", op_name, x.dtype, x.ndim,
                          param(0, param_type(x.type)))
    return _finish(module, core, 1, "rows", node.dtype)


def _random_kernel_source(node: Node) -> KernelSource:
    from .random_kernels import N_PARAMS, emit_random_core

    module = ir.Module(name="graphc_kernel")
    core = emit_random_core(module, f"{_PLACEHOLDER}core", node.op.name, node.dtype)
    return _finish(module, core, 1 + N_PARAMS.get(node.op.name, 0), "random", node.dtype)


def _finish(module: ir.Module, core: ir.Function, n_inputs: int, kind: str,
            out_dtype: str) -> KernelSource:
    _emit_cpu_entry(module, _PLACEHOLDER, core, n_inputs)
    text = finish_ir(str(module))
    name = "k_" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return KernelSource(name, text.replace(_PLACEHOLDER, name), n_inputs, kind, out_dtype)


# kernel sources by structure: graphs repeat the same few kernels (a gradient's chain of
# tanh' steps) and building IR in Python costs milliseconds each
_MEMO: dict = {}


def kernel_source(node: Node) -> KernelSource:
    """The LLVM IR of the CPU kernel computing ``node`` (raises ``CannotEmit``)."""
    key = (node.op, node.arg, node.dtype, tuple(param_type(s.type) for s in node.src))
    found = _MEMO.get(key)
    if found is None:
        try:
            found = _kernel_source(node)
        except CannotEmit as exc:
            found = exc
        if len(_MEMO) > 4096:
            _MEMO.clear()
        _MEMO[key] = found
    if isinstance(found, CannotEmit):
        raise found
    return found


def _kernel_source(node: Node) -> KernelSource:
    kind = node.op.props.get("kernel")
    if kind == "random":  # uniform01, normal01, integers, binomial
        return _random_kernel_source(node)
    if kind == "pool":
        from .pool_kernels import pool_kernel_source

        return pool_kernel_source(node)
    if kind == "conv":
        from .conv_kernels import conv_kernel_source

        return conv_kernel_source(node)
    op_name = row_op(node)
    if op_name is not None:
        return _row_kernel_source(node, op_name)
    root, params, reduction = program_of(node)
    check_program(root)
    module = ir.Module(name="graphc_kernel")
    core_name = f"{_PLACEHOLDER}core"
    if reduction is None:
        core = emit_elemwise_core(module, core_name, root, params, node.dtype)
        kind = "elemwise"
    else:
        from .reduce import emit_reduce_core

        name, axes, _ = reduction
        core = emit_reduce_core(module, core_name, root, params, name, axes, node.dtype)
        kind = "reduce"
    return _finish(module, core, len(params), kind, node.dtype)


def _emit_cpu_entry(module: ir.Module, name: str, core: ir.Function, n_inputs: int) -> None:
    """``void name(ptr array_0, ..., ptr out, i64 start, i64 stop)`` reading PyArrayObjects."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * (n_inputs + 1) + [I64, I64]),
                     name)
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    args = []
    for array in fn.args[:-2]:
        for field in ("data", "dimensions", "strides"):
            address = builder.gep(array, [i64(ARRAY_FIELDS[field])], source_etype=ir.IntType(8))
            args.append(builder.load(address, typ=PTR))
    builder.call(core, [*args, *fn.args[-2:]])
    builder.ret_void()


def array_layout_ok() -> bool:
    """Whether NumPy arrays here have the field offsets the kernels read (``ARRAY_FIELDS``)."""
    array = np.zeros((3, 5), np.float64)[::2, ::-2]

    def read(field: str, ctype):
        return ctype.from_address(id(array) + ARRAY_FIELDS[field]).value

    try:
        if read("data", ctypes.c_void_p) != array.ctypes.data or read("nd", ctypes.c_int32) != 2:
            return False
        dims, strides = read("dimensions", ctypes.c_void_p), read("strides", ctypes.c_void_p)
        if not dims or not strides:
            return False
        shape = tuple((ctypes.c_int64 * 2).from_address(dims))
        steps = tuple((ctypes.c_int64 * 2).from_address(strides))
        return shape == array.shape and steps == array.strides
    except (ValueError, OverflowError):
        return False
