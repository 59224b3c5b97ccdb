"""Indexing ops: basic indexing (``subtensor``), advanced indexing (integer arrays, boolean
masks), and the writes ``set_subtensor`` / ``inc_subtensor`` (Theano's API), plus ``take``.

An index is stored as a *template* in ``arg``, one entry per index item; Python ints stay
literal and ``SYM`` marks a value taken from the next symbolic input (in ``src`` order)::

    ("int", i)            an integer (drops the axis)
    ("slice", a, b, c)    start, stop, step: each None, an int or SYM
    ("newaxis",)          inserts a size-1 axis
    ("ellipsis", n)       n full slices; kept, as it separates advanced indices
    ("array", k)          an integer index tensor of ndim k (next input)
    ("mask", k)           a bool mask of ndim k (next input), covering k axes

Read ops take ``(x, *index_inputs)``; write ops take ``(x, y, *index_inputs)``.
"""

from __future__ import annotations

import operator

import numpy as np

from ..ir.node import CONSTANT, Node, build_error, constant, make
from ..ir.op import INDEX, defop
from ..ir.provenance import user_trace
from ..ir.types import INT_DTYPES, TensorType, shape_str, upcast
from .common import as_tensor, is_weak, normalize_axis, shape_entry

__all__ = ["IndexingError", "advanced_subtensor", "inc_subtensor", "set_subtensor", "subtensor",
           "take", "take_along_axis"]

SYM = "sym"
FULL_SLICE = ("slice", None, None, None)


class IndexingError(IndexError, ValueError):
    """An index out of range or of the wrong shape (an IndexError, and a ValueError like
    other shape errors)."""


def _g():
    import graphc.tensor as gt

    return gt


# --- parsing a user's index into (template, symbolic inputs) -----------------------------------

def parse_index(x: Node, index) -> tuple[tuple, list, bool]:
    """The template, the symbolic index inputs and whether the index is advanced."""
    items = index if isinstance(index, tuple) else (index,)
    nodes: list[Node] = []
    entries = [_parse_item(item, nodes) for item in items]
    if sum(1 for e in entries if e[0] == "ellipsis") > 1:
        raise IndexingError("an index can only have a single ellipsis ('...')")
    used = sum(_axes_used(e) for e in entries if e[0] != "ellipsis")
    if used > x.ndim:
        raise IndexingError(f"too many indices: {used} axes indexed but the input is {x.ndim}-d")
    entries = [("ellipsis", x.ndim - used) if e[0] == "ellipsis" else e for e in entries]
    advanced = any(e[0] in ("array", "mask") for e in entries)
    _check_constant_arrays(x, entries, nodes)
    if not advanced:
        entries = _expand_ellipsis(entries)
    while entries and (entries[-1] == FULL_SLICE or entries[-1][0] == "ellipsis"):
        entries.pop()
    return tuple(entries), nodes, advanced


def _check_constant_arrays(x: Node, entries, nodes) -> None:
    """Bounds of constant index arrays against static sizes, at build time."""
    inputs = iter(nodes)
    axis = 0
    for entry in entries:
        kind = entry[0]
        used = [next(inputs) for _ in range(1 if kind in ("array", "mask") else entry.count(SYM))]
        size = x.type.shape[axis] if axis < x.ndim else None
        values = used[0].arg.value if kind == "array" and used[0].op is CONSTANT else None
        if values is not None and values.size and size is not None:
            for extreme in (int(values.min()), int(values.max())):
                _check_bound(extreme, size, axis)
        axis += _axes_used(entry)


def _axes_used(entry) -> int:
    kind = entry[0]
    if kind in ("int", "slice", "array"):
        return 1
    if kind == "mask":
        return entry[1]
    return entry[1] if kind == "ellipsis" else 0


def _expand_ellipsis(entries):
    out = []
    for e in entries:
        out.extend([FULL_SLICE] * e[1] if e[0] == "ellipsis" else [e])
    return out


