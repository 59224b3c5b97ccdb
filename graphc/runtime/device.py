"""Which devices can run here; imports nothing heavy (pycuda only when asked about CUDA)."""

from __future__ import annotations

import importlib.util

INSTALL_HINT = ('pip install -e ".[cuda]" (on a GPU machine without network: '
                "scripts/prepare_pycuda.sh)")


class CudaUnavailable(RuntimeError):
    """``device="cuda"`` was asked for where it cannot run (says what is missing)."""


def cuda_status() -> str | None:
    """None when CUDA functions can run here, else what is missing."""
    if importlib.util.find_spec("pycuda") is None:
        return f'device="cuda" needs pycuda, which is not installed: {INSTALL_HINT}'
    try:
        import pycuda.driver as drv

        drv.init()
        count = drv.Device.count()
    except Exception as exc:  # no driver, or a driver too old for this pycuda
        return f'device="cuda": pycuda is installed but the CUDA driver failed ({exc})'
    if count == 0:
        return 'device="cuda": pycuda is installed but no CUDA GPU was found'
    return None


def cuda_available() -> bool:
    """True when pycuda is installed and a CUDA device can be opened."""
    return cuda_status() is None


def require_cuda() -> None:
    """Raise ``CudaUnavailable`` (one line: what is missing, how to install) unless CUDA
    functions can run here."""
    reason = cuda_status()
    if reason is not None:
        raise CudaUnavailable(reason)
