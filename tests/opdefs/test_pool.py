"""pool_2d against a direct loop over output cells (Theano's window rules), and its gradients.

The oracle clips each window to the input instead of padding it, sums in float64 and finds
the first maximum with np.argmax, so it shares nothing with graphc's offset-loop references.
"""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from graphc.ir import toposort
from graphc.opdefs.pool import POOL_2D
from graphc.runtime.reference import RunError
from tests.helpers import FLOATS, MODES, assert_matches, layouts, random_array

nnet = gt.nnet
POOL_MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


# --- oracle ------------------------------------------------------------------------------------------

def out_len(n, ws, st, pad, ignore_border):
    """Theano's ``Pool.out_shape`` for one axis (an empty axis has no window)."""
    n += 2 * pad
    if ignore_border:
        return n // st if ws == st else max(0, (n - ws) // st + 1)
    if n == 0:
        return 0
    if st >= ws:
        return (n - 1) // st + 1
    return max(0, (n - 1 - ws) // st + 1) + 1


def windows(shape, ws, ignore_border, stride, pad):
    """(i, j, rows, cols): output cell (i, j) and the input cells of its window."""
    stride = stride or ws
    sizes = [out_len(shape[a - 2], ws[a], stride[a], pad[a], ignore_border) for a in (0, 1)]
    for i in range(sizes[0]):
        r0 = i * stride[0] - pad[0]
        rows = slice(max(r0, 0), min(r0 + ws[0], shape[-2]))
        for j in range(sizes[1]):
            c0 = j * stride[1] - pad[1]
            yield i, j, rows, slice(max(c0, 0), min(c0 + ws[1], shape[-1]))


def out_shape(shape, ws, ignore_border, stride, pad):
    stride = stride or ws
    return tuple(shape[:-2]) + tuple(
        out_len(shape[a - 2], ws[a], stride[a], pad[a], ignore_border) for a in (0, 1))


def direct_pool(x, ws, ignore_border=True, stride=None, pad=(0, 0), mode="max"):
    out = np.zeros(out_shape(x.shape, ws, ignore_border, stride, pad))
    for i, j, rows, cols in windows(x.shape, ws, ignore_border, stride, pad):
        window = np.asarray(x[..., rows, cols], np.float64)
        cells = window.shape[-2] * window.shape[-1]
        if mode == "max":
            out[..., i, j] = window.max(axis=(-2, -1))
            continue
        total = window.sum(axis=(-2, -1))
        if mode == "sum":
            out[..., i, j] = total
        elif mode == "average_inc_pad" and ignore_border:
            out[..., i, j] = total / (ws[0] * ws[1])
        else:  # exc_pad, or inc_pad without padding: the cells the window covers
            out[..., i, j] = total / cells
    return out.astype(x.dtype)


def direct_max_grad(x, g, ws, ignore_border=True, stride=None, pad=(0, 0)):
    """Each output cell's gradient added at its window's first maximum (row-major)."""
    gx = np.zeros(x.shape)
    lead = np.ndindex(*x.shape[:-2])
    for index in lead:
        for i, j, rows, cols in windows(x.shape, ws, ignore_border, stride, pad):
            window = x[index][rows, cols]
            u, v = np.unravel_index(np.argmax(window), window.shape)
            gx[index + (rows.start + u, cols.start + v)] += g[index + (i, j)]
    return gx


# --- forward -----------------------------------------------------------------------------------------

# (input shape, ws, keyword arguments)
CASES = [
    ((2, 3, 6, 5), (2, 2), {}),
    ((2, 3, 7, 5), (2, 2), dict(ignore_border=False)),
    ((2, 2, 6, 7), (3, 2), dict(ignore_border=False, stride=(1, 1))),
    ((1, 2, 7, 8), (3, 3), dict(ignore_border=False, stride=(2, 4))),
    ((2, 2, 7, 8), (2, 3), dict(stride=(3, 1))),
    ((2, 2, 7, 6), (3, 3), dict(stride=(2, 2), pad=(1, 2))),
    ((1, 3, 5, 5), (2, 2), dict(stride=(1, 1), pad=(1, 1))),
    ((7, 5), (3, 2), dict(ignore_border=False, stride=(2, 1))),
    ((2, 1, 2, 5, 4), (2, 2), {}),
    ((0, 3, 4, 4), (2, 2), {}),
    ((2, 0, 5), (2, 2), dict(ignore_border=False)),
    ((1, 1, 2, 3), (3, 3), {}),  # window larger than the input: no output row
    ((1, 1, 2, 3), (3, 3), dict(ignore_border=False)),  # one partial window
    ((3, 4, 4), (1, 1), {}),
]
CASE_IDS = [f"{s}-{ws}-{kw}" for s, ws, kw in CASES]


def build_and_check(x, ws, kwargs, mode):
    xs = gt.tensor(x.dtype.name, (None,) * x.ndim, name="x")
    out = nnet.pool_2d(xs, ws, mode=mode, **kwargs)
    expected = direct_pool(x, ws, mode=mode, **kwargs)
    for compile_mode in MODES:
        got = gc.function([xs], out, mode=compile_mode)(x)
        assert_matches(got, expected)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode", POOL_MODES)
@pytest.mark.parametrize("shape,ws,kwargs", CASES, ids=CASE_IDS)
def test_pool_matches_direct_loops(shape, ws, kwargs, mode, dtype):
    build_and_check(random_array(shape, dtype, np.random.default_rng(0)), ws, kwargs, mode)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64"])
@pytest.mark.parametrize("shape,ws,kwargs", CASES[4:7], ids=CASE_IDS[4:7])
def test_max_pool_of_integers(shape, ws, kwargs, dtype):
    x = random_array(shape, dtype, np.random.default_rng(1), -100, 100)
    build_and_check(x, ws, kwargs, "max")


@pytest.mark.parametrize("layout", ["strided", "negative"])
@pytest.mark.parametrize("mode", POOL_MODES)
def test_pool_of_non_contiguous_inputs(mode, layout):
    x = layouts(random_array((3, 2, 7, 8), "float32", np.random.default_rng(2)))[layout]
    build_and_check(x, (3, 2), dict(stride=(2, 1), pad=(1, 1)), mode)


def test_max_pool_propagates_nan_and_handles_infinities():
    x = np.array([[np.nan, 1.0, -np.inf, -np.inf], [0.0, 2.0, -np.inf, -np.inf]])
    xs = gt.dmatrix("x")
    for compile_mode in MODES:
        got = gc.function([xs], nnet.pool_2d(xs, (2, 2)), mode=compile_mode)(x)
        assert np.isnan(got[0, 0]) and got[0, 1] == -np.inf


def test_static_shapes():
    x = gt.tensor("float32", (None, 3, 7, None))
    assert nnet.pool_2d(x, (2, 2)).type.shape == (None, 3, 3, None)
    assert nnet.pool_2d(x, (2, 2), ignore_border=False).type.shape == (None, 3, 4, None)
    assert nnet.pool_2d(x, (3, 3), stride=(1, 1), pad=(2, 1)).type.shape == (None, 3, 9, None)


@pytest.mark.parametrize("shape,ws,kwargs", CASES, ids=CASE_IDS)
def test_shape_rule_needs_no_pooling(shape, ws, kwargs):
    xs = gt.tensor("float64", (None,) * len(shape), name="x")
    f = gc.function([xs], nnet.pool_2d(xs, ws, **kwargs).shape, mode="FAST_RUN")
    assert not any(n.op is POOL_2D for n in toposort(f.fgraph.outputs))
    assert tuple(f(np.zeros(shape))) == out_shape(shape, ws, kwargs.get("ignore_border", True),
                                                   kwargs.get("stride"), kwargs.get("pad", (0, 0)))


# --- gradients ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,ws,kwargs", CASES, ids=CASE_IDS)
def test_max_gradient_goes_to_the_first_maximum(shape, ws, kwargs):
    rng = np.random.default_rng(3)
    x = np.round(random_array(shape, "float64", rng, -2, 2))  # many ties
    xs = gt.tensor("float64", (None,) * len(shape), name="x")
    out = nnet.pool_2d(xs, ws, **kwargs)
    g = rng.standard_normal(out_shape(shape, ws, kwargs.get("ignore_border", True),
                                      kwargs.get("stride"), kwargs.get("pad", (0, 0))))
    gs = gt.tensor("float64", (None,) * len(shape), name="g")
    gx = gc.grad((out * gs).sum(), xs)
    expected = direct_max_grad(x, g, ws, **kwargs)
    for compile_mode in MODES:
        assert_matches(gc.function([xs, gs], gx, mode=compile_mode)(x, g), expected)


def test_ties_send_the_gradient_to_the_first_cell_only():
    xs = gt.dmatrix("x")
    gx = gc.grad(nnet.pool_2d(xs, (2, 2)).sum(), xs)
    out = gc.function([xs], gx)(np.zeros((2, 4)))
    np.testing.assert_array_equal(out, [[1, 0, 1, 0], [0, 0, 0, 0]])


GRAD_CASES = [
    ((2, 1, 5, 4), (2, 2), {}),
    ((1, 2, 5, 6), (3, 2), dict(ignore_border=False, stride=(1, 1))),
    ((2, 5, 5), (3, 3), dict(stride=(2, 1), pad=(1, 2))),
    ((5, 4), (2, 3), dict(ignore_border=False, stride=(3, 2))),
]
GRAD_IDS = [f"{s}-{ws}-{kw}" for s, ws, kw in GRAD_CASES]


def strided(value):
    return layouts(value)["strided"]


@pytest.mark.parametrize("mode", POOL_MODES)
@pytest.mark.parametrize("shape,ws,kwargs", GRAD_CASES, ids=GRAD_IDS)
def test_gradient(shape, ws, kwargs, mode):
    rng = np.random.default_rng(4)
    x = strided(rng.permutation(np.arange(np.prod(shape))).reshape(shape) * 0.1)  # no ties
    verify_grad(lambda v: nnet.pool_2d(v, ws, mode=mode, **kwargs), [x], rng=rng)


@pytest.mark.parametrize("mode", POOL_MODES)
@pytest.mark.parametrize("shape,ws,kwargs", GRAD_CASES[1:3], ids=GRAD_IDS[1:3])
def test_second_derivative(shape, ws, kwargs, mode):
    rng = np.random.default_rng(5)
    x = rng.permutation(np.arange(np.prod(shape))).reshape(shape) * 0.1

    def grad_norm(v):
        gx = gc.grad((gt.tanh(nnet.pool_2d(v, ws, mode=mode, **kwargs)) ** 2).sum(), v)
        return gt.sin(gx * v)

    verify_grad(grad_norm, [x], rng=rng, n_tests=1)


def test_max_pool_2d_same_size():
    x = np.array([[[[1.0, 3.0, 2.0], [3.0, 0.0, 5.0], [7.0, 7.0, 1.0]]]])
    xs = gt.tensor4("x")
    got = gc.function([xs], nnet.max_pool_2d_same_size(xs, (2, 2)))(x)
    np.testing.assert_array_equal(got, [[[[0, 3, 0], [0, 0, 0], [0, 0, 0]]]])


# --- errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,fragment", [
    (dict(ws=(2, 2), pad=(2, 0)), ValueError, "smaller than the window"),
    (dict(ws=(2, 2), pad=(1, 1), ignore_border=False), ValueError, "needs ignore_border=True"),
    (dict(ws=(2, 2), mode="mean"), ValueError, "mode must be one of"),
    (dict(ws=(0, 2)), ValueError, "ws must be"),
    (dict(ws=(2, 2), stride=(1, 2, 3)), ValueError, "stride must be"),
    (dict(ws=(2, 2), pad=-1), ValueError, "pad must be"),
])
def test_bad_parameters(kwargs, exc, fragment):
    with pytest.raises(exc) as info:
        nnet.pool_2d(gt.tensor4("x"), **kwargs)
    for part in ("pool_2d", fragment, "test_pool.py"):
        assert part in str(info.value)


def test_bad_inputs():
    with pytest.raises(TypeError, match=r"(?s)pool_2d: .*at least 2 dimensions.*test_pool.py"):
        nnet.pool_2d(gt.dvector("x"), (2, 2))
    with pytest.raises(TypeError, match=r"(?s)pool_2d: mode 'sum' takes float32.*int32.*test_pool"):
        nnet.pool_2d(gt.tensor4("x", "int32"), (2, 2), mode="sum")


def test_gradient_ops_check_shapes_at_run_time():
    from graphc.ir import make
    from graphc.opdefs.pool import MAX_POOL_GRAD

    xs, gs = gt.tensor4("x"), gt.tensor4("g")
    node = make(MAX_POOL_GRAD, (xs, gs), ((2, 2), (2, 2), (0, 0), True, "max"))
    f = gc.function([xs, gs], node)
    with pytest.raises(RunError, match=r"(?s)max_pool_grad: .*output gradient.*\(1, 1, 2, 2\)"):
        f(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 2)))
