"""The BLAS that NumPy itself uses, called from native code (the scan's step loop).

NumPy's wheels bundle OpenBLAS built with 64-bit integers and prefixed symbols
(``scipy_cblas_sgemm64_``). ``gemm_functions`` finds its ``?gemm`` entry points, checks
them once on a small product against NumPy, and returns their addresses; None where NumPy
was built against another BLAS (the callers then keep calling ``np.matmul``).
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

ROW_MAJOR, NOTRANS, TRANS = 101, 111, 112  # cblas's enums
_SYMBOLS = {"float32": ("scipy_cblas_sgemm64_", "cblas_sgemm64_"),
            "float64": ("scipy_cblas_dgemm64_", "cblas_dgemm64_")}
_found: dict | None = None
_searched = False


def gemm_functions() -> dict | None:
    """``{dtype: address}`` of ILP64 cblas ``sgemm``/``dgemm``, or None."""
    global _found, _searched
    if not _searched:
        _searched = True
        try:
            _found = _find()
        except (OSError, AttributeError, ValueError):
            _found = None
    return _found


def _libraries() -> list[str]:
    root = os.path.dirname(os.path.dirname(np.__file__))
    return sorted(glob.glob(os.path.join(root, "numpy.libs", "*openblas*"))) + \
        sorted(glob.glob(os.path.join(os.path.dirname(np.__file__), ".dylibs", "*openblas*")))


def _find() -> dict | None:
    for path in _libraries():
        lib = ctypes.CDLL(path)
        found = {}
        for dtype, names in _SYMBOLS.items():
            for name in names:
                if hasattr(lib, name):
                    found[dtype] = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                    break
        if len(found) == len(_SYMBOLS) and all(_works(d, a) for d, a in found.items()):
            return found
    return None


def _works(dtype: str, address: int) -> bool:
    """Whether ``address`` computes a 2x3 @ 3x4 product like NumPy (64-bit ints, row-major)."""
    scalar = ctypes.c_float if dtype == "float32" else ctypes.c_double
    i32, i64, ptr = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
    proto = ctypes.CFUNCTYPE(None, i32, i32, i32, i64, i64, i64, scalar, ptr, i64, ptr, i64,
                             scalar, ptr, i64)
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    b = np.arange(12, dtype=dtype).reshape(3, 4) - 5
    c = np.zeros((2, 4), dtype)
    proto(address)(ROW_MAJOR, NOTRANS, NOTRANS, 2, 4, 3, 1.0, a.ctypes.data, 3,
                   b.ctypes.data, 4, 0.0, c.ctypes.data, 4)
    return bool(np.array_equal(c, a @ b))


def _operand(x: np.ndarray, trans: bool, is_left: bool):
    """``(trans flag, rows, cols of op(x), leading dimension)`` of a 1-d or 2-d operand as
    BLAS sees it, or None when its layout does not fit."""
    item = x.itemsize
    if x.ndim == 1:  # a row (left) or a column (right)
        if x.strides[0] != item and x.shape[0] > 1:
            return None
        k = x.shape[0]
        return (False, 1, k, max(k, 1)) if is_left else (False, k, 1, 1)
    rows, cols = x.shape
    s0, s1 = x.strides
    if (s1 == item or cols == 1) and s0 % item == 0 and s0 // item >= max(cols, 1):
        flag, ld = trans, s0 // item
    elif (s0 == item or rows == 1) and s1 % item == 0 and s1 // item >= max(rows, 1):
        flag, ld = not trans, s1 // item  # column-major: the transpose of a row-major matrix
    else:
        return None
    m, n = (cols, rows) if trans else (rows, cols)
    return flag, m, n, ld


def gemm_call(a: np.ndarray, b: np.ndarray, out: np.ndarray, trans_a: bool, trans_b: bool):
    """``(function address, (order, trans_a, trans_b, M, N, K, lda, ldb, ldc))`` that computes
    ``op(a) @ op(b)`` into the C-contiguous ``out``; None when BLAS cannot take the operands."""
    functions = gemm_functions()
    if functions is None or a.dtype != b.dtype or a.dtype != out.dtype:
        return None
    function = functions.get(a.dtype.name)
    left, right = _operand(a, trans_a, True), _operand(b, trans_b, False)
    if function is None or left is None or right is None or not out.flags.c_contiguous:
        return None
    flag_a, m, k, lda = left
    flag_b, k2, n, ldb = right
    if k != k2 or 0 in (m, n, k) or out.size != m * n:
        return None
    flags = [TRANS if f else NOTRANS for f in (flag_a, flag_b)]
    return function, (ROW_MAJOR, *flags, m, n, k, lda, ldb, max(n, 1))
