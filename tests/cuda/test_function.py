"""``graphc.function(..., device="cuda")`` end to end on the fake GPU (host memory, simulated
kernels): results against the CPU, cuBLAS plans, views, host steps, device inputs and outputs,
shared variables kept on the device, aliasing, errors; and what needs no GPU at all."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.cuda.cublas import OP_N, OP_T, blas_operand, blas_plan
from graphc.cuda.memory import DeviceArray, DeviceContainer, view_of
from tests.cuda.fake_gpu import install
from tests.helpers import assert_matches, layouts, random_array


@pytest.fixture
def fake(monkeypatch):
    return install(monkeypatch)


def both(inputs, outputs, values, **kwargs):
    """The function's results on the fake GPU and on the CPU."""
    gpu = gc.function(inputs, outputs, device="cuda", **kwargs)(*values)
    cpu = gc.function(inputs, outputs, **kwargs)(*values)
    return gpu, cpu


def test_fused_chain_reduction_and_layouts(fake):
    x, y = gt.matrix("x", dtype="float32"), gt.matrix("y", dtype="float32")
    out = [gt.exp(x) * y + 1, gt.sum(gt.tanh(x - y), axis=1), gt.argmax(x, axis=0)]
    for layout in ("contiguous", "strided", "negative"):
        values = [layouts(random_array((5, 7), "float32"))[layout] for _ in range(2)]
        gpu, cpu = both([x, y], out, values)
        for g, c in zip(gpu, cpu):
            assert_matches(g, c)
    assert any(k.endswith(("_block", "_serial")) for k in fake.launches)


@pytest.mark.parametrize("case", ["nn", "tn", "nt", "batched", "broadcast_batch", "vector"])
def test_matrix_products(fake, case):
    rng = np.random.default_rng(4)
    a, b = random_array((4, 3), "float64", rng), random_array((3, 5), "float64", rng)
    if case == "tn":
        a = random_array((3, 4), "float64", rng).T
    if case == "nt":
        b = random_array((5, 3), "float64", rng).T
    if case == "batched":
        a, b = random_array((2, 4, 3), "float64", rng), random_array((2, 3, 5), "float64", rng)
    if case == "broadcast_batch":
        a, b = random_array((1, 4, 3), "float64", rng), random_array((3, 3, 5), "float64", rng)
    if case == "vector":
        b = random_array((3,), "float64", rng)
    A = gt.tensor("float64", shape=(1,) + (None,) * (a.ndim - 1) if case == "broadcast_batch"
                  else (None,) * a.ndim)
    B = gt.tensor("float64", shape=(None,) * b.ndim)
    gpu, cpu = both([A, B], gt.matmul(A, B), [a, b])
    assert_matches(gpu, cpu)
    np.testing.assert_allclose(gpu, np.matmul(a, b), rtol=1e-12)
    assert len(fake.cublas().calls) == (0 if case == "vector" else 1)  # 1-d: on the host


def test_blas_operands_describe_every_unit_stride_layout():
    assert blas_operand(0, 4, 3, 12, 4, 4).op == OP_N and blas_operand(0, 4, 3, 12, 4, 4).ld == 3
    assert blas_operand(0, 4, 3, 4, 16, 4).op == OP_T and blas_operand(0, 4, 3, 4, 16, 4).ld == 4
    assert blas_operand(0, 4, 3, 24, 8, 4) is None  # neither axis unit
    assert blas_operand(0, 4, 3, -12, 4, 4) is None  # negative leading dimension
    square = DeviceArray(0, (3, 3), (24, 8), "float64")
    assert blas_plan(square, DeviceArray(0, (3, 3), (8, -24), "float64")) is None
    assert blas_plan(square, DeviceArray(0, (3, 3), (24, 8), "int64")) is None


def test_shared_variables_stay_on_the_device(fake):
    W = gc.shared(np.ones((3, 2), "float32"), name="W")
    x = gt.matrix("x", dtype="float32")
    f = gc.function([x], gt.dot(x, W).sum(), updates=[(W, W * 2)], device="cuda")
    value = np.ones((4, 3), "float32")
    assert f(value) == pytest.approx(24.0)
    assert isinstance(W.container, DeviceContainer) and W.container.host_stale
    assert f(value) == pytest.approx(48.0)  # read from the device copy
    np.testing.assert_array_equal(W.get_value(), np.full((3, 2), 4, "float32"))
    W.set_value(np.zeros((3, 2), "float32"))  # the device copy is stale now
    assert f(value) == 0.0
    cpu = gc.function([x], gt.dot(x, W).sum())  # a CPU function sees the device's updates
    assert cpu(value) == 0.0 and W.get_value().sum() == 0


