"""A compiled scan's inner graph rewritten again for the shapes of one call.

Every step of a scan sees inputs of the same shapes (sequence rows, state taps, non-sequences),
and those shapes are known before the first step runs. With them as static shapes, the
rewrites prove what symbolic shapes could not: most of the ``sum_to`` a gradient step is full
of sum nothing and disappear, and the elementwise chains they cut apart fuse into a few
kernels (an LSTM's backward step goes from about twenty kernels to a handful). The rewritten
graph is kept per combination of shapes (a few per scan: a training loop sees one batch size,
perhaps a smaller last one).
"""

from __future__ import annotations

from ..ir.node import new_input, substitute
from ..ir.types import TensorType

MAX_VARIANTS = 8  # shape combinations kept per scan


def leaf_shapes(info, seqs, inits, nonseqs) -> tuple:
    """The shape each inner leaf has at every step of this call."""
    shapes = [s.shape[1:] for s in seqs]
    for j, init in zip(info.tap_states, inits):
        shapes.extend([init.shape[1:]] * len(info.taps[j]))
    return tuple(shapes) + tuple(x.shape for x in nonseqs)


def specialized(info, shapes: tuple):
    """``info`` with its inner graph rewritten for inner leaves of ``shapes`` (``info`` itself
    when nothing is gained or the rewrite fails: the call then runs the general graph)."""
    variants = info.variants
    found = variants.get(shapes)
    if found is None:
        found = _rewrite_for(info, shapes)
        if len(variants) >= MAX_VARIANTS:
            variants.clear()
        variants[shapes] = found
    return found


def _rewrite_for(info, shapes: tuple):
    from ..ir.graph import FunctionGraph
    from ..rewrite.pipeline import Mode, run_pipeline

    leaves = []
    for leaf, shape in zip(info.inputs, shapes):
        static = leaf.type.shape
        if len(shape) != len(static) or any(s is not None and s != n for s, n in zip(static, shape)):
            return info  # a value that does not fit: the general graph raises the error
        leaves.append(new_input(TensorType(leaf.dtype, tuple(shape)), leaf.name))
    if all(leaf.type.shape == new.type.shape for leaf, new in zip(info.inputs, leaves)):
        return info
    try:
        outputs = substitute(list(info.outputs), dict(zip(info.inputs, leaves)))
        fgraph = FunctionGraph(leaves, outputs)
        run_pipeline(fgraph, Mode("FAST_RUN", info.exclude))
        return info.replace(inputs=tuple(leaves), outputs=tuple(fgraph.outputs))
    except (TypeError, ValueError):  # a step the static shapes contradict: it raises at run time
        return info
