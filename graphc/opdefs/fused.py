"""Composite ops made by the fusion phase: an elementwise group as one op, and a reduction
together with its elementwise input (its "prologue").

The group's computation is an ordinary graphc graph, the *program*: elementwise nodes over
``param`` leaves (``param(i, type)`` stands for the composite op's i-th input) and small
constants. Params keep only the dtype, the ndim and the size-1 dimensions of the input they
stand for, so the same group on inputs of other sizes builds the same (hash-consed) program;
a backend compiles it once per program and broadcast pattern.

``fused_elemwise(root, inputs)`` and ``fused_reduce(reduction, inputs)`` build the ops
from an ordinary graph cut at ``inputs``; ``expand(node)`` undoes that. The fusion phase
(``graphc.rewrite.fusion``) runs after differentiation, so nothing needs the gradients of
these ops, but they have correct ones (those of the expanded graph) all the same.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from ..ir.node import CONSTANT, Node, make, new_input, substitute, toposort
from ..ir.op import ELEMWISE, LEAF, REDUCE, defop, get_op
from ..ir.types import TensorType, is_float
from .common import broadcast_static
from .elementwise import broadcast_shape

__all__: list[str] = []  # built by the fusion phase, not by users: no graphc.tensor builders

# reductions over (axes, keepdims) that may read an elementwise prologue (sum_to may not)
FUSABLE_REDUCTIONS = ("sum", "prod", "max", "min", "any", "all", "argmax", "argmin")
# a fused op's label shows at most this much of its program
MAX_LABEL_CHARS = 160


# --- params ----------------------------------------------------------------------------------

def _param_infer(in_types, arg):
    return arg[1]


def _param_ref(arg, *inputs):
    raise RuntimeError("a param is bound by its fused op, not computed")


PARAM = defop("param", LEAF, _param_infer, ref=_param_ref, differentiable=False)


def param(index: int, typ: TensorType) -> Node:
    """The program input ``index`` of type ``typ`` (printed ``p<index>``)."""
    node = make(PARAM, (), (int(index), typ))
    node.name = f"p{index}"
    return node


@lru_cache(maxsize=4096)
def param_type(typ: TensorType) -> TensorType:
    """``typ`` with only its size-1 dimensions kept static (memoised: graphs repeat few
    types, and kernel keys ask for it per input of every node)."""
    return TensorType(typ.dtype, tuple(1 if s == 1 else None for s in typ.shape))


def inlinable(node: Node) -> bool:
    """A one-element constant (or a dimshuffle of one): copied into programs, not an input."""
    while node.op.name == "dimshuffle":
        node = node.src[0]
    return node.op is CONSTANT and node.arg.value.size == 1


# --- programs --------------------------------------------------------------------------------

class FusedProgram:
    """A fused op's computation: the inner output node over its params (``p0, p1, ...``).

    Equal (and hashed) by the inner node: programs are hash-consed graphs, so equal
    structure means the same node. ``origin`` (the graph the fusion phase replaced, and its
    inputs) is not part of the value: it only serves to explain a run-time error in terms of
    the user's ops and lines.
    """

    __slots__ = ("node", "params", "origin", "_program")

    def __init__(self, node: Node, origin: tuple | None = None):
        self.node = node
        self.params = _params_of(node)
        self.origin = origin
        self._program = None

    def __eq__(self, other) -> bool:
        return isinstance(other, FusedProgram) and other.node is self.node

    def __hash__(self) -> int:
        return hash(self.node)

    def __repr__(self) -> str:
        return program_text(self)

    def __graphc_encode__(self, encode_node) -> str:
        """The inner graph's canonical text, for graph keys and serialised graphs."""
        from ..ir.serialize import encode_value

        return encode_value(self.node, encode_node)

    @classmethod
    def __graphc_decode__(cls, payload: str, decode_node) -> "FusedProgram":
        from ..ir.serialize import decode_value

        return cls(decode_value(payload, decode_node))

    def check_inputs(self, types: Sequence[TensorType]) -> None:
        """The inputs must match the params: same dtype and ndim, size 1 where a param is."""
        if len(types) != len(self.params):
            raise ValueError(f"the program takes {len(self.params)} inputs, got {len(types)}")
        for i, (p, t) in enumerate(zip(self.params, types)):
            if p.dtype != t.dtype or p.ndim != t.ndim:
                raise TypeError(f"input {i} has type {t}, the program's p{i} is {p.type}")
            if any(ps == 1 and ts != 1 for ps, ts in zip(p.type.shape, t.shape)):
                raise ValueError(f"input {i} of static shape {t} is not size-1 where "
                                 f"p{i} ({p.type}) is")

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        """Evaluate the program on NumPy arrays."""
        from ..runtime.reference import Program, RunError

        if self._program is None:
            self._program = Program(self.params, [self.node])
        try:
            return self._program.run(list(arrays))[0]
        except RunError:
            self.explain(arrays)
            raise

    def explain(self, arrays) -> None:
        """Run the graph this program replaced on ``arrays``: its error names the user's op,
        inputs and line (the fused program only knows p0, p1, ...)."""
        if self.origin is None:
            return
        from ..runtime.reference import Program

        out, inputs = self.origin
        leaves = [new_input(x.type, x.name) for x in inputs]
        (graph,) = substitute([out], dict(zip(inputs, leaves)))
        Program(leaves, [graph]).run(list(arrays))


