"""Pooling kernels (``graphc.codegen.pool_kernels``) against the ops' NumPy references, bit
for bit: pool_2d in every mode, max_pool_grad, max_pool_select and pool_2d_grad.

Each case compiles one node in FAST_RUN, checks that its step is the pooling kernel, and runs
it on values full of ties, signed zeros, NaNs and infinities, in every layout; the expected
result is the op's reference on the same values.
"""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.ir.node import make
from graphc.opdefs.pool import (
    MAX_POOL_GRAD,
    MAX_POOL_SELECT,
    POOL_2D_GRAD,
    _pooled_shape,
    _spatial,
)
from graphc.opdefs.shape import static_entries
from graphc.runtime import cpu
from graphc.runtime.pool_step import PoolKernelStep
from graphc.runtime.reference import RunError
from tests.helpers import FLOATS, layouts

# (input shape, ws, keyword arguments of pool_2d)
CASES = [
    ((2, 3, 6, 5), (2, 2), {}),
    ((2, 3, 7, 5), (2, 2), dict(ignore_border=False)),
    ((2, 2, 6, 7), (3, 2), dict(ignore_border=False, stride=(1, 1))),  # 6 shares a cell
    ((1, 2, 7, 8), (2, 3), dict(stride=(3, 4))),  # gaps between windows
    ((2, 2, 8, 9), (2, 3), dict(ignore_border=False, stride=(1, 2))),
    ((2, 2, 7, 6), (3, 3), dict(stride=(2, 2), pad=(1, 2))),
    ((1, 3, 5, 5), (2, 2), dict(stride=(1, 1), pad=(1, 1))),
    ((1, 1, 9, 8), (3, 3), dict(stride=(1, 1), pad=(2, 2))),
    ((1, 2, 13, 11), (6, 6), dict(stride=(2, 3), pad=(5, 2))),  # 36 cells: a loop, not unrolled
    ((1, 2, 10, 9), (7, 5), dict(ignore_border=False, stride=(3, 2))),
    ((7, 5), (3, 2), dict(ignore_border=False, stride=(2, 1))),  # 2-d
    ((3, 4, 4), (1, 1), {}),
    ((2, 1, 2, 5, 4), (2, 2), {}),  # 5-d
    ((3, 1, 1, 1), (2, 2), dict(ignore_border=False)),
    ((1, 1, 2, 3), (3, 3), dict(ignore_border=False)),  # one partial window
    ((1, 1, 2, 3), (3, 3), {}),  # no whole window: an empty output
    ((0, 3, 4, 4), (2, 2), {}),
    ((2, 0, 5), (2, 2), dict(ignore_border=False)),
    ((2, 3, 0, 2), (2, 2), dict(pad=(1, 1))),  # an empty input: one window of padding
]
CASE_IDS = [f"{s}-{ws}-{kw}" for s, ws, kw in CASES]
POOL_MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")
# (op, mode): the gradient of the sums is pool_2d_grad
OPS = [("pool_2d", m) for m in POOL_MODES] + [("max_pool_grad", "max"),
                                              ("max_pool_select", "max")] + [
    ("pool_2d_grad", m) for m in POOL_MODES[1:]]
OP_IDS = [f"{op}-{mode}" for op, mode in OPS]


# --- values ---------------------------------------------------------------------------------------

def awkward(shape, dtype, rng, kind: str) -> np.ndarray:
    """Values of one ``kind``: 'normal', 'ties' (few distinct values, both zeros) or
    'specials' (NaN, infinities and signed zeros among normal values)."""
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        edges = np.array([info.min, info.max, 0, 1], dtype)
        values = rng.integers(-3 if info.min else 0, 4, shape).astype(dtype)
        return np.where(rng.random(shape) < 0.2, rng.choice(edges, shape), values)
    normal = rng.standard_normal(shape).astype(dtype)
    if kind == "normal":
        return normal
    pool = [-1.0, -0.0, 0.0, 1.0, 2.0]
    if kind == "specials":
        pool = [np.nan, -np.inf, np.inf, -0.0, 0.0]
    picked = np.array(pool, dtype)[rng.integers(0, len(pool), shape)]
    share = 0.7 if kind == "ties" else 0.3
    return np.where(rng.random(shape) < share, picked, normal)


