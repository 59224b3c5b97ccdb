"""The nodes the CUDA kernel tests compile: every elementwise op x dtype, casts, fused
programs, every reduction x dtype x axes x keepdims, fused reductions."""
from __future__ import annotations

import llvmlite.binding as llvm

import graphc as gc
import graphc.tensor as gt
from graphc.ir.node import make
from graphc.ir.types import ALL_DTYPES
from graphc.opdefs.elementwise import ELEMWISE_OPS

# (op, dtype) pairs no kernel is emitted for (they run on the host): as on the CPU
NOT_EMITTED = {"arcsin", "arccos", "arctan", "arctan2", "erfc", "pow"}
NOT_EMITTED_PAIRS = {("int_div", "float32"), ("int_div", "float64"), ("mod", "float32"),
                     ("mod", "float64"), ("sub", "bool")}
TABLE_OPS = sorted(n for n in ELEMWISE_OPS
                   if n != "cast" and ELEMWISE_OPS[n].props.get("accepts"))
REDUCTIONS = ("sum", "prod", "max", "min", "any", "all", "argmax", "argmin")
REDUCE_DTYPES = ("float32", "float64", "int8", "int32", "int64", "uint8", "uint64", "bool")
# (ndim, axes): one axis inner or outer, several, all, none
AXES_ROWS = [(2, (1,)), (2, (0,)), (3, (0, 2)), (3, (0, 1, 2)), (1, (0,)), (2, ())]


def emitted(name: str, dtype: str) -> bool:
    return name not in NOT_EMITTED and (name, dtype) not in NOT_EMITTED_PAIRS


def op_node(name: str, dtype: str, ndim: int = 2, static_one: bool = False):
    """The op ``name`` over fresh ``dtype`` inputs (the last one statically (1, None...))."""
    op = ELEMWISE_OPS[name]
    nin = op.props["nin"]
    shapes = [(None,) * ndim] * nin
    if static_one and ndim:
        shapes[-1] = (1,) + (None,) * (ndim - 1)
    inputs = [gt.tensor(dtype, shape=s) for s in shapes]
    if name == "where":
        inputs[0] = gt.tensor("bool", shape=shapes[0])
    return make(op, tuple(inputs), None)


def cast_node(source: str, target: str):
    return gt.cast(gt.tensor(source, shape=(None, None)), target)


def reduce_node(name: str, dtype: str, ndim: int, axes: tuple, keepdims: bool):
    x = gt.tensor(dtype, shape=(None,) * ndim)
    if name in ("argmax", "argmin"):
        if len(axes) != 1:
            return None
        return getattr(gt, name)(x, axis=axes[0], keepdims=keepdims)
    return getattr(gt, name)(x, axis=axes, keepdims=keepdims)


def accepts_reduction(name: str, dtype: str) -> bool:
    if name in ("sum", "prod", "max", "min", "argmax", "argmin", "any", "all"):
        return dtype in ALL_DTYPES
    return False


def compiled_output(inputs, output):
    """The node FAST_RUN makes of ``output`` (fused programs and fused reductions)."""
    f = gc.function(inputs, output, on_unused_input="ignore")
    return f.fgraph.outputs[0]


def fused_cases():
    """name -> (inputs, output) whose compiled graph is one fused kernel."""
    x = gt.tensor("float32", shape=(None, None), name="x")
    y = gt.tensor("float32", shape=(1, None), name="y")
    v = gt.tensor("float64", shape=(None, None, None), name="v")
    s = gt.tensor("float64", shape=(), name="s")
    return {
        "chain": ([x, y], gt.exp(x) * y + gt.tanh(x) - 2.5),
        "broadcast_3d": ([v, s], gt.log1p(gt.abs(v)) * s + gt.sigmoid(v)),
        "mixed_dtypes": ([x, v], gt.sin(x.astype("float64")).dimshuffle(0, 1, "x") + v),
        "compare_where": ([x, y], gt.where(x > y, gt.erf(x), gt.softplus(y))),
        "sum_of_exp": ([x], gt.sum(gt.exp(x - 1.0), axis=1)),
        "max_of_product": ([x, y], gt.max(x * y, axis=0, keepdims=True)),
        "argmax_of_sum": ([x, y], gt.argmax(x + y, axis=1)),
        "any_positive": ([v], gt.any(v > 0.5, axis=(0, 2))),
        "mean_3d": ([v], gt.mean(gt.sqr(v), axis=(1, 2))),
    }


def link(sources) -> str:
    """One LLVM module text holding every kernel of ``sources`` (one PTX, one ptxas run)."""
    module = None
    unique = {s.name: s for s in sources}  # e.g. int32 and uint32 add: the same kernel
    for source in unique.values():
        part = llvm.parse_assembly(source.ir)
        if module is None:
            module = part
        else:
            module.link_in(part)
    return str(module)
