"""Batch normalisation (train, test and Theano's older form) and embedding against NumPy."""

import warnings

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from graphc.runtime.reference import RunError
from tests.helpers import FLOATS, MODES, assert_matches, layouts, random_array

nnet = gt.nnet
LAYOUTS = ("contiguous", "strided", "negative")
# batch norm is a composite of tested ops: its gradient graphs are checked in the NumPy
# interpreter after the canonical rewrites, which keeps the LLVM compiles out of these tests
COMPOSITE_GRAD_MODE = "FAST_COMPILE"


# --- oracles -----------------------------------------------------------------------------------------

def np_axes(axes, ndim):
    if axes == "per-activation":
        return (0,)
    if axes == "spatial":
        return (0,) + tuple(range(2, ndim))
    return tuple(a % ndim for a in axes)


def param_shape(shape, axes, reduced):
    if reduced:
        return tuple(s for a, s in enumerate(shape) if a not in axes)
    return tuple(1 if a in axes else s for a, s in enumerate(shape))


def np_bn_train(x, gamma, beta, axes, eps, factor=None, running_mean=None, running_var=None):
    """float64 statistics, results rounded to ``x``'s dtype, in gamma's layout."""
    reduced = gamma.ndim != x.ndim
    x64 = x.astype(np.float64)
    expand = (lambda p: np.expand_dims(p, axes)) if reduced else (lambda p: p)
    with np.errstate(all="ignore"), warnings.catch_warnings():  # an empty batch: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = x64.mean(axes, keepdims=True)
        var = x64.var(axes, keepdims=True)
    invstd = 1 / np.sqrt(var + eps)
    out = (x64 - mean) * expand(gamma) * invstd + expand(beta)
    squeeze = (lambda v: np.squeeze(v, axes)) if reduced else (lambda v: v)
    results = [out, squeeze(mean), squeeze(invstd)]
    if running_mean is not None:
        m = np.prod([x.shape[a] for a in axes])
        results.append(running_mean * (1 - factor) + squeeze(mean) * factor)
        results.append(running_var * (1 - factor) + squeeze(var) * m / (m - 1) * factor)
    return [r.astype(x.dtype) for r in results]


def symbolic(value, name):
    return gt.tensor(value.dtype.name, (None,) * value.ndim, name=name)


def check(build, values, expected, rtol=None):
    inputs = [symbolic(v, f"in{i}") for i, v in enumerate(values)]
    for mode in MODES:
        got = gc.function(inputs, build(*inputs), mode=mode, on_unused_input="ignore")(*values)
        for g, e in zip(got if isinstance(got, list) else [got], expected):
            if rtol is None:
                assert_matches(g, e)
            else:  # float32 statistics round differently from float64 ones
                assert g.dtype == e.dtype and g.shape == e.shape
                np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol)


# --- batch_normalization_train -----------------------------------------------------------------------

BN_CASES = [
    ((6, 4), "per-activation"),
    ((5, 3, 4, 2), "spatial"),
    ((5, 3, 4, 2), "per-activation"),
    ((4, 3, 5), (0, 2)),
    ((4, 3, 5), (-1,)),
    ((0, 3), "per-activation"),  # empty batch: NaN statistics, as NumPy
    ((1, 2, 1, 3), "spatial"),
]


@pytest.mark.parametrize("dtype,reduced", [("float64", False), ("float32", True)])
@pytest.mark.parametrize("shape,axes", BN_CASES, ids=str)
def test_train_matches_numpy(shape, axes, dtype, reduced):
    rng = np.random.default_rng(0)
    ax = np_axes(axes, len(shape))
    pshape = param_shape(shape, ax, reduced)
    x = random_array(shape, dtype, rng) * 10 + 100  # far from zero: two-pass statistics matter
    gamma, beta = random_array(pshape, dtype, rng), random_array(pshape, dtype, rng)
    rmean, rvar = random_array(pshape, dtype, rng), random_array(pshape, dtype, rng, 0.5, 2)
    expected = np_bn_train(x, gamma, beta, ax, 1e-3, 0.2, rmean, rvar)

    def build(x, gamma, beta, rmean, rvar):
        return list(nnet.batch_normalization_train(x, gamma, beta, axes, 1e-3, 0.2, rmean, rvar))

    check(build, [x, gamma, beta, rmean, rvar], expected,
          rtol=2e-4 if dtype == "float32" else None)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_train_of_non_contiguous_inputs_without_running_averages(layout):
    rng = np.random.default_rng(1)
    x = layouts(random_array((5, 3, 4), "float64", rng))[layout]
    gamma = layouts(random_array((3, 4), "float64", rng))[layout]
    beta = layouts(random_array((3, 4), "float64", rng))[layout]
    expected = np_bn_train(x, gamma, beta, (0,), 1e-4)
    check(lambda *v: list(nnet.batch_normalization_train(*v)), [x, gamma, beta], expected)