def as_bits(array: np.ndarray) -> np.ndarray:
    return array.view(f"u{array.dtype.itemsize}") if array.dtype.kind == "f" else array


def assert_same_bits(got, expected, context="", nan_payloads=True):
    """Equal bits; with ``nan_payloads=False`` any NaN stands for any other (the sign and
    payload of a NaN made by arithmetic, inf - inf, are not specified)."""
    assert got.dtype == expected.dtype and got.shape == expected.shape, context
    if not nan_payloads and got.dtype.kind == "f":
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=context)
        got, expected = np.nan_to_num(got, nan=0.5), np.nan_to_num(expected, nan=0.5)
    np.testing.assert_array_equal(as_bits(got), as_bits(expected), err_msg=context)


def laid_out(array: np.ndarray, layout: str) -> np.ndarray:
    """``array`` in one of ``tests.helpers.layouts``, made from its bits (NaNs compare)."""
    if not array.size:
        return array
    return layouts(as_bits(array))[layout].view(array.dtype)


# --- building one node ----------------------------------------------------------------------------

def pool_node(op: str, mode: str, ndim: int, ws, kwargs, x_dtype: str, g_dtype: str):
    """(node, inputs): the op on symbolic x (and g / v) of ``ndim`` dimensions."""
    xs = gt.tensor(x_dtype, (None,) * ndim, name="x")
    pooled = gt.nnet.pool_2d(xs, ws, mode=mode, **kwargs)
    second = gt.tensor(g_dtype, (None,) * ndim, name="g")
    if op == "pool_2d":
        return pooled, [xs]
    if op == "max_pool_grad":
        return make(MAX_POOL_GRAD, (xs, second), pooled.arg), [xs, second]
    if op == "max_pool_select":
        return make(MAX_POOL_SELECT, (xs, second), pooled.arg), [xs, second]
    hw = _spatial(xs)
    return make(POOL_2D_GRAD, (second, hw), pooled.arg + (static_entries(hw),)), [xs, second]


def kernel_steps(f, op: str) -> list:
    return [s for n, s in f.program.kernels.items() if n.op.name == op]


def reference_of(node, values):
    """The op's NumPy reference on ``values`` (the compiled function's inputs)."""
    if node.op is POOL_2D_GRAD:
        x, g = values
        return node.op.ref(node.arg, np.ascontiguousarray(g), np.array(x.shape[-2:], "int64"))
    return node.op.ref(node.arg, *[np.ascontiguousarray(v) for v in values])


def point(op, shape, arg, x_dtype, g_dtype, rng, kind):
    """Input values: x, and g (pooled shape) or v (x's shape) for the ops that take one."""
    x = awkward(shape, x_dtype, rng, kind)
    if op == "pool_2d":
        return [x]
    other = _pooled_shape(arg, shape) if op in ("max_pool_grad", "pool_2d_grad") else shape
    return [x, awkward(other, g_dtype, rng, "specials" if kind == "specials" else "ties")]


def check_case(op, mode, shape, ws, kwargs, x_dtype, g_dtype, kinds=("normal", "ties",
                                                                        "specials")):
    node, inputs = pool_node(op, mode, len(shape), ws, kwargs, x_dtype, g_dtype)
    f = gc.function(inputs, node, mode="FAST_RUN")
    steps = kernel_steps(f, op)
    assert len(steps) == 1 and isinstance(steps[0], PoolKernelStep)
    assert steps[0].source.kind == "pool"
    rng = np.random.default_rng(abs(hash((op, mode, shape))) % 2**32)
    selects = mode == "max" and op != "max_pool_grad"  # values copied, NaNs included
    for kind in kinds:
        values = point(op, shape, node.arg, x_dtype, g_dtype, rng, kind)
        with np.errstate(all="ignore"):
            expected = reference_of(node, values)
        for layout in ("contiguous", "strided", "negative"):
            arrays = [laid_out(v, layout) for v in values]
            with np.errstate(all="ignore"):
                got = f(*arrays)
            assert_same_bits(got, expected, f"{kind} values, {layout}", nan_payloads=selects)


# --- bit for bit ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op,mode", OPS, ids=OP_IDS)
@pytest.mark.parametrize("shape,ws,kwargs", CASES, ids=CASE_IDS)
def test_kernel_matches_reference_bit_for_bit(shape, ws, kwargs, op, mode, dtype):
    check_case(op, mode, shape, ws, kwargs, dtype, dtype)


