"""The ordered list of rewrite phases; a mode is a choice of phases.

=================  ===========================================================================
phase              what it does
=================  ===========================================================================
gradient_markers   drops stop_gradient & co. (identities once differentiation is done)
canonicalize       one spelling per computation: neutral elements, double negation, folded
                   constants, merged dimshuffles/reshapes, shapes computed from shapes
stabilize          the numerically safe form of naive formulas (log1p, logsumexp, ...)
specialize         cheaper equivalents (x**2 -> sqr(x), x / c -> x * (1/c), ...)
fusion             elementwise groups (and a reduction's elementwise input) -> one composite op
inner_graphs       ops that hold a graph (scan's step) get it rewritten by the same mode
inplace            a schedule decision, not a graph rewrite: outputs reuse dead buffers
=================  ===========================================================================

Merging of common subexpressions and identical constants needs no phase: nodes are
hash-consed, so a rewrite that builds a node equal to an existing one gets that node.

``Mode("FAST_RUN").excluding("local_log1p", "fusion")`` leaves out rules or whole phases by
name; ``graphc.function(..., mode=...)`` takes a Mode or a mode's name.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from ..opdefs.gradient_ops import GRAD_CLIP, STOP_GRADIENT, ZERO_GRAD
from .pattern import PatternMatcher, RewriteSet, graph_rewrite

_GRADIENT_MARKERS = (STOP_GRADIENT, ZERO_GRAD, GRAD_CLIP)

MODE_NAMES = ("FAST_RUN", "FAST_COMPILE", "reference")


def remove_gradient_markers(fgraph, exclude: frozenset) -> None:
    """stop_gradient & co. are identities once differentiation is done."""
    mapping = {n: n.src[0] for n in fgraph.nodes if n.op in _GRADIENT_MARKERS}
    if mapping:
        # markers may be nested: resolve chains first
        for node, target in list(mapping.items()):
            while target in mapping:
                target = mapping[target]
            mapping[node] = target
        fgraph.replace_all(mapping, "remove_gradient_markers")
        fgraph.fired.extend(["remove_gradient_markers"] * len(mapping))


def set_phase(*set_names: str) -> Callable:
    """A phase that runs the named rewrite sets together to a fixed point."""

    def phase(fgraph, exclude: frozenset) -> None:
        rules = [r for name in set_names if name not in exclude for r in rewrite_sets()[name].rules]
        matcher = PatternMatcher(r for r in rules if r.name not in exclude)
        if matcher.rules:
            fgraph.set_outputs(graph_rewrite(fgraph.outputs, matcher, fired=fgraph.fired), "+".join(set_names))

    phase.__name__ = "+".join(set_names)
    return phase


def _fusion(fgraph, exclude: frozenset) -> None:
    from .fusion import fuse

    fuse(fgraph, exclude)


def rewrite_inner_graphs(fgraph, mode: "Mode") -> None:
    """Ops holding a graph of their own (``props["rewrite_inner"](node, mode) -> (node,
    fired) | None``, e.g. scan) get it rewritten by ``mode``, users first rebuilt on the
    rewritten nodes before them."""
    from ..ir.node import substitute

    mapping: dict = {}
    for node in fgraph.nodes:
        hook = node.op.props.get("rewrite_inner")
        if hook is None:
            continue
        current = substitute([node], mapping)[0] if mapping else node
        done = hook(current, mode)
        if done is not None:
            current, fired = done
            fgraph.fired.extend(fired)
        if current is not node:
            mapping[node] = current
    if mapping:
        fgraph.replace_all(mapping, "inner_graphs")


# phase name -> the function that runs it, in pipeline order
PHASES: dict[str, Callable] = {
    "gradient_markers": remove_gradient_markers,
    "canonicalize": set_phase("canonicalize", "constant_folding", "shape"),
    "stabilize": set_phase("canonicalize", "constant_folding", "stabilize"),
    "specialize": set_phase("constant_folding", "specialize"),
    "fusion": _fusion,
    "inner_graphs": rewrite_inner_graphs,  # called with the Mode (see run_pipeline)
}

MODE_PHASES = {
    "reference": ("gradient_markers",),
    "FAST_COMPILE": ("gradient_markers", "canonicalize", "inner_graphs"),
    "FAST_RUN": ("gradient_markers", "canonicalize", "stabilize", "specialize", "fusion", "inner_graphs",
                 "inplace"),
}


def rewrite_sets() -> dict[str, RewriteSet]:
    """Every named rewrite set (importing the modules that define them)."""
    from . import canonicalize, shapes, specialize, stabilize  # noqa: F401  (they register rules)
    from .registry import SETS

    return SETS


class Mode:
    """Which phases run, minus the rules or phases named in ``exclude``.

    >>> Mode("FAST_RUN").excluding("local_log1p").exclude
    frozenset({'local_log1p'})
    """

    def __init__(self, name: str = "FAST_RUN", exclude: Iterable[str] = ()):
        if name not in MODE_PHASES:
            raise ValueError(f"mode must be one of {MODE_NAMES}, got {name!r}")
        self.name = name
        self.exclude = frozenset(exclude)
        known = set(PHASES) | {"inplace"} | set(rewrite_sets()) | all_rule_names()
        unknown = sorted(self.exclude - known)
        if unknown:
            raise ValueError(f"Mode: no rewrite or phase named {', '.join(map(repr, unknown))} "
                             "(list them with graphc.rewrite.describe())")

    def excluding(self, *names: str) -> "Mode":
        return Mode(self.name, self.exclude | set(names))

    @property
    def phases(self) -> tuple[str, ...]:
        return tuple(p for p in MODE_PHASES[self.name] if p not in self.exclude)

    @property
    def inplace(self) -> bool:
        return "inplace" in self.phases

    def __eq__(self, other) -> bool:
        # a mode without exclusions equals its name: ``f.mode == "FAST_RUN"``
        if isinstance(other, str):
            return not self.exclude and self.name == other
        return isinstance(other, Mode) and (self.name, self.exclude) == (other.name, other.exclude)

    def __hash__(self) -> int:
        return hash(self.name) if not self.exclude else hash((self.name, self.exclude))

    def __repr__(self) -> str:
        extra = f", exclude={sorted(self.exclude)}" if self.exclude else ""
        return f"Mode({self.name!r}{extra})"


def as_mode(mode) -> Mode:
    if isinstance(mode, Mode):
        return mode
    if isinstance(mode, str):
        return Mode(mode)
    raise TypeError(f"mode must be a Mode or one of {MODE_NAMES}, got {mode!r}")


def all_rule_names() -> set[str]:
    return {r.name for s in rewrite_sets().values() for r in s.rules}


def run_pipeline(fgraph, mode: Mode) -> None:
    """Run ``mode``'s phases over ``fgraph``; timings go to ``fgraph.phase_times``."""
    for name in mode.phases:
        if name == "inplace":  # decided when the schedule is built
            continue
        start = time.perf_counter()
        PHASES[name](fgraph, mode if name == "inner_graphs" else mode.exclude)
        fgraph.phase_times[name] = time.perf_counter() - start
