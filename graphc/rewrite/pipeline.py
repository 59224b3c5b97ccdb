"""The ordered list of rewrite phases; a mode is a choice of phases."""

from __future__ import annotations

from ..opdefs.gradient_ops import GRAD_CLIP, STOP_GRADIENT, ZERO_GRAD

_GRADIENT_MARKERS = (STOP_GRADIENT, ZERO_GRAD, GRAD_CLIP)


def remove_gradient_markers(fgraph) -> None:
    """stop_gradient & co. are identities once differentiation is done."""
    mapping = {n: n.src[0] for n in fgraph.nodes if n.op in _GRADIENT_MARKERS}
    if mapping:
        # markers may be nested: resolve chains first
        for node, target in list(mapping.items()):
            while target in mapping:
                target = mapping[target]
            mapping[node] = target
        fgraph.replace_all(mapping, "remove_gradient_markers")


PHASES = {
    "reference": [remove_gradient_markers],
    "FAST_COMPILE": [remove_gradient_markers],
    "FAST_RUN": [remove_gradient_markers],
}


def run_pipeline(fgraph, mode: str) -> None:
    for phase in PHASES[mode]:
        phase(fgraph)
