"""Convolution kernels (``graphc.codegen.conv_kernels`` + ``graphc.runtime.conv_step``) against
the ops' NumPy references: conv2d, conv2d_grad_input and conv2d_grad_weights.

Each case compiles one node in FAST_RUN, checks that its step is the convolution kernel, and
runs it on every layout of every input; the expected result is the op's reference on the same
values, to the rounding of a different order of the BLAS product's sums.
"""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.opdefs import conv
from graphc.opdefs.conv import CONV2D_GRAD_INPUT, CONV2D_GRAD_WEIGHTS
from graphc.runtime import conv_step, cpu
from graphc.runtime.conv_step import ConvKernelStep
from graphc.runtime.reference import RunError
from tests.helpers import FLOATS, layouts

# (input shape, filter shape, keyword arguments of conv2d)
CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), dict(border_mode="half")),
    ((2, 3, 7, 6), (4, 3, 3, 3), dict(border_mode="half", filter_flip=False)),
    ((3, 2, 5, 7), (3, 2, 1, 1), {}),
    ((2, 2, 7, 9), (3, 2, 2, 3), dict(border_mode="full")),
    ((1, 3, 9, 8), (2, 3, 5, 5), dict(border_mode="half", subsample=2)),
    ((2, 2, 9, 11), (3, 2, 3, 3), dict(border_mode=(1, 2), filter_dilation=2)),
    ((2, 2, 8, 9), (2, 2, 2, 3), dict(border_mode="full", subsample=(2, 1), filter_dilation=(1, 2),
                                      filter_flip=False)),
    ((1, 2, 10, 9), (3, 2, 3, 2), dict(border_mode=(2, 1), subsample=(2, 3))),
    ((2, 4, 7, 5), (6, 2, 3, 3), dict(num_groups=2, border_mode="half")),
    ((2, 4, 7, 5), (6, 2, 2, 3), dict(num_groups=2, subsample=2, filter_flip=False)),
    # depthwise
    ((1, 3, 6, 7), (6, 1, 3, 3), dict(num_groups=3, border_mode="full", filter_dilation=2)),
    ((1, 1, 5, 5), (1, 1, 5, 5), {}),  # the kernel covers the input: 1x1 output
    ((1, 1, 1, 1), (2, 1, 3, 3), dict(border_mode="half")),
    ((1, 1, 3, 3), (1, 1, 3, 3), dict(border_mode=1, subsample=2)),
    ((32, 16, 4, 4), (8, 16, 3, 3), dict(border_mode="half")),  # the digits CNN's second layer
    ((1, 2, 5, 21), (2, 2, 3, 3), dict(border_mode="half")),  # rows too long for one vector
    ((2, 1, 6, 10), (2, 1, 3, 2), dict(border_mode="valid")),  # rows of 9 cells: 36/72 bytes
    ((0, 3, 5, 5), (2, 3, 3, 3), dict(border_mode="half")),  # empty batch: the reference runs
    ((2, 0, 5, 4), (3, 0, 2, 2), {}),  # no input channels
    ((2, 3, 5, 5), (0, 3, 2, 2), {}),  # no filters
]
CASE_IDS = [f"{x}-{w}-{kw}" for x, w, kw in CASES]
OPS = ("conv2d", "conv2d_grad_input", "conv2d_grad_weights")


def build(op: str, x_shape, w_shape, kwargs, dtype: str):
    """(output node, symbolic inputs, the second input's shape): ``op`` at this geometry."""
    x = gt.tensor(dtype, (None,) * 4, name="x")
    w = gt.tensor(dtype, (None,) * 4, name="w")
    y = gt.nnet.conv2d(x, w, **kwargs)
    if op == "conv2d":
        return y, [x, w], w_shape
    out_shape = conv._expected_out(y.arg, x_shape, w_shape)
    g = gt.tensor(dtype, (None,) * 4, name="g")
    params = kwargs.copy()
    params.setdefault("border_mode", "valid")
    if op == "conv2d_grad_input":
        return gt.nnet.conv2d_grad_input(g, w, x_shape[2:], **params), [g, w], w_shape
    return gt.nnet.conv2d_grad_weights(x, g, w_shape[2:], **params), [x, g], out_shape


def kernel_steps(f, op: str) -> list:
    return [s for n, s in f.program.kernels.items() if n.op.name == op]


def reference_of(node, values):
    """The op's NumPy reference on contiguous copies of ``values``."""
    arrays = [np.ascontiguousarray(v) for v in values]
    if node.op in (CONV2D_GRAD_INPUT, CONV2D_GRAD_WEIGHTS):
        arrays.append(np.array(node.arg[5], np.int64))
    return node.op.ref(node.arg, *arrays)


