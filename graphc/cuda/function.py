"""The call path of a ``graphc.function(..., device="cuda")``.

Inputs may be NumPy arrays or Python values (checked and converted like on the CPU, then
copied to the GPU when a device step reads them) or device arrays: a pycuda ``GPUArray``, a
``DeviceArray`` or anything with ``__cuda_array_interface__`` (CuPy, PyTorch), used without
a copy; a device array must already have the input's dtype (it is not cast). Outputs come
back as NumPy arrays, or as pycuda ``GPUArray``s with ``return_device_arrays=True``. Updates
of shared variables are written on the device, after every step succeeded; no output or new
shared value shares memory with an input, a shared value or another output.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import shape_str
from .memory import DeviceArray, is_device_array, view_of
from .program import CudaProgram, shared_container

__all__ = ["CudaRunner"]


class CudaRunner:
    """Runs one compiled function on the GPU."""

    def __init__(self, function, return_device_arrays: bool = False):
        from .driver import gpu

        self.gpu = gpu()
        self.return_device_arrays = return_device_arrays
        n_out = len(function.outputs)
        update_vars = {n_out + i: var for i, (var, _) in enumerate(function.updates)}
        self.program = CudaProgram(function.fgraph.inputs, function.fgraph.outputs, self.gpu,
                                   update_vars)

    def __call__(self, function, args, kwargs):
        values = bind(function, args, kwargs)
        results = self.program.run(values)
        n_out = len(function.outputs)
        variables = [n for _, n in self.program.base.shared] + [v for v, _ in function.updates]
        shared = [shared_container(v, self.gpu).device for v in variables]
        taken = [v for v in values if isinstance(v, DeviceArray)] + [s for s in shared if s]
        fresh = []
        for result in results:
            fresh.append(self._owned(result, taken))
            taken.append(fresh[-1])
        for (var, _), new in zip(function.updates, fresh[n_out:]):
            shared_container(var, self.gpu).set_device(new)
        outputs = [self._deliver(r) for r in fresh[:n_out]]
        return outputs[0] if function.unpack_single else outputs

    def _owned(self, result, taken) -> DeviceArray:
        """``result`` on the device, copied unless it is a fresh array no one else holds."""
        if not isinstance(result, DeviceArray):
            return self.gpu.to_device(result)
        if result.fresh and not any(result is t for t in taken):
            return result
        return self.gpu.copy(result)

    def _deliver(self, value: DeviceArray):
        if self.return_device_arrays:
            return self.gpu.as_gpuarray(value)
        return self.gpu.to_host(value)


def bind(function, args, kwargs) -> list:
    """One value per input: device arrays as ``DeviceArray`` views, others as NumPy arrays."""
    inputs = function.inputs
    values = function._arrange(args, kwargs)
    bound = []
    for i, value in enumerate(values):
        if is_device_array(value):
            bound.append(check_device_input(view_of(value), inputs[i].type,
                                            function._input_label(i)))
        else:
            bound.append(function._convert(i, value))
    return bound


def check_device_input(array: DeviceArray, typ, label: str) -> DeviceArray:
    """``array`` if it fits an input of type ``typ`` (no casting on the device)."""
    if array.ndim != typ.ndim:
        raise TypeError(f"input {label}: expected a {typ.ndim}-d {typ.dtype} array, got a "
                        f"{array.ndim}-d device array (shape {array.shape})")
    if array.dtype != np.dtype(typ.dtype):
        raise TypeError(f"input {label}: a device array of dtype {array.dtype} for a "
                        f"{typ.dtype} input (device arrays are not cast: cast it first)")
    if not typ.accepts_shape(array.shape):
        raise ValueError(f"input {label}: shape {array.shape} contradicts the static shape "
                         f"{shape_str(typ.shape)}")
    return array
