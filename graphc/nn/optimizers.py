"""Optimisers: ``opt(loss_or_grads, params, ...) -> updates``, a list of ``(shared, new)`` pairs
to give to ``graphc.function(updates=...)``.

``loss_or_grads`` is a scalar loss (differentiated with ``graphc.grad``) or the list of
gradients. Every optimiser takes ``clip_norm=`` (rescale all gradients together so that their
global L2 norm is at most ``clip_norm``) and ``clip_value=`` (clip each entry to
``[-clip_value, clip_value]``, after the norm clipping). The learning rate may be a number or a
symbolic scalar (a shared variable, for schedules). Optimiser state (velocities, moments, the
step count) lives in shared variables the optimiser creates.
"""

from __future__ import annotations

import numpy as np

from .. import tensor as gt
from ..compile import shared
from ..ir.node import Node, SharedVariable
from ..ir.types import is_float
from ..opdefs.common import as_tensor

__all__ = ["sgd", "momentum", "nesterov", "adam", "rmsprop", "clip_gradients", "get_optimizer"]


def _check_params(params, fname: str) -> list[SharedVariable]:
    params = list(params)
    if not params:
        raise ValueError(f"{fname}: no parameters to update")
    for p in params:
        if not isinstance(p, SharedVariable):
            raise TypeError(f"{fname}: parameters must be shared variables, got {p!r}")
        if not is_float(p.dtype):
            raise TypeError(f"{fname}: parameter {p.name} has dtype {p.dtype}; only float "
                            "parameters can be trained")
    if len({id(p) for p in params}) != len(params):
        raise ValueError(f"{fname}: a parameter is listed twice")
    return params


def _gradients(loss_or_grads, params, fname: str) -> list[Node]:
    if isinstance(loss_or_grads, (list, tuple)):
        grads = [as_tensor(g) for g in loss_or_grads]
        if len(grads) != len(params):
            raise ValueError(f"{fname}: got {len(grads)} gradients for {len(params)} parameters")
        for g, p in zip(grads, params):
            if g.ndim != p.ndim:
                raise ValueError(f"{fname}: the gradient of {p.name} has type {g.type}, "
                                 f"the parameter {p.type}")
        return grads
    from ..autodiff import grad

    return grad(loss_or_grads, params)


def clip_gradients(grads, clip_norm=None, clip_value=None) -> list[Node]:
    """``grads`` rescaled to a global L2 norm of at most ``clip_norm``, then clipped entrywise to
    ``[-clip_value, clip_value]`` (either may be None)."""
    grads = [as_tensor(g) for g in grads]
    if clip_norm is not None:
        if clip_norm <= 0:
            raise ValueError(f"clip_norm must be positive, got {clip_norm}")
        total = gt.sqrt(sum(gt.cast(gt.sum(gt.sqr(g)), "float64") for g in grads))
        factor = clip_norm / gt.maximum(total, clip_norm)
        grads = [g * gt.cast(factor, g.dtype) for g in grads]
    if clip_value is not None:
        if clip_value <= 0:
            raise ValueError(f"clip_value must be positive, got {clip_value}")
        grads = [gt.clip(g, -clip_value, clip_value) for g in grads]
    return grads


def _prepare(loss_or_grads, params, clip_norm, clip_value, fname):
    params = _check_params(params, fname)
    grads = clip_gradients(_gradients(loss_or_grads, params, fname), clip_norm, clip_value)
    return params, grads


def _rate(value, dtype: str):
    """A hyper-parameter in the parameter's dtype (numbers stay weak Python floats)."""
    if isinstance(value, Node):
        return gt.cast(value, dtype)
    return float(value)


def _slot(param: SharedVariable, what: str, fill: float = 0.0) -> SharedVariable:
    value = param.get_value(borrow=True)
    return shared(np.full(value.shape, fill, value.dtype), name=f"{param.name}.{what}")


def _update(param: SharedVariable, new: Node) -> tuple[SharedVariable, Node]:
    return param, (new if new.dtype == param.dtype else gt.cast(new, param.dtype))


def sgd(loss_or_grads, params, learning_rate=0.01, clip_norm=None, clip_value=None):
    """Stochastic gradient descent: ``p <- p - learning_rate * g``."""
    params, grads = _prepare(loss_or_grads, params, clip_norm, clip_value, "sgd")
    return [_update(p, p - _rate(learning_rate, p.dtype) * g) for p, g in zip(params, grads)]


