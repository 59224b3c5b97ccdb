"""Graph rewriting (the phases are in ``pipeline``)."""

from __future__ import annotations


def rewrite_graph(fgraph, mode: str) -> None:
    """Rewrite ``fgraph`` in place for ``mode``. The reference mode runs the graph as built."""
    from .pipeline import run_pipeline

    run_pipeline(fgraph, mode)
