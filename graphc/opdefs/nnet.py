"""Neural-network ops: softmax and log_softmax over axes, the one_hot mask that picks
class labels without advanced indexing, and crossentropy_softmax, the fused loss the
stabilize rewrites produce from ``categorical_crossentropy(softmax(x), labels)``.

``softmax`` and ``log_softmax`` are distinct ops (not composites) so that rewrites can
recognise them, e.g. ``log(softmax(x)) -> log_softmax(x)``. Their references subtract the
maximum first, so logits of +-1000 give finite results.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import CONSTANT, Node, make
from ..ir.op import OTHER, defop
from ..ir.provenance import user_trace
from ..ir.types import FLOAT_DTYPES, INT_DTYPES, TensorType, as_dtype, float_of, is_float
from .common import as_tensor, broadcast_static, normalize_axes, shape_entry
from .elementwise import cast

__all__ = ["softmax", "log_softmax", "one_hot", "embedding", "crossentropy_softmax"]


def _g():
    import graphc.tensor as gt

    return gt


# --- softmax / log_softmax ---------------------------------------------------------------------

def _normalizer_infer(types, axes):
    (x,) = types
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype {x.dtype} is not supported (supported: {', '.join(FLOAT_DTYPES)})")
    if x.ndim == 0:
        raise TypeError("needs an input of at least one dimension, got a scalar")
    if not axes or any(not 0 <= a < x.ndim for a in axes):
        raise ValueError(f"axes {axes} out of range for a {x.ndim}-d input")
    return x


def _shifted(x: np.ndarray, axes: tuple) -> np.ndarray:
    """``x`` minus its maximum over ``axes`` (non-finite maxima are left unsubtracted)."""
    m = np.max(x, axis=axes, keepdims=True)
    return x - np.where(np.isfinite(m), m, 0)


def _softmax_ref(axes, x):
    if x.size == 0:
        return np.empty_like(x)
    e = np.exp(_shifted(x, axes))
    return (e / np.sum(e, axis=axes, keepdims=True)).astype(x.dtype, copy=False)


def _log_softmax_ref(axes, x):
    if x.size == 0:
        return np.empty_like(x)
    s = _shifted(x, axes)
    return (s - np.log(np.sum(np.exp(s), axis=axes, keepdims=True))).astype(x.dtype, copy=False)


def _softmax_grad(node, g):
    # d softmax: (g - sum(g * sm)) * sm, the sum over the normalised axes
    axes = node.arg
    return ((g - _g().sum(g * node, axes, keepdims=True)) * node,)


def _log_softmax_grad(node, g):
    # d log_softmax: g - softmax * sum(g), with softmax = exp(out)
    axes = node.arg
    return (g - _g().exp(node) * _g().sum(g, axes, keepdims=True),)


# over the last axis: a native row kernel on the CPU backend (codegen/rows.py)
SOFTMAX = defop("softmax", OTHER, _normalizer_infer, ref=_softmax_ref,
                shape=lambda node, s: s[0], grad=_softmax_grad, props={"kernel": "rows"})
LOG_SOFTMAX = defop("log_softmax", OTHER, _normalizer_infer, ref=_log_softmax_ref,
                    shape=lambda node, s: s[0], grad=_log_softmax_grad, props={"kernel": "rows"})


def _normalizer(op, x, axis) -> Node:
    x = as_tensor(x)
    if x.ndim == 0:
        raise TypeError(f"{op.name}: needs an input of at least one dimension, "
                        f"got a scalar ({x.type})")
    if not is_float(x.dtype):
        x = cast(x, float_of(x.dtype))
    return make(op, (x,), normalize_axes(axis, x.ndim, op.name))


def softmax(x, axis=-1) -> Node:
    """``exp(x) / sum(exp(x), axis)``, computed stably; ``axis`` is an int, a tuple or None (all).

    Integer and bool inputs are computed in the float dtype NumPy would use for ``exp``.
    """
    return _normalizer(SOFTMAX, x, axis)


def log_softmax(x, axis=-1) -> Node:
    """``x - logsumexp(x, axis)``, computed stably; finite for logits of any finite size."""
    return _normalizer(LOG_SOFTMAX, x, axis)


# --- one_hot: labels -> a mask over classes ----------------------------------------------------

def _one_hot_infer(types, arg):
    labels, n = types
    dtype, static_n = arg
    if labels.dtype not in INT_DTYPES:
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype}")
    if n.ndim != 0 or n.dtype != "int64":
        raise TypeError(f"the number of classes must be an int64 scalar, got {n}")
    return TensorType(dtype, labels.shape + (static_n,))


def _one_hot_ref(arg, labels, n):
    dtype, _ = arg
    n = int(n)
    if n < 0:
        raise ValueError(f"the number of classes must be non-negative, got {n}")
    _check_label_range(labels, n)
    return (labels[..., None] == np.arange(n)).astype(dtype)


def _one_hot_shape(node, in_shapes):
    static_n = node.arg[1]
    return tuple(in_shapes[0]) + (node.src[1] if static_n is None else static_n,)


ONE_HOT = defop("one_hot", OTHER, _one_hot_infer, ref=_one_hot_ref, shape=_one_hot_shape,
                differentiable=False)


def one_hot(labels, n_classes, dtype="bool") -> Node:
    """A ``labels.shape + (n_classes,)`` array, 1 where the last index equals the label.

    ``labels`` has any integer dtype; a label outside ``[0, n_classes)`` is a run-time error.
    """
    labels = as_tensor(labels)
    n = as_tensor(n_classes)
    if n.dtype in INT_DTYPES and n.dtype != "int64":
        n = cast(n, "int64")
    static_n = int(n.arg.value) if n.op is CONSTANT and n.ndim == 0 and n.dtype == "int64" else None
    if static_n is not None and static_n < 0:
        raise ValueError(f"one_hot: the number of classes must be non-negative, got {static_n}")
    return make(ONE_HOT, (labels, n), (as_dtype(dtype), static_n))


def embedding(weights, indices) -> Node:
    """Rows of ``weights`` at integer ``indices`` of any shape (``weights[indices]``).

    The result has shape ``indices.shape + weights.shape[1:]``; the gradient scatter-adds
    into ``weights`` (repeated indices accumulate). Negative indices count from the end.
    """
    w, idx = as_tensor(weights), as_tensor(indices)
    if idx.dtype not in INT_DTYPES or w.ndim == 0:
        trace = user_trace()
        raise TypeError(f"embedding: needs weights of at least one dimension and integer "
                        f"indices, got {w.type} and {idx.type}"
                        + (f"\n  created at {trace}" if trace else ""))
    return _g().subtensor(w, idx)


# --- crossentropy_softmax: the fused loss of softmax and integer labels ------------------------

def _check_label_range(labels: np.ndarray, n: int) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= n):
        raise ValueError(f"labels must lie in [0, {n}), "
                         f"got values from {labels.min()} to {labels.max()}")


def _xent_infer(types, arg):
    logits, labels = types
    if logits.dtype not in FLOAT_DTYPES:
        raise TypeError(f"logits must have a float dtype ({', '.join(FLOAT_DTYPES)}), "
                        f"got {logits.dtype}")
    if labels.dtype not in INT_DTYPES:
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype}")
    if logits.ndim == 0 or labels.ndim != logits.ndim - 1:
        raise TypeError(f"needs logits of shape [..., classes] and labels with one axis fewer, "
                        f"got {logits.ndim}-d logits and {labels.ndim}-d labels")
    batch = [TensorType(logits.dtype, logits.shape[:-1]), TensorType(logits.dtype, labels.shape)]
    return TensorType(logits.dtype, broadcast_static(batch))


def _xent_ref(arg, logits, labels):
    n = logits.shape[-1]
    _check_label_range(labels, n)
    batch = np.broadcast_shapes(logits.shape[:-1], labels.shape)
    if int(np.prod(batch)) == 0:
        return np.empty(batch, logits.dtype)
    shifted = _shifted(logits, (logits.ndim - 1,))
    lse = np.log(np.sum(np.exp(shifted), axis=-1))
    picked = np.take_along_axis(np.broadcast_to(shifted, batch + (n,)),
                                np.broadcast_to(labels, batch)[..., None].astype(np.intp), -1)
    return (lse - picked[..., 0]).astype(logits.dtype, copy=False)


def _xent_shape(node, in_shapes):
    from .shape import broadcast_dim

    logits, labels = in_shapes
    return tuple(broadcast_dim([a, b]) for a, b in zip(logits[:-1], labels))


def _xent_grad(node, g):
    # d loss / d logits = g * (softmax(logits) - one_hot(labels)), summed over broadcast batch axes
    gt = _g()
    logits, labels = node.src
    mask = one_hot(labels, shape_entry(logits, logits.ndim - 1), logits.dtype)
    grad = gt.expand_dims(g, -1) * (softmax(logits, -1) - mask)
    return gt.sum_to(grad, logits), None


CROSSENTROPY_SOFTMAX = defop("crossentropy_softmax", OTHER, _xent_infer, ref=_xent_ref,
                             shape=_xent_shape, grad=_xent_grad)


def crossentropy_softmax(logits, labels) -> Node:
    """``logsumexp(logits, -1) - logits[..., labels]``: ``-log(softmax(logits))`` at the labels.

    One op, stable for logits of any finite size, with the gradient ``softmax - one_hot``;
    ``labels`` are integer classes with one axis fewer than ``logits``.
    """
    return make(CROSSENTROPY_SOFTMAX, (as_tensor(logits), as_tensor(labels)))
