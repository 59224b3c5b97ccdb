"""The random ops: draws from a Philox stream state, and the state's advance.

Each draw op reads a state (a uint32[4] shared variable, see ``philox``) and a size (an int64
vector, like ``alloc``'s) plus its parameters, and returns the sample; its NumPy ``ref`` calls
``philox``, the same code on every backend, so compiled runs draw exactly what the reference
does. The ops are not differentiable: ``uniform`` and ``normal`` are built as
``low + (high - low) * u`` and ``avg + std * z`` around the raw draws, so gradients with respect to
the parameters flow through ordinary ops. Parameters are checked when the function runs.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, make
from ..ir.op import OTHER, defop
from ..ir.types import FLOAT_DTYPES, INT_DTYPES, NUMERIC_DTYPES, TensorType
from ..opdefs.shape import vector_entries
from . import philox

__all__ = ["ADVANCE", "BINOMIAL", "CHOICE", "INTEGERS", "NORMAL01", "UNIFORM01", "advance_state",
           "draw_binomial", "draw_choice", "draw_integers", "draw_normal01", "draw_uniform01",
           "kernel_params"]

# NOTE: never folded into constants (a state given as a constant would embed every draw)
_PROPS = {"no_fold": True}


def _check_state_type(state: TensorType) -> None:
    if state.dtype != "uint32" or state.ndim != 1 or state.shape[0] not in (4, None):
        raise TypeError(f"a random state must be a uint32 vector of 4 words, got {state}")


def _draw_infer(accepts, params=0):
    """The type rule of a draw: state, size vector, ``params`` parameters; arg ``(static, dtype,
    ...)``; the output has the size's static entries and dtype ``arg[1]``."""

    def infer(types, arg):
        _check_state_type(types[0])
        size = types[1]
        if size.dtype != "int64" or size.ndim != 1:
            raise TypeError(f"the size must be an int64 vector, got {size}")
        static, dtype = arg[0], arg[1]
        if dtype not in accepts:
            raise TypeError(f"dtype {dtype} is not supported (supported: {', '.join(accepts)})")
        if len(types) != 2 + params:
            raise TypeError(f"expected {params} parameters, got {len(types) - 2}")
        for t in types[2:]:
            if t.ndim > len(static):
                raise ValueError(f"a {t.ndim}-d parameter does not fit a {len(static)}-d size")
        return TensorType(dtype, static)

    return infer


def _size_shape(node, in_shapes):
    return vector_entries(node.src[1])


def _run_shape(size: np.ndarray) -> tuple[int, ...]:
    shape = tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimension in size {shape}")
    return shape


def _param(value: np.ndarray, shape: tuple, name: str) -> np.ndarray:
    """A parameter broadcast to the draw's size, flat (NumPy's message if it does not fit)."""
    try:
        return np.broadcast_to(value, shape).reshape(-1)
    except ValueError:
        message = f"{name} of shape {value.shape} does not broadcast to size {shape}"
        raise ValueError(message) from None


# --- uniform in [0, 1) and standard normal -------------------------------------------------

def _uniform01_ref(arg, state, size):
    shape = _run_shape(size)
    n = int(np.prod(shape, dtype=np.int64))
    words = philox.random_words(state, n * philox.words_per_value(arg[1]))
    return philox.uniform01(words, arg[1]).reshape(shape)


def _normal01_ref(arg, state, size):
    shape = _run_shape(size)
    n = int(np.prod(shape, dtype=np.int64))
    pairs = (n + 1) // 2
    words = philox.random_words(state, 2 * pairs * philox.words_per_value(arg[1]))
    return philox.standard_normal(words, arg[1], n).reshape(shape)


# the CPU backend runs uniform01, normal01, integers and binomial as native kernels
# (graphc/codegen/random_kernels.py), which draw the reference's numbers bit for bit
_KERNEL_PROPS = {**_PROPS, "kernel": "random"}


def kernel_params(node: Node, size: np.ndarray, params) -> tuple[tuple, tuple]:
    """The shape of a draw with a kernel and its parameters as the kernel takes them: checked
    and flat (raises the reference's ValueError)."""
    name = node.op.name
    if name == "random_integers":
        return _integers_params(node.arg, size, *params)
    if name == "random_binomial":
        return _binomial_params(node.arg, size, *params)
    return _run_shape(size), ()
