"""``RandomStream``: Theano-style random streams over Philox states.

Every draw gets its own state, a ``uint32[4]`` shared variable whose ``default_update`` advances
its call counter, so ``graphc.function`` advances it on every call without being asked;
``srng.updates()`` lists the same pairs for code that passes updates itself (a scan step).
"""

from __future__ import annotations

import numpy as np

from ..compile import shared
from ..config import config
from ..ir.node import CONSTANT, Node, SharedVariable
from ..ir.types import FLOAT_DTYPES, INT_DTYPES, as_dtype
from ..opdefs.common import as_tensor, shape_entry
from ..opdefs.shape import as_shape_vector, broadcast_dim, broadcast_to, static_entries
from . import ops, philox

__all__ = ["RandomStream", "RandomStreams"]


def _check_seed(seed) -> int:
    if seed is None:  # fresh entropy: not reproducible
        return int(np.random.SeedSequence().entropy) & (1 << 64) - 1
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"RandomStream: a seed must be an int, got {seed!r}")
    if not 0 <= int(seed) < 1 << 64:
        raise ValueError(f"RandomStream: a seed must be in [0, 2**64), got {seed}")
    return int(seed)


def _is_constant(node: Node, value) -> bool:
    return node.op is CONSTANT and node.ndim == 0 and node.arg.value[()] == value


class RandomStream:
    """A source of symbolic random draws; each draw is a new variable with its own state.

    >>> import graphc as gc, graphc.random
    >>> srng = gc.random.RandomStream(seed=123)
    >>> u = srng.uniform(size=(2, 3), dtype="float32")
    >>> f = gc.function([], u)
    >>> bool((f() != f()).all())   # the state advances on each call
    True
    """

    def __init__(self, seed=None):
        self._seed = _check_seed(seed)
        self._states: list[SharedVariable] = []

    # --- states ----------------------------------------------------------------------------
    def _new_state(self) -> SharedVariable:
        index = len(self._states)
        value = philox.initial_state(self._seed, index)
        state = shared(value, name=f"random_state{index}", shape=(4,))
        state.default_update = ops.advance_state(state)
        self._states.append(state)
        return state

    def seed(self, seed=None) -> None:
        """Re-seed every state of this stream (and the draws made later)."""
        self._seed = _check_seed(seed)
        for index, state in enumerate(self._states):
            state.set_value(philox.initial_state(self._seed, index))

    def updates(self) -> list[tuple[SharedVariable, Node]]:
        """The ``(state, advanced state)`` pair of every draw made so far."""
        return [(state, state.default_update) for state in self._states]

    @property
    def states(self) -> list[SharedVariable]:
        return list(self._states)

    # --- distributions ---------------------------------------------------------------------
    def uniform(self, size=None, low=0.0, high=1.0, dtype=None) -> Node:
        """Floats uniform in [low, high) (``dtype`` defaults to ``config.floatX``)."""
        dtype = _float_dtype(dtype, "uniform")
        low, high = as_tensor(low, dtype), as_tensor(high, dtype)
        vec, static = _size("uniform", size, low, high)
        u = ops.draw_uniform01(self._new_state(), vec, static, dtype)
        if _is_constant(low, 0) and _is_constant(high, 1):
            return u
        low, high = _fit(low, vec, static), _fit(high, vec, static)
        return low + (high - low) * u

    def normal(self, size=None, avg=0.0, std=1.0, dtype=None) -> Node:
        """Floats from N(avg, std**2) (Box-Muller; ``dtype`` defaults to ``config.floatX``)."""
        dtype = _float_dtype(dtype, "normal")
        avg, std = as_tensor(avg, dtype), as_tensor(std, dtype)
        vec, static = _size("normal", size, avg, std)
        z = ops.draw_normal01(self._new_state(), vec, static, dtype)
        if _is_constant(avg, 0) and _is_constant(std, 1):
            return z
        return _fit(avg, vec, static) + _fit(std, vec, static) * z

    def integers(self, low, high=None, size=None, dtype="int64") -> Node:
        """Integers in [low, high) (``[0, low)`` if ``high`` is None), like
        ``np.random.Generator.integers``; ``high <= low`` is an error when the function runs."""
        if high is None:
            low, high = 0, low
        dtype = as_dtype(dtype)
        if dtype not in INT_DTYPES:
            raise TypeError(f"integers: dtype must be an integer type, got {dtype}")
        low, high = _int_param(low, "integers", "low"), _int_param(high, "integers", "high")
        vec, static = _size("integers", size, low, high)
        return ops.draw_integers(self._new_state(), vec, static, low, high, dtype)

    def binomial(self, size=None, n=1, p=0.5, dtype="int64") -> Node:
        """Successes in ``n`` trials of probability ``p`` (costs ``n`` uniforms per value);
        ``p`` outside [0, 1] or ``n < 0`` is an error when the function runs."""
        trials = _int_param(n, "binomial", "n")
        p = as_tensor(p, "float64") if not isinstance(p, Node) else p
        if p.dtype not in FLOAT_DTYPES:
            raise TypeError(f"binomial: p must be a float, got {p.type}")
        vec, static = _size("binomial", size, trials, p)
        return ops.draw_binomial(self._new_state(), vec, static, trials, p, as_dtype(dtype))

    def bernoulli(self, p=0.5, size=None, dtype="int64") -> Node:
        """1 with probability ``p``, else 0 (``binomial`` with one trial)."""
        return self.binomial(size=size, n=1, p=p, dtype=dtype)

    def choice(self, a, size=None, replace=True, p=None) -> Node:
        """Samples of ``a`` (a 1-d array, or ``arange(a)`` for an int), like
        ``np.random.Generator.choice``; ``p`` gives each member's probability."""
        values, population = _population(a, "choice")
        if p is not None:
            p = as_tensor(p)
            if p.dtype not in FLOAT_DTYPES:
                p = as_tensor(p, "float64")
            if p.ndim != 1:
                raise ValueError(f"choice: p must be a vector, got {p.type}")
        vec, static = _size("choice", () if size is None else size)
        index = ops.draw_choice(self._new_state(), vec, static, population, p, replace)
        return index if values is None else values[index]

    def permutation(self, x) -> Node:
        """A random order of ``arange(x)`` for an int ``x``, else ``x`` shuffled along axis 0."""
        values, population = _population(x, "permutation")
        static = population.arg.value[()].item() if population.op is CONSTANT else None
        vec, static = _size("permutation", (population,) if static is None else (static,))
        index = ops.draw_choice(self._new_state(), vec, static, population, None, False)
        return index if values is None else values[index]


