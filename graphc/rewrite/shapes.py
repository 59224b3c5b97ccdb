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

from ..ir.node import CONSTANT, Node, constant
from ..opdefs.elementwise import cast
from ..opdefs.indexing import SUBTENSOR
from ..opdefs.infer_shape import MissingShapeRule, output_shape
from ..opdefs.shape import BROADCAST_TO, MAKE_VECTOR, RESHAPE, SHAPE_I, make_vector, vector_entries
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


def resolve_size(node: Node) -> Node:
    """``shape_i(f(g(...)), i)`` followed down the shape rules while each gives another
    ``shape_i``: to an int64 constant, a size of a leaf or an expression of sizes."""
    current = node
    for _ in range(MAX_CHAIN):
        if current.op is not SHAPE_I:
            break
        x, axis = current.src[0], current.arg
        if x.type.shape[axis] is not None:
            return constant(np.int64(x.type.shape[axis]))
        if x.is_leaf:
            break
        entries = _inferred_shape(x)
        if entries is None or _is_own_size(entries[axis], x):
            break
        current = _as_scalar(entries[axis])
    return current


@SHAPE.local("local_shape_i_to_entry", SHAPE_I)
def _shape_i_to_entry(node: Node) -> Node | None:
    """shape_i(f(...), i) -> entry i of f's shape rule (an int64 constant when static)."""
    return resolve_size(node)


def same_size(a, b) -> bool:
    """Whether two shape entries (ints or size nodes) are provably equal."""
    a = resolve_size(a) if isinstance(a, Node) else a
    b = resolve_size(b) if isinstance(b, Node) else b
    if isinstance(a, Node) and a.op is CONSTANT:
        a = int(a.arg.value)
    if isinstance(b, Node) and b.op is CONSTANT:
        b = int(b.arg.value)
    return a is b if isinstance(a, Node) or isinstance(b, Node) else a == b


@SHAPE.local("local_reshape_to_own_shape", RESHAPE, BROADCAST_TO)
def _reshape_to_own_shape(node: Node) -> Node | None:
    """reshape(x, s) or broadcast_to(x, s) -> x when every entry of s is x's own size."""
    x, vec = node.src
    if x.ndim != node.ndim or vec.op not in (SHAPE_OP, MAKE_VECTOR, CONSTANT):
        return None
    entries = _inferred_shape(x)
    if entries is None:
        return None
    wanted = vector_entries(vec)
    return x if all(same_size(a, b) for a, b in zip(wanted, entries)) else None


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
