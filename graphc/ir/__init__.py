"""The graph IR: ops, nodes, types and walks."""

from .graph import FunctionGraph
from .node import (
    CONSTANT,
    INPUT,
    SHARED,
    ConstantData,
    Node,
    SharedVariable,
    clients,
    clone,
    constant,
    graph_inputs,
    make,
    new_input,
    new_shared,
    substitute,
    toposort,
)
from .op import OPS, OpDef, defop, get_op
from .provenance import Trace, provenance, user_trace
from .types import TensorType, as_dtype

__all__ = [
    "CONSTANT", "INPUT", "SHARED", "ConstantData", "FunctionGraph", "Node", "OPS", "OpDef",
    "SharedVariable", "TensorType", "Trace", "as_dtype", "clients", "clone", "constant", "defop",
    "get_op", "graph_inputs", "make", "new_input", "new_shared", "provenance", "substitute",
    "toposort", "user_trace",
]
