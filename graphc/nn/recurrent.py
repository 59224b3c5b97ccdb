"""Recurrent layers on ``graphc.scan``: ``LSTM`` and ``GRU``.

Inputs are batch-major, ``(batch, time, features)``. The input projections of every step are
computed in one matrix product before the loop; the loop body only multiplies the previous
hidden state. ``step`` builds one step on its own (for sampling one element at a time).
"""

from __future__ import annotations

import numpy as np

from .. import tensor as gt
from ..config import config
from ..opdefs.common import as_tensor
from . import init as initializers
from .layers import Layer, _as_float_input, _check_last_dim

__all__ = ["LSTM", "GRU"]


class _Recurrent(Layer):
    """Shared machinery: ``W`` (inputs), ``U`` (recurrent, orthogonal blocks), ``b``."""

    n_gates = 1
    n_states = 1

    def __init__(self, n_in: int, n_hidden: int, return_sequences: bool = True,
                 backwards: bool = False, init="glorot_uniform", rng=None, dtype=None,
                 name: str | None = None):
        super().__init__(name)
        if int(n_in) <= 0 or int(n_hidden) <= 0:
            raise ValueError(f"{self.name}: n_in and n_hidden must be positive, "
                             f"got {n_in}, {n_hidden}")
        self.n_in, self.n_hidden = int(n_in), int(n_hidden)
        self.return_sequences, self.backwards = bool(return_sequences), bool(backwards)
        rng = initializers.as_rng(rng)
        dtype = dtype or config.floatX
        k, h = self.n_gates, self.n_hidden
        self.add_param("W", initializers.get(init)((self.n_in, k * h), rng, dtype))
        blocks = [initializers.orthogonal((h, h), rng, dtype) for _ in range(k)]
        self.add_param("U", np.concatenate(blocks, axis=1))
        self.add_param("b", self._initial_bias(dtype))

    def _initial_bias(self, dtype) -> np.ndarray:
        return np.zeros(self.n_gates * self.n_hidden, dtype)

    def _gate(self, z, i: int):
        h = self.n_hidden
        return z[:, i * h:(i + 1) * h]

    def initial_state(self, batch_size) -> list:
        """Zero states for a batch of ``batch_size`` (an int or a symbolic scalar)."""
        return [gt.zeros((batch_size, self.n_hidden), self.W.dtype) for _ in range(self.n_states)]

    def step(self, x_t, *states) -> list:
        """The states after one step on inputs ``x_t`` of shape ``(batch, n_in)``."""
        x_t = _as_float_input(x_t, self, min_ndim=2)
        return self._step(gt.dot(x_t, self.W) + self.b, *states, self.U)

    def forward(self, x, training, initial_state=None):
        import graphc

        x = _as_float_input(x, self, min_ndim=3)
        if x.ndim != 3:
            raise TypeError(f"{self.name}: expects a (batch, time, features) input, got {x.type}")
        _check_last_dim(x, self.n_in, self, "features")
        projected = (gt.dot(x, self.W) + self.b).dimshuffle(1, 0, 2)  # (time, batch, gates)
        states = initial_state if initial_state is not None else self.initial_state(x.shape[0])
        states = [as_tensor(s) for s in states]
        outputs, _ = graphc.scan(self._step, sequences=[projected], outputs_info=states,
                                 non_sequences=[self.U], go_backwards=self.backwards)
        hidden = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        if not self.return_sequences:
            return hidden[-1]
        if self.backwards:
            hidden = hidden[::-1]  # align each output with its input step
        return hidden.dimshuffle(1, 0, 2)

    def __call__(self, x, training: bool = False, initial_state=None):
        if not isinstance(training, bool):
            raise TypeError(f"{self.name}: training must be True or False, got {training!r}")
        return self.forward(x, training, initial_state)


class LSTM(_Recurrent):
    """Long short-term memory (gates input, forget, cell, output; forget bias starts at 1).

    ``(batch, time, n_in) -> (batch, time, n_hidden)``, or ``(batch, n_hidden)`` (the last
    step) with ``return_sequences=False``. ``step(x_t, h, c)`` returns ``[h, c]``.
    """

    n_gates = 4
    n_states = 2

    def _initial_bias(self, dtype):
        bias = np.zeros(4 * self.n_hidden, dtype)
        bias[self.n_hidden:2 * self.n_hidden] = 1.0
        return bias

    def _step(self, z_t, h_tm1, c_tm1, U):
        z = z_t + gt.dot(h_tm1, U)
        i, f = gt.sigmoid(self._gate(z, 0)), gt.sigmoid(self._gate(z, 1))
        g, o = gt.tanh(self._gate(z, 2)), gt.sigmoid(self._gate(z, 3))
        c = f * c_tm1 + i * g
        return [o * gt.tanh(c), c]


class GRU(_Recurrent):
    """Gated recurrent unit: ``z`` (update), ``r`` (reset), ``h = z h_prev + (1 - z) tanh(x W_h
    + (r h_prev) U_h + b_h)``. Shapes as ``LSTM``; ``step(x_t, h)`` returns ``[h]``."""

    n_gates = 3
    n_states = 1

    def _step(self, z_t, h_tm1, U):
        h = self.n_hidden
        zr = self._gate(z_t, 0), self._gate(z_t, 1)
        recurrent = gt.dot(h_tm1, U[:, :2 * h])
        z = gt.sigmoid(zr[0] + recurrent[:, :h])
        r = gt.sigmoid(zr[1] + recurrent[:, h:])
        candidate = gt.tanh(self._gate(z_t, 2) + gt.dot(r * h_tm1, U[:, 2 * h:]))
        return [z * h_tm1 + (1.0 - z) * candidate]