def test_train_keeps_float32():
    x, gamma = gt.tensor4("x", "float32"), gt.fvector("gamma")
    outs = nnet.batch_normalization_train(x, gamma, gamma, "spatial", np.float64(1e-5), 0.1,
                                          gamma, gamma)
    assert [o.dtype for o in outs] == ["float32"] * 5
    assert [o.ndim for o in outs] == [4, 1, 1, 1, 1]


@pytest.mark.parametrize("shape,axes,reduced", [
    ((4, 3), "per-activation", False), ((3, 2, 3, 2), "spatial", True), ((3, 2, 4), (0, 2), False),
])
def test_train_gradients(shape, axes, reduced):
    rng = np.random.default_rng(2)
    pshape = param_shape(shape, np_axes(axes, len(shape)), reduced)
    point = [layouts(rng.standard_normal(shape))["strided"], rng.uniform(0.5, 2, pshape),
             rng.standard_normal(pshape)]
    ax = np_axes(axes, len(shape))

    def outputs(x, gamma, beta):  # out, mean and invstd in one (randomly projected) result
        out, mean, invstd = nnet.batch_normalization_train(x, gamma, beta, axes)
        if reduced:
            mean, invstd = gt.expand_dims(mean, ax), gt.expand_dims(invstd, ax)
        return out + 0.7 * mean - 1.3 * invstd

    verify_grad(outputs, point, rng=rng, n_tests=1, mode=COMPOSITE_GRAD_MODE)


def test_train_second_derivative():
    rng = np.random.default_rng(3)

    def grad_of_loss(x, gamma):
        out = nnet.batch_normalization_train(x, gamma, 0.0 * gamma, "spatial")[0]
        return gc.grad((gt.tanh(out) ** 2).sum(), x)

    verify_grad(grad_of_loss, [rng.standard_normal((3, 2, 2, 2)), rng.uniform(0.5, 2, (1, 2, 1, 1))],
                rng=rng, n_tests=1, mode=COMPOSITE_GRAD_MODE)


# --- batch_normalization_test and batch_normalization ---------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,axes", BN_CASES, ids=str)
def test_test_mode_matches_numpy(shape, axes, dtype):
    rng = np.random.default_rng(4)
    ax = np_axes(axes, len(shape))
    pshape = param_shape(shape, ax, True)
    x = random_array(shape, dtype, rng)
    gamma, beta, mean = (random_array(pshape, dtype, rng) for _ in range(3))
    var = random_array(pshape, dtype, rng, 0.1, 2)
    full = [np.expand_dims(p, ax) for p in (gamma, beta, mean, var)]
    expected = (x - full[2]) * (full[0] / np.sqrt(full[3] + np.asarray(1e-4, dtype))) + full[1]

    def build(x, *params):
        return nnet.batch_normalization_test(x, *params, axes=axes)

    check(build, [x, gamma, beta, mean, var], [expected])


def test_test_mode_gradients():
    rng = np.random.default_rng(5)
    point = [rng.standard_normal((4, 3, 2)), *rng.uniform(0.5, 2, (4, 1, 3, 2))]
    verify_grad(lambda x, g, b, m, v: nnet.batch_normalization_test(x, g, b, m, v), point, rng=rng,
                mode=COMPOSITE_GRAD_MODE)


