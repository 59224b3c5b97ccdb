"""Ops as value objects.

An ``OpDef`` is an op's whole definition: its name, its kind (which group of ops it
belongs to), its output-type rule, its NumPy reference, its symbolic shape rule and its
gradient rule. A node is ``(opdef, src, arg)``: ``arg`` holds the op's static
parameters (an axis, a dtype, an index template) and must be hashable.

The rules take these forms::

    infer(in_types: tuple[TensorType, ...], arg) -> TensorType
    ref(arg, *arrays: np.ndarray) -> np.ndarray          # the NumPy oracle
    shape(node, in_shapes: list[tuple]) -> tuple         # entries: int or int64 scalar node
    grad(node, gout) -> tuple[Node | None, ...]          # one per input; None = no gradient

``grad`` may be ``None`` for ops whose output does not depend smoothly on any input
(comparisons, argmax, ...): those are ``differentiable=False``, and their gradient is zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# the op groups; rewrites and backends dispatch on these, never on isinstance ladders
LEAF = "leaf"
ELEMWISE = "elemwise"
REDUCE = "reduce"
SHAPE = "shape"
INDEX = "index"
LINALG = "linalg"
OTHER = "other"
KINDS = (LEAF, ELEMWISE, REDUCE, SHAPE, INDEX, LINALG, OTHER)

OPS: dict[str, "OpDef"] = {}


@dataclass(frozen=True, eq=False)
class OpDef:
    name: str
    kind: str
    infer: Callable
    ref: Callable | None = None
    shape: Callable | None = None
    grad: Callable | None = None
    differentiable: bool = True
    # extra per-op facts (commutative, identity element, ...) for rewrites and backends
    props: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"op {self.name}: unknown kind {self.kind!r}")

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self):
        # ops pickle by name, so cached graphs refer to the one registered instance
        return (get_op, (self.name,))


def defop(name: str, kind: str, infer: Callable, **rules: Any) -> OpDef:
    """Define and register an op. Each name is defined once."""
    if name in OPS:
        raise ValueError(f"op {name!r} is defined twice")
    op = OpDef(name, kind, infer, **rules)
    OPS[name] = op
    return op


def get_op(name: str) -> OpDef:
    return OPS[name]