UNIFORM01 = defop("random_uniform01", OTHER, _draw_infer(FLOAT_DTYPES), ref=_uniform01_ref,
                  shape=_size_shape, differentiable=False, props=_KERNEL_PROPS)
NORMAL01 = defop("random_normal01", OTHER, _draw_infer(FLOAT_DTYPES), ref=_normal01_ref,
                 shape=_size_shape, differentiable=False, props=_KERNEL_PROPS)


def draw_uniform01(state: Node, size: Node, static: tuple, dtype: str) -> Node:
    """Floats in [0, 1) of ``size`` drawn from ``state`` (24 or 53 random bits each)."""
    return make(UNIFORM01, (state, size), (static, dtype))


def draw_normal01(state: Node, size: Node, static: tuple, dtype: str) -> Node:
    """Standard normal values of ``size`` drawn from ``state`` (Box-Muller)."""
    return make(NORMAL01, (state, size), (static, dtype))


# --- integers ------------------------------------------------------------------------------------

def _integers_params(arg, size, low, high):
    """The shape and the checked, flat (int64) ``low`` and ``high``."""
    shape = _run_shape(size)
    low, high = _param(low, shape, "low"), _param(high, shape, "high")
    if low.size and np.any(high <= low):
        raise ValueError("integers: high must be greater than low")
    info = np.iinfo(arg[1])
    if low.size and (low.min() < info.min or high.max() - 1 > info.max):
        raise ValueError(f"integers: [low, high) = [{low.min()}, {high.max()}) "
                         f"does not fit {arg[1]}")
    return shape, (low, high)


def _integers_ref(arg, state, size, low, high):
    shape, (low, high) = _integers_params(arg, size, low, high)
    span = high.astype(np.uint64) - low.astype(np.uint64)  # wraps to the right uint64 width
    offset = philox.uniform_below(philox.random_words(state, 2 * low.size), span)
    return (low.astype(np.uint64) + offset).view(np.int64).astype(arg[1]).reshape(shape)


INTEGERS = defop("random_integers", OTHER, _draw_infer(INT_DTYPES, params=2), ref=_integers_ref,
                 shape=_size_shape, differentiable=False, props=_KERNEL_PROPS)


def draw_integers(state, size, static, low: Node, high: Node, dtype: str) -> Node:
    """Integers in [low, high) (int64 parameters broadcast to ``size``)."""
    return make(INTEGERS, (state, size, low, high), (static, dtype))


# --- binomial ------------------------------------------------------------------------------------

def _binomial_params(arg, size, trials, p):
    """The shape, the checked, flat ``trials`` (int64) and ``p`` (float64)."""
    shape = _run_shape(size)
    p = np.asarray(p, np.float64)
    flat_trials, flat_p = _param(trials, shape, "n"), _param(p, shape, "p")
    # checked before broadcasting (the same values, in the same order, fewer of them); a draw
    # of no values checks nothing
    if flat_p.size and trials.size and trials.min() < 0:
        raise ValueError(f"binomial: n must be >= 0, got {trials.min()}")
    if flat_p.size and not np.all((p >= 0) & (p <= 1)):
        raise ValueError("binomial: p must be in [0, 1] (got "
                         f"{p[~((p >= 0) & (p <= 1))][0]})")
    return shape, (flat_trials, flat_p)


def _binomial_ref(arg, state, size, trials, p):
    shape, (trials, p) = _binomial_params(arg, size, trials, p)
    count = np.zeros(p.size, np.int64)
    # trial t of every element reads the t-th run of 2 * size words: the cost is O(n * size)
    for t in range(int(trials.max()) if trials.size else 0):
        words = philox.random_words(state, 2 * p.size, start=2 * p.size * t)
        u = philox.uniform01(words, "float64")
        count += (u < p) & (t < trials)
    return count.astype(arg[1]).reshape(shape)


BINOMIAL = defop("random_binomial", OTHER, _draw_infer(("bool",) + NUMERIC_DTYPES, params=2),
                 ref=_binomial_ref, shape=_size_shape, differentiable=False, props=_KERNEL_PROPS)