def _parse_item(item, nodes: list):
    if item is None:
        return ("newaxis",)
    if item is Ellipsis:
        return ("ellipsis", None)
    if isinstance(item, slice):
        start, stop = _slice_part(item.start, nodes), _slice_part(item.stop, nodes)
        step = _slice_part(item.step, nodes)
        if step == 0:
            raise ValueError("slice step cannot be zero")
        return ("slice", start, stop, None if step == 1 else step)
    if isinstance(item, (bool, np.bool_)):
        nodes.append(constant(np.bool_(item)))
        return ("mask", 0)
    if isinstance(item, (int, np.integer)):
        return ("int", int(item))
    node = item if isinstance(item, Node) else _index_constant(item)
    if node.dtype == "bool":
        nodes.append(node)
        return ("mask", node.ndim)
    if node.dtype not in INT_DTYPES:
        raise TypeError("indices must be integers, slices, None, ..., or integer/bool arrays; "
                        f"got {node.type}")
    if node.ndim == 0:
        if node.op is CONSTANT:
            return ("int", int(node.arg.value))
        nodes.append(node)
        return ("int", SYM)
    nodes.append(node)
    return ("array", node.ndim)


def _index_constant(item) -> Node:
    if isinstance(item, list) and any(isinstance(v, Node) for v in item):
        return as_tensor(item)  # a list of symbolic scalars: stacked into a vector
    arr = np.asarray(item)
    if arr.size == 0 and arr.dtype.kind == "f" and not isinstance(item, np.ndarray):
        arr = arr.astype("int64")  # NumPy reads an empty list as an empty integer index
    if arr.dtype.kind not in "biu":
        raise TypeError(f"indices must be integers, slices, None, ..., or integer/bool arrays; "
                        f"got {type(item).__name__} of dtype {arr.dtype}")
    return constant(arr)


def _slice_part(value, nodes: list):
    if value is None:
        return None
    if isinstance(value, Node):
        if value.ndim != 0 or value.dtype not in INT_DTYPES:
            raise TypeError(f"slice bounds must be integer scalars, got {value.type}")
        if value.op is CONSTANT:
            return int(value.arg.value)
        nodes.append(value)
        return SYM
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"slice bounds must be integers or None, got {value!r}") from None


# --- static checks and output shapes -----------------------------------------------------------

def _check_inputs(x: TensorType, template, idx_types) -> None:
    """Validate the index inputs' types and the statically known bounds."""
    types = iter(idx_types)
    axis = 0
    for entry in template:
        kind = entry[0]
        if kind == "int":
            if entry[1] == SYM:
                _check_scalar(next(types))
            else:
                _check_bound(entry[1], x.shape[axis], axis)
        elif kind == "slice":
            for part in entry[1:]:
                if part == SYM:
                    _check_scalar(next(types))
        elif kind == "array":
            t = next(types)
            if t.dtype not in INT_DTYPES or t.ndim != entry[1]:
                raise TypeError(f"index array {t} for axis {axis} must be an integer tensor "
                                f"of ndim {entry[1]}")
        elif kind == "mask":
            _check_mask(next(types), entry[1], x.shape[axis:axis + entry[1]], axis)
        axis += _axes_used(entry)
    if axis > x.ndim:
        raise IndexingError(f"too many indices for a {x.ndim}-d input")
    if next(types, None) is not None:
        raise ValueError("more index inputs than the index template uses")


def _check_scalar(t: TensorType) -> None:
    if t.ndim != 0 or t.dtype not in INT_DTYPES:
        raise TypeError(f"a symbolic index must be an integer scalar, got {t}")


def _check_bound(i: int, size, axis: int) -> None:
    if size is not None and not -size <= i < size:
        raise IndexingError(f"index {i} is out of bounds for axis {axis} with size {size}")


def _check_mask(t: TensorType, k: int, sizes, axis: int) -> None:
    if t.dtype != "bool" or t.ndim != k:
        raise TypeError(f"mask {t} for axis {axis} must be a bool tensor of ndim {k}")
    for j, (m, s) in enumerate(zip(t.shape, sizes)):
        if m is not None and s is not None and m != s:
            raise IndexingError(f"boolean index did not match the indexed input along axis "
                                f"{axis + j}: size of axis is {s}, of the mask's axis {m}")


