"""Helpers for rewrite tests: compile with and without rewrites, compare graphs and values."""

from __future__ import annotations

import numpy as np

import graphc as gc
from graphc.ir.node import toposort
from graphc.rewrite import Mode
from tests.helpers import assert_matches


def op_names(outputs) -> list[str]:
    """The op names of every non-leaf node of a graph, in topological order."""
    return [n.op.name for n in toposort(outputs) if not n.is_leaf]


def compiled_ops(f) -> list[str]:
    return op_names(f.fgraph.outputs)


NO_FUSION = Mode("FAST_RUN").excluding("fusion")


def check_rewrite(inputs, outputs, values, fired=(), present=(), absent=(), mode="FAST_RUN",
                  exclude=(), exact_dtype=True, rtol=None, fusion=False):
    """Compile ``outputs`` with rewrites and without; the rewritten graph must contain the ops
    in ``present``, none of ``absent``, must have fired the rules ``fired``, and must compute
    what the unrewritten graph computes. Returns the rewritten function.

    Fusion is left out unless ``fusion=True``, so that the ops stay visible one by one."""
    exclude = tuple(exclude) + (() if fusion or mode != "FAST_RUN" else ("fusion",))
    f = gc.function(inputs, outputs, mode=Mode(mode, exclude), on_unused_input="ignore")
    plain = gc.function(inputs, outputs, mode="reference", on_unused_input="ignore")
    ops = compiled_ops(f)
    for name in fired:
        assert name in f.fgraph.fired, f"rule {name} did not fire; fired: {f.fgraph.fired}"
    for name in present:
        assert name in ops, f"op {name} missing from the rewritten graph {ops}"
    for name in absent:
        assert name not in ops, f"op {name} still in the rewritten graph {ops}"
    got, want = f(*values), plain(*values)
    if not isinstance(got, list):
        got, want = [got], [want]
    for g, w in zip(got, want):
        if rtol is None:
            assert_matches(g, w, exact_dtype=exact_dtype)
        else:
            np.testing.assert_allclose(g, w, rtol=rtol)
    return f
