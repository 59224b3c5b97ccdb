"""On a real GPU (skipped without pycuda or a device): kernels, cuBLAS, device arrays, shared
variables and an MLP trained to the CPU's accuracy. The whole op suite runs on the GPU with
``pytest --cuda`` (every check_against_numpy then also compiles with device="cuda")."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.runtime.device import cuda_status
from tests.helpers import assert_matches, layouts, random_array

_REASON = cuda_status()
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "uint8"])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "negative"])
def test_elementwise_and_reductions(dtype, layout):
    x = gt.tensor(dtype, shape=(None, None), name="x")
    y = gt.tensor(dtype, shape=(1, None), name="y")
    outs = [x * y + x, gt.sum(x, axis=1), gt.max(x, axis=0), gt.argmin(x, axis=1),
            gt.any(x > 1), gt.prod(x, axis=(0, 1), keepdims=True)]
    rng = np.random.default_rng(0)
    values = [layouts(random_array((33, 1500), dtype, rng, 0.9, 1.1))[layout],
              random_array((1, 1500), dtype, rng, 0.9, 1.1)]
    gpu = gc.function([x, y], outs, device="cuda", on_unused_input="ignore")(*values)
    cpu = gc.function([x, y], outs, on_unused_input="ignore")(*values)
    for g, c in zip(gpu, cpu):
        assert_matches(g, c)


@pytest.mark.parametrize("size", [1, 1000, 1 << 20])
def test_long_and_short_reductions(size):
    x = gt.vector("x", dtype="float32")
    value = random_array(size, "float32")
    f = gc.function([x], [gt.sum(gt.exp(x)), gt.argmax(x), gt.min(x)], device="cuda")
    cpu = gc.function([x], [gt.sum(gt.exp(x)), gt.argmax(x), gt.min(x)])
    for g, c in zip(f(value), cpu(value)):
        assert_matches(g, c)


@pytest.mark.parametrize("shapes", [((64, 32), (32, 16)), ((3, 64, 32), (3, 32, 8)),
                                    ((1, 5, 4), (7, 4, 6))], ids=str)
def test_cublas_products(shapes):
    a, b = (random_array(s, "float32") for s in shapes)
    A, B = (gt.tensor("float32", shape=(None,) * len(s)) for s in shapes)
    got = gc.function([A, B], [gt.matmul(A, B), gt.matmul(A, B) * 2], device="cuda")(a, b)
    np.testing.assert_allclose(got[0], np.matmul(a, b), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[1], 2 * np.matmul(a, b), rtol=1e-4, atol=1e-4)


def test_gpuarray_inputs_outputs_and_shared_state():
    from pycuda import gpuarray

    W = gc.shared(np.ones((4, 3), "float32"))
    x = gt.matrix("x", dtype="float32")
    f = gc.function([x], gt.dot(x, W), updates=[(W, W + 1)], device="cuda",
                    return_device_arrays=True)
    value = random_array((5, 4), "float32")
    out = f(gpuarray.to_gpu(value))
    assert isinstance(out, gpuarray.GPUArray)
    np.testing.assert_allclose(out.get(), value @ np.ones((4, 3)), rtol=1e-5)
    np.testing.assert_array_equal(W.get_value(), np.full((4, 3), 2, "float32"))


def test_mlp_reaches_the_cpu_accuracy():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(512, 20)).astype("float32")
    labels = (data[:, :10].sum(axis=1) > data[:, 10:].sum(axis=1)).astype("int64")

    def train(device):
        W1 = gc.shared((rng.normal(size=(20, 32)) * 0.1).astype("float32"))
        W2 = gc.shared((rng.normal(size=(32, 2)) * 0.1).astype("float32"))
        x, y = gt.matrix("x", dtype="float32"), gt.lvector("y")
        p = gt.nnet.softmax(gt.dot(gt.tanh(gt.dot(x, W1)), W2))
        cost = -gt.mean(gt.log(p)[gt.arange(y.shape[0]), y])
        g1, g2 = gc.grad(cost, [W1, W2])
        step = gc.function([x, y], cost, updates=[(W1, W1 - 0.5 * g1), (W2, W2 - 0.5 * g2)],
                           device=device)
        predict = gc.function([x], gt.argmax(p, axis=1), device=device)
        for _ in range(100):
            step(data, labels)
        return float((predict(data) == labels).mean())

    state = rng.bit_generator.state
    gpu = train("cuda")
    rng.bit_generator.state = state
    cpu = train("cpu")
    assert gpu > 0.9 and abs(gpu - cpu) <= 0.01