def _params_of(node: Node) -> tuple:
    """The params a program reads, by index; they must be numbered 0, 1, ... without gaps."""
    params = sorted((n for n in toposort([node]) if n.op is PARAM), key=lambda n: n.arg[0])
    if [p.arg[0] for p in params] != list(range(len(params))):
        raise ValueError(f"a program's params must be p0, p1, ... without gaps, got "
                         f"{[p.name for p in params]}")
    return tuple(params)


def program_text(program: FusedProgram) -> str:
    """The program as one line of infix text (``tanh(p0 * p1 + exp(-p0))``)."""
    from ..printing import pprint

    text = pprint(program.node).replace("\n", "; ")
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 3] + "..."


def _walk(root: Node, cut: set) -> list[Node]:
    """The nodes from ``root`` down to the cut nodes and inlinable constants, inputs first."""
    order: list[Node] = []
    done: set[Node] = set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node in done:
            continue
        if expanded or node in cut or inlinable(node):
            done.add(node)
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((s, False) for s in reversed(node.src) if s not in done)
    return order


def build_program(root: Node, inputs: Sequence[Node], origin: Node | None = None
                  ) -> tuple[FusedProgram, list[Node]]:
    """The program computing ``root`` from ``inputs``, and the inputs in param order.

    Params are numbered in the order the walk meets the inputs, so equal groups number
    them alike. Every node between ``root`` and the inputs must be elementwise. A run-time
    error is explained by running ``origin`` (default ``root``) unfused.
    """
    cut = set(inputs)
    if len(cut) != len(inputs):
        raise ValueError("fused op: an input is listed twice")
    inner: dict[Node, Node] = {}
    ordered: list[Node] = []
    for node in _walk(root, cut):
        if node in cut:
            inner[node] = param(len(ordered), param_type(node.type))
            ordered.append(node)
        elif inlinable(node):
            inner[node] = node
        elif node.op.kind != ELEMWISE or node.op.props.get("fused"):
            raise ValueError(f"fused op: {node.op.name} ({node.type}) is not elementwise; list the "
                             "value it computes among the inputs")
        else:
            inner[node] = make(node.op, tuple(inner[s] for s in node.src), node.arg)
    if len(ordered) != len(inputs):
        raise ValueError("fused op: some inputs are not used by the computation")
    if not ordered:
        raise ValueError("fused op: the computation needs at least one input")
    origin = root if origin is None else origin
    return FusedProgram(inner[root], (origin, tuple(ordered))), ordered


# --- fused_elemwise --------------------------------------------------------------------------

