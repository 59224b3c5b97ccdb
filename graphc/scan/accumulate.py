"""Sums over the steps of a backward scan, computed after the loop instead of accumulated in it.

The backward scan's gradient of a non-sequence ``W`` is the sum over the steps of a per-step
term. Accumulated in the loop, the RNN's ``h_{t-1}.T @ g_t`` is a small product and a
``W``-sized add per step; summed after the loop it is one product of the stacked operands
(``H.T @ G`` over all steps' rows, ``linalg.sum_of_products``), which BLAS runs many times
faster. ``time_sum`` rewrites a term that way when it can:

- ``a + b``, ``-a``, ``a * c`` and ``a @ c`` with ``c`` the same at every step are linear: the
  sum of the term is built from the sums of its per-step parts;
- ``a @ b`` of two per-step matrices is a product of their stacks;
- a per-step value is *stacked*: a sequence row is its outer sequence; any other value becomes
  a map output of the backward scan (the loop stores it), which is allowed only for an operand
  of such a product (about the size of a state) or for a reduction's result (smaller than what
  it reduced), so the stored rows never outgrow what the scan stores anyway.

Anything else keeps the accumulator.
"""

from __future__ import annotations

from ..ir.node import Node, new_input, toposort
from ..ir.types import TensorType

_REDUCTIONS = ("sum", "sum_to")


def _gt():
    import graphc.tensor as gt

    return gt


class TimeSums:
    """Builds sums over steps of per-step terms of one inner graph.

    ``stacks`` maps the inner leaves that hold a sequence row to their stacked outer values;
    ``per_step_leaves`` are every inner leaf that changes from step to step (sequence rows and
    state taps). After ``time_sum`` calls, ``stored`` lists the inner values the loop must
    store (as map outputs), each with the placeholder that stands for their stack in the sums.
    """

    def __init__(self, stacks: dict, per_step_leaves):
        self.stacks = dict(stacks)
        self.per_step_leaves = set(per_step_leaves)
        self.stored: dict[Node, Node] = {}
        self.found: dict[int, Node] = {}  # filled by the caller: which term got which sum
        self._varies: dict[Node, bool] = {}

    def varies(self, node: Node) -> bool:
        """Whether ``node`` depends on a per-step leaf."""
        if node not in self._varies:
            for n in toposort([node]):
                if n not in self._varies:
                    self._varies[n] = n in self.per_step_leaves or any(self._varies[s] for s in n.src)
        return self._varies[node]

    def time_sum(self, term: Node) -> Node | None:
        """The sum over steps of ``term`` built from stacks, or None when it cannot be."""
        before = dict(self.stored)
        total = self._sum(term)
        if total is None:
            self.stored = before  # values planned for a failed term are not stored
        return total

    def _sum(self, node: Node) -> Node | None:
        gt, name = _gt(), node.op.name
        if not self.varies(node) or node.is_leaf:
            return None
        src = node.src
        if name == "add" and all(self.varies(s) for s in src):
            parts = [self._sum(s) for s in src]
            return None if None in parts else parts[0] + parts[1]
        if name == "neg":
            part = self._sum(src[0])
            return None if part is None else -part
        if name == "mul" and sum(self.varies(s) for s in src) == 1:
            x, c = src if self.varies(src[0]) else src[::-1]
            part = self._sum(x)
            return None if part is None else part * c
        if name == "matmul" and all(s.ndim == 2 for s in src):
            return self._sum_of_product(*src)
        if name in _REDUCTIONS:
            return gt.sum(self._stack(node), axis=0)
        return None

    def _sum_of_product(self, a: Node, b: Node) -> Node | None:
        from ..opdefs.linalg import sum_of_products
        from ..rewrite.specialize import swapped_source

        gt = _gt()
        if not self.varies(a):
            part = self._sum(b)
            return None if part is None else gt.matmul(a, part)
        if not self.varies(b):
            part = self._sum(a)
            return None if part is None else gt.matmul(part, b)
        flags, stacks = [], []
        for x in (a, b):
            inner = swapped_source(x)
            flags.append(inner is not None)
            stacks.append(self._stack(x if inner is None else inner))
        return sum_of_products(stacks[0], stacks[1], *flags)

    def _stack(self, node: Node) -> Node:
        """``node`` at every step, stacked along a new axis 0."""
        if node in self.stacks:
            return self.stacks[node]
        if node not in self.stored:
            self.stored[node] = new_input(TensorType(node.dtype, (None,) + node.type.shape),
                                          "stacked")
        return self.stored[node]