def _layout(template, dims, idx, slice_len, adv_shape, broadcast) -> tuple:
    """The output dims of indexing an input of dims ``dims`` with ``template``.

    ``idx`` yields one value per index input; ``slice_len(n, a, b, c)`` gives a slice's length,
    ``adv_shape(entry, value)`` an advanced index's shape, ``broadcast(shapes)`` their broadcast.
    Static inference passes ints/None; the shape rule passes ints/scalar nodes.
    """
    idx = iter(idx)
    advanced = any(e[0] in ("array", "mask") for e in template)
    groups: list = []  # per entry: ("basic", dims) or ("adv", shape)
    axis = 0
    for entry in template:
        kind = entry[0]
        if kind == "int":
            if entry[1] == SYM:
                next(idx)
            groups.append(("adv", ()) if advanced else ("basic", ()))
        elif kind == "slice":
            parts = [next(idx) if p == SYM else p for p in entry[1:]]
            groups.append(("basic", (slice_len(dims[axis], *parts),)))
        elif kind == "newaxis":
            groups.append(("basic", (1,)))
        elif kind == "ellipsis":
            groups.append(("basic", tuple(dims[axis:axis + entry[1]])))
        else:
            groups.append(("adv", adv_shape(entry, next(idx))))
        axis += _axes_used(entry)
    rest = tuple(dims[axis:])
    adv_at = [i for i, (kind, _) in enumerate(groups) if kind == "adv"]
    if not adv_at:
        return sum((d for _, d in groups), ()) + rest
    adv = broadcast([shape for kind, shape in groups if kind == "adv"])
    basic = [(i, d) for i, (kind, d) in enumerate(groups) if kind == "basic"]
    if adv_at == list(range(adv_at[0], adv_at[-1] + 1)):  # adjacent: they stay in place
        before = sum((d for i, d in basic if i < adv_at[0]), ())
        after = sum((d for i, d in basic if i > adv_at[0]), ())
        return before + adv + after + rest
    return adv + sum((d for _, d in basic), ()) + rest


def _static_slice_len(n, start, stop, step):
    if step == SYM:
        return None
    if start is None and stop is None and step in (None, 1, -1):
        return n
    if n is None or SYM in (start, stop):
        return None
    return len(range(*slice(start, stop, step).indices(n)))


def _static_adv_shape(entry, t: TensorType):
    return (None,) if entry[0] == "mask" else t.shape


def _static_broadcast(shapes) -> tuple:
    ndim = max(len(s) for s in shapes)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis in range(ndim):
        known = {s[axis] for s in padded if s[axis] not in (None, 1)}
        if len(known) > 1:
            shown = ", ".join(shape_str(s) for s in shapes)
            raise IndexingError(f"shape mismatch: index arrays of shapes {shown} cannot be "
                                "broadcast together")
        if known:
            out.append(known.pop())
        else:
            out.append(1 if all(s[axis] == 1 for s in padded) else None)
    return tuple(out)


def indexed_type(x: TensorType, template, idx_types) -> TensorType:
    """The type of ``x[index]`` (checking the index inputs)."""
    _check_inputs(x, template, idx_types)
    # symbolic integer scalars have unknown values
    values = [t if t.ndim or t.dtype == "bool" else SYM for t in idx_types]
    dims = _layout(template, x.shape, values, _static_slice_len, _static_adv_shape,
                   _static_broadcast)
    return TensorType(x.dtype, dims)


# --- symbolic shapes ---------------------------------------------------------------------------

def _as_int64(v):
    return v if not isinstance(v, Node) or v.dtype == "int64" else _g().cast(v, "int64")


def _clamp(v, n, lo, hi):
    """A slice bound ``v`` made non-negative (``v + n`` if negative) and clipped to [lo, hi]."""
    gt = _g()
    if isinstance(v, Node):
        v = gt.switch(gt.lt(v, 0), v + n, v)
    elif v < 0:
        v = v + n
    if not isinstance(v, Node) and not isinstance(n, Node):
        return min(max(v, lo), hi)
    return gt.minimum(gt.maximum(v, lo), hi)


