"""The named rewrite sets. Each rule lives in the module of its set; ``SETS`` finds them."""

from __future__ import annotations

from .pattern import RewriteSet

CANONICALIZE = RewriteSet("canonicalize", "one spelling per computation (neutral elements, merged shape ops)")
CONSTANT_FOLDING = RewriteSet("constant_folding", "nodes whose inputs are all constants become constants")
SHAPE = RewriteSet("shape", "shapes computed from the inputs' shapes, without running the graph")
STABILIZE = RewriteSet("stabilize", "numerically safe forms of naive formulas")
SPECIALIZE = RewriteSet("specialize", "cheaper equivalents of general ops")

SETS: dict[str, RewriteSet] = {s.name: s for s in (CANONICALIZE, CONSTANT_FOLDING, SHAPE, STABILIZE, SPECIALIZE)}