@pytest.mark.parametrize("x_dtype", ["int8", "uint8", "int32", "int64", "uint64"])
@pytest.mark.parametrize("op", ["pool_2d", "max_pool_grad", "max_pool_select"])
@pytest.mark.parametrize("shape,ws,kwargs", CASES[4:8], ids=CASE_IDS[4:8])
def test_max_of_integers(shape, ws, kwargs, op, x_dtype):
    check_case(op, "max", shape, ws, kwargs, x_dtype, "float32", kinds=("ties",))


@pytest.mark.parametrize("op", ["max_pool_grad", "max_pool_select"])
def test_gradient_dtype_differs_from_the_input(op):
    check_case(op, "max", (2, 3, 7, 6), (3, 2), dict(stride=(2, 1), pad=(1, 1)), "float64",
               "float32")


def test_window_of_padding_and_minus_infinity_sends_no_gradient():
    """All input cells -inf: a window starting in the padding has its first maximum there,
    so only the windows starting on an input cell send their gradient (to that cell)."""
    x = np.full((1, 1, 3, 3), -np.inf)
    g = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    node, inputs = pool_node("max_pool_grad", "max", 4, (2, 2), dict(stride=(1, 1), pad=(1, 1)),
                             "float64", "float64")
    got = gc.function(inputs, node, mode="FAST_RUN")(x, g)
    assert_same_bits(got, g[..., 1:, 1:].copy())
    assert_same_bits(got, reference_of(node, [x, g]))


# --- threads, ranges, the graph cache -------------------------------------------------------------

@pytest.mark.parametrize("op,mode", [("pool_2d", "max"), ("pool_2d", "average_exc_pad"),
                                     ("max_pool_grad", "max"), ("max_pool_select", "max"),
                                     ("pool_2d_grad", "sum")])
@pytest.mark.parametrize("shape", [(9, 4, 48, 48), (3, 2, 3, 90, 90)])
def test_big_inputs_split_over_threads(shape, op, mode, monkeypatch):
    monkeypatch.setattr(cpu, "N_THREADS", 4)  # more ranges than rows for the 5-d input
    ranges = []
    threads = cpu._threads()

    class Counting:
        def submit(self, fn, *args):
            ranges.append(args[-2:])
            return threads.submit(fn, *args)

    monkeypatch.setattr(cpu, "_threads", Counting)
    check_case(op, mode, shape, (3, 3), dict(stride=(2, 2), pad=(1, 1)), "float32", "float32",
               kinds=("ties",))
    rows = shape[0]
    assert ranges[:min(4, rows)] == [(rows * i // min(4, rows), rows * (i + 1) // min(4, rows))
                                     for i in range(min(4, rows))]


def test_compiled_again_from_the_graph_cache():
    node, inputs = pool_node("max_pool_grad", "max", 4, (2, 2), {}, "float32", "float32")
    first = gc.function(inputs, node, mode="FAST_RUN")
    again = gc.function(inputs, node, mode="FAST_RUN")
    assert again.graph_cache == "hit"
    (step,) = kernel_steps(again, "max_pool_grad")
    assert isinstance(step, PoolKernelStep)
    rng = np.random.default_rng(7)
    values = point("max_pool_grad", (3, 2, 6, 6), node.arg, "float32", "float32", rng, "ties")
    assert_same_bits(again(*values), first(*values))
    assert_same_bits(again(*values), reference_of(node, values))


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("op,fragment", [("max_pool_grad", "output gradient"),
                                         ("max_pool_select", "values"),
                                         ("pool_2d_grad", "output gradient")])
def test_bad_shapes_raise_the_reference_error(op, fragment):
    node, inputs = pool_node(op, "sum" if op == "pool_2d_grad" else "max", 4, (2, 2), {},
                             "float64", "float64")
    x, wrong = np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 3, 3))
    messages = []
    for mode in ("reference", "FAST_RUN"):
        with pytest.raises(RunError, match=fragment) as info:
            gc.function(inputs, node, mode=mode)(x, wrong)
        messages.append(str(info.value).split("\n")[0])
    assert messages[0] == messages[1]
