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
    """A schedule of NumPy calls over numbered storage slots.

    With ``inplace``, elementwise steps write into dead input buffers and updates of shared
    variables (``update_vars``: output index -> variable) into the variable's buffer where
    that is safe (see ``graphc.runtime.inplace``).
    """

    def __init__(self, inputs: Sequence[Node], outputs: Sequence[Node], inplace: bool = False,
                 update_vars: dict | None = None):
        outputs = list(outputs)
        order = toposort(outputs)
        plan = None
        if inplace:
            from .inplace import plan_inplace, update_last

            order = update_last(order, outputs, update_vars or {})
            plan = plan_inplace(order, outputs, update_vars or {})
        self.slot = {node: i for i, node in enumerate(order)}
        self.order = order
        self.input_slots = [self.slot.get(i) for i in inputs]
        self.shared = [(self.slot[n], n) for n in order if n.op is SHARED]
        self.constants = [(self.slot[n], n.arg.value) for n in order if n.op is CONSTANT]
        self.output_slots = [self.slot[o] for o in outputs]
        self.steps, self.update_steps = self._steps(order, plan)
        given = set(inputs)
        for node in order:
            if node.op is INPUT and node not in given:
                raise ValueError(f"the graph needs input {node.name or node} which is not among the inputs")

    def _steps(self, order, plan):
        last_use: dict[int, int] = {}
        for step, node in enumerate(order):
            for s in node.src:
                last_use[self.slot[s]] = step
        keep = set(self.output_slots)
        steps, update_steps = [], []
        for step, node in enumerate(order):
            if node.is_leaf:
                continue
            free = tuple(sorted({self.slot[s] for s in node.src if last_use[self.slot[s]] == step} - keep))
            in_slots = tuple(self.slot[s] for s in node.src)
            if plan is not None and node in plan.updates:
                update_steps.append((node, in_slots, self.slot[node], free, self.slot[plan.updates[node]]))
                continue
            reuse = in_slots[plan.reuse[node]] if plan is not None and node in plan.reuse else None
            steps.append((node, in_slots, self.slot[node], free, reuse))
        return steps, update_steps

    def run(self, input_values: Sequence[np.ndarray]) -> list[np.ndarray]:
        storage: list = [None] * len(self.order)
        for slot, value in zip(self.input_slots, input_values):
            if slot is not None:
                storage[slot] = value
        for slot, node in self.shared:
            storage[slot] = node.container[0]
        for slot, value in self.constants:
            storage[slot] = value
        for step in self.steps:
            run_step(storage, *step)
        if self.update_steps:
            # every other step succeeded; write into a variable's buffer only if all can
            in_place = all(can_write_into(storage, step) for step in self.update_steps)
            for node, in_slots, out_slot, free, target in self.update_steps:
                run_step(storage, node, in_slots, out_slot, free, target if in_place else None)
        return [storage[i] for i in self.output_slots]


def run_step(storage, node, in_slots, out_slot, free, reuse) -> None:
    """Run one node's reference into ``storage``, into the buffer of slot ``reuse`` if it fits."""
    args = [storage[i] for i in in_slots]
    target = storage[reuse] if reuse is not None else None
    if target is not None and fits(target, node, args):
        storage[out_slot] = run_node_into(node, args, target)
    else:
        storage[out_slot] = run_node(node, args)
    for i in free:
        storage[i] = None


def fits(target: np.ndarray, node: Node, args) -> bool:
    """Whether ``node``'s result on ``args`` may be written into ``target``."""
    if not (isinstance(target, np.ndarray) and target.flags.writeable and target.flags.c_contiguous):
        return False
    if target.dtype.name != node.dtype:
        return False
    try:
        return np.broadcast_shapes(*(a.shape for a in args)) == target.shape
    except ValueError:
        return False


def can_write_into(storage, step) -> bool:
    """Whether an update step ``(node, in_slots, out_slot, free, target)`` fits its target."""
    node, in_slots, _, _, target = step
    return fits(storage[target], node, [storage[i] for i in in_slots])


def run_node_into(node: Node, args: list, out: np.ndarray) -> np.ndarray:
    """Like ``run_node`` for an elementwise node, writing the result into ``out``.

    Only float loops are run straight into ``out``: they cannot fail half-way (an integer
    power can), so ``out`` is never left half-written by a failing call.
    """
    ufunc = node.op.props.get("ufunc")
    if ufunc is not None and ufunc.nout == 1 and out.dtype.kind == "f":
        with np.errstate(all="ignore"):
            ufunc(*args, out=out, casting="unsafe")
        return out
    np.copyto(out, run_node(node, args))
    return out


def run_node(node: Node, args: list) -> np.ndarray:
    """Apply one node's reference to concrete inputs, checking the result against its type."""
    try:
        with np.errstate(all="ignore"):
            out = node.op.ref(node.arg, *args)
    except RunError:  # a program run inside the op (a fused op's) already named the failing op
        raise
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
