"""Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3",
SC 2011) in vectorised NumPy, and the conversions from its 32-bit words to samples.

A counter-based generator: block ``i`` of a stream is ``philox(counter_i, key)``, four 32-bit
words computed from nothing but the counter and the key, so any block can be made on any device
in any order. graphc's stream state is four uint32 words ``[key0, key1, call_lo, call_hi]``; the
words of one draw are the blocks with counter ``(i_lo, i_hi, call_lo, call_hi)`` for
``i = 0, 1, ...`` (a 64-bit block index, then the 64-bit call count), read block after block.
Advancing the state adds one to the call count, whatever the draw's size.

These functions are the reference every backend reproduces: the random ops' NumPy ``ref`` calls
them, and ``graphc.codegen.philox`` emits the same rounds as LLVM IR.
"""

from __future__ import annotations

import numpy as np

from .boxmuller import NUMPY as BOX_MULLER_NUMPY, box_muller

__all__ = ["PHILOX_M", "PHILOX_W", "advance", "initial_state", "philox4x32", "random_words",
           "standard_normal", "uniform01", "uniform_below", "values_per_block", "words_per_value"]

# the round multipliers and the Weyl key increments (Random123's PHILOX_M4x32_*, PHILOX_W32_*)
PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
ROUNDS = 10
_MASK32 = np.uint64(0xFFFFFFFF)
_U32 = np.uint64(32)


