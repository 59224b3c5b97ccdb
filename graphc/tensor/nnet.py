"""``graphc.tensor.nnet`` (``gt.nnet``): activations, losses, convolution, pooling, batch
normalisation and embeddings for neural networks (Theano's ``tensor.nnet``,
``tensor.signal.pool`` and ``tensor.nnet.bn`` in one namespace).

Losses return one value per example (no mean over the batch), as in Theano; the class axis
is the last one.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node
from ..ir.types import INT_DTYPES, is_float
from ..opdefs.common import as_tensor, shape_entry
from ..opdefs.conv import conv2d, conv2d_grad_input, conv2d_grad_weights, conv2d_transpose
from ..opdefs.elementwise import log, maximum, mul, sigmoid, softplus, switch
from ..opdefs.nnet import crossentropy_softmax, embedding, log_softmax, one_hot, softmax
from ..opdefs.normalization import (
    batch_normalization,
    batch_normalization_test,
    batch_normalization_train,
)
from ..opdefs.pool import max_pool_2d_same_size, pool_2d
from ..opdefs.reduce import sum

__all__ = [
    "batch_normalization",
    "batch_normalization_test",
    "batch_normalization_train",
    "binary_crossentropy",
    "categorical_crossentropy",
    "conv2d",
    "conv2d_grad_input",
    "conv2d_grad_weights",
    "conv2d_transpose",
    "crossentropy_softmax",
    "embedding",
    "log_softmax",
    "max_pool_2d_same_size",
    "one_hot",
    "pool_2d",
    "relu",
    "sigmoid",
    "sigmoid_binary_crossentropy",
    "softmax",
    "softmax_cross_entropy_with_logits",
    "softplus",
]


def relu(x, alpha=0) -> Node:
    """Rectified linear unit: ``x`` where ``x > 0``, else ``alpha * x`` (leaky when alpha != 0)."""
    x = as_tensor(x)
    if not isinstance(alpha, Node) and np.ndim(alpha) == 0 and alpha == 0:
        return maximum(x, 0)
    return switch(x > 0, x, mul(alpha, x))


def _check_labels(labels: Node, dist: Node, fname: str) -> None:
    if labels.ndim != dist.ndim - 1:
        raise ValueError(f"{fname}: integer labels of type {labels.type} need a distribution "
                         f"with one more axis (the classes), got {dist.type}")


def _class_mask(labels: Node, dist: Node) -> Node:
    return one_hot(labels, shape_entry(dist, dist.ndim - 1))


def _as_distribution(x, fname: str) -> Node:
    x = as_tensor(x)
    if not is_float(x.dtype):
        raise TypeError(f"{fname}: expected a float tensor, got {x.type}")
    if x.ndim == 0:
        raise TypeError(f"{fname}: expected at least one axis (the classes), got a scalar")
    return x


def categorical_crossentropy(coding_dist, true_dist) -> Node:
    """Cross-entropy between predicted class probabilities and the true classes, per example.

    ``true_dist`` is either integer labels (one axis fewer than ``coding_dist``), giving
    ``-log(coding_dist[i, labels[i]])``, or a distribution shaped like ``coding_dist``,
    giving ``-sum(true_dist * log(coding_dist), axis=-1)``.
    """
    coding = _as_distribution(coding_dist, "categorical_crossentropy")
    true = as_tensor(true_dist)
    if true.dtype in INT_DTYPES:
        _check_labels(true, coding, "categorical_crossentropy")
        picked = sum(switch(_class_mask(true, coding), coding, 0), axis=-1)
        return -log(picked)
    return -sum(true * log(coding), axis=-1)


def softmax_cross_entropy_with_logits(logits, labels) -> Node:
    """``categorical_crossentropy(softmax(logits), labels)`` computed from ``log_softmax``.

    Stable for logits of any finite size; ``labels`` are integer classes or a distribution.
    """
    logits = _as_distribution(logits, "softmax_cross_entropy_with_logits")
    labels = as_tensor(labels)
    log_p = log_softmax(logits, axis=-1)
    if labels.dtype in INT_DTYPES:
        _check_labels(labels, logits, "softmax_cross_entropy_with_logits")
        return -sum(switch(_class_mask(labels, logits), log_p, 0), axis=-1)
    return -sum(labels * log_p, axis=-1)


def binary_crossentropy(output, target) -> Node:
    """``-(target * log(output) + (1 - target) * log(1 - output))``, elementwise.

    ``output`` holds probabilities; prefer ``sigmoid_binary_crossentropy`` on logits.
    """
    output, target = as_tensor(output), as_tensor(target)
    return -(target * log(output) + (1.0 - target) * log(1.0 - output))


def sigmoid_binary_crossentropy(logits, target) -> Node:
    """``binary_crossentropy(sigmoid(logits), target)`` computed stably from the logits."""
    logits, target = as_tensor(logits), as_tensor(target)
    return target * softplus(-logits) + (1.0 - target) * softplus(logits)