def _fused_elemwise_infer(in_types, program):
    program.check_inputs(in_types)
    return TensorType(program.node.dtype, broadcast_static(in_types))


def _fused_grad(node, g):
    """The gradient of the expanded graph (fusion runs after differentiation, but a graph
    holding fused ops still differentiates correctly)."""
    from ..autodiff import backpropagate

    wrt = [s for s in node.src if is_float(s.dtype)]
    grads = backpropagate({expand(node): g}, wrt)
    return tuple(grads.get(s) if is_float(s.dtype) else None for s in node.src)


def _elemwise_label(node: Node) -> str:
    return f"fused_elemwise{{{program_text(node.arg)}}}"


FUSED_ELEMWISE = defop(
    "fused_elemwise", ELEMWISE, _fused_elemwise_infer, ref=lambda program, *xs: program(*xs),
    shape=broadcast_shape, grad=_fused_grad, props=dict(fused=True, label=_elemwise_label))


def fused_elemwise(root: Node, inputs: Sequence[Node]) -> Node:
    """``root``, an elementwise computation of ``inputs``, as one fused_elemwise node."""
    program, ordered = build_program(root, inputs)
    return make(FUSED_ELEMWISE, ordered, program)


# --- fused_reduce: reduce(program(inputs)) ---------------------------------------------------

def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if a in axes else s for a, s in enumerate(shape))
    return tuple(s for a, s in enumerate(shape) if a not in axes)


def _fused_reduce_infer(in_types, arg):
    name, reduce_arg, program = arg
    if name not in FUSABLE_REDUCTIONS:
        raise ValueError(f"{name} cannot take an elementwise prologue")
    program.check_inputs(in_types)
    body = TensorType(program.node.dtype, broadcast_static(in_types))
    return get_op(name).infer((body,), reduce_arg)


def _fused_reduce_ref(arg, *xs):
    name, reduce_arg, program = arg
    body = program(*xs)
    try:
        return get_op(name).ref(reduce_arg, body)
    except (ValueError, IndexError, TypeError):
        program.explain(xs)
        raise


def _fused_reduce_shape(node, in_shapes):
    from .shape import broadcast_dim

    axes, keepdims = node.arg[1]
    ndim = node.arg[2].node.ndim
    body = tuple(broadcast_dim([s[axis] for s in in_shapes]) for axis in range(ndim))
    return _reduced_shape(body, axes, keepdims)


def _reduce_label(node: Node) -> str:
    name, (axes, keepdims), program = node.arg
    return f"fused_reduce{{{name}({program_text(program)}, axis={axes}, keepdims={keepdims})}}"


FUSED_REDUCE = defop(
    "fused_reduce", REDUCE, _fused_reduce_infer, ref=_fused_reduce_ref, shape=_fused_reduce_shape,
    grad=_fused_grad, props=dict(fused=True, label=_reduce_label))


def fused_reduce(reduction: Node, inputs: Sequence[Node]) -> Node:
    """``reduction`` (sum, max, ... of an elementwise computation of ``inputs``) as one node."""
    if reduction.op.name not in FUSABLE_REDUCTIONS:
        raise ValueError(f"fused_reduce: {reduction.op.name} cannot take an elementwise prologue")
    program, ordered = build_program(reduction.src[0], inputs, origin=reduction)
    return make(FUSED_REDUCE, ordered, (reduction.op.name, reduction.arg, program))


# --- undoing fusion --------------------------------------------------------------------------

def expand(node: Node) -> Node:
    """The ordinary graph a fused node stands for, over the node's own inputs."""
    if node.op is FUSED_ELEMWISE:
        program = node.arg
    elif node.op is FUSED_REDUCE:
        program = node.arg[2]
    else:
        raise TypeError(f"expand: {node.op.name} is not a fused op")
    (body,) = substitute([program.node], dict(zip(program.params, node.src)))
    if node.op is FUSED_ELEMWISE:
        return body
    name, reduce_arg, _ = node.arg
    return make(get_op(name), (body,), reduce_arg)