def assert_close(got, expected, dtype: str, context=""):
    assert got.dtype == expected.dtype and got.shape == expected.shape, context
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale, err_msg=context)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("x_shape,w_shape,kwargs", CASES, ids=CASE_IDS)
def test_kernel_matches_reference(op, x_shape, w_shape, kwargs, dtype):
    node, inputs, second_shape = build(op, x_shape, w_shape, kwargs, dtype)
    f = gc.function(inputs, node, mode="FAST_RUN")
    steps = kernel_steps(f, op)
    assert len(steps) == 1 and type(steps[0]) is ConvKernelStep
    rng = np.random.default_rng(len(x_shape) + sum(w_shape))
    if op == "conv2d_grad_input":
        g_shape = conv._expected_out(node.arg, x_shape, w_shape)
        values = [rng.standard_normal(s).astype(dtype) for s in (g_shape, w_shape)]
    else:
        values = [rng.standard_normal(s).astype(dtype) for s in (x_shape, second_shape)]
    expected = reference_of(node, values)
    first, second = layouts(values[0]), layouts(values[1])
    for name in first:
        for other in (name, "contiguous"):
            got = f(first[name], second[other])
            assert_close(got, expected, dtype, f"{name}/{other}")


@pytest.mark.parametrize("op", OPS)
def test_threads_split_the_batch(op, monkeypatch):
    """Work above the threshold runs as ranges of the batch on the threads: same result."""
    monkeypatch.setattr(conv_step, "PARALLEL_MIN_SIZE", 0)
    monkeypatch.setattr(cpu, "N_THREADS", 3)
    x_shape, w_shape, kwargs = (5, 4, 6, 7), (6, 2, 3, 2), dict(border_mode="half", num_groups=2)
    node, inputs, second_shape = build(op, x_shape, w_shape, kwargs, "float64")
    f = gc.function(inputs, node, mode="FAST_RUN")
    (step,) = kernel_steps(f, op)
    calls = []
    ranged = step.ranged
    step.ranged = lambda *args: calls.append(args[-2:]) or ranged(*args)
    rng = np.random.default_rng(1)
    if op == "conv2d_grad_input":
        values = [rng.standard_normal(conv._expected_out(node.arg, x_shape, w_shape)),
                  rng.standard_normal(w_shape)]
    else:
        values = [rng.standard_normal(x_shape), rng.standard_normal(second_shape)]
    assert_close(f(*values), reference_of(node, values), "float64")
    assert sorted(calls) == [(0, 1), (1, 3), (3, 5)]


BAD = [
    ("conv2d", [(2, 3, 5, 5), (2, 4, 3, 3)]),  # channel mismatch
    ("conv2d", [(2, 3, 2, 5), (2, 3, 3, 3)]),  # the filter is larger than the input
    ("conv2d_grad_input", [(2, 2, 4, 4), (2, 3, 3, 3)]),  # g's shape is not conv2d's output's
    ("conv2d_grad_weights", [(2, 3, 5, 5), (2, 2, 4, 3)]),
]


@pytest.mark.parametrize("op,shapes", BAD, ids=[f"{op}-{s}" for op, s in BAD])
def test_bad_shapes_raise_the_reference_error(op, shapes):
    node, inputs, _ = build(op, (2, 3, 5, 5), (2, 3, 3, 3), {}, "float64")
    values = [np.ones(s) for s in shapes]
    errors = []
    for mode in ("reference", "FAST_RUN"):
        f = gc.function(inputs, node, mode=mode)
        with pytest.raises((RunError, ValueError)) as info:
            f(*values)
        errors.append(str(info.value).splitlines()[0])
    assert errors[0] == errors[1]
    assert kernel_steps(gc.function(inputs, node, mode="FAST_RUN"), op)


def test_graph_cache_keeps_the_kernel():
    """A second compile of the same graph (from the graph cache's kernel table) uses it too."""
    node, inputs, _ = build("conv2d", (2, 3, 5, 5), (4, 3, 3, 3), dict(border_mode="half"),
                            "float32")
    values = [np.ones((2, 3, 5, 5), "float32"), np.ones((4, 3, 3, 3), "float32")]
    results = []
    for _ in range(2):
        f = gc.function(inputs, node, mode="FAST_RUN")
        assert [type(s) for s in kernel_steps(f, "conv2d")] == [ConvKernelStep]
        results.append(f(*values))
    np.testing.assert_array_equal(results[0], results[1])
    assert results[0][0, 0, 2, 2] == 27.0 and results[0][0, 0, 0, 0] == 12.0


def test_table_header_agrees_with_the_kernels():
    from graphc.codegen import conv_kernels

    assert conv_step.TAPS_HEADER == conv_kernels.TAPS_HEADER
