"""``graphc.random``: counter-based (Philox4x32-10) random streams.

>>> import graphc as gc, graphc.random
>>> srng = gc.random.RandomStream(seed=123)
>>> f = gc.function([], srng.normal(size=(3,)))
>>> f().shape
(3,)

Each draw is a symbolic variable with its own state; compiled functions advance the states
on every call (``no_default_updates=True`` turns that off), and ``srng.seed(n)`` re-seeds them.
The same seed gives the same numbers in every mode and on every backend.
"""

from . import philox
from .ops import advance_state
from .stream import RandomStream, RandomStreams

__all__ = ["RandomStream", "RandomStreams", "advance_state", "philox"]
