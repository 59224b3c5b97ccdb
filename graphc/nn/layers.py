"""Layers: small classes that own shared parameters and build symbolic outputs when called.

``layer(x, training=False)`` returns the output graph of ``x``. ``layer.params`` lists the
trainable shared variables (give them to an optimiser), ``layer.updates`` the non-gradient
state updates made by the latest ``training=True`` call (batch-norm running statistics; pass
them to ``graphc.function(updates=...)`` with the optimiser's), and ``layer.variables()`` every
shared variable by a stable name (what ``save_params`` writes).
"""

from __future__ import annotations

import numpy as np

from .. import tensor as gt
from ..compile import shared
from ..config import config
from ..ir.node import Node, SharedVariable
from ..ir.types import INT_DTYPES
from ..opdefs.common import as_tensor
from . import init as initializers

__all__ = ["Layer", "Dense", "Flatten", "Activation", "Dropout", "Embedding", "Sequential",
           "get_activation"]


def _linear(x):
    return x


_ACTIVATIONS = {
    None: _linear, "linear": _linear, "relu": gt.nnet.relu, "tanh": gt.tanh,
    "sigmoid": gt.sigmoid, "softplus": gt.softplus, "softmax": gt.nnet.softmax,
    "log_softmax": gt.nnet.log_softmax,
}


def get_activation(fn):
    """An activation function from itself (a callable), its name (``"relu"``) or None (identity)."""
    if callable(fn):
        return fn
    if fn in _ACTIVATIONS:
        return _ACTIVATIONS[fn]
    known = ", ".join(k for k in _ACTIVATIONS if k)
    raise ValueError(f"unknown activation {fn!r} (known: {known})")


