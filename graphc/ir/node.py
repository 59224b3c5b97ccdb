"""The graph: immutable, hash-consed nodes.

A node is ``(op, src, arg)`` plus its inferred ``type``. Building a node equal to a live
one returns that same object (hash-consing through a weak-value cache), so ``is`` means
structural equality and common subexpressions merge as they are built. Leaves that stand
for user data (inputs, shared variables) carry a unique id in ``arg``, so two
``matrix('x')`` stay distinct; constants are hashed by value.

Nodes never change after construction, except for ``name`` (a label). Rewrites build new
nodes and ``substitute`` them. Every walk is iterative: no recursion limit applies.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Iterable, Sequence

import numpy as np

from .op import LEAF, OpDef, defop
from .provenance import Trace, user_trace
from .sugar import TensorOperators
from .types import TensorType, as_dtype, shape_str

_uid = itertools.count()
_cons: "weakref.WeakValueDictionary[tuple, Node]" = weakref.WeakValueDictionary()


class Node(TensorOperators):
    __slots__ = ("op", "src", "arg", "type", "trace", "name", "__weakref__")

    op: OpDef
    src: tuple
    arg: object
    type: TensorType
    trace: Trace | None
    name: str | None

    def __init__(self, *a, **k):
        raise TypeError("build nodes with graphc.ir.make(op, src, arg) or the graphc.tensor functions")

    # NOTE: nodes are shared by every graph that reaches them (hash-consing), so only the
    # ``name`` label may change after construction.
    def __setattr__(self, attr: str, value) -> None:
        if attr != "name":
            raise AttributeError(f"graph nodes are immutable: cannot set {attr!r} (only 'name' may change)")
        object.__setattr__(self, attr, value)

    def __delattr__(self, attr: str) -> None:
        raise AttributeError(f"graph nodes are immutable: cannot delete {attr!r}")

    # --- static facts -------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def broadcastable(self) -> tuple:
        return self.type.broadcastable

    @property
    def static_shape(self) -> tuple:
        return self.type.shape

    @property
    def is_leaf(self) -> bool:
        return self.op.kind == LEAF

    def __repr__(self) -> str:
        label = self.name or self.op.name
        return f"<{label}: {self.type}>"

    def __str__(self) -> str:
        if self.name:
            return self.name
        if self.op is CONSTANT:
            return _constant_str(self.arg.value)
        return f"{self.op.name}(" + ", ".join(str(s) if s.name or s.is_leaf else "..." for s in self.src) + ")"


class SharedVariable(Node):
    """A leaf whose value lives between calls; read and write it with get/set_value.

    ``default_update`` (an expression, or None) is the update ``graphc.function`` applies when
    the variable is in a function's graph and the caller gives it no update of its own (random
    states use it to advance between calls).
    """

    __slots__ = ("container", "default_update")

    def __setattr__(self, attr: str, value) -> None:
        if attr == "default_update":  # not part of the node's identity: the one other label
            object.__setattr__(self, attr, value)
        else:
            super().__setattr__(attr, value)

    def get_value(self, borrow: bool = False) -> np.ndarray:
        """The current value (a copy unless ``borrow=True``)."""
        value = self.container[0]
        return value if borrow else value.copy()

    def set_value(self, value, borrow: bool = False) -> None:
        """Replace the value (copied unless ``borrow=True``); dtype and static shape are checked."""
        self.container[0] = _coerce_shared(self, value, borrow)


class ConstantData:
    """An array made hashable by value (dtype, shape and bytes), for constant leaves."""

    __slots__ = ("value", "_hash")

    def __init__(self, value: np.ndarray):
        value = np.array(value, copy=True, order="C")
        value.setflags(write=False)
        self.value = value
        self._hash = hash((value.dtype.str, value.shape, value.tobytes()))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, ConstantData)
            and self._hash == other._hash
            and self.value.dtype == other.value.dtype
            and self.value.shape == other.value.shape
            and self.value.tobytes() == other.value.tobytes()
        )

    def __repr__(self) -> str:
        return _constant_str(self.value)


def _constant_str(value: np.ndarray) -> str:
    if value.size <= 6:
        return np.array2string(value, separator=", ").replace("\n", "")
    return f"array<{value.dtype}{shape_str(value.shape)}>"


def _leaf_type(in_types, arg):
    return arg[1]


def _constant_type(in_types, arg):
    return TensorType(arg.value.dtype.name, arg.value.shape)


def _no_ref(arg, *inputs):
    raise RuntimeError("leaves are bound by the caller, not computed")


INPUT = defop("input", LEAF, _leaf_type, ref=_no_ref, differentiable=False)
SHARED = defop("shared", LEAF, _leaf_type, ref=_no_ref, differentiable=False)
CONSTANT = defop("constant", LEAF, _constant_type, ref=lambda arg: arg.value, differentiable=False)


# --- construction ---------------------------------------------------------------------------

def _new(cls, op: OpDef, src: tuple, arg, typ: TensorType, trace) -> Node:
    node = object.__new__(cls)
    fields = (("op", op), ("src", src), ("arg", arg), ("type", typ), ("trace", trace), ("name", None))
    for attr, value in fields:
        object.__setattr__(node, attr, value)
    return node


def make(op: OpDef, src: Sequence[Node] = (), arg=None) -> Node:
    """The one way to build an op node: returns the live equal node if there is one."""
    src = tuple(src)
    key = (op, src, arg)
    try:
        node = _cons.get(key)
    except TypeError:  # an unhashable input or arg: say which
        _check_src(op, src)
        raise TypeError(f"{op.name}: the op's arg must be hashable, got {arg!r}") from None
    if node is not None:
        return node
    _check_src(op, src)
    trace = user_trace()
    try:
        typ = op.infer(tuple(s.type for s in src), arg)
    except (TypeError, ValueError) as exc:
        raise type(exc)(build_error(op, src, str(exc), trace)) from None
    node = _new(Node, op, src, arg, typ, trace)
    _cons[key] = node
    return node


def make_known(op: OpDef, src: tuple, arg, typ: TensorType, trace=None) -> Node:
    """``make`` for a node whose type is already known (a graph read back from graphc's own
    cache, written by ``make``): the live equal node if there is one, else a new node of
    ``typ`` without running the op's type rule."""
    key = (op, src, arg)
    node = _cons.get(key)
    if node is None:
        node = _cons[key] = _new(Node, op, src, arg, typ, trace)
    return node


