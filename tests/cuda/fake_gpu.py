"""A stand-in for ``graphc.cuda.driver.Gpu`` on machines without a GPU: "device memory" is
host memory, kernels run in the simulator (``tests/cuda/simulator.py``) and cuBLAS is a
NumPy model of column-major GEMM that reads exactly what the plan's arguments describe. The
CUDA backend's call path (binding, steps, views, updates, aliasing) runs unchanged on it."""
from __future__ import annotations

import ctypes
import dataclasses

import numpy as np

from graphc.cuda.cublas import OP_N
from graphc.cuda.launch import DeviceLimits
from graphc.cuda.memory import DeviceArray, c_strides, view_of
from graphc.cuda.target import DEFAULT_ARCH
from tests.cuda.simulator import Simulator


def _host_view(ptr: int, shape, strides, dtype) -> np.ndarray:
    """A NumPy view of memory at ``ptr`` (any strides)."""
    dtype = np.dtype(dtype)
    low = high = 0
    for size, stride in zip(shape, strides):
        span = (size - 1) * stride
        low, high = (low + span, high) if span < 0 else (low, high + span)
    if 0 in shape:
        return np.empty(shape, dtype)
    raw = (ctypes.c_uint8 * (high - low + dtype.itemsize)).from_address(ptr + low)
    return np.ndarray(shape, dtype, buffer=raw, offset=-low, strides=strides)


class FakeCublas:
    def __init__(self):
        self.calls = []

    def gemm(self, plan, dtype, c_ptr: int) -> None:
        (ta, tb, m, n, k, a, lda, sa, b, ldb, sb, c, ldc, sc) = plan.arguments(c_ptr)
        size = np.dtype(dtype).itemsize
        self.calls.append(plan)

        def operand(ptr, trans, rows, cols, ld):  # op(X) of a column-major X, rows x cols
            strides = (size, ld * size) if trans == OP_N else (ld * size, size)
            return _host_view(ptr, (rows, cols), strides, dtype)

        for i in range(plan.batch):
            left = operand(a + i * sa * size, ta, m, k, lda)
            right = operand(b + i * sb * size, tb, k, n, ldb)
            out = _host_view(c + i * sc * size, (m, n), (size, ldc * size), dtype)
            out[...] = left @ right


class FakeGpu:
    """Host memory and simulated kernels behind the ``Gpu`` interface."""

    arch = DEFAULT_ARCH

    def __init__(self, block: int = 64, grid: int = 2):
        self.limits = DeviceLimits(multiprocessors=1)
        self.block, self.grid = block, grid
        self.simulators: dict = {}
        self.launches: list = []
        self._cublas = FakeCublas()

    def load(self, source) -> None:
        for entry in source.entries:
            if entry not in self.simulators:
                self.simulators[entry] = Simulator(source)

    def launch(self, launch) -> None:
        self.launches.append(launch.kernel)
        small = dataclasses.replace(launch, grid=min(launch.grid, self.grid),
                                    block=min(launch.block, self.block))
        self.simulators[launch.kernel].launch(small)

    def empty(self, shape, dtype) -> DeviceArray:
        shape = tuple(int(s) for s in shape)
        memory = np.empty(max(int(np.prod(shape)), 1), dtype)
        return DeviceArray(memory.ctypes.data, shape, c_strides(shape, memory.itemsize), dtype,
                           memory, fresh=True)

    def to_device(self, value) -> DeviceArray:
        array = np.asarray(value, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        out = self.empty(array.shape, array.dtype)
        _host_view(out.ptr, out.shape, out.strides, out.dtype)[...] = array
        return out

    def to_host(self, value) -> np.ndarray:
        value = view_of(value)
        return np.array(_host_view(value.ptr, value.shape, value.strides, value.dtype))

    def zero(self, value: DeviceArray) -> None:
        _host_view(value.ptr, value.shape, value.strides, value.dtype)[...] = 0

    def copy(self, value: DeviceArray) -> DeviceArray:
        return self.to_device(self.to_host(value))

    def as_gpuarray(self, value: DeviceArray) -> DeviceArray:
        return value

    def cublas(self) -> FakeCublas:
        return self._cublas


def install(monkeypatch, gpu: FakeGpu | None = None) -> FakeGpu:
    """Make ``device="cuda"`` functions run on a ``FakeGpu`` for one test."""
    import graphc.compile
    import graphc.cuda.driver

    gpu = gpu or FakeGpu()
    monkeypatch.setattr(graphc.compile, "_require_device", lambda device: None)
    monkeypatch.setattr(graphc.cuda.driver, "_gpu", gpu)
    return gpu