def momentum(loss_or_grads, params, learning_rate=0.01, momentum=0.9, clip_norm=None,
             clip_value=None):
    """Heavy-ball momentum: ``v <- momentum * v - learning_rate * g``; ``p <- p + v``."""
    params, grads = _prepare(loss_or_grads, params, clip_norm, clip_value, "momentum")
    updates = []
    for p, g in zip(params, grads):
        v = _slot(p, "velocity")
        v_new = _rate(momentum, p.dtype) * v - _rate(learning_rate, p.dtype) * g
        updates += [_update(v, v_new), _update(p, p + v_new)]
    return updates


def nesterov(loss_or_grads, params, learning_rate=0.01, momentum=0.9, clip_norm=None,
             clip_value=None):
    """Nesterov momentum (the Sutskever form): ``v <- momentum * v - learning_rate * g``;
    ``p <- p + momentum * v - learning_rate * g``."""
    params, grads = _prepare(loss_or_grads, params, clip_norm, clip_value, "nesterov")
    updates = []
    for p, g in zip(params, grads):
        v = _slot(p, "velocity")
        mu, lr = _rate(momentum, p.dtype), _rate(learning_rate, p.dtype)
        v_new = mu * v - lr * g
        updates += [_update(v, v_new), _update(p, p + mu * v_new - lr * g)]
    return updates


def rmsprop(loss_or_grads, params, learning_rate=0.001, rho=0.9, epsilon=1e-7, clip_norm=None,
            clip_value=None):
    """RMSProp: ``a <- rho * a + (1 - rho) * g**2``; ``p <- p - learning_rate * g / (sqrt(a) +
    epsilon)``."""
    params, grads = _prepare(loss_or_grads, params, clip_norm, clip_value, "rmsprop")
    updates = []
    for p, g in zip(params, grads):
        acc = _slot(p, "mean_square")
        rho_, eps = _rate(rho, p.dtype), _rate(epsilon, p.dtype)
        acc_new = rho_ * acc + (1.0 - rho_) * gt.sqr(g)
        step = _rate(learning_rate, p.dtype) * g / (gt.sqrt(acc_new) + eps)
        updates += [_update(acc, acc_new), _update(p, p - step)]
    return updates


def adam(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
         clip_norm=None, clip_value=None):
    """Adam (Kingma & Ba): with the step count ``t``, ``m <- beta1 m + (1 - beta1) g``,
    ``v <- beta2 v + (1 - beta2) g**2``, ``p <- p - lr_t m / (sqrt(v) + epsilon)`` where
    ``lr_t = learning_rate sqrt(1 - beta2**t) / (1 - beta1**t)``."""
    params, grads = _prepare(loss_or_grads, params, clip_norm, clip_value, "adam")
    t = shared(np.int64(0), name="adam.t")
    t_new = t + 1
    correction = gt.sqrt(1.0 - beta2 ** t_new) / (1.0 - beta1 ** t_new)  # float64
    updates = [(t, t_new)]
    for p, g in zip(params, grads):
        m, v = _slot(p, "m"), _slot(p, "v")
        b1, b2 = _rate(beta1, p.dtype), _rate(beta2, p.dtype)
        m_new = b1 * m + (1.0 - b1) * g
        v_new = b2 * v + (1.0 - b2) * gt.sqr(g)
        lr_t = _rate(learning_rate, p.dtype) * gt.cast(correction, p.dtype)
        step = lr_t * m_new / (gt.sqrt(v_new) + _rate(epsilon, p.dtype))
        updates += [_update(m, m_new), _update(v, v_new), _update(p, p - step)]
    return updates


_BY_NAME = {fn.__name__: fn for fn in (sgd, momentum, nesterov, adam, rmsprop)}


def get_optimizer(optimizer):
    """An optimiser ``fn(loss, params) -> updates`` from a callable or a name (its defaults)."""
    if callable(optimizer):
        return optimizer
    if optimizer not in _BY_NAME:
        raise ValueError(f"unknown optimiser {optimizer!r} (known: {', '.join(_BY_NAME)})")
    return _BY_NAME[optimizer]
