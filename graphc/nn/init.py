"""Weight initialisers: ``fn(shape, rng=None, dtype=None) -> np.ndarray``.

Every initialiser draws from a NumPy ``Generator`` (``rng`` may also be an int seed; ``None``
is a fresh unseeded generator), so a model built twice with the same seed starts from the
same weights. Fans follow the usual conventions: a ``(n_in, n_out)`` matrix has fan-in
``n_in`` and fan-out ``n_out``; a convolution filter ``(out, in, *kernel)`` has fan-in
``in * prod(kernel)`` and fan-out ``out * prod(kernel)``.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import config

__all__ = ["as_rng", "fans", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
           "orthogonal", "zeros", "ones", "constant", "get"]


def as_rng(rng=None) -> np.random.Generator:
    """``rng`` as a NumPy Generator: a Generator is kept, an int seeds a new one."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype or config.floatX)
    if dtype.kind != "f":
        raise TypeError(f"initialisers make float arrays, got dtype {dtype}")
    return dtype


def fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` (dense matrix or convolution filter)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        n = shape[0] if shape else 1
        return n, n
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def glorot_uniform(shape, rng=None, dtype=None, gain: float = 1.0) -> np.ndarray:
    """Uniform in ``[-a, a]`` with ``a = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio)."""
    fan_in, fan_out = fans(shape)
    limit = gain * math.sqrt(6.0 / max(fan_in + fan_out, 1))
    return as_rng(rng).uniform(-limit, limit, size=shape).astype(_dtype(dtype))


def glorot_normal(shape, rng=None, dtype=None, gain: float = 1.0) -> np.ndarray:
    """Normal with standard deviation ``gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(shape)
    std = gain * math.sqrt(2.0 / max(fan_in + fan_out, 1))
    return (as_rng(rng).standard_normal(size=shape) * std).astype(_dtype(dtype))


def he_uniform(shape, rng=None, dtype=None, gain: float = math.sqrt(2.0)) -> np.ndarray:
    """Uniform in ``[-a, a]`` with ``a = gain * sqrt(3 / fan_in)`` (He et al., for ReLUs)."""
    fan_in, _ = fans(shape)
    limit = gain * math.sqrt(3.0 / max(fan_in, 1))
    return as_rng(rng).uniform(-limit, limit, size=shape).astype(_dtype(dtype))


def he_normal(shape, rng=None, dtype=None, gain: float = math.sqrt(2.0)) -> np.ndarray:
    """Normal with standard deviation ``gain / sqrt(fan_in)``."""
    fan_in, _ = fans(shape)
    std = gain / math.sqrt(max(fan_in, 1))
    return (as_rng(rng).standard_normal(size=shape) * std).astype(_dtype(dtype))


def orthogonal(shape, rng=None, dtype=None, gain: float = 1.0) -> np.ndarray:
    """A (semi-)orthogonal matrix times ``gain``: rows or columns orthonormal after flattening
    all but the first axis (Saxe et al.)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"orthogonal: needs a shape of at least 2 dimensions, got {shape}")
    rows, cols = shape[0], math.prod(shape[1:])
    flat = as_rng(rng).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))  # a uniform (Haar) draw, not one biased by QR's sign convention
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(_dtype(dtype))


def zeros(shape, rng=None, dtype=None) -> np.ndarray:
    """All zeros (biases); ``rng`` is accepted for a uniform signature and unused."""
    return np.zeros(shape, _dtype(dtype))


def ones(shape, rng=None, dtype=None) -> np.ndarray:
    """All ones (batch-norm scales)."""
    return np.ones(shape, _dtype(dtype))


def constant(value: float):
    """An initialiser filling every entry with ``value``."""
    def fill(shape, rng=None, dtype=None) -> np.ndarray:
        return np.full(shape, value, _dtype(dtype))

    fill.__name__ = f"constant({value})"
    return fill


_BY_NAME = {fn.__name__: fn for fn in (glorot_uniform, glorot_normal, he_uniform, he_normal,
                                        orthogonal, zeros, ones)}


def get(init):
    """An initialiser from itself (a callable) or its name (``"he_normal"``)."""
    if callable(init):
        return init
    if isinstance(init, str) and init in _BY_NAME:
        return _BY_NAME[init]
    raise ValueError(f"unknown initialiser {init!r} (known: {', '.join(sorted(_BY_NAME))})")