def draw_binomial(state, size, static, trials: Node, p: Node, dtype: str) -> Node:
    """Successes in ``trials`` trials of probability ``p`` (both broadcast to ``size``)."""
    return make(BINOMIAL, (state, size, trials, p), (static, dtype))


# --- choice --------------------------------------------------------------------------------------

def _choice_infer(types, arg):
    has_p = arg[2]
    if len(types) != 3 + has_p:
        raise TypeError(f"expected {2 + has_p} inputs after the state, got {len(types) - 1}")
    out = _draw_infer(("int64",), params=1)(types[:3], (arg[0], "int64"))
    population = types[2]
    if population.ndim != 0 or population.dtype not in INT_DTYPES:
        raise TypeError(f"the population size must be an int scalar, got {population}")
    if has_p and (types[3].ndim != 1 or types[3].dtype not in FLOAT_DTYPES):
        raise TypeError(f"p must be a float vector, got {types[3]}")
    return out


def _check_p(p: np.ndarray, n: int) -> np.ndarray:
    if p.shape != (n,):
        raise ValueError(f"choice: p has {p.size} entries for a population of {n}")
    tol = np.sqrt(np.finfo(p.dtype).eps)
    p = p.astype(np.float64)
    if not np.all(np.isfinite(p) & (p >= 0)):
        raise ValueError("choice: probabilities must be non-negative and finite")
    if abs(p.sum() - 1.0) > tol:
        raise ValueError(f"choice: probabilities sum to {p.sum()}, not 1")
    return p


def _choice_ref(arg, state, size, population, p=None):
    replace = arg[1]
    shape = _run_shape(size)
    k, n = int(np.prod(shape, dtype=np.int64)), int(population)
    if n < 0 or (n == 0 and k > 0):
        raise ValueError(f"choice: cannot take {k} samples from a population of {n}")
    if p is not None:
        p = _check_p(p, n)
    if replace:
        words = philox.random_words(state, 2 * k)
        if p is None:
            index = philox.uniform_below(words, np.uint64(n)).astype(np.int64)
        else:
            cdf = np.cumsum(p)
            index = np.searchsorted(cdf / cdf[-1], philox.uniform01(words, "float64"), side="right")
            index = np.minimum(index, n - 1)
        return index.astype(np.int64).reshape(shape)
    if k > n:
        raise ValueError(f"choice: cannot take {k} samples from a population of {n} "
                         "without replace")
    words = philox.random_words(state, 2 * n)
    if p is None:  # a random 64-bit key per member; the k smallest keys
        pairs = words.reshape(-1, 2).astype(np.uint64)
        order = np.argsort(pairs[:, 0] << np.uint64(32) | pairs[:, 1], kind="stable")
    else:  # Efraimidis-Spirakis: the k largest u ** (1 / p)
        if np.count_nonzero(p) < k:
            raise ValueError(f"choice: fewer than {k} non-zero probabilities for {k} samples")
        u = philox.uniform01(words, "float64")
        with np.errstate(divide="ignore"):
            keys = np.where(p > 0, np.log1p(-u) / np.where(p > 0, p, 1.0), -np.inf)
        order = np.argsort(-keys, kind="stable")
    return order[:k].astype(np.int64).reshape(shape)


CHOICE = defop("random_choice", OTHER, _choice_infer, ref=_choice_ref, shape=_size_shape,
               differentiable=False, props=_PROPS)


def draw_choice(state, size, static, population: Node, p: Node | None, replace: bool) -> Node:
    """Indices in [0, population) (int64); without ``replace`` all distinct."""
    src = (state, size, population) + ((p,) if p is not None else ())
    return make(CHOICE, src, (static, bool(replace), p is not None))


# --- the state's advance --------------------------------------------------------------------------

def _advance_infer(types, arg):
    _check_state_type(types[0])
    return TensorType("uint32", (4,))


ADVANCE = defop("random_advance", OTHER, _advance_infer,
                ref=lambda arg, state: philox.advance(state),
                shape=lambda node, s: (4,), differentiable=False, props=_PROPS)


def advance_state(state: Node) -> Node:
    """The state of the next call (its call counter plus one)."""
    return make(ADVANCE, (state,))