def _slice_len_for_sign(n, start, stop, step, positive: bool):
    gt = _g()
    if positive:
        a = 0 if start is None else _clamp(start, n, 0, n)
        b = n if stop is None else _clamp(stop, n, 0, n)
        return gt.maximum(0, gt.int_div(b - a + step - 1, step))
    a = n - 1 if start is None else _clamp(start, n, -1, n - 1)
    b = -1 if stop is None else _clamp(stop, n, -1, n - 1)
    return gt.maximum(0, gt.int_div(a - b - step - 1, -step))


def slice_length(n, start, stop, step):
    """The length of ``range(n)[start:stop:step]``; entries are ints or int scalar nodes."""
    start, stop, step, n = (_as_int64(v) for v in (start, stop, step, n))
    if not any(isinstance(v, Node) for v in (n, start, stop, step)):
        return len(range(*slice(start, stop, step).indices(n)))
    step = 1 if step is None else step
    if start is None and stop is None and not isinstance(step, Node) and step in (1, -1):
        return n
    if not isinstance(step, Node):
        return _as_int64(_slice_len_for_sign(n, start, stop, step, step > 0))
    gt = _g()
    up = _slice_len_for_sign(n, start, stop, step, True)
    down = _slice_len_for_sign(n, start, stop, step, False)
    return _as_int64(gt.switch(gt.gt(step, 0), up, down))


def _symbolic_adv_shape(entry, node: Node):
    if entry[0] == "mask":
        return (_g().sum(_g().cast(node, "int64")),)
    return tuple(shape_entry(node, a) for a in range(node.ndim))


def _symbolic_broadcast(shapes) -> tuple:
    from .shape import broadcast_dim

    ndim = max(len(s) for s in shapes)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    return tuple(broadcast_dim([s[axis] for s in padded]) for axis in range(ndim))


def indexed_shape(x: Node, x_shape, template, idx_nodes) -> tuple:
    """The symbolic shape of ``x[index]``: ints and int64 scalar nodes."""
    return _layout(template, tuple(x_shape), idx_nodes, slice_length, _symbolic_adv_shape,
                   _symbolic_broadcast)


# --- NumPy references --------------------------------------------------------------------------

def numpy_index(template, values) -> tuple:
    """The NumPy index a template stands for, given the index inputs' values."""
    values = iter(values)
    out: list = []

    def part(p):
        return operator.index(next(values)) if p == SYM else p

    for entry in template:
        kind = entry[0]
        if kind == "int":
            out.append(part(entry[1]))
        elif kind == "slice":
            out.append(slice(part(entry[1]), part(entry[2]), part(entry[3])))
        elif kind == "newaxis":
            out.append(None)
        elif kind == "ellipsis":
            out.append(Ellipsis)
        else:
            out.append(next(values))
    return tuple(out)


def _read_ref(template, x, *values):
    return np.asarray(x[numpy_index(template, values)])


def _write_ref(accumulate: bool, advanced: bool):
    def ref(template, x, y, *values):
        out = x.copy()  # never write into an input
        index = numpy_index(template, values)
        if accumulate and advanced:
            np.add.at(out, index, y)  # repeated indices accumulate
        elif accumulate:
            out[index] += y
        else:
            out[index] = y  # repeated indices: the last value wins
        return out

    return ref


def _winners_ref(template, x, *values):
    """True where an element of the (broadcast) value is the last write to its position."""
    index = numpy_index(template, values)
    shape = np.shape(x[index])
    ids = np.arange(int(np.prod(shape)), dtype="int64").reshape(shape)
    slots = np.full(x.shape, -1, dtype="int64")
    slots[index] = ids
    return slots[index] == ids


# --- ops ---------------------------------------------------------------------------------------

def _read_infer(types, template):
    return indexed_type(types[0], template, types[1:])


def _read_shape(node, in_shapes):
    return indexed_shape(node.src[0], in_shapes[0], node.arg, node.src[1:])


def _read_grad(node, g):
    x, *idx = node.src
    inc = ADVANCED_INC_SUBTENSOR if node.op is ADVANCED_SUBTENSOR else INC_SUBTENSOR
    gx = make(inc, (_g().zeros_like(x), g, *idx), node.arg)
    return (gx,) + (None,) * len(idx)


