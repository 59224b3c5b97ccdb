"""``graphc.tensor`` (import as ``gt``): symbolic variables and every op builder.

The builders are defined next to their ops in ``graphc.opdefs``; this module only gathers them.
"""

from ..ir.node import Node, constant
from ..ir.types import TensorType
from ..opdefs.alloc import alloc, arange, eye, full, full_like, ones, ones_like, zeros, zeros_like
from ..opdefs.common import as_tensor
from ..opdefs.elementwise import (
    abs, add, and_, arccos, arcsin, arctan, arctan2, cast, ceil, clip, cos, cosh, eq, erf, erfc, exp,
    exp2, expm1, floor, ge, gt, int_div, invert, isfinite, isinf, isnan, le, log, log1p, log2, log10,
    logical_and, logical_not, logical_or, logical_xor, lt, maximum, minimum, mod, mul, neg, neq, or_, pow,
    round, sigmoid, sign, sin, sinh, softplus, sqr, sqrt, sub, switch, tan, tanh, true_div, where, xor,
)
from ..opdefs.gradient_ops import disconnected_grad, grad_clip, stop_gradient, zero_grad
from ..opdefs.indexing import *  # noqa: F401,F403
from ..opdefs.joins import *  # noqa: F401,F403
from ..opdefs.linalg import *  # noqa: F401,F403
from ..opdefs.reduce import (
    all, any, argmax, argmin, logsumexp, max, mean, min, prod, std, sum, sum_to, var,
)
from ..opdefs.shape import (
    broadcast_to, dimshuffle, expand_dims, flatten, make_vector, reshape, shape, shape_i, squeeze,
    transpose,
)
from ..opdefs.sorting import *  # noqa: F401,F403
from . import nnet  # noqa: E402,F401
from .variables import *  # noqa: F401,F403

TensorVariable = Node
as_tensor_variable = as_tensor
true_divide, floor_divide, power, negative, absolute = true_div, int_div, pow, neg, abs
square, exponential = sqr, exp
add_ = add
bitwise_and, bitwise_or, bitwise_xor, bitwise_not = and_, or_, xor, invert