@pytest.mark.parametrize("mode", ["low_mem", "high_mem"])
def test_batch_normalization_broadcasts_its_arguments(mode):
    rng = np.random.default_rng(6)
    x, gamma, beta, mean = (rng.standard_normal(s) for s in ((4, 3), (3,), (1, 3), (3,)))
    std = rng.uniform(0.5, 2, (4, 1))
    expected = (x - mean) * (gamma / std) + beta
    check(lambda *v: nnet.batch_normalization(*v, mode=mode), [x, gamma, beta, mean, std],
          [expected])
    verify_grad(lambda *v: nnet.batch_normalization(*v, mode=mode),
                [x, gamma, beta, mean, std], rng=rng)


# --- errors --------------------------------------------------------------------------------------------

def test_batch_norm_errors_name_the_function_and_line():
    x, g = gt.tensor4("x"), gt.dvector("g")
    cases = [
        (ValueError, "given together", lambda: nnet.batch_normalization_train(
            x, g, g, "spatial", running_mean=g)),
        (ValueError, "'per-activation', 'spatial'", lambda: nnet.batch_normalization_train(
            x, g, g, "channel")),
        (ValueError, "out of range", lambda: nnet.batch_normalization_train(x, g, g, (0, 4))),
        (ValueError, "must have 4 dimensions", lambda: nnet.batch_normalization_train(
            x, gt.dmatrix("g"), g, "spatial")),
        (ValueError, "size 1 on the normalised axes", lambda: nnet.batch_normalization_test(
            x, gt.tensor("float64", (2, 3, 1, 1)), x, x, x)),
        (TypeError, "float32 or float64", lambda: nnet.batch_normalization_train(
            gt.tensor4("x", "int32"), g, g, "spatial")),
        (ValueError, "mode must be", lambda: nnet.batch_normalization(x, g, g, g, g, mode="x")),
    ]
    for exc, fragment, build in cases:
        with pytest.raises(exc) as info:
            build()
        assert "batch_normalization" in str(info.value) and fragment in str(info.value)
        assert "test_normalization.py" in str(info.value)


# --- embedding ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("index_dtype", ["int8", "uint8", "int32", "int64"])
@pytest.mark.parametrize("weights_shape", [(7, 4), (7,), (7, 2, 3), (0, 3)])
@pytest.mark.parametrize("index_shape", [(), (5,), (2, 3), (0,)])
def test_embedding_matches_numpy(index_shape, weights_shape, index_dtype):
    rng = np.random.default_rng(7)
    weights = random_array(weights_shape, "float32", rng)
    high = weights_shape[0]
    if high == 0 and np.prod(index_shape, dtype=int) > 0:
        pytest.skip("no row to pick")
    low = 0 if index_dtype == "uint8" else -high
    indices = rng.integers(low, max(high, 1), index_shape).astype(index_dtype)
    for layout in LAYOUTS if weights.ndim else ("contiguous",):
        w = layouts(weights)[layout]
        check(nnet.embedding, [w, indices], [w[indices]])


def test_embedding_gradient_scatter_adds_repeated_rows():
    rng = np.random.default_rng(8)
    indices = np.array([[1, 3, 1], [0, 1, 3]])
    weights = rng.standard_normal((5, 2))
    ws, idx = gt.dmatrix("w"), gt.lmatrix("i")
    g = rng.standard_normal((2, 3, 2))
    gw = gc.grad((nnet.embedding(ws, idx) * g).sum(), ws)
    expected = np.zeros_like(weights)
    np.add.at(expected, indices, g)
    for mode in MODES:
        assert_matches(gc.function([ws, idx], gw, mode=mode)(weights, indices), expected)
    verify_grad(lambda w: nnet.embedding(w, indices), [layouts(weights)["strided"]], rng=rng)


def test_embedding_errors():
    with pytest.raises(TypeError, match=r"(?s)embedding: .*integer indices.*test_normalization"):
        nnet.embedding(gt.dmatrix("w"), gt.dvector("i"))
    f = gc.function([w := gt.dmatrix("w"), i := gt.lvector("i")], nnet.embedding(w, i))
    with pytest.raises(RunError, match="out of bounds|out of range"):
        f(np.zeros((3, 2)), np.array([0, 3]))
