"""FunctionGraph: the rewritable view of one function's graph.

Nodes are immutable, so "rewriting" a graph means replacing some nodes by others and
rebuilding their users; this class holds the current outputs and does that rebuilding.
The rewrite phases (``graphc.rewrite``) work on it.
"""

from __future__ import annotations

from typing import Sequence

from .node import Node, clients, substitute, toposort
from .types import TensorType


class FunctionGraph:
    def __init__(self, inputs: Sequence[Node], outputs: Sequence[Node],
                 order: list[Node] | None = None):
        """``order``: the outputs' nodes in topological order, when the caller has them."""
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self._order: list[Node] | None = order
        self._clients: dict | None = None
        self.fired: list[str] = []  # the names of the rewrites applied, in order
        self.phase_times: dict[str, float] = {}

    @property
    def nodes(self) -> list[Node]:
        """All nodes, inputs before users (cached until the next replace)."""
        if self._order is None:
            self._order = toposort(self.outputs)
        return self._order

    @property
    def clients(self) -> dict[Node, list[Node]]:
        if self._clients is None:
            self._clients = clients(self.outputs)
        return self._clients

    def replace(self, old: Node, new: Node, reason: str = "") -> None:
        self.replace_all({old: new}, reason)

    def replace_all(self, mapping: dict, reason: str = "") -> None:
        for old, new in mapping.items():
            _check_compatible(old.type, new.type, reason)
        self.outputs = substitute(self.outputs, mapping)
        self._order = self._clients = None

    def set_outputs(self, outputs: Sequence[Node], reason: str = "") -> None:
        """Replace every output at once (what a rewrite phase returns)."""
        for old, new in zip(self.outputs, outputs):
            _check_compatible(old.type, new.type, reason)
        self.outputs = list(outputs)
        self._order = self._clients = None

    def __repr__(self) -> str:
        return f"FunctionGraph({len(self.inputs)} inputs, {len(self.outputs)} outputs, {len(self.nodes)} nodes)"


def _check_compatible(old: TensorType, new: TensorType, reason: str) -> None:
    if old.dtype != new.dtype or old.ndim != new.ndim:
        raise TypeError(f"rewrite {reason or '?'} would change type {old} into {new}")
