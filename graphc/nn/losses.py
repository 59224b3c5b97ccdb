"""Losses: ``loss(predictions, targets, ..., reduction="mean") -> scalar``.

``reduction`` is ``"mean"`` (the default), ``"sum"`` or ``"none"`` (one value per example for
the categorical loss, per element for the others). Integer targets are class labels.
"""

from __future__ import annotations

from .. import tensor as gt
from ..ir.node import Node
from ..ir.types import INT_DTYPES, is_float
from ..opdefs.common import as_tensor

__all__ = ["categorical_crossentropy", "binary_crossentropy", "mse", "get_loss"]


def _reduce(values: Node, reduction: str, fname: str) -> Node:
    if reduction == "mean":
        return gt.mean(values)
    if reduction == "sum":
        return gt.sum(values)
    if reduction == "none":
        return values
    raise ValueError(f"{fname}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _float_predictions(predictions, fname: str) -> Node:
    predictions = as_tensor(predictions)
    if not is_float(predictions.dtype):
        raise TypeError(f"{fname}: predictions must be floats, got {predictions.type}")
    return predictions


def categorical_crossentropy(predictions, targets, from_logits: bool = False,
                             reduction: str = "mean") -> Node:
    """Cross-entropy of class ``targets`` under ``predictions`` (class axis last).

    ``predictions`` are probabilities, or unnormalised scores when ``from_logits`` (computed
    stably through ``log_softmax``). ``targets`` are integer labels (one axis fewer) or a
    distribution shaped like ``predictions``.
    """
    fname = "categorical_crossentropy"
    predictions, targets = _float_predictions(predictions, fname), as_tensor(targets)
    if targets.dtype in INT_DTYPES:
        if targets.ndim != predictions.ndim - 1:
            raise ValueError(f"{fname}: integer labels {targets.type} need predictions with one "
                             f"more axis (the classes), got {predictions.type}")
        per_example = (gt.nnet.crossentropy_softmax(predictions, targets) if from_logits
                       else gt.nnet.categorical_crossentropy(predictions, targets))
    else:
        if targets.ndim != predictions.ndim:
            raise ValueError(f"{fname}: target distributions {targets.type} must have the "
                             f"predictions' shape {predictions.type}")
        per_example = (gt.nnet.softmax_cross_entropy_with_logits(predictions, targets)
                       if from_logits else gt.nnet.categorical_crossentropy(predictions, targets))
    return _reduce(per_example, reduction, fname)


def binary_crossentropy(predictions, targets, from_logits: bool = False,
                        reduction: str = "mean") -> Node:
    """``-(t log p + (1 - t) log(1 - p))`` per element; ``from_logits`` takes ``p = sigmoid(x)``
    and computes it stably from ``x``."""
    fname = "binary_crossentropy"
    predictions = _float_predictions(predictions, fname)
    targets = gt.cast(as_tensor(targets), predictions.dtype)
    values = (gt.nnet.sigmoid_binary_crossentropy(predictions, targets) if from_logits
              else gt.nnet.binary_crossentropy(predictions, targets))
    return _reduce(values, reduction, fname)


def mse(predictions, targets, reduction: str = "mean") -> Node:
    """Squared error ``(predictions - targets) ** 2``, averaged by default."""
    predictions = _float_predictions(predictions, "mse")
    targets = as_tensor(targets)
    if not is_float(targets.dtype):
        targets = gt.cast(targets, predictions.dtype)
    return _reduce(gt.sqr(predictions - targets), reduction, "mse")


_BY_NAME = {"categorical_crossentropy": categorical_crossentropy,
            "binary_crossentropy": binary_crossentropy, "mse": mse}


def get_loss(loss, from_logits: bool = False):
    """A loss ``fn(predictions, targets) -> scalar`` from a callable or a name."""
    if callable(loss):
        return loss
    if loss not in _BY_NAME:
        raise ValueError(f"unknown loss {loss!r} (known: {', '.join(_BY_NAME)})")
    fn = _BY_NAME[loss]
    if fn is mse:
        return fn
    return lambda predictions, targets: fn(predictions, targets, from_logits=from_logits)
