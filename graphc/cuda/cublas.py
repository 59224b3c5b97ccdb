"""Matrix products on the GPU through cuBLAS, loaded with ctypes (no hand-written GEMM).

graphc's arrays are row-major, cuBLAS's column-major: a row-major ``C = A @ B`` is the
column-major ``C^T = B^T @ A^T``, so B goes first. An operand is usable as it is when one of
its two axes has unit stride (the other is then cuBLAS's leading dimension, and which one is
unit decides the N/T flag); batched products (``matmul`` of 3-d operands, a broadcast batch
being stride 0) use ``gemmStridedBatched``. ``blas_plan`` is pure arithmetic (tested without
a GPU); operands it cannot describe return None and the product runs on the host.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

import numpy as np

__all__ = ["BlasOperand", "Cublas", "GemmPlan", "blas_operand", "blas_plan"]

OP_N, OP_T = 0, 1
INT_MAX = 2 ** 31 - 1


@dataclass(frozen=True)
class BlasOperand:
    """A row-major (rows x cols) matrix as cuBLAS sees it in the *transposed* role."""

    ptr: int
    op: int  # OP_N: memory holds the transposed matrix column-major; OP_T: the matrix itself
    ld: int  # leading dimension in elements
    batch_stride: int  # elements between matrices of a batch (0: broadcast)


def blas_operand(ptr, rows, cols, row_stride, col_stride, itemsize, batch_stride=0):
    """``BlasOperand`` of a matrix with byte strides, or None when neither axis is unit."""
    if row_stride % itemsize or col_stride % itemsize or batch_stride % itemsize:
        return None
    rs, cs, bs = row_stride // itemsize, col_stride // itemsize, batch_stride // itemsize
    if cs == 1 or cols == 1:  # rows are contiguous: column-major storage of the transpose
        ld = rs if rows > 1 else cols
        if ld >= max(1, cols):
            return BlasOperand(ptr, OP_N, ld, bs)
    if rs == 1 or rows == 1:  # columns are contiguous: column-major storage of the matrix
        ld = cs if cols > 1 else rows
        if ld >= max(1, rows):
            return BlasOperand(ptr, OP_T, ld, bs)
    return None


@dataclass(frozen=True)
class GemmPlan:
    """``C (m x n, row-major, contiguous) = A (m x k) @ B (k x n)``, ``batch`` times."""

    m: int
    n: int
    k: int
    a: BlasOperand
    b: BlasOperand
    batch: int

    def arguments(self, c_ptr: int):
        """cuBLAS's (transa, transb, m, n, k, A, lda, strideA, B, ldb, strideB, C, ldc,
        strideC) for the column-major product C^T = B^T A^T."""
        return (self.b.op, self.a.op, self.n, self.m, self.k, self.b.ptr, self.b.ld,
                self.b.batch_stride, self.a.ptr, self.a.ld, self.a.batch_stride, c_ptr, self.n,
                self.m * self.n)


def blas_plan(a, b) -> GemmPlan | None:
    """The cuBLAS product of two device arrays (2-d, or 3-d with equal or broadcast
    batches), or None (other ranks, odd strides, sizes over int32)."""
    if a.ndim != b.ndim or a.ndim not in (2, 3) or a.dtype != b.dtype:
        return None
    if a.dtype.name not in ("float32", "float64"):
        return None
    batch = 1
    a_batch = b_batch = 0
    if a.ndim == 3:
        sizes = {a.shape[0], b.shape[0]} - {1}
        if len(sizes) > 1:
            return None
        batch = sizes.pop() if sizes else 1
        a_batch = a.strides[0] if a.shape[0] != 1 else 0
        b_batch = b.strides[0] if b.shape[0] != 1 else 0
    (m, k), (k2, n) = a.shape[-2:], b.shape[-2:]
    if k != k2 or max(m, n, k, batch) > INT_MAX:
        return None
    size = a.dtype.itemsize
    left = blas_operand(a.ptr, m, k, *a.strides[-2:], size, a_batch)
    right = blas_operand(b.ptr, k, n, *b.strides[-2:], size, b_batch)
    if left is None or right is None:
        return None
    return GemmPlan(m, n, k, left, right, batch)


def _load_library():
    names = ["libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11"]
    found = ctypes.util.find_library("cublas")
    if found:
        names.insert(0, found)
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise OSError("libcublas.so was not found (it comes with the CUDA toolkit; add its "
                  "folder to LD_LIBRARY_PATH)")


class Cublas:
    """A cuBLAS handle on the current context (the default stream)."""

    def __init__(self):
        self.lib = _load_library()
        handle = ctypes.c_void_p()
        self._check(self.lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
        self.handle = handle
        self._scalars = {"float32": (ctypes.c_float(1.0), ctypes.c_float(0.0)),
                         "float64": (ctypes.c_double(1.0), ctypes.c_double(0.0))}

    @staticmethod
    def _check(status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"{what} failed with cuBLAS status {status}")

    def gemm(self, plan: GemmPlan, dtype: np.dtype, c_ptr: int) -> None:
        """Run ``plan`` into the contiguous output at ``c_ptr``."""
        (ta, tb, m, n, k, a, lda, sa, b, ldb, sb, c, ldc, sc) = plan.arguments(c_ptr)
        one, zero = self._scalars[np.dtype(dtype).name]
        prefix = "S" if np.dtype(dtype).name == "float32" else "D"
        i, p, ll = ctypes.c_int, ctypes.c_void_p, ctypes.c_longlong
        common = (self.handle, i(ta), i(tb), i(m), i(n), i(k), ctypes.byref(one))
        if plan.batch == 1:
            status = getattr(self.lib, f"cublas{prefix}gemm_v2")(
                *common, p(a), i(lda), p(b), i(ldb), ctypes.byref(zero), p(c), i(ldc))
            self._check(status, f"cublas{prefix}gemm")
            return
        status = getattr(self.lib, f"cublas{prefix}gemmStridedBatched")(
            *common, p(a), i(lda), ll(sa), p(b), i(ldb), ll(sb), ctypes.byref(zero), p(c),
            i(ldc), ll(sc), i(plan.batch))
        self._check(status, f"cublas{prefix}gemmStridedBatched")
