"""Reduction LLVM kernels against NumPy (the ops' references): every reduction x dtype, every
subset of axes (none and all included), keepdims, layouts, empty axes, broadcast inputs, NaN
handling of max/min/argmax/argmin, integer accumulation, long float sums, fused prologues,
ranges of out's axis 0 and vectorisation."""
from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.codegen.kernel import CannotEmit, kernel_source
from graphc.ir.node import toposort
from graphc.ir.types import ALL_DTYPES
from graphc.opdefs.fused import FUSED_REDUCE
from graphc.runtime.reference import evaluate, run_node
from tests.codegen.kernel_helpers import assert_identical, run_kernel
from tests.helpers import assert_matches, layouts, random_array

REDUCTIONS = ("sum", "prod", "max", "min", "any", "all")
ARG_REDUCTIONS = ("argmax", "argmin")
SUBSETS = [axes for r in range(4) for axes in itertools.combinations(range(3), r)]


def reduction(name: str, x, axes, keepdims: bool = False):
    if name in ARG_REDUCTIONS:
        (axis,) = axes
        return getattr(gt, name)(x, axis=axis, keepdims=keepdims)
    return getattr(gt, name)(x, axis=axes, keepdims=keepdims)


def keepdims_shape(node, in_shape) -> tuple:
    axes = node.arg[0] if node.op is not FUSED_REDUCE else node.arg[1][0]
    return tuple(1 if a in axes else s for a, s in enumerate(in_shape))


def check(node, arrays, in_shape, exact: bool = False, ranges=None):
    """Run ``node``'s kernel into the keepdims shape and compare with its reference."""
    expected = run_node(node, list(arrays))
    got = run_kernel(kernel_source(node), arrays, keepdims_shape(node, in_shape), ranges)
    got = got.reshape(expected.shape)
    if exact or expected.dtype.kind != "f":
        assert_identical(got, expected, str(node))
    else:
        assert_matches(got, expected)


