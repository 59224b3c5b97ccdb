"""Which devices can run here; imports nothing heavy."""

from __future__ import annotations

import importlib.util


def cuda_available() -> bool:
    """True when pycuda is installed and a CUDA device can be opened."""
    if importlib.util.find_spec("pycuda") is None:
        return False
    try:
        import pycuda.driver as drv

        drv.init()
        return drv.Device.count() > 0
    except Exception:
        return False


def require_cuda() -> None:
    if importlib.util.find_spec("pycuda") is None:
        raise RuntimeError('device="cuda" needs pycuda, which is not installed: pip install -e ".[cuda]"')
    if not cuda_available():
        raise RuntimeError('device="cuda": pycuda is installed but no CUDA GPU (or driver) was found')
    raise NotImplementedError('device="cuda": the CUDA backend is not built yet (issue: CUDA backend)')
