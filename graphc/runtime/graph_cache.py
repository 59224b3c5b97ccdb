"""The second cache level: a function's input graph -> its rewritten graph.

A new process compiling a graph it has compiled before loads the rewritten graph from
``config.cache_dir`` instead of running the rewrites. The key covers the graph's structure
(inputs by position, shared variables by order of appearance, constants by value), the mode
with its exclusions, the flags that change rewriting and graphc's own source code
(``runtime.cache.graph_cache_key``). A missing, corrupt or stale entry is a miss.
"""

from __future__ import annotations

import io
import pickle

from ..config import config
from ..ir.serialize import SerializeError, _PlainUnpickler, dumps, loads
from .cache import default_cache, graph_cache_key

NAMESPACE = "graphs"


def _flags() -> tuple:
    return (("floatX", config.floatX),)


def key(fgraph, mode, shared: list | None = None) -> str:
    """The cache key of ``fgraph`` as built (before any rewrite); ``shared`` receives its
    shared variables in ``shared_order`` (one walk of the graph for both)."""
    return graph_cache_key(fgraph.inputs, fgraph.outputs, mode, _flags(), shared)


def load(fgraph, mode):
    """The rewritten outputs stored for ``fgraph``, or None. Sets ``fgraph.cache_key``."""
    fgraph.cache_shared = []
    fgraph.cache_key = key(fgraph, mode, fgraph.cache_shared)
    data = default_cache().get(NAMESPACE, fgraph.cache_key)
    if data is None:
        return None
    try:
        fired, graph, kernels = _PlainUnpickler(io.BytesIO(data)).load()
        outputs = loads(graph, fgraph.inputs, fgraph.cache_shared)
    except (SerializeError, pickle.UnpicklingError, ValueError, TypeError, EOFError):
        return None
    fgraph.fired[:] = list(fired)  # what the rewrites did when this graph was rewritten
    # the kernels the CPU backend made of it (schedule position -> name, arity, kind, dtype)
    fgraph.kernel_table = {index: tuple(entry) for index, entry in kernels} if kernels is not None else None
    return outputs


def store(fgraph, kernel_table: dict | None = None) -> None:
    """Keep ``fgraph``'s rewritten outputs (and the kernels made of them) under the key
    ``load`` computed."""
    try:
        graph = dumps(fgraph.inputs, fgraph.outputs, fgraph.cache_shared)
    except (SerializeError, TypeError):
        return  # a graph the serialiser cannot write is simply not cached
    kernels = None if kernel_table is None else tuple(sorted(kernel_table.items()))
    data = pickle.dumps((tuple(fgraph.fired), graph, kernels), protocol=pickle.HIGHEST_PROTOCOL)
    default_cache().put(NAMESPACE, fgraph.cache_key, data)
