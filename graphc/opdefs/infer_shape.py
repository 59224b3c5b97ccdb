"""Symbolic shapes from the ops' shape rules, without running the graph.

``output_shape(node)`` asks ``node.op.shape`` for the node's shape in terms of its inputs'
shapes: static dimensions stay Python ints, the rest become int64 scalar nodes built from
``shape_i`` of the inputs. The rewrite phase for shape inference builds on this.
"""

from __future__ import annotations

from ..ir.node import Node
from .common import shape_entry


class MissingShapeRule(NotImplementedError):
    pass


def input_shapes(node: Node) -> list[tuple]:
    return [tuple(shape_entry(s, i) for i in range(s.ndim)) for s in node.src]


def output_shape(node: Node) -> tuple:
    """The shape of ``node``: a tuple of ints (static) and int64 scalar nodes."""
    if node.is_leaf:
        return tuple(shape_entry(node, i) for i in range(node.ndim))
    if node.op.shape is None:
        raise MissingShapeRule(f"op {node.op.name} has no shape rule")
    shape = tuple(node.op.shape(node, input_shapes(node)))
    if len(shape) != node.ndim:
        raise RuntimeError(f"shape rule of {node.op.name} gave {len(shape)} entries for a {node.ndim}-d output")
    # a static dimension is always better than a computed one
    return tuple(s if static is None else static for s, static in zip(shape, node.type.shape))
