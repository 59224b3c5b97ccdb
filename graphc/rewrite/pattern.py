"""A small declarative pattern language and the fixed-point graph rewriter.

A rule is ``(pattern, fn)``: when ``pattern`` matches a node, ``fn(**bindings)`` returns
its replacement (a node of the same dtype and ndim) or ``None`` to decline::

    # log(1 + x) => log1p(x)
    (P(LOG, P(ADD, P.const(1), P.var("x"))), lambda x: gt.log1p(x))

Patterns on commutative ops (``props['commutative']``) also try their inputs swapped.
Rules are indexed by the op at the pattern's root.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

import numpy as np

from ..config import config
from ..ir.node import CONSTANT, Node, make, toposort
from ..ir.op import OpDef
from ..ir.provenance import provenance

log = logging.getLogger("graphc.rewrite")


class P:
    """A pattern: an op (or a tuple of ops, or None for any) with sub-patterns for its inputs."""

    __slots__ = ("ops", "src", "name", "value", "where")

    def __init__(self, op=None, *src: "P", name: str | None = None, value=None, where: Callable | None = None):
        self.ops = None if op is None else (op if isinstance(op, tuple) else (op,))
        self.src = src or None
        self.name = name
        self.value = value
        self.where = where

    @staticmethod
    def var(name: str, where: Callable | None = None) -> "P":
        """Matches any node and binds it to ``name``."""
        return P(None, name=name, where=where)

    @staticmethod
    def const(value=None, name: str | None = None) -> "P":
        """Matches a constant, also one only reshaped by dimshuffle (every element equal to
        ``value`` when given)."""
        return P(None, name=name, value=_ANY if value is None else value, where=lambda n: const_value(n) is not None)

    def match(self, node: Node, bindings: dict) -> bool:
        if self.ops is not None and node.op not in self.ops:
            return False
        if self.value is not None and not _all_equal(node, self.value):
            return False
        if self.name is not None:
            bound = bindings.get(self.name)
            if bound is not None and bound is not node:
                return False
            bindings[self.name] = node
        if self.where is not None and not self.where(node):
            return False
        if self.src is None:
            return True
        if len(self.src) != len(node.src):
            return False
        if _match_all(self.src, node.src, bindings):
            return True
        if node.op.props.get("commutative") and len(node.src) == 2:
            return _match_all(self.src, node.src[::-1], bindings)
        return False


def _match_all(pats, nodes, bindings) -> bool:
    trial = dict(bindings)
    for pat, node in zip(pats, nodes):
        if not pat.match(node, trial):
            return False
    bindings.clear()
    bindings.update(trial)
    return True


_ANY = object()


def const_value(node: Node):
    """The array a constant node holds, looking through dimshuffles; else None."""
    while node.op.name == "dimshuffle":
        node = node.src[0]
    return node.arg.value if node.op is CONSTANT else None


def _all_equal(node: Node, value) -> bool:
    arr = const_value(node)
    if arr is None:
        return False
    return value is _ANY or (arr.size > 0 and bool(np.all(arr == value)))


class Rule:
    """A named local rewrite: when ``pattern`` matches, ``fn(**bindings)`` gives the replacement."""

    __slots__ = ("name", "pattern", "fn")

    def __init__(self, name: str, pattern: P, fn: Callable):
        self.name, self.pattern, self.fn = name, pattern, fn

    def __repr__(self) -> str:
        return f"Rule({self.name})"


class RewriteSet:
    """A named set of rules (canonicalize, stabilize, ...), run together to a fixed point.

    Register rules with the decorators::

        @STABILIZE.rule("local_log1p", P(LOG, P(ADD, P.const(1), P.var("x"))))
        def _(x): return gt.log1p(x)

        @CANONICALIZE.local("local_useless_reshape", RESHAPE)   # fn(node) -> Node | None
        def _(node): ...
    """

    def __init__(self, name: str, doc: str = ""):
        self.name, self.doc = name, doc
        self.rules: list[Rule] = []

    def add(self, rule_: Rule) -> Rule:
        if any(r.name == rule_.name for r in self.rules):
            raise ValueError(f"rewrite set {self.name}: rule {rule_.name!r} is defined twice")
        self.rules.append(rule_)
        return rule_

    def rule(self, name: str, pattern: P) -> Callable:
        return lambda fn: self.add(Rule(name, pattern, fn))

    def local(self, name: str, *ops: OpDef) -> Callable:
        """A rule written as a function of the matched node (any op when ``ops`` is empty)."""
        pattern = P(tuple(ops) if ops else None, name="node")
        return lambda fn: self.add(Rule(name, pattern, fn))

    def names(self) -> list[str]:
        return [r.name for r in self.rules]

    def __repr__(self) -> str:
        return f"RewriteSet({self.name}: {len(self.rules)} rules)"


class PatternMatcher:
    """Rules indexed by root op; ``+`` composes matchers."""

    def __init__(self, rules: Iterable[Rule] = ()):
        self.rules = list(rules)
        self.by_op: dict[OpDef | None, list[Rule]] = {}
        for rule_ in self.rules:
            for op in rule_.pattern.ops or (None,):
                self.by_op.setdefault(op, []).append(rule_)
        self._any = self.by_op.get(None, [])

    def __add__(self, other: "PatternMatcher") -> "PatternMatcher":
        return PatternMatcher(self.rules + other.rules)

    def without(self, names: Iterable[str]) -> "PatternMatcher":
        names = set(names)
        return PatternMatcher(r for r in self.rules if r.name not in names)

    def rewrite(self, node: Node, fired: list | None = None) -> Node | None:
        rules = self.by_op.get(node.op)
        for rule_ in (rules + self._any) if rules else self._any:
            bindings: dict = {}
            if not rule_.pattern.match(node, bindings):
                continue
            with provenance(node.trace):
                new = rule_.fn(**bindings)
            if new is None or new is node:
                continue
            check_replacement(node, new, rule_.name)
            if fired is not None:
                fired.append(rule_.name)
            if config.print_rewrites:
                print(f"rewrite {rule_.name}: {_short(node)} -> {_short(new)}")
            log.debug("rewrite %s: %s -> %s", rule_.name, node.op.name, new.op.name)
            return new
        return None


def _short(node: Node) -> str:
    return f"{node.op.name} {node.type}"


def check_replacement(old: Node, new: Node, reason: str) -> None:
    """A replacement keeps dtype and ndim and never contradicts a static dimension."""
    if not isinstance(new, Node):
        raise TypeError(f"rewrite {reason} returned {type(new).__name__}, not a graph node")
    if new.dtype != old.dtype or new.ndim != old.ndim:
        raise TypeError(f"rewrite {reason} changed {old.type} into {new.type}")
    for a, b in zip(old.type.shape, new.type.shape):
        if a is not None and b is not None and a != b:
            raise TypeError(f"rewrite {reason} changed the static shape {old.type} into {new.type}")


def broadcasts_within(c: Node, *others: Node) -> bool:
    """Whether ``c`` (of the same ndim) broadcasts against ``others`` without making their
    shape bigger: each dimension of ``c`` is 1 or statically equal to one of theirs. Rules
    that drop a constant operand (``x * 1 -> x``, ``log(1 + x) -> log1p(x)``) check this."""
    return all(size == 1 or (size is not None and any(o.type.shape[axis] == size for o in others))
               for axis, size in enumerate(c.type.shape))


def rule(name: str, pattern: P) -> Callable:
    """Decorator form: ``@rule('local_log1p', P(LOG, ...))`` over the replacement function."""
    return lambda fn: Rule(name, pattern, fn)


# a node is rewritten again at once while rules keep firing; rules that keep building new
# nodes (never settling) stop here
MAX_REWRITES_PER_NODE = 64


def _rewrite_node(node: Node, matcher: PatternMatcher, fired, budget: list,
                  stable: set) -> tuple[Node, bool]:
    """Rewrite ``node`` until no rule fires. Nodes are hash-consed, so a rule pair that
    turns a node back into an earlier form returns an identical node: that ends it too.
    Each rewrite spends one unit of the pass's ``budget``. A node on which no rule fires goes
    into ``stable``: rules read only the node and what it is built from, both immutable, so
    no rule of this matcher will fire on it later either."""
    seen = {node}
    current = node
    for _ in range(MAX_REWRITES_PER_NODE):
        if current in stable or budget[0] <= 0:
            break
        budget[0] -= 1
        replacement = matcher.rewrite(current, fired)
        if replacement is None:
            stable.add(current)
            break
        if replacement in seen:
            break
        seen.add(replacement)
        current = replacement
    return current, current is not node


def _fresh_nodes(root: Node, settled: set) -> list[Node]:
    """The nodes under ``root`` that are not settled yet, inputs first (iterative walk)."""
    order: list[Node] = []
    seen: set[Node] = set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node in seen or node in settled or node.is_leaf:
            continue
        if expanded:
            seen.add(node)
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((s, False) for s in node.src if s not in seen and s not in settled)
    return order


def _settle(root: Node, matcher: PatternMatcher, fired, settled: set, budget: list,
            stable: set) -> Node:
    """Rewrite the nodes a replacement built (bottom-up, once each), so that one pass also
    simplifies what a rule produced instead of leaving it to the next pass. ``budget`` (the
    nodes a pass may still settle) stops rules that keep growing the graph."""
    done: dict[Node, Node] = {}
    fresh = _fresh_nodes(root, settled)
    if len(fresh) > budget[0]:
        return root
    budget[0] -= len(fresh)
    for node in fresh:
        src = tuple(done.get(s, s) for s in node.src)
        current = node
        if any(a is not b for a, b in zip(src, node.src)):
            with provenance(node.trace):
                current = make(node.op, src, node.arg)
        current, _ = _rewrite_node(current, matcher, fired, budget, stable)
        done[node] = current
        settled.add(node)
        settled.add(current)
    return done.get(root, root)


def graph_rewrite(outputs: list[Node], matcher: PatternMatcher, max_passes: int = 20,
                  fired: list | None = None) -> list[Node]:
    """Apply ``matcher`` bottom-up over the graph until nothing changes (at most ``max_passes``)."""
    stable: set[Node] = set()  # nodes no rule fires on (kept across passes)
    for _ in range(max_passes):
        new: dict[int, Node] = {}
        settled: set[Node] = set()
        changed = False
        order = toposort(outputs)
        # rewrites plus nodes settled in this pass: rules that keep growing the graph stop here
        budget = [8 * len(order) + 1000]
        for node in order:
            settled.add(node)
            if node.is_leaf:
                continue
            src = tuple(new.get(id(s), s) for s in node.src)
            current = node
            if any(a is not b for a, b in zip(src, node.src)):
                with provenance(node.trace):
                    current = make(node.op, src, node.arg)
            current, rewritten = _rewrite_node(current, matcher, fired, budget, stable)
            if rewritten:
                changed = True
                current = _settle(current, matcher, fired, settled, budget, stable)
            settled.add(current)
            if current is not node:
                new[id(node)] = current
        outputs = [new.get(id(o), o) for o in outputs]
        if not changed:
            return outputs
    log.warning("rewriting stopped after %d passes without reaching a fixed point "
                "(a rule keeps firing: see config.print_rewrites)", max_passes)
    return outputs