class Layer:
    """Base class: owns parameters (``add_param``) and sub-layers; subclasses define ``forward``."""

    def __init__(self, name: str | None = None):
        self.name = name or type(self).__name__.lower()
        self._params: dict[str, SharedVariable] = {}
        self._state: dict[str, SharedVariable] = {}
        self._updates: list[tuple[SharedVariable, Node]] = []

    # --- parameters ---------------------------------------------------------------------------
    def add_param(self, key: str, value: np.ndarray, trainable: bool = True) -> SharedVariable:
        """Make ``value`` a shared variable named ``<layer name>.<key>``, kept as ``self.<key>``
        (its shape is static: graphs built from it know their sizes)."""
        value = np.asarray(value)
        var = shared(value, name=f"{self.name}.{key}", shape=value.shape)
        (self._params if trainable else self._state)[key] = var
        setattr(self, key, var)
        return var

    def children(self) -> list[tuple[str, Layer]]:
        """``(key, layer)`` for each sub-layer; containers override this."""
        return []

    @property
    def params(self) -> list[SharedVariable]:
        """The trainable shared variables of this layer and its sub-layers."""
        own = list(self._params.values())
        return own + [p for _, child in self.children() for p in child.params]

    @property
    def updates(self) -> list[tuple[SharedVariable, Node]]:
        """Non-gradient updates of the latest ``training=True`` call, as ``(shared, new)`` pairs."""
        return list(self._updates) + [u for _, child in self.children() for u in child.updates]

    def variables(self) -> dict[str, SharedVariable]:
        """Every shared variable (trainable and state) by a name stable across processes:
        ``"W"`` for this layer's own, ``"<child key>.W"`` for its sub-layers'."""
        out = {**self._params, **self._state}
        for key, child in self.children():
            out.update({f"{key}.{name}": var for name, var in child.variables().items()})
        return out

    def n_params(self) -> int:
        """The number of trainable scalars."""
        return sum(int(p.get_value(borrow=True).size) for p in self.params)

    # --- building -------------------------------------------------------------------------
    def __call__(self, x, training: bool = False) -> Node:
        if not isinstance(training, bool):
            raise TypeError(f"{self.name}: training must be True or False, got {training!r}")
        if training:
            self._updates = []
        return self.forward(x, training)

    def forward(self, x, training: bool) -> Node:
        """The layer's symbolic output for ``x`` (subclasses define it; call the layer instead)."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def add_update(self, var: SharedVariable, new: Node) -> None:
        """Record a state update (made by ``forward`` during a ``training=True`` call)."""
        self._updates.append((var, new))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.n_params()} params>"


def _as_float_input(x, layer: Layer, min_ndim: int = 1) -> Node:
    x = as_tensor(x)
    if x.dtype in INT_DTYPES or x.dtype == "bool":
        raise TypeError(f"{layer.name}: expects a float input, got {x.type}")
    if x.ndim < min_ndim:
        raise TypeError(f"{layer.name}: expects an input of at least {min_ndim} dimensions, "
                        f"got {x.type}")
    return x


def _check_last_dim(x: Node, size: int, layer: Layer, what: str) -> None:
    dim = x.type.shape[-1] if x.ndim else None
    if dim is not None and dim != size:
        raise ValueError(f"{layer.name}: expects {size} {what} on the last axis, got {x.type}")


class Dense(Layer):
    """Fully connected layer ``activation(x @ W + b)``; ``W`` is ``(n_in, n_out)``.

    ``x`` has ``n_in`` features on its last axis (any leading axes are kept).
    """

    def __init__(self, n_in: int, n_out: int, activation=None, init="glorot_uniform",
                 bias: bool = True, rng=None, dtype=None, name: str | None = None):
        super().__init__(name)
        if int(n_in) <= 0 or int(n_out) <= 0:
            raise ValueError(f"{self.name}: n_in and n_out must be positive, got {n_in}, {n_out}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.activation = globals()["get_activation"](activation)
        dtype = dtype or config.floatX
        self.add_param("W", initializers.get(init)((self.n_in, self.n_out), rng, dtype))
        self.b = self.add_param("b", initializers.zeros(self.n_out, dtype=dtype)) if bias else None

    def forward(self, x, training):
        x = _as_float_input(x, self)
        _check_last_dim(x, self.n_in, self, "features")
        y = gt.dot(x, self.W)
        if self.b is not None:
            y = y + self.b
        return self.activation(y)


class Flatten(Layer):
    """Keeps the first ``ndim - 1`` axes and flattens the rest: ``(N, C, H, W) -> (N, C*H*W)``."""

    def __init__(self, ndim: int = 2, name: str | None = None):
        super().__init__(name)
        self.ndim = int(ndim)

    def forward(self, x, training):
        return gt.flatten(as_tensor(x), self.ndim)


class Activation(Layer):
    """An activation function as a layer: ``Activation("relu")``."""

    def __init__(self, fn, name: str | None = None):
        super().__init__(name)
        self.fn = get_activation(fn)

    def forward(self, x, training):
        return self.fn(as_tensor(x))


class Dropout(Layer):
    """Inverted dropout: while training, zero each input with probability ``rate`` and scale the
    rest by ``1 / (1 - rate)``; at inference (``training=False``) the identity.

    The mask comes from a ``graphc.random.RandomStream`` (``seed``), whose state advances
    each time the compiled function runs.
    """

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None):
        super().__init__(name)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{self.name}: rate must lie in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self._stream = None

    def forward(self, x, training):
        x = _as_float_input(x, self, min_ndim=0)
        if not training or self.rate == 0.0:
            return x
        if self._stream is None:
            from ..random import RandomStream

            self._stream = RandomStream(self.seed)
        keep = 1.0 - self.rate
        mask = self._stream.binomial(size=x.shape, n=1, p=keep, dtype=x.dtype)
        return x * mask * (1.0 / keep)


class Embedding(Layer):
    """A lookup table: integer indices of any shape -> ``indices.shape + (dim,)`` vectors."""

    def __init__(self, n_embeddings: int, dim: int, init=None, rng=None, dtype=None,
                 name: str | None = None):
        super().__init__(name)
        self.n_embeddings, self.dim = int(n_embeddings), int(dim)
        init = init or (lambda shape, rng, dtype: initializers.as_rng(rng).normal(
            0.0, 0.05, size=shape).astype(dtype))
        self.add_param("W", initializers.get(init)((self.n_embeddings, self.dim), rng,
                                                    dtype or config.floatX))

    def forward(self, indices, training):
        indices = as_tensor(indices)
        if indices.dtype not in INT_DTYPES:
            raise TypeError(f"{self.name}: expects integer indices, got {indices.type}")
        return gt.nnet.embedding(self.W, indices)


class Sequential(Layer):
    """Layers applied one after the other; ``training`` is passed to each."""

    def __init__(self, *layers: Layer, name: str | None = None):
        super().__init__(name)
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"{self.name}: item {i} is not a Layer, got {layer!r}")
        self.layers = list(layers)

    def children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def __call__(self, x, training: bool = False) -> Node:
        if not isinstance(training, bool):
            raise TypeError(f"{self.name}: training must be True or False, got {training!r}")
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)
