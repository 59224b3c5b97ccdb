"""A canonical, deterministic encoding of graphs: cache keys and serialised graphs.

``graph_key(inputs, outputs)`` is a sha256 over a text that names nothing process-specific:
inputs are identified by their position in ``inputs``, shared variables by their order of
first appearance in a deterministic toposort, both with their type; constants by dtype,
shape and bytes; ops by name; op args by a canonical text of their value. The same graph
built in two processes therefore gets the same key.

``dumps(inputs, outputs)`` / ``loads(data, inputs, shared)`` store a (rewritten) graph so
that another process can rebuild it through ``make`` without running any rewrite. The
blob is a pickle of plain data only (tuples of str, int, bytes, None); it is read with an
unpickler that refuses every class, and ops are looked up by name in ``OPS``.

Arg text format (every token is self-delimiting, so concatenation is unambiguous)::

    N  T  F              None, True, False
    i<int>;  f<hex>;     int, float (float.hex, exact)
    s<len>:<chars>       str
    b<len>:<hex>         bytes
    ( ... )              tuple
    l( ... )             slice (start, stop, step)
    z( ... )             frozenset (items sorted by their text)
    y(dtype shape)       TensorType
    c(dtype shape bytes) ConstantData
    n(dtype bytes)       NumPy scalar;  d(name): NumPy dtype
    @<index>;            a node of the same graph (by its position in the encoding)
    x(qualname payload)  an object with ``__graphc_encode__`` (see below)

An op arg that holds a graph (a composite op's inner program) opts in with
``__graphc_encode__(self, encode_node) -> str``, where ``encode_node(node)`` returns the
node's token; the usual body is ``return encode_value(self.inner, encode_node)``. To be
loadable it also defines the classmethod ``__graphc_decode__(cls, payload, decode_node)``
(usually ``cls(decode_value(payload, decode_node))``); its module must be imported before
``loads`` (nothing is imported from the data).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from .node import CONSTANT, INPUT, SHARED, ConstantData, Node, make, make_known, new_input
from .op import OPS
from .provenance import Trace
from .types import TensorType

# bump when the encoding of keys or blobs changes
FORMAT_VERSION = 1
_MAGIC = "graphc-graph"

__all__ = ["FORMAT_VERSION", "SerializeError", "VersionError", "decode_value", "dumps",
           "encode_value", "graph_key", "loads", "shared_order"]


class SerializeError(ValueError):
    """Serialised graph data that cannot be loaded here (corrupt, or not matching the inputs)."""


class VersionError(SerializeError):
    """Serialised graph data written by another graphc version or blob format."""


def _graphc_version() -> str:
    import graphc

    return graphc.__version__


# --- values -> canonical text ----------------------------------------------------------------

_CLOSE = object()  # marks the end of a container on the encoding stack


def encode_value(value, encode_node: Callable[[Node], str] | None = None) -> str:
    """The canonical text of an op arg (see the module docstring); iterative, so deep
    nesting is fine. Raises TypeError for a value it cannot encode."""
    out: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if v is _CLOSE:
            out.append(")")
            continue
        text, children = _encode_one(v, encode_node)
        out.append(text)
        if children is not None:
            stack.append(_CLOSE)
            stack.extend(reversed(children))
    return "".join(out)


def _encode_one(v, encode_node) -> tuple[str, tuple | None]:
    """One token for ``v``; for containers the opening text and the children to encode."""
    t = type(v)
    if v is None:
        return "N", None
    if t is bool:
        return ("T" if v else "F"), None
    if t is int:
        return f"i{v};", None
    if t is float:
        return f"f{v.hex()};", None
    if t is str:
        return f"s{len(v)}:{v}", None
    if t is bytes:
        return f"b{len(v)}:{v.hex()}", None
    if t is tuple:
        return "(", v
    if t is slice:
        return "l(", (v.start, v.stop, v.step)
    if t is frozenset:
        return "z(" + "".join(sorted(encode_value(x, encode_node) for x in v)) + ")", None
    if t is TensorType:
        return "y(", (v.dtype, v.shape)
    if t is ConstantData:
        return "c(", (v.value.dtype.str, v.value.shape, v.value.tobytes())
    if isinstance(v, np.generic):
        return "n(", (v.dtype.str, v.tobytes())
    if isinstance(v, np.dtype):
        return "d(", (v.str,)
    if isinstance(v, Node):
        if encode_node is None:
            raise TypeError("a graph node inside an op arg can only be encoded as part of a graph")
        return encode_node(v), None
    encoder = getattr(t, "__graphc_encode__", None)
    if encoder is not None:
        payload = encoder(v, encode_node)
        if type(payload) is not str:
            raise TypeError(f"{_qualname(t)}.__graphc_encode__ must return a str, got "
                            f"{type(payload).__name__}")
        return "x(", (_qualname(t), payload)
    name = _qualname(t).removeprefix("builtins.")
    raise TypeError(f"cannot encode an op arg of type {name}: {v!r} (supported: None, "
                    "bool, int, float, str, bytes, tuple, slice, frozenset, TensorType, "
                    "ConstantData, NumPy scalars and dtypes, nodes, and objects defining "
                    "__graphc_encode__)")


@lru_cache(maxsize=4096)
def type_text(typ: TensorType) -> str:
    """The canonical text of a type (memoised: graphs repeat few types)."""
    return encode_value(typ)


def _qualname(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


# --- canonical text -> values ----------------------------------------------------------------

_BUILDERS = {
    "(": tuple,
    "l(": lambda items: slice(*items),
    "z(": frozenset,
    "y(": lambda items: TensorType(items[0], items[1]),
    "c(": lambda items: ConstantData(_array(*items)),
    "n(": lambda items: np.frombuffer(items[1], dtype=np.dtype(items[0]))[0],
    "d(": lambda items: np.dtype(items[0]),
}


def decode_value(text: str, decode_node: Callable[[int], Node] | None = None):
    """The value ``encode_value`` wrote as ``text``; ``decode_node(index)`` resolves nodes.
    Raises SerializeError on malformed text."""
    try:
        return _decode(text, decode_node)
    except SerializeError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
        raise SerializeError(f"malformed arg text: {exc}") from None


def _decode(text: str, decode_node):
    stack: list[tuple[str, list]] = [("", [])]
    pos, end = 0, len(text)
    while pos < end:
        tag = text[pos]
        if text.startswith("(", pos + 1) and tag in "lzycndx":
            stack.append((tag + "(", []))
            pos += 2
            continue
        if tag == "(":
            stack.append(("(", []))
            pos += 1
            continue
        if tag == ")":
            kind, items = stack.pop()
            if not stack:
                raise SerializeError("unbalanced ')'")
            stack[-1][1].append(_build(kind, items, decode_node))
            pos += 1
            continue
        value, pos = _scalar(text, pos, decode_node)
        stack[-1][1].append(value)
    if len(stack) != 1 or len(stack[0][1]) != 1:
        raise SerializeError(f"arg text does not hold exactly one value: {text[:80]!r}")
    return stack[0][1][0]


def _scalar(text: str, pos: int, decode_node) -> tuple[object, int]:
    tag = text[pos]
    if tag in "NTF":
        return {"N": None, "T": True, "F": False}[tag], pos + 1
    if tag in "if@":
        stop = text.index(";", pos)
        body = text[pos + 1:stop]
        if tag == "i":
            return int(body), stop + 1
        if tag == "f":
            return float.fromhex(body), stop + 1
        if decode_node is None:
            raise SerializeError("the arg text refers to a node, but no graph is being loaded")
        return decode_node(int(body)), stop + 1
    if tag in "sb":
        colon = text.index(":", pos)
        n = int(text[pos + 1:colon])
        if tag == "s":
            return _checked_slice(text, colon + 1, n), colon + 1 + n
        return bytes.fromhex(_checked_slice(text, colon + 1, 2 * n)), colon + 1 + 2 * n
    raise SerializeError(f"unexpected {tag!r} at position {pos} of the arg text")


def _checked_slice(text: str, start: int, n: int) -> str:
    if n < 0 or start + n > len(text):
        raise SerializeError("a length runs past the end of the arg text")
    return text[start:start + n]


def _build(kind: str, items: list, decode_node):
    if kind == "x(":
        return _decode_object(*items, decode_node=decode_node)
    return _BUILDERS[kind](items)


def _decode_object(qualname: str, payload: str, decode_node):
    """An opted-in object: its class must already be imported and define __graphc_decode__."""
    obj = None
    # the module is the longest dotted prefix that is imported
    parts = qualname.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is not None:
            obj = module
            for attr in parts[cut:]:
                obj = getattr(obj, attr, None)
            break
    decoder = getattr(obj, "__graphc_decode__", None) if isinstance(obj, type) else None
    if decoder is None:
        raise SerializeError(f"cannot rebuild an arg of type {qualname}: its class is not imported "
                             "or does not define __graphc_decode__")
    return decoder(payload, decode_node)


def _array(dtype: str, shape: tuple, data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)


# --- graphs -> records -----------------------------------------------------------------------

class _Encoder:
    """Walks a graph (through ``src`` and through nodes inside args) inputs-first, giving each
    node a position and a record of plain data."""

    def __init__(self, inputs: Sequence[Node], shared: Sequence[Node] | None, for_key: bool):
        self.input_pos: dict[int, int] = {}
        for i, node in enumerate(inputs):
            self.input_pos.setdefault(id(node), i)
        self.fixed_shared = shared is not None
        self.shared: list[Node] = list(shared or ())
        self.shared_pos = {id(n): i for i, n in enumerate(self.shared)}
        self.free = 0
        self.for_key = for_key
        self.index: dict[int, int] = {}
        self.nodes: list[Node] = []
        self.records: list[tuple] = []
        self._missing: list[Node] = []

    def add(self, outputs: Sequence[Node]) -> list[int]:
        stack = list(reversed(outputs))
        while stack:
            node = stack[-1]
            if id(node) in self.index:
                stack.pop()
                continue
            pending = [s for s in node.src if id(s) not in self.index]
            if not pending:
                record = self._record(node)
                pending, self._missing = self._missing, []
                if not pending:
                    stack.pop()
                    self.index[id(node)] = len(self.nodes)
                    self.nodes.append(node)
                    self.records.append(record)
                    continue
            stack.extend(reversed(pending))
        return [self.index[id(o)] for o in outputs]

    def _node_token(self, node: Node) -> str:
        i = self.index.get(id(node))
        if i is None:  # encode it first, then this record again
            self._missing.append(node)
            return "@?;"
        return f"@{i};"

    def _record(self, node: Node) -> tuple:
        op, typ = node.op, type_text(node.type)
        if id(node) in self.input_pos:
            return ("input", self.input_pos[id(node)], typ)
        if op is INPUT:  # an input the caller did not list (an inner graph's own input)
            self.free += 1
            return ("free", self.free - 1, typ)
        if op is SHARED:
            return ("shared", self._shared_position(node), typ)
        if op is CONSTANT:
            value = node.arg.value
            data = value.tobytes()
            if self.for_key:
                data = hashlib.sha256(data).digest()
            return ("const", value.dtype.str, value.shape, data)
        src = tuple(self.index[id(s)] for s in node.src)
        return ("op", op.name, src, encode_value(node.arg, self._node_token), typ)

    def _shared_position(self, node: Node) -> int:
        i = self.shared_pos.get(id(node))
        if i is None:
            if self.fixed_shared:
                raise ValueError(f"shared variable {node.name or node!r} is not in the given "
                                 "shared list")
            i = self.shared_pos[id(node)] = len(self.shared)
            self.shared.append(node)
        return i


def graph_key(inputs: Sequence[Node], outputs: Sequence[Node], extra=(),
              shared: list | None = None) -> str:
    """A sha256 hex digest of the graph's structure, equal across processes for equal graphs.

    ``extra`` (any value ``encode_value`` accepts: mode, flags, ...) is hashed in too. A list
    given as ``shared`` receives the graph's shared variables in ``shared_order``.
    """
    enc = _Encoder(inputs, None, for_key=True)
    out_index = enc.add(list(outputs))
    if shared is not None:
        shared.extend(enc.shared)
    h = hashlib.sha256()
    header = (_MAGIC, FORMAT_VERSION, _graphc_version(),
              tuple(type_text(i.type) for i in inputs), extra)
    h.update(encode_value(header).encode())
    # NOTE: records hold only str, int, bytes and tuples, whose repr is the same in every
    # process: cheaper than encoding them again
    h.update(repr(enc.records).encode())
    h.update(b"\n" + encode_value(tuple(out_index)).encode())
    return h.hexdigest()


def shared_order(outputs: Sequence[Node], inputs: Sequence[Node] = ()) -> list[Node]:
    """The shared variables of the graph, in the order ``graph_key`` and ``dumps`` number them."""
    enc = _Encoder(inputs, None, for_key=True)
    enc.add(list(outputs))
    return enc.shared


def dumps(inputs: Sequence[Node], outputs: Sequence[Node], shared: Sequence[Node] | None = None,
          ) -> bytes:
    """The graph as bytes for ``loads``. Shared variables are numbered by their position in
    ``shared`` (default: ``shared_order(outputs, inputs)``); every one the graph reads must be
    in it. Node names and creation lines are kept."""
    enc = _Encoder(inputs, shared, for_key=False)
    out_index = enc.add(list(outputs))
    names = tuple((i, n.name) for i, n in enumerate(enc.nodes)
                  if n.name is not None and n.op not in (INPUT, SHARED))
    traces = tuple((i, n.trace[0], n.trace[1]) for i, n in enumerate(enc.nodes)
                   if n.trace is not None and not n.is_leaf)
    blob = (_MAGIC, FORMAT_VERSION, _graphc_version(),
            tuple(type_text(i.type) for i in inputs), len(enc.shared),
            tuple(enc.records), tuple(out_index), names, traces)
    return pickle.dumps(blob, protocol=pickle.HIGHEST_PROTOCOL)


# --- bytes -> graph --------------------------------------------------------------------------

_MISSING = object()


class _PlainUnpickler(pickle.Unpickler):
    # NOTE: plain data (tuples, str, int, bytes, None) needs no class: refuse all of them
    def find_class(self, module, name):
        raise SerializeError(f"serialised graph data names a class ({module}.{name})")


def loads(data: bytes, inputs: Sequence[Node], shared: Sequence[Node] = ()) -> list[Node]:
    """Rebuild the outputs ``dumps`` stored, over the given input nodes and shared variables
    (in the order ``dumps`` used). Raises VersionError for data from another graphc version or
    format, SerializeError for corrupt data or inputs that do not match."""
    try:
        blob = _PlainUnpickler(io.BytesIO(data)).load()
    except SerializeError:
        raise
    except Exception as exc:  # noqa: BLE001  (a corrupt pickle can fail in many ways)
        raise SerializeError(f"corrupt graph data: {type(exc).__name__}: {exc}") from None
    if not isinstance(blob, tuple) or len(blob) != 9 or blob[0] != _MAGIC:
        raise SerializeError("not serialised graphc graph data")
    _, fmt, version, input_types, n_shared, records, out_index, names, traces = blob
    if fmt != FORMAT_VERSION or version != _graphc_version():
        raise VersionError(f"graph data from graphc {version} (format {fmt}); this is graphc "
                           f"{_graphc_version()} (format {FORMAT_VERSION})")
    _check_leaves(inputs, input_types, shared, n_shared)
    try:
        return _rebuild(records, out_index, names, traces, inputs, shared)
    except SerializeError:
        raise
    except Exception as exc:  # noqa: BLE001  (corrupt records can fail in many ways)
        raise SerializeError(f"corrupt graph data: {type(exc).__name__}: {exc}") from None


def _check_leaves(inputs, input_types, shared, n_shared) -> None:
    if len(inputs) != len(input_types):
        raise SerializeError(f"the graph was stored with {len(input_types)} inputs, "
                             f"{len(inputs)} given")
    for i, (node, text) in enumerate(zip(inputs, input_types)):
        if type_text(node.type) != text:
            raise SerializeError(f"input {i}: the graph was stored for type "
                                 f"{decode_value(text)}, got {node.type}")
    if len(shared) < n_shared:
        raise SerializeError(f"the graph reads {n_shared} shared variables, {len(shared)} given")


def _rebuild(records, out_index, names, traces, inputs, shared) -> list[Node]:
    nodes: list[Node] = []
    free: dict[int, Node] = {}
    trace_of = {i: Trace((f, line)) for i, f, line in traces}
    decoded: dict[str, object] = {}  # values by text: graphs repeat a few args and types

    def decode_node(j: int) -> Node:
        return _pick(nodes, j, "node")

    for i, record in enumerate(records):
        kind = record[0]
        if kind == "input":
            node = _pick(inputs, record[1], "input")
        elif kind == "shared":
            node = _checked_leaf(_pick(shared, record[1], "shared variable"), record[2])
        elif kind == "free":
            if record[1] not in free:
                free[record[1]] = new_input(decode_value(record[2]))
            node = free[record[1]]
        elif kind == "const":
            node = make(CONSTANT, (), ConstantData(_array(*record[1:])))
        elif kind == "op":
            node = _rebuild_op(record, decode_node, trace_of.get(i), decoded)
        else:
            raise SerializeError(f"unknown record kind {kind!r}")
        nodes.append(node)
    for i, name in names:
        node = _pick(nodes, i, "node")
        if node.name is None:
            node.name = name
    return [_pick(nodes, i, "output") for i in out_index]


def _pick(seq: Sequence, i: int, what: str):
    # NOTE: records refer only backwards (inputs before users); anything else is corrupt data
    if type(i) is not int or not 0 <= i < len(seq):
        raise SerializeError(f"a record refers to {what} {i!r} of {len(seq)}")
    return seq[i]


def _decoded(text: str, decoded: dict, decode_node):
    """``decode_value(text)``, once per text: within one graph the same text stands for the
    same value (node references are positions in it)."""
    value = decoded.get(text, _MISSING)
    if value is _MISSING:
        value = decoded[text] = decode_value(text, decode_node)
    return value


def _rebuild_op(record, decode_node, trace, decoded: dict) -> Node:
    _, op_name, src, arg_text, stored_type = record
    op = OPS.get(op_name)
    if op is None:
        raise SerializeError(f"unknown op {op_name!r}")
    arg = _decoded(arg_text, decoded, decode_node)
    typ = _decoded(stored_type, decoded, decode_node)
    if not isinstance(typ, TensorType):
        raise SerializeError(f"{op_name}: the stored type is {typ!r}")
    # NOTE: the stored type is the one ``make`` inferred when the graph was written (the
    # key covers graphc's source), so the type rules need not run again
    return make_known(op, tuple([decode_node(j) for j in src]), arg, typ, trace)


def _checked_leaf(node: Node, stored_type: str) -> Node:
    if type_text(node.type) != stored_type:
        raise SerializeError(f"shared variable {node.name or ''}: the graph was stored for type "
                             f"{decode_value(stored_type)}, got {node.type}")
    return node