def _check_src(op: OpDef, src: tuple) -> None:
    for s in src:
        if not isinstance(s, Node):
            raise TypeError(f"{op.name}: inputs must be graph nodes, got {type(s).__name__}")


def build_error(op: OpDef, src: Sequence[Node], message: str, trace) -> str:
    """The message of an error about an op: what failed, on what types, on which user line."""
    lines = [f"{op.name}: {message}"]
    if src:
        lines.append("  inputs: " + ", ".join(f"{s.name or '#' + str(i)}: {s.type}" for i, s in enumerate(src)))
    if trace is not None:
        lines.append(f"  created at {trace}")
    return "\n".join(lines)


def new_input(typ: TensorType, name: str | None = None) -> Node:
    node = _new(Node, INPUT, (), (next(_uid), typ), typ, user_trace())
    node.name = name
    return node


def new_shared(value: np.ndarray, typ: TensorType, name: str | None = None) -> SharedVariable:
    node = _new(SharedVariable, SHARED, (), (next(_uid), typ), typ, user_trace())
    node.name = name
    object.__setattr__(node, "container", [value])
    object.__setattr__(node, "default_update", None)
    return node


def constant(value, dtype=None, name: str | None = None) -> Node:
    """A constant leaf; equal values give the same node."""
    arr = np.asarray(value) if dtype is None else np.asarray(value, dtype=as_dtype(dtype))
    if arr.dtype.name == "float16":
        arr = arr.astype("float32")
    as_dtype(arr.dtype)
    node = make(CONSTANT, (), ConstantData(arr))
    if name is not None and node.name is None:
        node.name = name
    return node


def _coerce_shared(var: SharedVariable, value, borrow: bool) -> np.ndarray:
    typ, label = var.type, var.name or "shared variable"
    arr = np.asarray(value)
    if arr.ndim != typ.ndim:
        raise TypeError(f"set_value of {label}: expected ndim {typ.ndim}, got {arr.ndim}")
    if arr.dtype.name != typ.dtype:
        # arrays must cast safely; Python numbers and lists only need the same kind
        rule = "safe" if isinstance(value, np.ndarray) else "same_kind"
        if not np.can_cast(arr.dtype, typ.dtype, rule):
            raise TypeError(
                f"set_value of {label}: a {arr.dtype} value cannot be stored in a {typ.dtype} "
                "variable without losing precision; cast it first"
            )
        arr, borrow = arr.astype(typ.dtype), True
    if not typ.accepts_shape(arr.shape):
        raise ValueError(f"set_value of {label}: shape {arr.shape} contradicts static shape {shape_str(typ.shape)}")
    if not arr.dtype.isnative:  # compiled kernels read native byte order
        arr, borrow = arr.astype(arr.dtype.newbyteorder("=")), True
    return arr if borrow else arr.copy()


# --- walks ----------------------------------------------------------------------------------

def toposort(outputs: Iterable[Node]) -> list[Node]:
    """All ancestors of ``outputs``, inputs before users, in a deterministic order."""
    order: list[Node] = []
    done: set[int] = set()
    stack: list[tuple[Node, int]] = [(o, 0) for o in reversed(list(outputs))]
    while stack:
        node, i = stack.pop()
        if id(node) in done:
            continue
        if i < len(node.src):
            stack.append((node, i + 1))
            child = node.src[i]
            if id(child) not in done:
                stack.append((child, 0))
        else:
            done.add(id(node))
            order.append(node)
    return order


def graph_inputs(outputs: Iterable[Node]) -> list[Node]:
    """The leaves (inputs, shared, constants) the outputs depend on."""
    return [n for n in toposort(outputs) if n.is_leaf]


def substitute(outputs: Sequence[Node], mapping: dict) -> list[Node]:
    """Rebuild ``outputs`` with each key of ``mapping`` replaced by its value."""
    new: dict[int, Node] = {id(k): v for k, v in mapping.items()}
    for node in toposort(outputs):
        if id(node) in new or node.is_leaf:
            continue
        src = tuple(new.get(id(s), s) for s in node.src)
        if any(a is not b for a, b in zip(src, node.src)):
            from .provenance import provenance

            with provenance(node.trace):
                new[id(node)] = make(node.op, src, node.arg)
    return [new.get(id(o), o) for o in outputs]


def clone(outputs: Sequence[Node], replace: dict | None = None, copy_inputs: bool = False) -> list[Node]:
    """Like ``substitute``; with ``copy_inputs`` every input leaf also becomes a fresh one."""
    mapping = dict(replace or {})
    if copy_inputs:
        for leaf in graph_inputs(outputs):
            if leaf.op is INPUT and leaf not in mapping:
                mapping[leaf] = new_input(leaf.type, leaf.name)
    return substitute(outputs, mapping)


def clients(outputs: Sequence[Node]) -> dict[Node, list[Node]]:
    """For each node of the graph, the nodes that use it."""
    users: dict[Node, list[Node]] = {}
    for node in toposort(outputs):
        users.setdefault(node, [])
        for s in node.src:
            users[s].append(node)
    return users
