"""Elementwise fusion: the last graph phase of FAST_RUN.

Maximal groups of elementwise nodes become one ``fused_elemwise`` node (one loop for a
backend), and a reduction whose input is elementwise takes that computation as its prologue
(``fused_reduce``: ``sum(exp(x - m))`` is one pass over ``x``). The composite ops are
defined in ``graphc.opdefs.fused``.

Clustering is one walk over the graph, users before inputs. A group has one root, whose value
leaves the group: an elementwise node whose users are not all in one group (or that is an
output of the graph), or a reduction. An elementwise node joins the group of its users when
all of them are in that one group. A cheap node (arithmetic, comparison, cast, where) whose
users lie in several groups is copied into each (recomputing it costs less than a round trip
through memory); any other node starts its own group. An expensive node does not join a group
whose output is larger than it along a broadcast axis, where it would be recomputed for every
broadcast element. Groups of one node stay plain ops.
"""

from __future__ import annotations

from ..ir.node import Node, make
from ..ir.op import ELEMWISE
from ..ir.provenance import provenance
from ..opdefs.fused import (FUSABLE_REDUCTIONS, FUSED_ELEMWISE, FUSED_REDUCE, build_program,
                             inlinable)
from .pattern import check_replacement

# ops cheap enough to recompute in every group that reads them (int_div and mod are not:
# integer division costs tens of cycles; transcendental functions cost more)
CHEAP_OPS = frozenset((
    "add", "sub", "mul", "true_div", "neg", "abs", "sign", "sqr", "maximum", "minimum", "clip",
    "floor", "ceil", "round", "cast", "where", "eq", "neq", "lt", "le", "gt", "ge",
    "and", "or", "xor", "invert", "isnan", "isinf",
))
# a cheap node is copied into at most this many groups; beyond that it is computed once
MAX_COPIES = 4
# a group stops growing at this many ops: one kernel's code (and its compile time) stays bounded
MAX_GROUP_SIZE = 256


class Group:
    """One future fused node: its root, its members (root first) and its loop's static shape."""

    __slots__ = ("root", "members", "out_shape")

    def __init__(self, root: Node):
        self.root = root
        self.members = [root]
        # a reduction's loop runs over its input; an elementwise group's over its root
        self.out_shape = root.type.shape if root.op.kind == ELEMWISE else root.src[0].type.shape

    def inputs(self) -> list[Node]:
        """The values the group reads from outside (one-element constants are copied in)."""
        members = set(self.members)
        return list({s: None for m in self.members for s in m.src
                     if s not in members and not inlinable(s)})

    @property
    def fused(self) -> bool:
        # a group computed from constants alone is left to constant folding
        return len(self.members) > 1 and bool(self.inputs())


def is_fusable_elemwise(node: Node) -> bool:
    return node.op.kind == ELEMWISE and not node.op.props.get("fused")


def takes_prologue(node: Node) -> bool:
    """A reduction whose input may be computed inside it (sum_to and fused ops may not)."""
    return node.op.name in FUSABLE_REDUCTIONS and len(node.src) == 1


def fits(node: Node, group: Group) -> bool:
    """Whether ``node`` may be computed in ``group``'s loop without repeating expensive work."""
    if node.op.name in CHEAP_OPS:
        return True
    # size 1 here but (possibly) larger in the loop: computed once per broadcast element
    return not any(n == 1 and g != 1 for n, g in zip(node.type.shape, group.out_shape))


def cluster(order: list[Node], clients: dict, outputs: set) -> list[Group]:
    """Assign nodes to groups in one walk, users first (``order`` is topological).

    NOTE: this never creates a cycle between fused nodes. Only a group's root is read outside
    it: every other member has all its users inside the group, so every path out of a
    member runs through the root. A path from the root back into the group would therefore
    close a cycle through the root in the original (acyclic) graph.
    """
    groups: list[Group] = []
    member_of: dict[Node, list[Group]] = {}

    def start(node: Node) -> None:
        groups.append(Group(node))
        member_of[node] = [groups[-1]]

    for node in reversed(order):
        if takes_prologue(node):
            start(node)
            continue
        if not is_fusable_elemwise(node):
            continue
        targets = _user_groups(node, clients[node], member_of, outputs)
        if targets and any(len(g.members) >= MAX_GROUP_SIZE for g in targets):
            targets = None
        if targets and (len(targets) == 1 and fits(node, targets[0])
                        or 1 < len(targets) <= MAX_COPIES and node.op.name in CHEAP_OPS):
            for group in targets:
                group.members.append(node)
            member_of[node] = targets
        else:
            start(node)
    return groups


def _user_groups(node: Node, users: list, member_of: dict, outputs: set) -> list[Group] | None:
    """The groups of ``node``'s users, or None if a user is in none or ``node`` is an output."""
    if node in outputs or not users:
        return None
    found: dict[int, Group] = {}
    for user in users:
        groups = member_of.get(user)
        if groups is None:
            return None
        found.update((id(g), g) for g in groups)
    return list(found.values())


def fused_node(group: Group, new: dict) -> Node:
    """The fused op computing ``group``'s root from the (rewritten) values it reads."""
    root = group.root
    body = root if root.op.kind == ELEMWISE else root.src[0]
    program, ordered = build_program(body, group.inputs(), origin=root)
    src = tuple(new.get(x, x) for x in ordered)
    with provenance(root.trace):
        if root.op.kind == ELEMWISE:
            node = make(FUSED_ELEMWISE, src, program)
        else:
            node = make(FUSED_REDUCE, src, (root.op.name, root.arg, program))
    check_replacement(root, node, "fusion")
    return node


def fuse(fgraph, exclude: frozenset) -> None:
    """Replace every group of two or more nodes of ``fgraph`` by one fused node."""
    order = fgraph.nodes
    groups, plain = [], []
    for group in cluster(order, fgraph.clients, set(fgraph.outputs)):
        (groups if group.fused else plain).append(group)
    if not groups:
        return
    roots = {g.root: g for g in groups}
    # the members of fused groups are computed inside them (a copied node may also be
    # needed by a group left plain)
    absorbed = {m for g in groups for m in g.members[1:]} - {m for g in plain for m in g.members}
    new: dict[Node, Node] = {}
    for node in order:
        if node.is_leaf or node in absorbed:
            continue
        if node in roots:
            new[node] = fused_node(roots[node], new)
            continue
        src = tuple(new.get(s, s) for s in node.src)
        if any(a is not b for a, b in zip(src, node.src)):
            with provenance(node.trace):
                new[node] = make(node.op, src, node.arg)
    fgraph.set_outputs([new.get(o, o) for o in fgraph.outputs], "fusion")
    fgraph.fired.extend(["fusion"] * len(groups))
