"""The GPU through pycuda: the context, loaded kernel modules, launches and copies.

Imported only by CUDA functions (``import graphc`` never imports pycuda). One ``Gpu`` per
process, on device 0 in its primary context (the one CuPy and PyTorch use, so their arrays
are valid here). Kernels are loaded with ``module_from_buffer``: a cubin made by ``ptxas``
for the device's exact compute capability when ptxas is on the PATH, else the PTX (the
driver compiles it). Both come from the disk cache's ``cuda`` namespace when they are there.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

from .launch import DeviceLimits, Launch
from .memory import DeviceArray, c_strides, view_of
from .target import DEFAULT_ARCH, cubin, ptx

__all__ = ["Gpu", "gpu", "ptx_arch"]

# compute capabilities this LLVM emits PTX for (a newer device runs the newest one's PTX)
KNOWN_ARCHES = (50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90, 100, 120)


def ptx_arch(capability: tuple) -> str:
    """The ``sm_XY`` to emit PTX for on a device of ``capability`` (major, minor)."""
    number = capability[0] * 10 + capability[1]
    usable = [a for a in KNOWN_ARCHES if a <= number]
    return f"sm_{usable[-1]}" if usable else DEFAULT_ARCH


class Gpu:
    """Device 0: its context, properties, memory pool and the kernels loaded so far."""

    def __init__(self):
        import pycuda.driver as drv

        drv.init()
        if drv.Device.count() == 0:
            raise RuntimeError("no CUDA device found")
        import pycuda.autoprimaryctx  # noqa: F401  (makes device 0's primary context current)
        from pycuda.tools import DeviceMemoryPool

        self.drv = drv
        self.device = drv.Context.get_device()
        self.capability = self.device.compute_capability()
        self.arch = ptx_arch(self.capability)
        self.cubin_arch = f"sm_{self.capability[0]}{self.capability[1]}"
        attribute = drv.device_attribute
        self.limits = DeviceLimits(
            multiprocessors=self.device.get_attribute(attribute.MULTIPROCESSOR_COUNT),
            max_grid=self.device.get_attribute(attribute.MAX_GRID_DIM_X),
            max_block=self.device.get_attribute(attribute.MAX_THREADS_PER_BLOCK))
        self.pool = DeviceMemoryPool()
        self._functions: dict[str, object] = {}
        self._modules: list = []
        self._lock = threading.Lock()
        self._cublas = None

    # --- kernels ---------------------------------------------------------------------------
    def load(self, source) -> None:
        """Load the module of a ``CudaKernelSource`` (once per process)."""
        with self._lock:
            if source.entries[0] in self._functions:
                return
            text = ptx(source.ir, self.arch)
            image = None
            try:
                image = cubin(text, self.cubin_arch)
            except Exception:  # an old ptxas that lacks this device: the driver compiles PTX
                image = None
            module = self.drv.module_from_buffer(image if image is not None else text.encode())
            self._modules.append(module)
            for entry in source.entries:
                self._functions[entry] = module.get_function(entry)

    def launch(self, launch: Launch) -> None:
        self._functions[launch.kernel](*launch.args, block=(launch.block, 1, 1),
                                       grid=(launch.grid, 1, 1))

    # --- memory ----------------------------------------------------------------------------
    def empty(self, shape, dtype) -> DeviceArray:
        dtype = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        nbytes = max(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, 1)
        allocation = self.pool.allocate(nbytes)
        return DeviceArray(int(allocation), shape, c_strides(shape, dtype.itemsize), dtype,
                           allocation, fresh=True)

    def to_device(self, value) -> DeviceArray:
        array = np.asarray(value, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        out = self.empty(array.shape, array.dtype)
        if array.nbytes:
            self.drv.memcpy_htod(out.ptr, array)
        return out

    def to_host(self, value) -> np.ndarray:
        """A new NumPy array with the values of a device array (any strides)."""
        value = view_of(value)
        if value.size == 0:
            return np.empty(value.shape, value.dtype)
        if value.c_contiguous:
            out = np.empty(value.shape, value.dtype)
            self.drv.memcpy_dtoh(out, value.ptr)
            return out
        low, high = _extent(value)
        raw = np.empty(high - low, np.uint8)
        self.drv.memcpy_dtoh(raw, value.ptr + low)
        strided = np.ndarray(value.shape, value.dtype, buffer=raw, offset=-low,
                             strides=value.strides)
        return np.array(strided)

    def zero(self, value: DeviceArray) -> None:
        """Set a contiguous device array to zeros."""
        if value.nbytes:
            self.drv.memset_d8(value.ptr, 0, value.nbytes)

    def copy(self, value: DeviceArray) -> DeviceArray:
        """A fresh C-contiguous copy of a device array."""
        if value.c_contiguous:
            out = self.empty(value.shape, value.dtype)
            if value.nbytes:
                self.drv.memcpy_dtod(out.ptr, value.ptr, value.nbytes)
            return out
        return self.to_device(self.to_host(value))

    def as_gpuarray(self, value: DeviceArray):
        """A pycuda ``GPUArray`` over the memory of ``value`` (no copy)."""
        from pycuda import gpuarray

        holder = _holder_class(self.drv)(value)
        return gpuarray.GPUArray(value.shape, value.dtype, gpudata=holder, strides=value.strides)

    def cublas(self):
        """The process's cuBLAS handle (made on first use)."""
        if self._cublas is None:
            from .cublas import Cublas

            self._cublas = Cublas()
        return self._cublas

    def synchronize(self) -> None:
        self.drv.Context.synchronize()


@functools.cache
def _holder_class(drv):
    """A ``PointerHolderBase`` (pycuda's handle on memory it did not allocate) that keeps
    its DeviceArray alive."""

    class Holder(drv.PointerHolderBase):
        def __init__(self, array: DeviceArray):
            super().__init__()
            self.array = array

        def get_pointer(self) -> int:
            return self.array.ptr

    return Holder


def _extent(value: DeviceArray) -> tuple[int, int]:
    """(lowest, one past the highest) byte offset of the elements from ``value.ptr``."""
    low = high = 0
    for size, stride in zip(value.shape, value.strides):
        span = (size - 1) * stride
        low, high = (low + span, high) if span < 0 else (low, high + span)
    return low, high + value.dtype.itemsize


_gpu: Gpu | None = None
_gpu_lock = threading.Lock()


def gpu() -> Gpu:
    """The process's ``Gpu`` (made on first use)."""
    global _gpu
    with _gpu_lock:
        if _gpu is None:
            _gpu = Gpu()
        return _gpu

