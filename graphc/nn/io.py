"""Saving and loading the shared variables of layers as ``.npz`` files.

Names come from ``Layer.variables()`` (``"W"``, ``"0.b"``, ...), prefixed by the layer's
index (or key) when a list (or dict) of layers is given, so a model rebuilt by the same code in
another process loads the file. Loading checks every name and shape before changing anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .layers import Layer

__all__ = ["save_params", "load_params"]


def _variables(layers) -> dict:
    if isinstance(layers, Layer):
        return layers.variables()
    if isinstance(layers, dict):
        items = list(layers.items())
    elif isinstance(layers, (list, tuple)):
        items = [(str(i), layer) for i, layer in enumerate(layers)]
    else:
        raise TypeError(f"expected a Layer, a list or a dict of layers, "
                        f"got {type(layers).__name__}")
    out = {}
    for key, layer in items:
        if not isinstance(layer, Layer):
            raise TypeError(f"item {key!r} is not a Layer, got {layer!r}")
        out.update({f"{key}.{name}": var for name, var in layer.variables().items()})
    return out


def save_params(path, layers) -> Path:
    """Write every shared variable of ``layers`` (a Layer, a list or a dict of them) to ``path``
    (``.npz``, added when missing); returns the path written."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = {name: var.get_value(borrow=True) for name, var in _variables(layers).items()}
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_params(path, layers) -> None:
    """Set the shared variables of ``layers`` from a file written by ``save_params``.

    Raises ``ValueError`` naming the file and the variables when names are missing or
    unexpected or a shape differs, ``TypeError`` when a dtype cannot be cast to the
    variable's; nothing is changed unless every variable fits.
    """
    variables = _variables(layers)
    with np.load(path, allow_pickle=False) as data:
        stored = {name: data[name] for name in data.files}
    missing = sorted(set(variables) - set(stored))
    unexpected = sorted(set(stored) - set(variables))
    if missing or unexpected:
        raise ValueError(f"load_params: {path} does not match the layers: "
                         f"missing {missing or 'nothing'}, unexpected {unexpected or 'nothing'}")
    values = {}
    for name, var in variables.items():
        value = stored[name]
        expected = var.get_value(borrow=True)
        if value.shape != expected.shape:
            raise ValueError(f"load_params: {name} ({var.name}) has shape {value.shape} in {path}, "
                             f"the layer expects {expected.shape}")
        if not np.can_cast(value.dtype, expected.dtype, "same_kind"):
            raise TypeError(f"load_params: {name} ({var.name}) is {value.dtype} in {path}, "
                            f"which cannot be cast to the layer's {expected.dtype}")
        values[name] = value.astype(expected.dtype, copy=False)
    for name, var in variables.items():
        var.set_value(values[name])
