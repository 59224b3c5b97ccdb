"""Graph rewriting: named rewrite sets run in phases (see ``pipeline``).

``describe()`` lists every phase, set and rule; ``Mode(...).excluding(name)`` leaves one out.
"""

from __future__ import annotations

from .pattern import P, PatternMatcher, RewriteSet, Rule, graph_rewrite
from .pipeline import MODE_PHASES, PHASES, Mode, as_mode, rewrite_sets

__all__ = ["P", "PatternMatcher", "RewriteSet", "Rule", "graph_rewrite", "Mode", "as_mode",
           "rewrite_graph", "describe", "PHASES", "MODE_PHASES"]


def rewrite_graph(fgraph, mode) -> None:
    """Rewrite ``fgraph`` in place for ``mode`` (a Mode or a mode's name)."""
    from .pipeline import run_pipeline

    run_pipeline(fgraph, as_mode(mode))


def describe() -> str:
    """The phases of each mode and the rules of each set, as text."""
    lines = [f"{name}: {', '.join(phases)}" for name, phases in MODE_PHASES.items()]
    for set_ in rewrite_sets().values():
        lines.append(f"\n[{set_.name}] {set_.doc}")
        lines.extend(f"  {r}" for r in set_.names())
    return "\n".join(lines)
