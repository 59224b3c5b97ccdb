"""``graphc.gradient``: the Theano-style name for the differentiation API (see ``autodiff``)."""

from .autodiff import (  # noqa: F401
    DisconnectedInputError, GradientError, Lop, NullGradientError, Rop, grad, hessian, jacobian, verify_grad,
)
