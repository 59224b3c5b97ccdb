"""Helpers for the layer tests: compile a layer in a mode, and hand its parameters to
verify_grad as inputs."""

from __future__ import annotations

import numpy as np

import graphc as gc
from graphc.ir.node import substitute
from tests.helpers import symbolic_like

ACTIVATIONS = {
    None: lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "softmax": lambda z: np.exp(z - z.max(-1, keepdims=True))
    / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True),
}


def run_layer(layer, *values, mode="FAST_RUN", training=False, with_updates=False):
    """The layer's output on ``values`` (compiled in ``mode``); with its updates applied when
    ``with_updates``."""
    inputs = [symbolic_like(np.asarray(v), f"in{i}") for i, v in enumerate(values)]
    out = layer(*inputs, training=training)
    updates = layer.updates if with_updates else None
    return gc.function(inputs, out, mode=mode, updates=updates)(*values)


def params_as_inputs(layer, training=False, n_inputs=1, constants=()):
    """``fn(*inputs, *params)`` for verify_grad: the layer's output with its trainable
    parameters replaced by the symbolic arguments after the first ``n_inputs``; ``constants``
    are extra non-differentiated inputs passed to the layer first."""
    def fn(*args):
        inputs, params = args[:n_inputs], args[n_inputs:]
        out = layer(*constants, *inputs, training=training)
        return substitute([out], dict(zip(layer.params, params)))[0]

    return fn


def param_values(layer):
    return [p.get_value() for p in layer.params]