def value_of(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    value = random_array(shape, dtype, rng, low=-4, high=4)
    if np.dtype(dtype).kind == "f" and value.size > 3:
        value.flat[[0, 3]] = [0.5, -0.0]
    return value


def subset_node(name, axes, keepdims=False):
    return reduction(name, gt.tensor("float64", shape=(None,) * 3), axes, keepdims)


SUBSET_ROWS = [(n, axes) for n in REDUCTIONS for axes in SUBSETS] + [
    (n, (a,)) for n in ARG_REDUCTIONS for a in range(3)]


def dtype_node(name, dtype, axis=1):
    return reduction(name, gt.tensor(dtype, shape=(None, None)), (axis,))


DTYPE_ROWS = [(n, d) for n in REDUCTIONS + ARG_REDUCTIONS for d in ALL_DTYPES]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name, axes", SUBSET_ROWS, ids=str)
def test_every_subset_of_axes(name, axes, keepdims):
    value = value_of((3, 4, 5), "float64")
    value.flat[7] = 3.75  # a tie for max/argmax on some rows
    value.flat[8] = 3.75
    check(subset_node(name, axes, keepdims), [value], value.shape)


@pytest.mark.parametrize("name, dtype", DTYPE_ROWS)
def test_every_dtype(name, dtype):
    value = value_of((6, 37), dtype, seed=len(dtype))
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        value[0, :4] = [info.min, info.max, info.max, 1]  # sums past the dtype's range
    check(dtype_node(name, dtype), [value], value.shape)


@pytest.mark.parametrize("layout", ["contiguous", "strided", "negative"])
@pytest.mark.parametrize("name, axes", [("sum", (1,)), ("sum", (0,)), ("sum", (0, 1)),
                                        ("max", (0,)), ("argmax", (1,)), ("argmin", (0,)),
                                        ("prod", (1,)), ("all", (0,))])
def test_layouts(name, axes, layout):
    value = layouts(value_of((9, 13), "float32", seed=2))[layout]
    node = reduction(name, gt.tensor("float32", shape=(None, None)), axes)
    check(node, [value], value.shape)


@pytest.mark.parametrize("name, identity", [("sum", 0), ("prod", 1), ("any", False),
                                            ("all", True)])
@pytest.mark.parametrize("shape, axes", [((0, 5), (0,)), ((5, 0), (1,)), ((0, 3), (0, 1)),
                                         ((3, 0), (0,)), ((4, 0, 2), (1,))])
def test_empty(name, identity, shape, axes):
    for dtype in ("float32", "int8"):
        value = np.zeros(shape, dtype)
        node = reduction(name, gt.tensor(dtype, shape=(None,) * len(shape)), axes)
        check(node, [value], shape)
        if run_node(node, [value]).size:
            assert np.all(run_node(node, [value]) == identity)


def test_zero_d_and_no_axes():
    for name in REDUCTIONS:
        x = gt.tensor("float32", shape=())
        check(reduction(name, x, ()), [np.array(2.5, np.float32)], ())
    check(gt.argmax(gt.tensor("int16", shape=())), [np.array(7, np.int16)], ())
    x = gt.tensor("int8", shape=(None, None))
    check(gt.sum(x, axis=()), [value_of((4, 3), "int8")], (4, 3))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_handling(dtype):
    x = gt.tensor(dtype, shape=(None, None))
    value = np.array([[1.0, np.nan, 5.0, np.nan], [-np.inf, -np.inf, -np.inf, -np.inf],
                      [3.0, 7.0, 7.0, -1.0], [np.nan, 2.0, 9.0, 1.0], [0.0, -0.0, 0.0, -0.0],
                      [np.inf, 1.0, np.inf, np.nan]], dtype)
    for name in ("max", "min", "argmax", "argmin", "sum", "any", "all"):
        for axes in ((1,), (0,)):
            check(reduction(name, x, axes), [value], value.shape)


def test_integer_accumulation_and_wrapping():
    x8 = gt.tensor("int8", shape=(None,))
    value = np.full(1000, 127, np.int8)
    got = run_kernel(kernel_source(gt.sum(x8)), [value], (1,))
    assert got.dtype == np.int64 and got[0] == 127000
    xu = gt.tensor("uint64", shape=(None,))
    value = np.array([2 ** 63, 2 ** 63, 5], np.uint64)
    check(gt.sum(xu), [value], (3,))
    check(gt.prod(xu), [value], (3,))
    xb = gt.tensor("bool", shape=(None, None))
    check(gt.sum(xb, axis=1), [value_of((5, 40), "bool")], (5, 40))


@pytest.mark.parametrize("axis", [0, 1])
def test_long_float32_sum_is_accurate(axis):
    n = 2 ** 22
    shape = (n, 1) if axis == 0 else (1, n)
    x = gt.tensor("float32", shape=(None, None))
    value = np.full(shape, 0.1, np.float32)
    got = run_kernel(kernel_source(gt.sum(x, axis=axis)), [value], (1, 1))
    exact = n * float(np.float32(0.1))
    assert abs(float(got[0, 0]) - exact) <= 1e-6 * exact


def test_long_float64_sum_is_accurate():
    n = 2 ** 22
    x = gt.tensor("float64", shape=(None,))
    got = run_kernel(kernel_source(gt.sum(x)), [np.full(n, 0.1)], (1,))
    assert abs(got[0] - n * 0.1) <= 1e-13 * n * 0.1


def test_ranges_of_out_axis_0():
    x = gt.tensor("float64", shape=(None, None, None))
    source = kernel_source(gt.sum(x, axis=(1,)))
    value = value_of((7, 5, 6), "float64")
    whole = run_kernel(source, [value], (7, 1, 6))
    split = run_kernel(source, [value], (7, 1, 6), ranges=[(0, 2), (2, 7)])
    assert_identical(split, whole)
    assert_matches(whole, value.sum(axis=1, keepdims=True))


# --- fused prologues -------------------------------------------------------------------------

def fused_reductions(expression):
    inputs = [n for n in toposort([expression]) if n.op.name == "input"]
    f = gc.function(inputs, expression, mode="FAST_RUN")
    nodes = [n for n in toposort(f.fgraph.outputs) if n.op is FUSED_REDUCE]
    assert nodes, f.fgraph.outputs
    return nodes


def _softmax_denominator(x, b):
    return gt.sum(gt.exp(x - gt.max(x, axis=1, keepdims=True)), axis=1)


FUSED = {
    "sum-exp": (_softmax_denominator, ((8, 50), (50,))),
    "max-abs": (lambda x, b: gt.max(gt.abs(x * b), axis=0), ((8, 50), (50,))),
    "any-positive": (lambda x, b: gt.any(x + b > 1, axis=1), ((8, 50), (50,))),
    "argmax-scaled": (lambda x, b: gt.argmax(x * b + 1, axis=1), ((8, 50), (50,))),
    "mean-square": (lambda x, b: gt.mean(gt.sqr(x - b)), ((8, 50), (50,))),
    "broadcast-body": (lambda x, b: gt.sum(gt.expand_dims(gt.sum(x, axis=1), 1) * b, axis=0),
                       ((8, 50), (50,))),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(FUSED))
def test_fused_prologue(case, dtype):
    build, shapes = FUSED[case]
    values = [value_of(s, dtype, seed=i) for i, s in enumerate(shapes)]
    inputs = [gt.tensor(dtype, shape=(None,) * len(s)) for s in shapes]
    for node in fused_reductions(build(*inputs)):
        arrays = evaluate(list(node.src), dict(zip(inputs, values)))
        in_shape = np.broadcast_shapes(*(a.shape for a in arrays))
        for layout in ("contiguous", "negative"):
            check(node, [layouts(a)[layout] for a in arrays], in_shape)


@pytest.mark.parametrize("static", [True, False])
def test_broadcast_inputs(static):
    x = gt.tensor("float32", shape=(None, 1) if static else (None, None))
    y = gt.tensor("float32", shape=(1, None) if static else (None, None))
    for expression in (gt.sum(x * y + 1, axis=1), gt.max(x - y, axis=0), gt.sum(x * y)):
        (node,) = fused_reductions(expression)
        values = {x: value_of((6, 1), "float32"), y: value_of((1, 9), "float32", seed=3)}
        arrays = evaluate(list(node.src), values)
        check(node, arrays, (6, 9))


def test_unsupported_reductions_cannot_emit():
    x = gt.tensor("float32", shape=(None, None))
    with pytest.raises(CannotEmit):
        kernel_source(gt.sum_to(x, gt.tensor("float32", shape=(1, None))))
    (node,) = fused_reductions(gt.sum(gt.arcsin(x) * x, axis=1))
    with pytest.raises(CannotEmit, match="arcsin"):
        kernel_source(node)


def test_sum_of_exp_vectorises():
    from graphc.codegen.jit import JitModule

    x = gt.tensor("float32", shape=(None, None))
    (node,) = fused_reductions(gt.sum(gt.exp(x), axis=1))
    compiled = JitModule(kernel_source(node).ir)
    assert re.search(r"<\d+ x float>", compiled.optimized_ir)
    assert re.search(r"fadd reassoc <\d+ x float>", compiled.optimized_ir)  # partial sums
    assert re.search(r"call <\d+ x float> @llvm\.fma", compiled.optimized_ir)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "uint8", "bool"])
def test_column_reductions_wider_than_a_block(dtype):
    """Outer-axis reductions keep a block of accumulators per output row (COLUMN_BLOCK wide)."""
    from graphc.codegen.reduce import COLUMN_BLOCK

    value = value_of((3, 7, 2 * COLUMN_BLOCK + 5), dtype)
    x = gt.tensor(dtype, shape=(None,) * 3)
    for name in REDUCTIONS:
        for axes in ((1,), (0, 1), (0,)):
            node = reduction(name, x, axes)
            check(node, [value], value.shape)
            check(node, [layouts(value)["negative"]], value.shape)
        check(reduction(name, x, (1,)), [value], value.shape, ranges=[(0, 1), (1, 3)])


def test_max_and_min_vectorise():
    from graphc.codegen.jit import JitModule

    x = gt.tensor("float32", shape=(None, None))
    for name in ("max", "min"):
        for axis in (0, 1):
            compiled = JitModule(kernel_source(reduction(name, x, (axis,))).ir)
            assert re.search(r"<\d+ x float>", compiled.optimized_ir), (name, axis)