def test_mlp_training_matches_the_cpu(fake):
    rng = np.random.default_rng(5)
    data = random_array((16, 4), "float32", rng)
    labels = (data.sum(axis=1) > 0).astype("int64")

    def train(device):
        W = gc.shared(np.full((4, 2), 0.1, "float32"), name="W")
        b = gc.shared(np.zeros(2, "float32"), name="b")
        x, y = gt.matrix("x", dtype="float32"), gt.lvector("y")
        p = gt.nnet.softmax(gt.dot(x, W) + b)
        cost = -gt.mean(gt.log(p)[gt.arange(y.shape[0]), y])
        gW, gb = gc.grad(cost, [W, b])
        step = gc.function([x, y], cost, updates=[(W, W - 0.5 * gW), (b, b - 0.5 * gb)],
                           device=device)
        costs = [float(step(data, labels)) for _ in range(3)]
        return costs, W.get_value()

    gpu_costs, gpu_W = train("cuda")
    cpu_costs, cpu_W = train("cpu")
    np.testing.assert_allclose(gpu_costs, cpu_costs, rtol=1e-5)
    np.testing.assert_allclose(gpu_W, cpu_W, rtol=1e-5, atol=1e-6)
    assert gpu_costs[-1] < gpu_costs[0]


class Foreign:
    """Another library's device array: only ``__cuda_array_interface__``."""

    def __init__(self, array: DeviceArray):
        self.array = array
        self.__cuda_array_interface__ = array.__cuda_array_interface__


def test_device_inputs_and_outputs(fake, monkeypatch):
    x = gt.matrix("x", dtype="float64")
    f = gc.function([x], [x * 2, x], device="cuda", return_device_arrays=True)
    host = layouts(random_array((3, 4), "float64"))["negative"]
    device = fake.to_device(host)
    for given in (device, Foreign(device), device.view(device.shape[::-1], device.strides[::-1])):
        expected = fake.to_host(view_of(given))
        doubled, same = f(given)
        assert isinstance(doubled, DeviceArray) and doubled.fresh
        assert_matches(fake.to_host(doubled), expected * 2)
        assert same.ptr != view_of(given).ptr  # an output never aliases an input
        assert_matches(fake.to_host(same), expected)
    with pytest.raises(TypeError, match="not cast"):
        f(fake.to_device(host.astype("float32")))
    with pytest.raises(TypeError, match="2-d"):
        f(fake.to_device(host[0]))
    assert_matches(gc.function([x], x + 1, device="cuda")(x=host), host + 1)


def test_host_steps_and_errors_name_the_op(fake):
    x = gt.vector("x", dtype="float64")
    gpu, cpu = both([x], gt.sort(x) * 2, [np.array([3.0, 1.0, 2.0])])  # sort: a host step
    assert list(gpu) == list(cpu) == [2.0, 4.0, 6.0]
    y = gt.vector("y", dtype="float64")
    f = gc.function([x, y], x + y, device="cuda")
    with pytest.raises(ValueError, match="add|broadcast"):
        f(np.ones(3), np.ones(4))
    with pytest.raises(ValueError):
        gc.function([x], gt.max(x), device="cuda")(np.ones(0))


def test_require_cuda_message_without_pycuda(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycuda", None)
    from graphc.runtime.device import CudaUnavailable, cuda_status

    assert "pycuda" in cuda_status() and ".[cuda]" in cuda_status()
    x = gt.dvector("x")
    with pytest.raises(CudaUnavailable, match=r'pip install -e "\.\[cuda\]"'):
        gc.function([x], x + 1, device="cuda")


def test_import_graphc_never_imports_pycuda():
    code = ("import sys, graphc, graphc.tensor as gt; import graphc.cuda.kernel, "
            "graphc.cuda.program, graphc.cuda.function; graphc.cuda_available; "
            "print('pycuda' in sys.modules, 'pycuda.driver' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_scan_and_random_streams_on_the_gpu_path(fake):
    """A scan (forward and gradient) and random draws run on device="cuda" (the scan as a host
    step) and give the CPU's results: the same seed draws the same numbers on every backend."""
    x, h0 = gt.tensor3("x", dtype="float32"), gt.matrix("h0", dtype="float32")
    w = gt.matrix("w", dtype="float32")
    h, _ = gc.scan(lambda x_t, h: gt.tanh(x_t + gt.dot(h, w)), sequences=x, outputs_info=h0)
    cost = (h * h).sum()
    rng = np.random.default_rng(6)
    values = [random_array(s, "float32", rng, -1, 1) for s in [(5, 2, 3), (2, 3), (3, 3)]]
    gpu, cpu = both([x, h0, w], [h] + gc.grad(cost, [w, h0]), values)
    for g, c in zip(gpu, cpu):
        np.testing.assert_allclose(np.asarray(g), c, rtol=1e-5, atol=1e-6)
    draws = {}
    for device in ("cuda", "cpu"):
        stream = gc.random.RandomStream(42)
        u, z = stream.uniform(size=(3, 5)), stream.normal(size=(7,), dtype="float64")
        f = gc.function([], [u, z], updates=stream.updates(), device=device)
        draws[device] = [np.asarray(v) for v in f() + f()]
    for g, c in zip(draws["cuda"], draws["cpu"]):
        assert_matches(g, c)
