"""Tensor types: a dtype plus a static shape (``None`` = unknown, ``1`` = broadcastable)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# NOTE: float16 and complex are not supported; where NumPy would pick float16, graphc picks float32.
FLOAT_DTYPES = ("float32", "float64")
SIGNED_DTYPES = ("int8", "int16", "int32", "int64")
UNSIGNED_DTYPES = ("uint8", "uint16", "uint32", "uint64")
INT_DTYPES = SIGNED_DTYPES + UNSIGNED_DTYPES
ALL_DTYPES = ("bool",) + INT_DTYPES + FLOAT_DTYPES
NUMERIC_DTYPES = INT_DTYPES + FLOAT_DTYPES
_ALL_NAMES = frozenset(ALL_DTYPES)


def as_dtype(dtype) -> str:
    """Normalise a dtype spec (``'float32'``, ``np.float32``, ``np.dtype``, ``float``) to its name."""
    if dtype.__class__ is str and dtype in _ALL_NAMES:  # the common case, without NumPy
        return dtype
    name = np.dtype(dtype).name
    if name == "float16":
        name = "float32"
    if name not in ALL_DTYPES:
        raise TypeError(f"graphc does not support dtype {name!r}; supported: {', '.join(ALL_DTYPES)}")
    return name


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def is_int(dtype: str) -> bool:
    return dtype in INT_DTYPES


# NOTE: np.result_type reads the *type* ``float`` as a strong float64; a Python value is weak.
_WEAK_SAMPLES = {bool: False, int: 0, float: 0.0}


def upcast(*dtypes) -> str:
    """NumPy 2 promotion; Python ``int``/``float``/``bool`` entries are weak scalars."""
    weak = [_WEAK_SAMPLES[d] if isinstance(d, type) and d in _WEAK_SAMPLES else np.dtype(d)
            for d in dtypes]
    return as_dtype(np.result_type(*weak))


def float_of(dtype: str) -> str:
    """The float dtype NumPy computes transcendental functions of ``dtype`` in."""
    if is_float(dtype):
        return dtype
    return "float32" if dtype in ("bool", "int8", "uint8", "int16", "uint16") else "float64"


@dataclass(frozen=True)
class TensorType:
    dtype: str
    shape: tuple  # of int | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", as_dtype(self.dtype))
        shape = self.shape
        if shape.__class__ is not tuple or any(s is not None and s.__class__ is not int for s in shape):
            shape = tuple(None if s is None else int(s) for s in shape)
        if any(s is not None and s < 0 for s in shape):
            raise ValueError(f"static shape {shape} has a negative size")
        object.__setattr__(self, "shape", shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def broadcastable(self) -> tuple:
        return tuple(s == 1 for s in self.shape)

    def is_valid_value(self, value: np.ndarray) -> bool:
        return (
            value.ndim == self.ndim
            and value.dtype.name == self.dtype
            and all(s is None or s == v for s, v in zip(self.shape, value.shape))
        )

    def accepts_shape(self, shape) -> bool:
        return len(shape) == self.ndim and all(s is None or s == v for s, v in zip(self.shape, shape))

    def __str__(self) -> str:
        dims = ",".join("?" if s is None else str(s) for s in self.shape)
        return f"{self.dtype}[{dims}]"


def shape_str(shape) -> str:
    return "(" + ", ".join("?" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
