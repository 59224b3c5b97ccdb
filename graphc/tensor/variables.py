"""Symbolic input constructors: scalar, vector, matrix, ... and their typed shorthands."""

from __future__ import annotations

from ..config import config
from ..ir.node import Node, new_input
from ..ir.types import TensorType, as_dtype


def tensor(dtype=None, shape=None, name: str | None = None, *, ndim: int | None = None) -> Node:
    """A symbolic input of ``dtype`` and static ``shape`` (``None`` entries are unknown).

    ``gt.tensor("float32", shape=(None, 3), name="x")``; ``ndim=`` alone gives all-unknown dims.
    """
    if isinstance(dtype, (tuple, list)) and shape is None:  # tensor(shape) form
        dtype, shape = None, dtype
    if shape is None:
        if ndim is None:
            raise TypeError("tensor() needs shape= or ndim=")
        shape = (None,) * ndim
    elif ndim is not None and ndim != len(shape):
        raise ValueError(f"tensor(): ndim={ndim} contradicts shape={shape}")
    return new_input(TensorType(as_dtype(dtype or config.floatX), tuple(shape)), name)


def _maker(ndim: int, fixed_dtype: str | None = None):
    def make_var(name: str | None = None, dtype=None, shape=None) -> Node:
        if fixed_dtype is not None and dtype is not None and as_dtype(dtype) != fixed_dtype:
            raise TypeError(f"this constructor makes {fixed_dtype} variables, got dtype={dtype}")
        if shape is not None and len(shape) != ndim:
            raise ValueError(f"expected a shape of {ndim} entries, got {shape}")
        return tensor(fixed_dtype or dtype, shape if shape is not None else (None,) * ndim, name)

    return make_var


scalar, vector, matrix = _maker(0), _maker(1), _maker(2)
tensor3, tensor4, tensor5 = _maker(3), _maker(4), _maker(5)
row = lambda name=None, dtype=None: tensor(dtype, (1, None), name)  # noqa: E731
col = lambda name=None, dtype=None: tensor(dtype, (None, 1), name)  # noqa: E731

_PREFIX = {"b": "int8", "w": "int16", "i": "int32", "l": "int64", "f": "float32", "d": "float64"}
_KINDS = {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4, "tensor5": 5}

for _p, _dtype in _PREFIX.items():
    for _kind, _nd in _KINDS.items():
        globals()[_p + _kind] = _maker(_nd, _dtype)

__all__ = ["tensor", "scalar", "vector", "matrix", "tensor3", "tensor4", "tensor5", "row", "col"] + [
    p + k for p in _PREFIX for k in _KINDS
]
