"""graphc: a symbolic computation-graph compiler for array programs.

>>> import graphc as gc, graphc.tensor as gt
"""

from . import opdefs as _opdefs  # noqa: F401  (registers every op)
from . import tensor  # noqa: F401
from .compile import Function, function, shared
from .config import config
from .ir.node import SharedVariable
from .runtime.device import cuda_available
from .scan import foldl, foldr, map, reduce, scan, until  # noqa: A004  (Theano's names)

__version__ = "0.1.0"


def __getattr__(name):
    # heavier parts load on first use
    if name in ("grad", "Lop", "Rop", "jacobian", "hessian"):
        from . import autodiff

        return getattr(autodiff, name)
    if name in ("printing", "gradient", "random"):
        import importlib

        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'graphc' has no attribute {name!r}")


__all__ = ["Function", "SharedVariable", "config", "cuda_available", "function", "shared", "tensor",
           "scan", "map", "reduce", "foldl", "foldr", "until",
           "grad", "Lop", "Rop", "jacobian", "hessian", "printing", "random", "__version__"]
