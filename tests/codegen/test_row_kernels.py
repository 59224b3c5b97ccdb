"""Row kernels (softmax, log_softmax, logsumexp over the last axis) against the ops' NumPy
references: dtypes, ndims, empty rows and batches, layouts, special values, ranges of rows,
and end to end through graphc.function (the kernel is really used)."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.codegen.kernel import kernel_source, row_op
from graphc.runtime.reference import run_node
from tests.codegen.kernel_helpers import compile_kernels, run_kernel
from tests.helpers import assert_matches, layouts, random_array

OPS = {
    "softmax": lambda x: gt.nnet.softmax(x, axis=-1),
    "log_softmax": lambda x: gt.nnet.log_softmax(x, axis=-1),
    "logsumexp": lambda x: gt.logsumexp(x, axis=-1, keepdims=True),
}
SHAPES = [(7,), (1,), (0,), (3, 5), (4, 1), (0, 6), (3, 0), (2, 3, 33), (2, 0, 4)]


def node_for(op: str, dtype: str, ndim: int):
    return OPS[op](gt.tensor(dtype, (None,) * ndim, "x"))


def out_shape(op: str, shape: tuple) -> tuple:
    return shape[:-1] + (1,) if op == "logsumexp" else shape


def check(op, x, ranges=None):
    node = node_for(op, x.dtype.name, x.ndim)
    source = kernel_source(node)
    assert source.kind == "rows"
    expected = run_node(node, [x])
    got = run_kernel(source, [x], out_shape(op, x.shape), ranges)
    assert_matches(got.reshape(expected.shape), expected)


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    compile_kernels([kernel_source(node_for(op, dtype, ndim)) for op in OPS
                     for dtype in ("float32", "float64") for ndim in (1, 2, 3)])


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", list(OPS))
def test_matches_reference(op, dtype, shape):
    x = random_array(shape, dtype, low=-20, high=20)
    if 0 in shape:
        node = node_for(op, dtype, len(shape))
        expected = run_node(node, [x])
        got = run_kernel(kernel_source(node), [x], out_shape(op, shape),
                         ranges=[(0, max(1, shape[0]) if len(shape) > 1 else 1)])
        assert got.reshape(expected.shape).shape == expected.shape
        if got.size:  # rows of length 0: logsumexp is -inf, as log(sum(exp([])))
            assert_matches(got.reshape(expected.shape), expected)
        return
    check(op, x)


@pytest.mark.parametrize("layout", ["strided", "negative", "transposed"])
@pytest.mark.parametrize("op", list(OPS))
def test_layouts(op, layout):
    base = random_array((6, 10), "float64", low=-5, high=5)
    x = base.T if layout == "transposed" else layouts(base)[layout]
    check(op, x)


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_rows(op, dtype):
    inf, nan = np.inf, np.nan
    x = np.array([[1000.0, 1000.0, -1000.0], [-inf, -inf, -inf], [inf, 0.0, 1.0],
                  [nan, 0.0, 1.0], [-inf, 0.0, 1.0], [inf, inf, 0.0], [-0.0, 0.0, 0.0]], dtype)
    with np.errstate(all="ignore"):
        check(op, x)


@pytest.mark.parametrize("op", list(OPS))
def test_ranges_of_rows(op):
    x = random_array((9, 17), "float32", low=-3, high=3)
    check(op, x, ranges=[(0, 2), (2, 5), (5, 9)])


def test_long_rows_are_vectorised_and_accurate():
    x = np.random.default_rng(1).standard_normal((3, 100_003)).astype(np.float32)
    for op in OPS:
        check(op, x)


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("keepdims", [True, False])
def test_compiled_function_uses_the_row_kernel(op, keepdims):
    x = gt.fmatrix("x")
    out = gt.logsumexp(x, axis=1, keepdims=keepdims) if op == "logsumexp" else OPS[op](x)
    f = gc.function([x], out)
    kinds = [step.source.kind for step in f.program.kernels.values()]
    assert kinds == ["rows"]
    reference = gc.function([x], out, mode="reference")
    value = random_array((70, 1000), "float32", low=-50, high=50)  # big: split over threads
    for v in (value, value[::-2, ::3]):
        assert_matches(f(v), reference(v))


def test_other_axes_are_not_row_kernels():
    x = gt.fmatrix("x")
    assert row_op(gt.nnet.softmax(x, axis=0)) is None
    assert row_op(gt.logsumexp(x, axis=None)) is None
    assert row_op(gt.nnet.softmax(x, axis=1)) == "softmax"