RandomStreams = RandomStream  # Theano's name


# --- helpers --------------------------------------------------------------------------------------

def _float_dtype(dtype, opname: str) -> str:
    dtype = as_dtype(dtype or config.floatX)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{opname}: dtype must be float32 or float64, got {dtype}")
    return dtype


def _int_param(value, opname: str, name: str) -> Node:
    node = as_tensor(value)
    if node.dtype not in INT_DTYPES + ("bool",):
        raise TypeError(f"{opname}: {name} must be an integer, got {node.type}")
    return as_tensor(node, "int64")


def _population(a, opname: str):
    """``(values or None, population size as an int64 scalar node)`` of ``a``."""
    if isinstance(a, (int, np.integer)) and not isinstance(a, bool):
        if a < 0:
            raise ValueError(f"{opname}: a population size must be >= 0, got {a}")
        return None, as_tensor(int(a), "int64")
    node = as_tensor(a)
    if node.ndim == 0:
        if node.dtype not in INT_DTYPES:
            raise TypeError(f"{opname}: a scalar population must be an integer, got {node.type}")
        return None, as_tensor(node, "int64")
    if opname == "choice" and node.ndim != 1:
        raise ValueError(f"choice: a must be a vector or an int, got {node.type}")
    return node, as_tensor(shape_entry(node, 0), "int64")


def _size(opname: str, size, *params: Node) -> tuple[Node, tuple]:
    """The size as an int64 vector node and its static entries; None: the params' broadcast."""
    if size is None:
        ndim = max((p.ndim for p in params), default=0)
        size = [broadcast_dim([shape_entry(p, axis - ndim + p.ndim) for p in params
                               if axis - ndim + p.ndim >= 0]) for axis in range(ndim)]
    try:
        vec = as_shape_vector(size)
    except TypeError as exc:
        raise TypeError(f"{opname}: size: {exc}") from None
    if vec.type.shape[0] is None:
        raise ValueError(f"{opname}: the size's length must be known, got {vec.type}")
    static = static_entries(vec)
    if any(s is not None and s < 0 for s in static):
        raise ValueError(f"{opname}: negative dimension in size {tuple(static)}")
    return vec, tuple(static)


def _fit(param: Node, vec: Node, static: tuple) -> Node:
    """``param`` as it broadcasts against a draw of size ``static``: as is where its static shape
    shows it fits, else broadcast to the size (an error when it does not fit)."""
    if param.ndim == 0:
        return param
    if param.ndim > len(static):
        raise ValueError(f"a {param.ndim}-d parameter does not fit a size of {len(static)} dims")
    tail = static[len(static) - param.ndim:]
    if all(p == 1 or (p is not None and p == s) for p, s in zip(param.type.shape, tail)):
        return param
    return broadcast_to(param, vec)
