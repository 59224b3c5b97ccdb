"""Rules of the shape set: shapes computed from the inputs' shapes, without running the graph.

``shape(f(x))`` and ``shape_i(f(x), i)`` become the entries of ``f``'s shape rule
(``graphc.opdefs.infer_shape.output_shape``): static sizes become int64 constants, the rest
small int64 expressions of the inputs' shapes, so ``(x + y).shape[0]`` never evaluates
``x + y``. Sizes that depend on values (a boolean mask, ``arange`` with symbolic bounds) keep
the computation they need. A shape computed this way does not check that the shapes it is
computed from are compatible: a graph that would fail at run time may give a shape instead.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, constant
from ..opdefs.elementwise import cast
from ..opdefs.indexing import SUBTENSOR
from ..opdefs.infer_shape import MissingShapeRule, output_shape
from ..opdefs.shape import MAKE_VECTOR, SHAPE_I, make_vector, vector_entries
from ..opdefs.shape import SHAPE as SHAPE_OP
from .registry import SHAPE

# a chain of shape_i(f(g(...x))) resolves this many links at once (the rest in later passes)
MAX_CHAIN = 10_000


def _as_scalar(entry) -> Node:
    """A shape entry (int or int scalar node) as an int64 scalar node."""
    if isinstance(entry, Node):
        return entry if entry.dtype == "int64" else cast(entry, "int64")
    return constant(np.int64(entry))


def _inferred_shape(x: Node) -> tuple | None:
    """``x``'s shape from its op's shape rule; None for an op without one."""
    try:
        return output_shape(x)
    except MissingShapeRule:
        return None


def _is_own_size(entry, x: Node) -> bool:
    # NOTE: a shape rule may only know a size by reading the output itself; that is no rewrite
    return isinstance(entry, Node) and entry.op is SHAPE_I and entry.src[0] is x


@SHAPE.local("local_shape_to_entries", SHAPE_OP)
def _shape_to_entries(node: Node) -> Node | None:
    """shape(f(...)) -> make_vector of f's shape entries (a constant when all are static)."""
    (x,) = node.src
    if x.is_leaf and None in x.type.shape:
        return None  # shape(input) is already the cheapest spelling
    entries = _inferred_shape(x)
    if entries is None or any(_is_own_size(e, x) for e in entries):
        return None
    return make_vector([_as_scalar(e) for e in entries], "int64")


@SHAPE.local("local_shape_i_to_entry", SHAPE_I)
def _shape_i_to_entry(node: Node) -> Node | None:
    """shape_i(f(...), i) -> entry i of f's shape rule (an int64 constant when static)."""
    current = node
    for _ in range(MAX_CHAIN):
        x, axis = current.src[0], current.arg
        if x.type.shape[axis] is not None:
            return constant(np.int64(x.type.shape[axis]))
        if x.is_leaf:
            break
        entries = _inferred_shape(x)
        if entries is None or _is_own_size(entries[axis], x):
            break
        current = _as_scalar(entries[axis])
        if current.op is not SHAPE_I:
            break
    return None if current is node else current


@SHAPE.local("local_subtensor_of_shape_vector", SUBTENSOR)
def _subtensor_of_shape_vector(node: Node) -> Node | None:
    """shape(x)[i] or make_vector(...)[i] -> the i-th entry; a static slice of them -> a
    shorter make_vector."""
    vec = node.src[0]
    if vec.op not in (SHAPE_OP, MAKE_VECTOR) or len(node.src) != 1 or len(node.arg) != 1:
        return None
    entries = list(vec.src) if vec.op is MAKE_VECTOR else list(vector_entries(vec))
    item = node.arg[0]
    if item[0] == "int":
        entry = entries[item[1]]
        return entry if isinstance(entry, Node) else _as_scalar(entry)
    if item[0] == "slice":
        return make_vector([_scalar_of(e, vec.dtype) for e in entries[slice(*item[1:])]],
                           vec.dtype)
    return None


def _scalar_of(entry, dtype: str) -> Node:
    if isinstance(entry, Node):
        return entry if entry.dtype == dtype else cast(entry, dtype)
    return constant(np.asarray(entry, dtype=dtype))
