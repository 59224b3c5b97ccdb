"""conv2d, its input and filter gradients and conv2d_transpose against direct NumPy loops.

The oracles below loop over output positions and kernel taps, testing each tap against the
input's bounds instead of padding it (nothing shared with graphc's im2col references), in
float64. Cases cover odd sizes, every border mode, strides, dilation, groups, 0-size batches
and channels, float32 and float64 and non-contiguous inputs; gradients (first and second
order) are checked against finite differences.
"""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from graphc.ir import toposort
from graphc.opdefs.conv import CONV2D, CONV2D_GRAD_INPUT, CONV2D_GRAD_WEIGHTS
from graphc.runtime.reference import RunError
from tests.helpers import FLOATS, MODES, layouts, random_array

nnet = gt.nnet


# --- oracles ---------------------------------------------------------------------------------------

def padding(border, kernel, dilation):
    extents = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    if border == "valid":
        return (0, 0)
    if border == "full":
        return tuple(e - 1 for e in extents)
    if border == "half":
        return tuple(e // 2 for e in extents)
    return (border, border) if isinstance(border, int) else tuple(border)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def taps(out_hw, in_hw, kernel, pad, stride, dilation):
    """Every (i, j, u, v, r, c): output (i, j) reads input (r, c) through kernel tap (u, v)."""
    for i in range(out_hw[0]):
        for j in range(out_hw[1]):
            for u in range(kernel[0]):
                r = i * stride[0] + u * dilation[0] - pad[0]
                for v in range(kernel[1]):
                    c = j * stride[1] + v * dilation[1] - pad[1]
                    if 0 <= r < in_hw[0] and 0 <= c < in_hw[1]:
                        yield i, j, u, v, r, c


def geometry(x_hw, w_shape, border="valid", subsample=1, filter_dilation=1):
    stride, dilation = pair(subsample), pair(filter_dilation)
    kernel = w_shape[2:]
    pad = padding(border, kernel, dilation)
    out_hw = tuple((n + 2 * p - (k - 1) * d - 1) // s + 1
                   for n, p, k, d, s in zip(x_hw, pad, kernel, dilation, stride))
    return out_hw, kernel, pad, stride, dilation


def direct_conv2d(x, w, border="valid", subsample=1, filter_flip=True, filter_dilation=1,
                  num_groups=1):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    if filter_flip:
        w = w[:, :, ::-1, ::-1]
    out_hw, *geo = geometry(x.shape[2:], w.shape, border, subsample, filter_dilation)
    out = np.zeros((x.shape[0], w.shape[0]) + out_hw)
    per_in, per_out = w.shape[1], w.shape[0] // num_groups
    for o in range(w.shape[0]):
        chans = slice(o // per_out * per_in, (o // per_out + 1) * per_in)
        for i, j, u, v, r, c in taps(out_hw, x.shape[2:], *geo):
            out[:, o, i, j] += x[:, chans, r, c] @ w[o, :, u, v]
    return out


def direct_conv2d_transpose(g, w, x_hw, border="valid", subsample=1, filter_flip=True,
                            filter_dilation=1, num_groups=1):
    """The input gradient of conv2d: every output cell scatters back through every tap."""
    g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
    if filter_flip:
        w = w[:, :, ::-1, ::-1]
    out_hw, *geo = geometry(x_hw, w.shape, border, subsample, filter_dilation)
    assert out_hw == g.shape[2:]
    per_in, per_out = w.shape[1], w.shape[0] // num_groups
    dx = np.zeros((g.shape[0], per_in * num_groups) + tuple(x_hw))
    for o in range(w.shape[0]):
        chans = slice(o // per_out * per_in, (o // per_out + 1) * per_in)
        for i, j, u, v, r, c in taps(out_hw, x_hw, *geo):
            dx[:, chans, r, c] += np.outer(g[:, o, i, j], w[o, :, u, v])
    return dx


def direct_conv2d_grad_weights(x, g, kernel, border="valid", subsample=1, filter_flip=True,
                               filter_dilation=1, num_groups=1):
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    per_in, per_out = x.shape[1] // num_groups, g.shape[1] // num_groups
    w_shape = (g.shape[1], per_in) + tuple(kernel)
    out_hw, *geo = geometry(x.shape[2:], w_shape, border, subsample, filter_dilation)
    assert out_hw == g.shape[2:]
    dw = np.zeros(w_shape)
    for o in range(g.shape[1]):
        chans = slice(o // per_out * per_in, (o // per_out + 1) * per_in)
        for i, j, u, v, r, c in taps(out_hw, x.shape[2:], *geo):
            dw[o, :, u, v] += g[:, o, i, j] @ x[:, chans, r, c]
    return dw[:, :, ::-1, ::-1] if filter_flip else dw


def assert_close(got, expected, dtype):
    """dtype and shape exactly; values to the rounding of a float32/float64 sum of products."""
    assert got.dtype == np.dtype(dtype), f"dtype {got.dtype} != {dtype}"
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    tol = 2e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(got, expected, rtol=tol * 10, atol=tol * scale)


# --- forward ---------------------------------------------------------------------------------------

# (input shape, filter shape, keyword arguments)
CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 2), {}),
    ((2, 3, 7, 6), (4, 3, 3, 2), dict(border_mode="full")),
    ((2, 2, 6, 7), (3, 2, 3, 5), dict(border_mode="half")),
    ((1, 2, 6, 5), (3, 2, 2, 4), dict(border_mode="half")),  # even kernel: output grows by 1
    ((2, 3, 9, 8), (2, 3, 3, 3), dict(border_mode=1, subsample=2)),
    ((1, 2, 9, 10), (3, 2, 2, 3), dict(border_mode=(2, 1), subsample=(2, 3), filter_dilation=(2, 1))),
    ((2, 3, 8, 9), (2, 3, 3, 2), dict(border_mode="half", filter_dilation=(1, 3))),
    ((2, 3, 8, 9), (2, 3, 3, 2), dict(border_mode="full", subsample=(3, 1), filter_dilation=2)),
    ((2, 4, 6, 5), (6, 2, 3, 3), dict(num_groups=2)),
    ((1, 6, 7, 7), (3, 2, 2, 3), dict(num_groups=3, border_mode="full", subsample=2)),
    ((0, 3, 5, 5), (2, 3, 3, 3), dict(border_mode="half")),  # empty batch
    ((2, 0, 5, 4), (3, 0, 2, 2), {}),  # no input channels: zeros
    ((2, 3, 5, 5), (0, 3, 2, 2), {}),  # no filters
    ((3, 2, 4, 5), (2, 2, 1, 1), dict(subsample=(2, 2))),
    ((1, 1, 4, 3), (1, 1, 4, 3), {}),  # kernel as large as the input: 1x1 output
    ((1, 1, 1, 1), (2, 1, 3, 3), dict(border_mode="half")),
]
CASE_IDS = [f"{x}-{w}-{kw}" for x, w, kw in CASES]


@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("x_shape,w_shape,kwargs", CASES, ids=CASE_IDS)
def test_conv2d_matches_direct_loops(x_shape, w_shape, kwargs, dtype, flip):
    rng = np.random.default_rng(0)
    x, w = random_array(x_shape, dtype, rng), random_array(w_shape, dtype, rng)
    expected = direct_conv2d(x, w, filter_flip=flip, **_oracle_args(kwargs))
    xs, ws = gt.tensor4("x", dtype), gt.tensor4("w", dtype)
    out = nnet.conv2d(xs, ws, filter_flip=flip, **kwargs)
    for mode in MODES:
        assert_close(gc.function([xs, ws], out, mode=mode)(x, w), expected, dtype)


def _oracle_args(kwargs):
    args = dict(kwargs)
    if "border_mode" in args:
        args["border"] = args.pop("border_mode")
    return args


@pytest.mark.parametrize("layout", ["strided", "negative"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_conv2d_of_non_contiguous_inputs(dtype, layout):
    rng = np.random.default_rng(1)
    x = layouts(random_array((3, 4, 7, 6), dtype, rng))[layout]
    w = layouts(random_array((4, 2, 3, 2), dtype, rng))[layout]
    kwargs = dict(border_mode=(1, 2), subsample=(2, 1), num_groups=2)
    xs, ws = gt.tensor4("x", dtype), gt.tensor4("w", dtype)
    out = nnet.conv2d(xs, ws, **kwargs)
    expected = direct_conv2d(x, w, **_oracle_args(kwargs))
    for mode in MODES:
        assert_close(gc.function([xs, ws], out, mode=mode)(x, w), expected, dtype)


def test_static_shapes_and_hints():
    x = gt.tensor("float32", (None, 3, 9, None))
    w = gt.tensor("float32", (5, 3, 3, 3))
    assert nnet.conv2d(x, w).type.shape == (None, 5, 7, None)
    assert nnet.conv2d(x, w, border_mode="full", subsample=2).type.shape == (None, 5, 6, None)
    hinted = nnet.conv2d(x, w, input_shape=(8, 3, 9, 11))
    assert hinted.type.shape == (8, 5, 7, 9)
    f = gc.function([x, w], hinted)
    values = [np.ones(s, "float32") for s in ((8, 3, 9, 11), (5, 3, 3, 3))]
    assert f(*values).shape == (8, 5, 7, 9)
    with pytest.raises(ValueError, match="input"):
        f(np.ones((8, 3, 9, 12), "float32"), values[1])


def test_mixed_float_dtypes_upcast():
    x, w = gt.tensor4("x", "float32"), gt.tensor4("w", "float64")
    assert nnet.conv2d(x, w).dtype == "float64"


@pytest.mark.parametrize("x_shape,w_shape,kwargs", CASES[:10], ids=CASE_IDS[:10])
def test_shape_rules_need_no_convolution(x_shape, w_shape, kwargs):
    xs, ws = gt.tensor4("x"), gt.tensor4("w")
    out = nnet.conv2d(xs, ws, **kwargs)
    f = gc.function([xs, ws], out.shape, mode="FAST_RUN")
    assert not any(n.op is CONV2D for n in toposort(f.fgraph.outputs))
    x, w = np.zeros(x_shape), np.zeros(w_shape)
    assert tuple(f(x, w)) == direct_conv2d(x, w, **_oracle_args(kwargs)).shape


# --- the gradient ops and conv2d_transpose against their loops --------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("x_shape,w_shape,kwargs", CASES, ids=CASE_IDS)
def test_transpose_and_weight_gradient_match_direct_loops(x_shape, w_shape, kwargs, dtype):
    rng = np.random.default_rng(2)
    x, w = random_array(x_shape, dtype, rng), random_array(w_shape, dtype, rng)
    out_shape = direct_conv2d(x, w, **_oracle_args(kwargs)).shape
    g = random_array(out_shape, dtype, rng)
    gs, ws, xs = gt.tensor4("g", dtype), gt.tensor4("w", dtype), gt.tensor4("x", dtype)
    dx = nnet.conv2d_transpose(gs, ws, x_shape, **kwargs)
    dw = nnet.conv2d_grad_weights(xs, gs, w_shape[2:], **kwargs)
    args = _oracle_args(kwargs)
    for mode in MODES:
        got_dx, got_dw = gc.function([gs, ws, xs], [dx, dw], mode=mode)(g, w, x)
        assert_close(got_dx, direct_conv2d_transpose(g, w, x_shape[2:], **args), dtype)
        assert_close(got_dw, direct_conv2d_grad_weights(x, g, w_shape[2:], **args), dtype)


def test_transpose_with_symbolic_output_shape_and_input_dilation():
    g, w = gt.tensor4("g"), gt.tensor4("w")
    rows, cols = gt.lscalar("rows"), gt.lscalar("cols")
    dx = nnet.conv2d_transpose(g, w, (rows, cols), input_dilation=(2, 2), border_mode=1)
    rng = np.random.default_rng(3)
    gv, wv = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((3, 2, 3, 3))
    f = gc.function([g, w, rows, cols], dx)
    for size in (7, 8):  # both give 4 output rows at stride 2: the size must be told
        expected = direct_conv2d_transpose(gv, wv, (size, 8), border=1, subsample=2)
        assert_close(f(gv, wv, size, 8), expected, "float64")


# --- gradients against finite differences ----------------------------------------------------------

GRAD_CASES = [
    ((2, 2, 5, 4), (3, 2, 2, 3), {}),
    ((1, 2, 5, 6), (2, 2, 3, 2), dict(border_mode="full", subsample=(2, 1))),
    ((2, 2, 6, 5), (2, 2, 3, 3), dict(border_mode="half", filter_dilation=(2, 1), filter_flip=False)),
    ((1, 4, 5, 5), (4, 2, 2, 2), dict(border_mode=(1, 0), subsample=2, num_groups=2)),
]
GRAD_IDS = [f"{x}-{w}-{kw}" for x, w, kw in GRAD_CASES]


def strided(value):
    return layouts(np.asarray(value, np.float64))["strided"]


@pytest.mark.parametrize("x_shape,w_shape,kwargs", GRAD_CASES, ids=GRAD_IDS)
def test_conv2d_gradient(x_shape, w_shape, kwargs):
    rng = np.random.default_rng(4)
    point = [strided(rng.standard_normal(x_shape)), strided(rng.standard_normal(w_shape))]
    verify_grad(lambda x, w: nnet.conv2d(x, w, **kwargs), point, rng=rng)


@pytest.mark.parametrize("x_shape,w_shape,kwargs", GRAD_CASES, ids=GRAD_IDS)
def test_gradient_ops_gradients(x_shape, w_shape, kwargs):
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    g = rng.standard_normal(direct_conv2d(x, w, **_oracle_args(kwargs)).shape)
    verify_grad(lambda g, w: nnet.conv2d_transpose(g, w, x_shape, **kwargs), [strided(g), w],
                rng=rng)
    verify_grad(lambda x, g: nnet.conv2d_grad_weights(x, g, w_shape[2:], **kwargs),
                [x, strided(g)], rng=rng)


@pytest.mark.parametrize("x_shape,w_shape,kwargs", GRAD_CASES[1:3], ids=GRAD_IDS[1:3])
def test_second_derivatives(x_shape, w_shape, kwargs):
    """The gradient of a cost built from conv2d's own gradients (a Hessian-vector product)."""
    rng = np.random.default_rng(6)

    def input_grad_norm(x, w):
        y = nnet.conv2d(x, w, **kwargs)
        gx, gw = gc.grad((gt.tanh(y) ** 2).sum(), [x, w])
        return (gx ** 2).sum() + (gw * gw).sum()

    point = [rng.standard_normal(x_shape), strided(rng.standard_normal(w_shape))]
    verify_grad(input_grad_norm, point, rng=rng, n_tests=1)


def test_gradient_of_an_empty_batch_is_zero_filters():
    x, w = gt.tensor4("x"), gt.tensor4("w")
    gw = gc.grad(nnet.conv2d(x, w, border_mode="half").sum(), w)
    for mode in MODES:
        out = gc.function([x, w], gw, mode=mode)(np.zeros((0, 2, 4, 4)), np.ones((3, 2, 3, 3)))
        assert out.shape == (3, 2, 3, 3) and not out.any()


# --- errors ------------------------------------------------------------------------------------------

def _raises(exc, *fragments):
    """pytest.raises that also checks the message names the op, the shapes and this file."""
    return _Raises(exc, fragments + ("test_conv.py",))


class _Raises:
    def __init__(self, exc, fragments):
        self.ctx = pytest.raises(exc)
        self.fragments = fragments

    def __enter__(self):
        self.info = self.ctx.__enter__()
        return self.info

    def __exit__(self, *exc_info):
        handled = self.ctx.__exit__(*exc_info)
        message = str(self.info.value)
        for fragment in self.fragments:
            assert fragment in message, f"{fragment!r} not in {message!r}"
        return handled


def test_channel_mismatch_names_op_shapes_and_line():
    x = gt.tensor("float64", (2, 3, 5, 5), name="x")
    w = gt.tensor("float64", (4, 2, 3, 3), name="w")
    with _raises(ValueError, "conv2d", "channel mismatch", "3 channels", "(4, 2, 3, 3)"):
        nnet.conv2d(x, w)


def test_groups_that_do_not_divide():
    x = gt.tensor("float64", (2, 4, 5, 5))
    with _raises(ValueError, "conv2d", "5 filters cannot be split into 2 groups"):
        nnet.conv2d(x, gt.tensor("float64", (5, 2, 3, 3)), num_groups=2)
    with _raises(ValueError, "conv2d", "3 input channels cannot be split into 2 groups"):
        nnet.conv2d(gt.tensor("float64", (2, 3, 5, 5)), gt.tensor("float64", (4, 1, 3, 3)),
                    num_groups=2)


def test_filter_larger_than_padded_input():
    x = gt.tensor("float64", (1, 1, 3, 8))
    with _raises(ValueError, "conv2d", "larger than the padded input", "float64[1,1,3,8]"):
        nnet.conv2d(x, gt.tensor("float64", (1, 1, 5, 2)), border_mode=(0, 0))
    nnet.conv2d(x, gt.tensor("float64", (1, 1, 5, 2)), border_mode=1)  # fits with padding
    with _raises(ValueError, "conv2d", "dilation 3"):
        nnet.conv2d(x, gt.tensor("float64", (1, 1, 2, 2)), filter_dilation=3)


def test_filter_larger_than_input_at_run_time():
    x, w = gt.tensor4("x"), gt.tensor4("w")
    f = gc.function([x, w], nnet.conv2d(x, w))
    with _raises(RunError, "conv2d", "larger than the padded input", "run-time inputs"):
        f(np.ones((1, 1, 3, 3)), np.ones((1, 1, 4, 4)))
    with _raises(RunError, "conv2d", "channel mismatch"):
        f(np.ones((1, 2, 3, 3)), np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(border_mode="same"), "border_mode must be"),
    (dict(border_mode=-1), "border_mode must be"),
    (dict(border_mode=(1, 2, 3)), "border_mode must be"),
    (dict(subsample=0), "subsample must be"),
    (dict(filter_dilation=(1, 0)), "filter_dilation must be"),
    (dict(num_groups=0), "num_groups must be"),
    (dict(input_shape=(1, 2, 3)), "input_shape must be"),
])
def test_bad_parameters(kwargs, fragment):
    with _raises(ValueError, "conv2d", fragment):
        nnet.conv2d(gt.tensor4("x"), gt.tensor4("w"), **kwargs)


def test_bad_dtypes_and_ndims():
    with _raises(TypeError, "conv2d", "float32 or float64", "int32"):
        nnet.conv2d(gt.tensor4("x", "int32"), gt.tensor4("w"))
    with _raises(TypeError, "conv2d", "must be 4-d", "3-d"):
        nnet.conv2d(gt.tensor3("x"), gt.tensor4("w"))


def test_hint_contradicting_static_shape():
    x = gt.tensor("float64", (2, 3, 5, 5))
    with _raises(ValueError, "conv2d", "input_shape says (2, 3, 6, 5)"):
        nnet.conv2d(x, gt.tensor4("w"), input_shape=(2, 3, 6, 5))


def test_gradient_ops_check_their_shapes():
    g = gt.tensor("float64", (2, 4, 3, 3))
    w = gt.tensor("float64", (4, 2, 3, 3))
    with _raises(ValueError, CONV2D_GRAD_INPUT.name, "output gradient"):
        nnet.conv2d_transpose(g, w, (2, 2, 9, 5))  # 9 rows would give 7 output rows, not 3
    with _raises(ValueError, CONV2D_GRAD_INPUT.name, "contradicts"):
        nnet.conv2d_transpose(g, w, (3, 2, 5, 5))
    with _raises(ValueError, CONV2D_GRAD_WEIGHTS.name, "output gradient"):
        nnet.conv2d_grad_weights(gt.tensor("float64", (2, 2, 5, 5)), g, (2, 2))
    gs, ws = gt.tensor4("g"), gt.tensor4("w")
    f = gc.function([gs, ws], nnet.conv2d_transpose(gs, ws, (9, 5)))
    with _raises(RunError, CONV2D_GRAD_INPUT.name, "output gradient"):
        f(np.ones((2, 4, 3, 3)), np.ones((4, 2, 3, 3)))
