"""Inner-graph transformations that move work out of the step loop.

- ``push_out_sequences``: a computation that reads only sequence rows and loop-invariant
  values (``x_t @ W``, ``x_t * c + b``) is done once, on the whole sequences, before the
  loop: the step then reads its row like any sequence. One large matrix product replaces
  ``T`` small ones, and the gradient of ``W`` becomes one product after the backward loop.
- ``shape_only_likes``: ``sum_to(g, like)`` reads only the shape of ``like``; in a backward
  step ``like`` is often a forward intermediate that nothing else needs, so it is replaced by
  a zero-stride array of the same shape (whose size the shape rules compute from the
  inputs' sizes), and the forward work is not redone.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, constant, make, new_input, toposort
from ..ir.op import ELEMWISE
from ..ir.provenance import provenance

_MATMUL = "matmul"


def _gt():
    import graphc.tensor as gt

    return gt


def push_out_sequences(outputs: list, seq_leaves: list, seqs: list, invariant: dict):
    """Move row-wise work on sequences out of the loop.

    ``invariant`` maps inner leaves that are the same at every step to their outer value.
    Returns ``(outputs, new_seq_leaves, new_seqs)``; the new sequences are outer nodes of the
    same length as ``seqs``.
    """
    outer: dict[Node, Node] = dict(zip(seq_leaves, seqs))  # time-carrying inner node -> stacked
    constant_like: dict[Node, Node] = dict(invariant)    # invariant inner node -> outer node
    order = toposort(outputs)
    for node in order:
        if node in outer or node in constant_like:
            continue
        if node.is_leaf:
            if node.op.name == "constant":
                constant_like[node] = node
            continue
        if all(s in constant_like for s in node.src):
            with provenance(node.trace):
                constant_like[node] = make(node.op, tuple(constant_like[s] for s in node.src), node.arg)
            continue
        stacked = _stacked(node, outer, constant_like)
        if stacked is not None:
            outer[node] = stacked
    users = {}
    for node in order:
        for s in node.src:
            users.setdefault(s, []).append(node)
    cut = [n for n in order if n in outer and n not in seq_leaves
           and (n in outputs or any(u not in outer for u in users.get(n, ())))]
    if not cut:
        return outputs, [], []
    leaves = [new_input(n.type, n.name) for n in cut]
    from ..ir.node import substitute

    return substitute(outputs, dict(zip(cut, leaves))), leaves, [outer[n] for n in cut]


def _stacked(node: Node, outer: dict, invariant: dict):
    """``node`` computed for every step at once, or None when it is not row-wise."""
    srcs = node.src
    if node.op.kind == ELEMWISE and any(s in outer for s in srcs):
        if not all(s in outer or s in invariant for s in srcs):
            return None
        if any(s in outer and s.ndim != node.ndim for s in srcs):
            return None
        args = [outer[s] if s in outer else _gt().expand_dims(invariant[s], 0) for s in srcs]
        with provenance(node.trace):
            return make(node.op, tuple(args), node.arg)
    if node.op.name == _MATMUL and srcs[0] in outer and srcs[1] in invariant and srcs[1].ndim == 2 \
            and srcs[0].ndim in (1, 2):
        with provenance(node.trace):
            return make(node.op, (outer[srcs[0]], invariant[srcs[1]]), node.arg)
    return None


def shape_only_likes(outputs: list) -> list:
    """``outputs`` with the ``like`` input of every ``sum_to`` that is not a leaf replaced by a
    zero-stride array of its shape."""
    from ..opdefs.reduce import SUM_TO

    gt = _gt()
    new: dict[Node, Node] = {}
    for node in toposort(outputs):
        if node.is_leaf:
            continue
        src = tuple(new.get(s, s) for s in node.src)
        if node.op is SUM_TO and not node.src[1].is_leaf:
            src = (src[0], gt.broadcast_to(constant(np.int8(0)), leaf_shape(node.src[1])))
        if any(a is not b for a, b in zip(src, node.src)):
            with provenance(node.trace):
                new[node] = make(node.op, src, node.arg)
    return [new.get(o, o) for o in outputs]


def leaf_shape(node: Node) -> list:
    """The shape of ``node`` from the shapes of the leaves it is computed from (the shape
    rewrites, ``rewrite/shapes.py``, run over its sizes), so that reading it does not need
    ``node`` itself computed: in a scan step, the shape of a forward intermediate would
    otherwise keep that intermediate (and a product) in the loop or stacked before it."""
    from ..rewrite.pattern import PatternMatcher, graph_rewrite
    from ..rewrite.registry import SHAPE

    gt = _gt()
    unknown = [i for i, s in enumerate(node.type.shape) if s is None]
    sizes = graph_rewrite([gt.shape_i(node, i) for i in unknown], PatternMatcher(SHAPE.rules))
    resolved = dict(zip(unknown, sizes))
    return [resolved.get(i, s) for i, s in enumerate(node.type.shape)]
