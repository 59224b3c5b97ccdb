"""One place per op: output type, NumPy reference, shape rule and gradient rule.

Importing this package registers every op in ``graphc.ir.OPS``.
"""

from . import (  # noqa: F401
    alloc, conv, elementwise, fused, gradient_ops, indexing, joins, linalg, nnet, normalization, pool,
    reduce, shape, sorting,
)