def _write_infer(types, template):
    x, y, *idx = types
    target = indexed_type(x, template, idx)
    if y.dtype != x.dtype:
        raise TypeError(f"the value has dtype {y.dtype} but the input {x.dtype} "
                        "(use the builder, which casts)")
    mismatch = any(ys not in (None, 1) and ts is not None and ys != ts
                   for ys, ts in zip(reversed(y.shape), reversed(target.shape)))
    if y.ndim > target.ndim or mismatch:
        raise ValueError(f"a value of shape {shape_str(y.shape)} cannot be broadcast to the "
                         f"indexed shape {shape_str(target.shape)}")
    return x


def _write_grad(node, g):
    _, y, *idx = node.src
    advanced = node.op in (ADVANCED_SET_SUBTENSOR, ADVANCED_INC_SUBTENSOR)
    read = ADVANCED_SUBTENSOR if advanced else SUBTENSOR
    gy = make(read, (g, *idx), node.arg)
    if node.op in (SET_SUBTENSOR, ADVANCED_SET_SUBTENSOR):
        gx = make(node.op, (g, constant(np.zeros((), g.dtype)), *idx), node.arg)
        if any(e[0] == "array" for e in node.arg):  # only the last of repeated writes counts
            gy = gy * _g().cast(make(SET_WINNERS, (g, *idx), node.arg), g.dtype)
    else:
        gx = g
    return (gx, _g().sum_to(gy, y)) + (None,) * len(idx)


def _write_shape(node, in_shapes):
    return tuple(in_shapes[0])


def _read_op(name):
    return defop(name, INDEX, _read_infer, ref=_read_ref, shape=_read_shape, grad=_read_grad)


def _write_op(name, accumulate, advanced):
    return defop(name, INDEX, _write_infer, ref=_write_ref(accumulate, advanced),
                 shape=_write_shape, grad=_write_grad)


def _winners_infer(types, template):
    return TensorType("bool", _read_infer(types, template).shape)


SUBTENSOR = _read_op("subtensor")
ADVANCED_SUBTENSOR = _read_op("advanced_subtensor")
SET_SUBTENSOR = _write_op("set_subtensor", False, False)
INC_SUBTENSOR = _write_op("inc_subtensor", True, False)
ADVANCED_SET_SUBTENSOR = _write_op("advanced_set_subtensor", False, True)
ADVANCED_INC_SUBTENSOR = _write_op("advanced_inc_subtensor", True, True)
# which elements of a (broadcast) value are the last write to their position (for gradients)
SET_WINNERS = defop("set_winners", INDEX, _winners_infer, ref=_winners_ref, shape=_read_shape,
                    differentiable=False)

READ_OPS = (SUBTENSOR, ADVANCED_SUBTENSOR)
_WRITE_OPS = {  # (advanced, accumulate) -> op
    (False, False): SET_SUBTENSOR, (False, True): INC_SUBTENSOR,
    (True, False): ADVANCED_SET_SUBTENSOR, (True, True): ADVANCED_INC_SUBTENSOR}


# --- builders ----------------------------------------------------------------------------------

def _user_error(exc: Exception, src) -> Exception:
    return type(exc)(build_error(SUBTENSOR, src, str(exc), user_trace()))


def subtensor(x, index) -> Node:
    """``x[index]`` with NumPy's rules: ints, slices, None, ``...``, integer arrays and bool masks;
    ints and slice bounds may be symbolic integer scalars."""
    x = as_tensor(x)
    try:
        template, nodes, advanced = parse_index(x, index)
    except (TypeError, ValueError) as exc:
        raise _user_error(exc, [x]) from None
    from .shape import SHAPE

    if x.op is SHAPE and len(template) == 1 and template[0][0] == "int" and template[0][1] != SYM:
        return _shape_item(x, template[0][1])
    return make(ADVANCED_SUBTENSOR if advanced else SUBTENSOR, (x, *nodes), template)


def _shape_item(shape_vector: Node, i: int) -> Node:
    """``x.shape[i]`` as shape_i (or a constant when the size is static)."""
    ndim = shape_vector.src[0].ndim
    try:
        _check_bound(i, ndim, 0)
    except IndexingError as exc:
        raise _user_error(exc, [shape_vector]) from None
    entry = shape_entry(shape_vector.src[0], i % ndim)
    return constant(np.int64(entry)) if isinstance(entry, int) else entry


