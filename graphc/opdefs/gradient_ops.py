"""Identity ops that only change how gradients flow: stop_gradient, zero_grad, grad_clip.

They compute nothing (the reference returns its input); the rewrite phases drop them
from compiled graphs once differentiation is done.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, make
from ..ir.op import OTHER, defop
from .common import as_tensor


def _g():
    import graphc.tensor as gt

    return gt


def _same_type(types, arg):
    return types[0]


def _identity(arg, x, *rest):
    return x


STOP_GRADIENT = defop("stop_gradient", OTHER, _same_type, ref=_identity, shape=lambda node, s: s[0],
                      differentiable=False, props=dict(identity=True))
ZERO_GRAD = defop("zero_grad", OTHER, _same_type, ref=_identity, shape=lambda node, s: s[0],
                  grad=lambda node, g: (_g().zeros_like(g),), props=dict(identity=True))
GRAD_CLIP = defop("grad_clip", OTHER, _same_type, ref=_identity, shape=lambda node, s: s[0],
                  grad=lambda node, g: (_g().clip(g, node.src[1], node.src[2]), None, None),
                  props=dict(identity=True))


def stop_gradient(x) -> Node:
    """``x`` in the forward pass; in ``grad`` it is a constant (disconnected)."""
    return make(STOP_GRADIENT, (as_tensor(x),))


disconnected_grad = stop_gradient


def zero_grad(x) -> Node:
    """``x`` in the forward pass; its gradient is zero (but connected, unlike stop_gradient)."""
    return make(ZERO_GRAD, (as_tensor(x),))


def grad_clip(x, lower_bound, upper_bound) -> Node:
    """``x`` in the forward pass; the gradient through it is clipped to the bounds."""
    x = as_tensor(x)
    lo = as_tensor(np.asarray(lower_bound, dtype=x.dtype))
    hi = as_tensor(np.asarray(upper_bound, dtype=x.dtype))
    if lo.ndim or hi.ndim:
        raise ValueError("grad_clip: the bounds must be scalars")
    return make(GRAD_CLIP, (x, lo, hi))
