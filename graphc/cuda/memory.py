"""Device arrays, their conversions, and shared variables that live on the GPU.

``DeviceArray`` is graphc's own small view of device memory (pointer, shape, byte strides,
dtype and the object keeping the memory alive); it speaks ``__cuda_array_interface__``, so
CuPy, PyTorch and Numba read it without a copy, and it is made from any object that speaks
it (or from a pycuda ``GPUArray``) without a copy. Memory graphc allocates comes from a
``pycuda.tools.DeviceMemoryPool``, so repeated calls reuse blocks instead of allocating.

Only ``DeviceArray``, ``is_device_array``, ``view_of`` and ``DeviceContainer`` are usable
without pycuda; the copies need the driver (``graphc.cuda.driver``).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["DeviceArray", "DeviceContainer", "c_strides", "is_device_array", "view_of"]


def c_strides(shape: tuple, itemsize: int) -> tuple:
    strides, step = [], itemsize
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


class DeviceArray:
    """An array in device memory; ``fresh`` when it owns the whole of its allocation (a
    result graphc made, not a view and not the caller's memory)."""

    __slots__ = ("dtype", "fresh", "owner", "ptr", "shape", "strides")

    def __init__(self, ptr: int, shape, strides, dtype, owner=None, fresh: bool = False):
        self.ptr, self.shape, self.strides = int(ptr), tuple(shape), tuple(strides)
        self.dtype, self.owner, self.fresh = np.dtype(dtype), owner, fresh

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def c_contiguous(self) -> bool:
        return all(s == c or n == 1 for s, c, n in
                   zip(self.strides, c_strides(self.shape, self.dtype.itemsize), self.shape))

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ptr, False),
                "strides": self.strides, "version": 3, "stream": None}

    def view(self, shape, strides, offset: int = 0) -> DeviceArray:
        owner = self.owner if self.owner is not None else self
        return DeviceArray(self.ptr + offset, shape, strides, self.dtype, owner)

    def __repr__(self) -> str:
        return f"<DeviceArray {self.dtype}{list(self.shape)} at {self.ptr:#x}>"


def is_device_array(value) -> bool:
    """A device array graphc accepts as an input without a copy."""
    return isinstance(value, DeviceArray) or hasattr(value, "__cuda_array_interface__") or (
        hasattr(value, "gpudata") and hasattr(value, "strides"))


def view_of(value) -> DeviceArray:
    """``value`` (a DeviceArray, a pycuda GPUArray or any ``__cuda_array_interface__``
    object) as a DeviceArray over the same memory."""
    if isinstance(value, DeviceArray):
        return value
    interface = getattr(value, "__cuda_array_interface__", None)
    if interface is None:  # an older pycuda GPUArray
        return DeviceArray(int(value.gpudata), value.shape, value.strides, value.dtype, value)
    dtype = np.dtype(interface["typestr"])
    shape = tuple(interface["shape"])
    strides = interface.get("strides") or c_strides(shape, dtype.itemsize)
    if interface.get("mask") is not None:
        raise TypeError("device arrays with a mask are not supported")
    return DeviceArray(int(interface["data"][0]), shape, strides, dtype, value)


class DeviceContainer(list):
    """A shared variable's storage once a CUDA function uses it.

    ``[0]`` is the host value as everywhere else (downloaded on first read after the device
    copy changed); assigning ``[0]`` (``set_value``, a CPU function's update) makes the device
    copy stale. CUDA functions read ``device_value`` and write ``set_device``: the value
    stays on the GPU between their calls.
    """

    def __init__(self, host_value, download):
        super().__init__([host_value])
        self.device: DeviceArray | None = None
        self.host_stale = False
        self._download = download

    def __getitem__(self, index):
        if self.host_stale:
            list.__setitem__(self, 0, self._download(self.device))
            self.host_stale = False
        return list.__getitem__(self, index)

    def __setitem__(self, index, value) -> None:
        list.__setitem__(self, index, value)
        self.device, self.host_stale = None, False

    def device_value(self, upload) -> DeviceArray:
        if self.device is None:
            self.device = upload(list.__getitem__(self, 0))
        return self.device

    def set_device(self, value: DeviceArray) -> None:
        self.device, self.host_stale = value, True