def advanced_subtensor(x, *index) -> Node:
    """``x[index]`` for an index with integer arrays or masks (same as ``subtensor``)."""
    return subtensor(x, index)


def _value_for(x: Node, y, opname: str) -> Node:
    """``y`` as a node of ``x``'s dtype: Python scalars that fit, or same-kind casts."""
    if is_weak(y):
        if upcast(x.dtype, type(y)) != x.dtype:
            raise TypeError(f"{opname}: a Python {type(y).__name__} cannot be written into a "
                            f"{x.dtype} input")
        try:
            return constant(np.asarray(y, dtype=x.dtype))
        except OverflowError:
            raise ValueError(f"{opname}: {y!r} does not fit in {x.dtype}") from None
    y = as_tensor(y)
    if y.dtype != x.dtype:
        if not np.can_cast(y.dtype, x.dtype, "same_kind"):
            raise TypeError(f"{opname}: a {y.dtype} value cannot be written into a {x.dtype} input "
                            "(cast it first)")
        y = _g().cast(y, x.dtype)
    return y


def _write(x_index, y, accumulate: bool, opname: str) -> Node:
    if not isinstance(x_index, Node) or x_index.op not in READ_OPS:
        got = x_index.type if isinstance(x_index, Node) else type(x_index).__name__
        raise TypeError(f"{opname}: the first argument must be an indexing expression x[index], "
                        f"got {got}")
    x, *idx = x_index.src
    value = _value_for(x, y, opname)
    op = _WRITE_OPS[(x_index.op is ADVANCED_SUBTENSOR, accumulate)]
    return make(op, (x, value, *idx), x_index.arg)


def set_subtensor(x_index, y, inplace=False, tolerate_inplace_aggregate_error=False) -> Node:
    """A copy of ``x`` with ``x[index]`` replaced by ``y`` (broadcast), where ``x_index`` is
    the expression ``x[index]``; with repeated indices the last value wins."""
    return _write(x_index, y, False, "set_subtensor")


def inc_subtensor(x_index, y, inplace=False, tolerate_inplace_aggregate_error=False) -> Node:
    """A copy of ``x`` with ``y`` (broadcast) added to ``x[index]``, where ``x_index`` is the
    expression ``x[index]``; repeated indices accumulate like ``np.add.at``."""
    return _write(x_index, y, True, "inc_subtensor")


def take(x, indices, axis=None) -> Node:
    """Elements of ``x`` at ``indices`` along ``axis`` (of the flattened ``x`` if None), like
    ``np.take``."""
    x = as_tensor(x)
    indices = as_tensor(indices)
    if indices.dtype == "bool":
        indices = _g().cast(indices, "int64")  # np.take reads bools as 0/1
    if axis is None:
        return subtensor(_g().flatten(x) if x.ndim != 1 else x, indices)
    axis = normalize_axis(axis, x.ndim, "take")
    return subtensor(x, (slice(None),) * axis + (indices,))


def take_along_axis(x, indices, axis) -> Node:
    """Pick values of ``x`` along ``axis`` at ``indices`` (same ndim as ``x``, broadcasting on the
    other axes), like ``np.take_along_axis``; ``axis=None`` works on the flattened ``x``."""
    gt = _g()
    x, indices = as_tensor(x), as_tensor(indices)
    if axis is None:
        x, axis = gt.flatten(x), 0
    if indices.dtype not in INT_DTYPES or indices.ndim != x.ndim:
        raise TypeError(f"take_along_axis: indices must be an integer tensor of ndim {x.ndim}, "
                        f"got {indices.type}")
    axis = normalize_axis(axis, x.ndim, "take_along_axis")
    index = []
    for d in range(x.ndim):
        if d == axis:
            index.append(indices)
        else:  # positions along axis d, shaped to broadcast against the other axes
            pattern = tuple(0 if a == d else "x" for a in range(x.ndim))
            index.append(gt.dimshuffle(gt.arange(shape_entry(x, d)), pattern))
    return subtensor(x, tuple(index))
