"""Which steps may write their result into an input's buffer (the ``inplace`` phase).

An elementwise step may reuse the buffer of one of its inputs when nothing reads that
buffer afterwards: the input is an intermediate (not a function input, shared value or
constant), has the output's dtype, is not a view of another buffer, no live value is a
view of it, and the step reads it through no other input. The shape is checked when the
step runs (a size-1 dimension may broadcast at run time).

An update of a shared variable may be written into the variable's own buffer when the
update's last step is elementwise, reads the variable directly, is nothing but the update
(no other reader, not an output) and no later step reads the variable. Those steps run
last, after every other step has succeeded, so a failing call still leaves shared
variables untouched.

Views are tracked conservatively: the result of any op that is not elementwise, a
reduction or a matrix product may alias its inputs (dimshuffle, reshape, subtensor...),
and so may an op flagged ``props["may_alias"]`` (sum_to returns its input when nothing sums).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.node import Node
from ..ir.op import ELEMWISE, LINALG, REDUCE

FRESH_KINDS = (ELEMWISE, REDUCE, LINALG)
FOREVER = 1 << 62


@dataclass
class InplacePlan:
    reuse: dict[Node, int] = field(default_factory=dict)     # step node -> index of the input it overwrites
    updates: dict[Node, Node] = field(default_factory=dict)  # update node -> the shared variable it overwrites


def update_last(order: list[Node], outputs: list[Node], update_vars: dict[int, Node]) -> list[Node]:
    """The schedule with the steps that may update a shared variable in place moved last
    (they have no reader, so this keeps the order valid)."""
    readers = _reader_counts(order)
    movable = {outputs[i] for i, var in update_vars.items()
               if _is_update_candidate(outputs[i], var, outputs, readers)}
    return [n for n in order if n not in movable] + [n for n in order if n in movable]


def plan_inplace(order: list[Node], outputs: list[Node], update_vars: dict[int, Node]) -> InplacePlan:
    """``order``: the schedule (topological, see ``update_last``); ``update_vars``: output
    index -> the shared variable that output updates."""
    position = {node: i for i, node in enumerate(order)}
    roots = _alias_roots(order)
    last_read = _last_reads(order, outputs, roots)
    readers = _reader_counts(order)
    plan = InplacePlan()
    for node in order:
        if node.op.kind != ELEMWISE or node.is_leaf:
            continue
        index = _reusable_input(node, position[node], roots, last_read)
        if index is not None:
            plan.reuse[node] = index
    for out_index, var in update_vars.items():
        node = outputs[out_index]
        if not _is_update_candidate(node, var, outputs, readers):
            continue
        others = [s for s in node.src if s is not var]
        if last_read.get(var, -1) <= position[node] and not any(var in roots[o] for o in others):
            plan.reuse.pop(node, None)
            plan.updates[node] = var
    return plan


def _reader_counts(order: list[Node]) -> dict[Node, int]:
    counts: dict[Node, int] = {}
    for node in order:
        for s in set(node.src):
            counts[s] = counts.get(s, 0) + 1
    return counts


def _is_update_candidate(node: Node, var: Node, outputs: list[Node], readers) -> bool:
    """An elementwise update that reads its variable and is read by nothing else."""
    return (not node.is_leaf and node.op.kind == ELEMWISE and var in node.src and node.dtype == var.dtype
            and readers.get(node, 0) == 0 and sum(o is node for o in outputs) == 1)


def _alias_roots(order: list[Node]) -> dict[Node, frozenset]:
    roots: dict[Node, frozenset] = {}
    for node in order:
        if node.is_leaf or (node.op.kind in FRESH_KINDS and not node.op.props.get("may_alias")):
            roots[node] = frozenset((node,))
        else:
            roots[node] = frozenset().union(*(roots[s] for s in node.src))
    return roots


def _last_reads(order, outputs, roots) -> dict[Node, int]:
    """For each buffer (alias root), the last step that reads it or a view of it."""
    last: dict[Node, int] = {}
    for step, node in enumerate(order):
        for value in (node, *node.src):
            for root in roots[value]:
                last[root] = max(last.get(root, -1), step)
    for out in outputs:
        for root in roots[out]:
            last[root] = FOREVER
    return last


def _reusable_input(node: Node, step: int, roots, last_read) -> int | None:
    for i, src in enumerate(node.src):
        if src.is_leaf or src.dtype != node.dtype or src.ndim != node.ndim:
            continue
        if roots[src] != frozenset((src,)) or last_read[src] != step:
            continue
        others = [s for s in node.src if s is not src]
        if any(src in roots[o] for o in others):
            continue  # read again through a view: writing would change what it reads
        return i
    return None
