"""``compile_model`` (training, evaluation and prediction functions of a layer) and ``fit``,
the minibatch training loop with a one-line-per-epoch progress display."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import tensor as gt
from ..compile import Function, function
from .init import as_rng
from .layers import Layer
from .losses import get_loss
from .optimizers import adam, get_optimizer

__all__ = ["Model", "compile_model", "fit"]


@dataclass
class Model:
    """The compiled functions of a layer: ``train(x, y) -> [loss, outputs]`` (one optimiser
    step), ``evaluate(x, y) -> [loss, outputs]`` and ``predict(x) -> outputs`` (inference)."""

    layer: Layer
    train: Function
    evaluate: Function
    predict: Function


def _symbolic_like(value: np.ndarray, name: str):
    return gt.tensor(value.dtype.name, shape=(None,) * value.ndim, name=name)


def compile_model(layer: Layer, x_example, y_example, loss="categorical_crossentropy",
                  optimizer=adam, from_logits: bool = True, mode=None) -> Model:
    """Compile ``layer`` for inputs and targets like ``x_example`` and ``y_example`` (their dtype
    and ndim are used).

    ``loss`` is a callable ``(outputs, targets) -> scalar`` or a name from ``graphc.nn.losses``
    (crossentropies take the outputs as logits unless ``from_logits=False``); ``optimizer`` a
    callable ``(loss, params) -> updates`` or a name. Layer state updates (batch-norm statistics)
    run with every training step.
    """
    x = _symbolic_like(np.asarray(x_example), "x")
    y = _symbolic_like(np.asarray(y_example), "y")
    loss_fn, optimizer = get_loss(loss, from_logits), get_optimizer(optimizer)
    train_out = layer(x, training=True)
    cost = loss_fn(train_out, y)
    updates = optimizer(cost, layer.params) + layer.updates
    train = function([x, y], [cost, train_out], updates=updates, mode=mode, name="train")
    test_out = layer(x, training=False)
    evaluate = function([x, y], [loss_fn(test_out, y), test_out], mode=mode, name="evaluate")
    predict = function([x], test_out, mode=mode, name="predict")
    return Model(layer, train, evaluate, predict)


def _n_correct(outputs, targets) -> int | None:
    """Correct classifications in a batch: class scores against integer labels or one-hot rows;
    None when the outputs are not class scores."""
    outputs, targets = np.asarray(outputs), np.asarray(targets)
    if outputs.ndim == targets.ndim + 1 and targets.dtype.kind in "iu":
        return int(np.sum(np.argmax(outputs, axis=-1) == targets))
    if outputs.shape == targets.shape and outputs.ndim >= 2 and outputs.shape[-1] > 1:
        return int(np.sum(np.argmax(outputs, axis=-1) == np.argmax(targets, axis=-1)))
    return None


def _run_batches(step: Callable, x, y, batch_size: int, order, report=None) -> dict:
    """Call ``step`` on each batch; the example-weighted mean loss and the accuracy."""
    total_loss, correct, seen = 0.0, 0, 0
    n_batches = (len(order) + batch_size - 1) // batch_size
    for i in range(n_batches):
        batch = order[i * batch_size:(i + 1) * batch_size]
        result = step(x[batch], y[batch])
        if isinstance(result, (list, tuple)):
            loss, outputs = result[0], (result[1] if len(result) > 1 else None)
        else:
            loss, outputs = result, None
        total_loss += float(loss) * len(batch)
        seen += len(batch)
        hits = None if outputs is None or correct is None else _n_correct(outputs, y[batch])
        correct = None if hits is None else correct + hits
        if report is not None:
            report(i + 1, n_batches, total_loss / seen)
    metrics = {"loss": total_loss / max(seen, 1)}
    if correct is not None and seen:
        metrics["accuracy"] = correct / seen
    return metrics


class _Progress:
    """One line per epoch, redrawn in place (``\\r``) while the epoch runs."""

    def __init__(self, epochs: int, file, interval: float = 0.1):
        self.epochs, self.file, self.interval = epochs, file, interval
        self.width, self.last = 0, 0.0

    def _write(self, text: str, end: str = "") -> None:
        self.file.write("\r" + text.ljust(self.width) + end)
        self.width = 0 if end else len(text)
        self.file.flush()

    def batch(self, epoch: int, done: int, total: int, loss: float) -> None:
        now = time.perf_counter()
        if done < total and now - self.last < self.interval:
            return
        self.last = now
        filled = int(20 * done / total)
        bar = "=" * filled + (">" if filled < 20 else "") + " " * (19 - filled)
        self._write(f"epoch {epoch}/{self.epochs} [{bar}] {done}/{total} loss {loss:.4f}")

    def epoch(self, epoch: int, metrics: dict, seconds: float) -> None:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        self._write(f"epoch {epoch}/{self.epochs}  {shown}  ({seconds:.1f} s)", end="\n")


def _check_data(data, what: str):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"fit: {what} must be an (inputs, targets) pair of arrays")
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if len(x) != len(y):
        raise ValueError(f"fit: {what} has {len(x)} inputs but {len(y)} targets")
    return x, y


def fit(model, data, epochs: int = 1, batch_size: int = 32, *, validation_data=None,
        loss="categorical_crossentropy", optimizer=adam, from_logits: bool = True,
        evaluate=None, shuffle: bool = True, rng=None, verbose: bool = True,
        file=None) -> dict:
    """Train for ``epochs`` passes over ``data = (inputs, targets)`` in minibatches.

    ``model`` is a ``Layer`` (compiled here with ``compile_model(loss, optimizer,
    from_logits)``), a ``Model``, or a training function ``train(x, y)`` returning the batch's
    loss or ``[loss, outputs]`` (outputs of class scores give the accuracy); ``evaluate`` is
    then the same kind of function for ``validation_data``. Returns the history: a dict of
    per-epoch lists (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` as available).
    """
    x, y = _check_data(data, "data")
    if int(epochs) < 0 or int(batch_size) < 1:
        raise ValueError(f"fit: needs epochs >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
    if isinstance(model, Layer):
        model = compile_model(model, x[:1], y[:1], loss, optimizer, from_logits)
    if isinstance(model, Model):
        train, evaluate = model.train, evaluate or model.evaluate
    elif callable(model):
        train = model
    else:
        raise TypeError(f"fit: model must be a Layer, a Model or a function, got {model!r}")
    if validation_data is not None:
        x_val, y_val = _check_data(validation_data, "validation_data")
        if evaluate is None:
            raise ValueError("fit: validation_data needs evaluate= (a function (x, y) -> loss)")
    rng = as_rng(rng)
    progress = _Progress(epochs, file or sys.stdout) if verbose else None
    history: dict[str, list] = {}
    for epoch in range(1, int(epochs) + 1):
        start = time.perf_counter()
        order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
        report = (lambda done, total, loss, e=epoch: progress.batch(e, done, total, loss)) \
            if progress else None
        metrics = _run_batches(train, x, y, int(batch_size), order, report)
        if validation_data is not None:
            val = _run_batches(evaluate, x_val, y_val, int(batch_size), np.arange(len(x_val)))
            metrics.update({f"val_{k}": v for k, v in val.items()})
        for key, value in metrics.items():
            history.setdefault(key, []).append(value)
        if progress:
            progress.epoch(epoch, metrics, time.perf_counter() - start)
    return history
