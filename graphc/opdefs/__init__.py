"""One place per op: output type, NumPy reference, shape rule and gradient rule.

Importing this package registers every op in ``graphc.ir.OPS``.
"""

from . import alloc, elementwise, fused, gradient_ops, indexing, joins, linalg, nnet, reduce, shape, sorting  # noqa: F401