def _mulhilo(m: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The high and low 32-bit halves of the 64-bit products ``m * x`` (uint32 in, uint32 out)."""
    product = np.uint64(m) * x.astype(np.uint64)
    return (product >> _U32).astype(np.uint32), (product & _MASK32).astype(np.uint32)


def philox4x32(counter, key, rounds: int = ROUNDS) -> np.ndarray:
    """Philox4x32 of ``counter`` (``(..., 4)`` uint32) under ``key`` (``(..., 2)`` uint32,
    broadcast against the counters): the ``(..., 4)`` uint32 blocks."""
    counter = np.asarray(counter, dtype=np.uint32)
    key = np.asarray(key, dtype=np.uint32)
    if counter.shape[-1:] != (4,) or key.shape[-1:] != (2,):
        raise ValueError(f"philox4x32: counters must be (..., 4) and keys (..., 2) uint32 arrays, "
                         f"got {counter.shape} and {key.shape}")
    c0, c1, c2, c3 = (counter[..., i] for i in range(4))
    k0, k1 = key[..., 0], key[..., 1]
    w0, w1 = np.uint32(PHILOX_W[0]), np.uint32(PHILOX_W[1])
    for r in range(rounds):
        if r:  # the key is bumped between rounds (wrapping: uint32 arithmetic)
            with np.errstate(over="ignore"):
                k0, k1 = k0 + w0, k1 + w1
        hi0, lo0 = _mulhilo(PHILOX_M[0], c0)
        hi1, lo1 = _mulhilo(PHILOX_M[1], c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return np.stack(np.broadcast_arrays(c0, c1, c2, c3), axis=-1)


def _check_state(state: np.ndarray) -> np.ndarray:
    state = np.asarray(state)
    if state.shape != (4,) or state.dtype != np.uint32:
        raise ValueError(f"a random state is 4 uint32 words, got {state.dtype}{state.shape}")
    return state


def random_words(state, n_words: int, start: int = 0) -> np.ndarray:
    """Words ``start .. start + n_words`` of the stream ``state`` draws from (uint32)."""
    state = _check_state(state)
    if n_words <= 0:
        return np.zeros(0, np.uint32)
    first, last = start // 4, (start + n_words - 1) // 4
    index = np.arange(first, last + 1, dtype=np.uint64)
    counter = np.empty((index.size, 4), np.uint32)
    counter[:, 0] = (index & _MASK32).astype(np.uint32)
    counter[:, 1] = (index >> _U32).astype(np.uint32)
    counter[:, 2], counter[:, 3] = state[2], state[3]
    words = philox4x32(counter, state[:2]).reshape(-1)
    offset = start - 4 * first
    return words[offset:offset + n_words]


def advance(state) -> np.ndarray:
    """The state of the next call: the 64-bit call count ``(call_lo, call_hi)`` plus one."""
    state = _check_state(state)
    count = (int(state[3]) << 32 | int(state[2])) + 1
    return np.array([state[0], state[1], count & 0xFFFFFFFF, (count >> 32) & 0xFFFFFFFF], np.uint32)


def initial_state(seed: int, index: int) -> np.ndarray:
    """The state of draw ``index`` of a stream seeded with ``seed`` (0 <= seed < 2**64).

    Its key is the first half of the Philox block of counter ``(index, 0, 0, 0)`` under the
    seed's two words, so each draw of a stream reads its own, unrelated sequence.
    """
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"a seed must be an integer in [0, 2**64), got {seed}")
    seed_key = [seed & 0xFFFFFFFF, seed >> 32]
    block = philox4x32([index & 0xFFFFFFFF, index >> 32 & 0xFFFFFFFF, 0, 0], seed_key)
    return np.array([block[0], block[1], 0, 0], np.uint32)


# --- words -> samples -----------------------------------------------------------------------------

def uniform01(words: np.ndarray, dtype: str) -> np.ndarray:
    """Floats in [0, 1): float32 from the top 24 bits of one word, float64 from the top 53 bits
    of two (``words`` holds one word per float32 value, two per float64 value)."""
    if np.dtype(dtype) == np.float32:
        return (words >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)
    pairs = words.reshape(-1, 2).astype(np.uint64)
    bits = (pairs[:, 0] >> np.uint64(5)) << np.uint64(26) | pairs[:, 1] >> np.uint64(6)
    return bits.astype(np.float64) * 2.0 ** -53


def words_per_value(dtype: str) -> int:
    return 1 if np.dtype(dtype) == np.float32 else 2


def values_per_block(dtype: str) -> int:
    """Uniform or normal values of ``dtype`` made from one block (four words)."""
    return 4 // words_per_value(dtype)


_PAIRS_PER_CHUNK = 1 << 14


def standard_normal(words: np.ndarray, dtype: str, n: int) -> np.ndarray:
    """``n`` standard normal values by Box-Muller, two per pair of uniforms (computed in float64
    with ``boxmuller``'s own log, cos and sin, which every backend reproduces bit for bit).

    ``words`` holds ``2 * ceil(n / 2)`` uniforms' worth of words (see ``uniform01``).
    """
    u = uniform01(words, dtype).astype(np.float64).reshape(-1, 2)
    z = np.empty(u.shape, np.float64)
    for start in range(0, len(u), _PAIRS_PER_CHUNK):  # chunks that stay in the cache
        part = slice(start, start + _PAIRS_PER_CHUNK)
        u1, u2 = u[part, 0].copy(), u[part, 1].copy()  # 1 - u1 is in (0, 1]: no log(0)
        z[part, 0], z[part, 1] = box_muller(BOX_MULLER_NUMPY, u1, u2)
    return z.reshape(-1)[:n].astype(dtype)


def _mulhi64(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The high 64 bits of the 128-bit products ``x * r`` (uint64), from 32-bit limbs."""
    x_lo, x_hi = x & _MASK32, x >> _U32
    r_lo, r_hi = r & _MASK32, r >> _U32
    lo_lo, hi_lo, lo_hi = x_lo * r_lo, x_hi * r_lo, x_lo * r_hi
    cross = (lo_lo >> _U32) + (hi_lo & _MASK32) + lo_hi  # < 2**64: cannot wrap
    return (hi_lo >> _U32) + (cross >> _U32) + x_hi * r_hi


def uniform_below(words: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Integers in [0, bound) (uint64, ``bound`` >= 1) by Lemire's multiply-shift of a 64-bit
    value made of two words per output: no rejection loop, and no value is more likely than
    another by more than ``bound / 2**64`` (relative)."""
    pairs = words.reshape(-1, 2).astype(np.uint64)
    x = pairs[:, 0] << _U32 | pairs[:, 1]
    return _mulhi64(x, np.asarray(bound, dtype=np.uint64))
