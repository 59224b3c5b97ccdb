"""The CUDA kernels and the host's launch plans run in the CPU simulator against NumPy: layouts
(strided, negative strides, run-time broadcasting, 0-size, 0-d), dtypes, every reduction with
the block + merge and the serial forms, NaN and empty-axis rules."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import graphc.tensor as gt
from graphc.cuda.kernel import cuda_kernel_source
from graphc.cuda.launch import DeviceLimits, elemwise_launch, layout_of, reduce_plan
from graphc.runtime.reference import run_node
from tests.cuda.kernel_table import op_node, reduce_node
from tests.cuda.simulator import Simulator
from tests.helpers import assert_matches, layouts, random_array

_SIMULATORS: dict = {}


def simulator(source) -> Simulator:
    if source.name not in _SIMULATORS:
        _SIMULATORS[source.name] = Simulator(source)
    return _SIMULATORS[source.name]


def run_elemwise(node, values, grid=2, block=32):
    source = cuda_kernel_source(node)
    shape = np.broadcast_shapes(*(v.shape for v in values))
    out = np.empty(shape, node.dtype)
    launch = elemwise_launch(source.name, [layout_of(v) for v in values], layout_of(out),
                             DeviceLimits(1))
    if launch is not None:
        simulator(source).launch(dataclasses.replace(launch, grid=grid, block=block))
    return out


def run_reduce(node, values, limits=None, block=64):
    limits = limits or DeviceLimits(1)
    source = cuda_kernel_source(node)
    expected = run_node(node, values)
    out = np.empty(expected.shape, expected.dtype)
    plan = reduce_plan(source.name, source.axes, source.state_slots,
                       [layout_of(v) for v in values], layout_of(out), limits)
    if plan is not None:
        scratch = np.zeros(max(plan.partial_slots, 1), np.int64)
        plan = plan.with_partials(scratch.ctypes.data)
        sim = simulator(source)
        sim.launch(dataclasses.replace(plan.first, grid=min(plan.first.grid, 3),
                                       block=min(plan.first.block, block)))
        if plan.merge is not None:
            sim.launch(dataclasses.replace(plan.merge, grid=2, block=32))
    return out, expected, plan


@pytest.mark.parametrize("name, dtype", [("add", "float32"), ("mul", "int16"), ("sub", "uint8"),
                                         ("maximum", "float64"), ("exp", "float32"),
                                         ("tanh", "float64"), ("int_div", "int32"),
                                         ("and", "bool"), ("lt", "int64"), ("where", "float32")])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "negative"])
def test_elementwise_layouts_and_dtypes(name, dtype, layout):
    node = op_node(name, dtype, 2)
    rng = np.random.default_rng(1)
    values = [layouts(random_array((4, 9), s.dtype, rng))[layout] for s in node.src]
    if name == "int_div":
        values[1] = np.where(values[1] == 0, 3, values[1]).astype(dtype)
    assert_matches(run_elemwise(node, values), run_node(node, values))


@pytest.mark.parametrize("shapes", [[(4, 1), (1, 7)], [(1, 1), (3, 5)], [(0, 5), (1, 5)],
                                    [(3, 0), (3, 1)]], ids=str)
def test_run_time_broadcasting_and_empty(shapes):
    node = op_node("add", "float64", 2)
    values = [random_array(s, "float64") for s in shapes]
    assert_matches(run_elemwise(node, values), values[0] + values[1])


def test_zero_d_and_four_d():
    node = op_node("mul", "float32", 0)
    values = [np.array(3.0, "float32"), np.array(-2.0, "float32")]
    assert_matches(run_elemwise(node, values), np.float32(-6.0))
    node = op_node("add", "float32", 4, static_one=True)
    values = [random_array((2, 3, 4, 5), "float32"), random_array((1, 3, 1, 5), "float32")]
    values[0] = values[0][:, ::-1, :, ::2].copy()[:, :, :, :3]
    values[1] = values[1][:, :, :, :3]
    assert_matches(run_elemwise(node, values), values[0] + values[1])


REDUCE_ROWS = [(name, ndim, axes, shape)
               for name in ("sum", "prod", "max", "min", "argmax", "argmin", "any", "all")
               for ndim, axes, shape in [(2, (1,), (3, 100)), (2, (0,), (70, 3)),
                                         (3, (0, 2), (5, 2, 9))]
               if len(axes) == 1 or not name.startswith("arg")]  # arg*: one axis


@pytest.mark.parametrize("dtype", ["float32", "uint8", "bool"])
@pytest.mark.parametrize("name, ndim, axes, shape", REDUCE_ROWS, ids=str)
def test_reductions(name, dtype, ndim, axes, shape):
    node = reduce_node(name, dtype, ndim, axes, keepdims=False)
    low, high = (0.5, 1.5) if name == "prod" else (-3.0, 3.0)
    value = random_array(shape, dtype, np.random.default_rng(2), low, high)
    out, expected, _ = run_reduce(node, [value])
    assert_matches(out, expected)


@pytest.mark.parametrize("name", ["sum", "max", "argmax", "argmin", "prod", "all"])
def test_split_reductions_merge_partial_states(name):
    """A long axis over few outputs is split over blocks; the merge pass joins the states."""
    node = reduce_node(name, "float64", 2, (1,), keepdims=True)
    value = layouts(random_array((2, 9000), "float64", np.random.default_rng(3), 0.99, 1.01))
    value = value["strided"]
    value[1, 4321] = 7.0  # a clear extremum in a later split
    value[0, 17] = 0.5
    out, expected, plan = run_reduce(node, [value], DeviceLimits(multiprocessors=8))
    assert plan.splits > 1 and plan.merge is not None
    assert_matches(out, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_rules(dtype):
    value = random_array((3, 40), dtype)
    value[0, 5] = value[0, 30] = np.nan
    value[2, 39] = np.nan
    for name in ("max", "min", "argmax", "argmin", "sum", "any"):
        node = reduce_node(name, dtype, 2, (1,), keepdims=False)
        out, expected, _ = run_reduce(node, [value])
        assert_matches(out, expected)


def test_ties_give_the_first_index():
    value = np.zeros((2, 300), "int64")
    value[:, [7, 150, 299]] = 5
    out, expected, _ = run_reduce(reduce_node("argmax", "int64", 2, (1,), False), [value])
    assert list(out) == list(expected) == [7, 7]


@pytest.mark.parametrize("name, identity", [("sum", 0), ("prod", 1), ("any", False),
                                            ("all", True)])
def test_empty_axes_give_the_identity(name, identity):
    value = np.zeros((4, 0), "float32")
    out, expected, _ = run_reduce(reduce_node(name, "float32", 2, (1,), False), [value])
    assert_matches(out, expected)
    assert (out == identity).all()


def test_serial_form_for_reductions_over_leading_axes():
    value = random_array((50, 1100), "float32")
    out, expected, plan = run_reduce(reduce_node("sum", "float32", 2, (0,), False), [value],
                                     block=32)
    assert plan.first.kernel.endswith("_serial")
    assert_matches(out, expected)


def test_fused_prologue_with_broadcast_input():
    x = gt.tensor("float32", shape=(None, None))
    m = gt.tensor("float32", shape=(None, 1))
    from tests.cuda.kernel_table import compiled_output

    node = compiled_output([x, m], gt.sum(gt.exp(x - m), axis=1))
    assert node.op.name == "fused_reduce"
    values = [random_array((3, 500), "float32"), random_array((3, 1), "float32")]
    out, expected, _ = run_reduce(node, values)
    assert_matches(out, expected)
