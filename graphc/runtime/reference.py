"""The reference backend: runs each node's NumPy ``ref`` in topological order.

It is the oracle every compiled backend is tested against, so it favours clarity and
exact NumPy semantics over speed. Values are dropped after their last use.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ir.node import CONSTANT, INPUT, SHARED, Node, build_error, toposort
from ..ir.types import shape_str


class RunError(ValueError):
    """A run-time failure of one op, with the op, its input shapes/dtypes and the user's line."""


class Program:
    """A schedule of NumPy calls over numbered storage slots."""

    def __init__(self, inputs: Sequence[Node], outputs: Sequence[Node]):
        order = toposort(outputs)
        self.slot = {node: i for i, node in enumerate(order)}
        self.order = order
        self.input_slots = [self.slot.get(i) for i in inputs]
        self.shared = [(self.slot[n], n) for n in order if n.op is SHARED]
        self.constants = [(self.slot[n], n.arg.value) for n in order if n.op is CONSTANT]
        self.output_slots = [self.slot[o] for o in outputs]
        last_use: dict[int, int] = {}
        for step, node in enumerate(order):
            for s in node.src:
                last_use[self.slot[s]] = step
        keep = set(self.output_slots)
        self.steps = []
        for step, node in enumerate(order):
            if node.is_leaf:
                continue
            free = tuple(sorted({self.slot[s] for s in node.src if last_use[self.slot[s]] == step} - keep))
            self.steps.append((node, tuple(self.slot[s] for s in node.src), self.slot[node], free))
        given = set(inputs)
        for node in order:
            if node.op is INPUT and node not in given:
                raise ValueError(f"the graph needs input {node.name or node} which is not among the inputs")

    def run(self, input_values: Sequence[np.ndarray]) -> list[np.ndarray]:
        storage: list = [None] * len(self.order)
        for slot, value in zip(self.input_slots, input_values):
            if slot is not None:
                storage[slot] = value
        for slot, node in self.shared:
            storage[slot] = node.container[0]
        for slot, value in self.constants:
            storage[slot] = value
        for node, in_slots, out_slot, free in self.steps:
            args = [storage[i] for i in in_slots]
            storage[out_slot] = run_node(node, args)
            for i in free:
                storage[i] = None
        return [storage[i] for i in self.output_slots]


def run_node(node: Node, args: list) -> np.ndarray:
    """Apply one node's reference to concrete inputs, checking the result against its type."""
    try:
        with np.errstate(all="ignore"):
            out = node.op.ref(node.arg, *args)
    except (ValueError, IndexError, TypeError, ZeroDivisionError, OverflowError, MemoryError) as exc:
        raise RunError(run_error_message(node, args, str(exc))) from None
    out = np.asarray(out)
    if out.dtype.name != node.type.dtype:
        out = out.astype(node.type.dtype)
    if not node.type.accepts_shape(out.shape):
        raise RunError(run_error_message(
            node, args, f"result of shape {out.shape} contradicts the static shape {shape_str(node.type.shape)}"))
    return out


def run_error_message(node: Node, args: list, message: str) -> str:
    got = ", ".join(f"{a.dtype}{shape_str(a.shape)}" for a in args if isinstance(a, np.ndarray))
    return build_error(node.op, node.src, message, node.trace) + (f"\n  run-time inputs: {got}" if got else "")


def evaluate(outputs: Sequence[Node], givens: dict | None = None) -> list[np.ndarray]:
    """Evaluate nodes on values given for their inputs (a convenience for tests and ``eval``)."""
    givens = givens or {}
    inputs = list(givens)
    return Program(inputs, list(outputs)).run([np.asarray(givens[i]) for i in inputs])
