"""Linear algebra: the ``matmul`` primitive (NumPy's ``np.matmul``) and the builders made of it:
``dot``, ``tensordot``, ``outer`` and ``batched_dot``.

``matmul`` keeps NumPy's 1-d rules inside the op (a 1-d left operand is a row, a 1-d right
operand a column, and the added axis is removed from the result) and broadcasts batch axes.
Its operands share one dtype; the builders promote them by NumPy's rules first.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, make
from ..ir.op import LINALG, defop
from ..ir.provenance import user_trace
from ..ir.types import TensorType, shape_str, upcast
from .common import as_tensor, broadcast_static, dtype_or_weak, is_weak, normalize_axis, shape_entry
from .elementwise import cast

__all__ = ["batched_dot", "dot", "gemm", "matmul", "outer", "tensordot"]


def _g():
    import graphc.tensor as gt

    return gt


# --- the matmul op -----------------------------------------------------------------------------


def _matmul_parts(sa: tuple, sb: tuple):
    """Batch axes of each operand, the result's core axes and the two inner sizes."""
    core = ((sa[-2],) if len(sa) >= 2 else ()) + ((sb[-1],) if len(sb) >= 2 else ())
    inner_b = sb[-2] if len(sb) >= 2 else sb[0]
    return sa[:-2], sb[:-2], core, sa[-1], inner_b


def _pad_left(batch: tuple, ndim: int) -> tuple:
    return (1,) * (ndim - len(batch)) + tuple(batch)


def _matmul_infer(types, arg):
    a, b = types
    if a.dtype != b.dtype:
        raise TypeError(
            f"operands must share one dtype, got {a.dtype} and {b.dtype} (use gt.matmul)"
        )
    if a.ndim == 0 or b.ndim == 0:
        raise TypeError(
            f"operands must be at least 1-d, got {a.ndim}-d and {b.ndim}-d "
            "(multiply by a scalar with * or gt.dot)"
        )
    batch_a, batch_b, core, inner_a, inner_b = _matmul_parts(a.shape, b.shape)
    if inner_a is not None and inner_b is not None and inner_a != inner_b:
        raise ValueError(
            f"inner dimensions differ: {shape_str(a.shape)} @ {shape_str(b.shape)} "
            f"({inner_a} != {inner_b})"
        )
    ndim = max(len(batch_a), len(batch_b))
    padded = [TensorType("bool", _pad_left(s, ndim)) for s in (batch_a, batch_b)]
    try:
        batch = broadcast_static(padded) if ndim else ()
    except ValueError:
        raise ValueError(
            f"batch dimensions of {shape_str(a.shape)} and {shape_str(b.shape)} cannot be broadcast"
        ) from None
    return TensorType(a.dtype, batch + core)


def _matmul_ref(arg, a, b):
    batch_a, batch_b, _, inner_a, inner_b = _matmul_parts(a.shape, b.shape)
    if inner_a != inner_b:
        raise ValueError(f"inner dimensions differ: {a.shape} @ {b.shape} ({inner_a} != {inner_b})")
    try:
        np.broadcast_shapes(batch_a, batch_b)
    except ValueError:
        raise ValueError(
            f"batch dimensions of {a.shape} and {b.shape} cannot be broadcast"
        ) from None
    if a.ndim > 2 and b.ndim == 2 and a.size:
        # one (batch * m, k) @ (k, n) product: NumPy's batched loop over small products is
        # several times slower than one BLAS call on the stacked rows
        rows = a.reshape(-1, a.shape[-1]) @ b
        return rows.reshape(a.shape[:-1] + (b.shape[-1],))
    return np.matmul(a, b)


def _matmul_shape(node, in_shapes):
    from .shape import broadcast_dim

    batch_a, batch_b, core, _, _ = _matmul_parts(tuple(in_shapes[0]), tuple(in_shapes[1]))
    ndim = max(len(batch_a), len(batch_b))
    pairs = zip(_pad_left(batch_a, ndim), _pad_left(batch_b, ndim))
    return tuple(broadcast_dim([x, y]) for x, y in pairs) + core


def _swap_last(x: Node) -> Node:
    """``x`` with its last two axes exchanged."""
    return _g().dimshuffle(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


def _sum_batch(grad: Node, like: Node) -> Node:
    """Sum ``grad`` over the batch axes along which the (at least 2-d) ``like`` was broadcast."""
    gt = _g()
    lead = grad.ndim - like.ndim
    batch = range(like.ndim - 2)
    if any(like.type.shape[i] is None and grad.type.shape[lead + i] != 1 for i in batch):
        return gt.sum_to(grad, like)  # a batch size only known at run time may be a broadcast 1
    axes = tuple(range(lead)) + tuple(
        lead + i for i in batch if like.type.shape[i] == 1 and grad.type.shape[lead + i] != 1
    )
    if axes:
        grad = gt.sum(grad, axes, keepdims=True)
    return gt.dimshuffle(grad, tuple(range(lead, grad.ndim))) if lead else grad


def _matmul_grad(node, g):
    return _matmul_grads(*node.src, g)


def _matmul_grads(a: Node, b: Node, g: Node) -> tuple[Node, Node]:
    """The gradients of ``matmul(a, b)`` given the output's gradient ``g``."""
    gt = _g()
    a2 = a if a.ndim >= 2 else gt.expand_dims(a, 0)  # (k,) -> (1, k)
    b2 = b if b.ndim >= 2 else gt.expand_dims(b, 1)  # (k,) -> (k, 1)
    if b.ndim == 1:
        g = gt.expand_dims(g, g.ndim)
    if a.ndim == 1:
        g = gt.expand_dims(g, g.ndim - 1)
    ga = _sum_batch(matmul(g, _swap_last(b2)), a2)
    gb = _sum_batch(matmul(_swap_last(a2), g), b2)
    return (gt.squeeze(ga, 0) if a.ndim == 1 else ga, gt.squeeze(gb, 1) if b.ndim == 1 else gb)


MATMUL = defop(
    "matmul", LINALG, _matmul_infer, ref=_matmul_ref, shape=_matmul_shape, grad=_matmul_grad
)


# --- gemm: matmul with the operands' last two axes optionally swapped (BLAS's trans flags) ----


def _swapped_type(t: TensorType, swap: bool) -> TensorType:
    return TensorType(t.dtype, t.shape[:-2] + (t.shape[-1], t.shape[-2])) if swap else t


def _check_flags(types, flags) -> None:
    for name, t, swap in zip("ab", types, flags):
        if swap and t.ndim < 2:
            raise TypeError(f"operand {name} is {t.ndim}-d: only an operand of at least 2 axes "
                            "can be transposed")


def _transposed_note(shapes, flags) -> str:
    given = [f"{shape_str(s)}{' transposed' if f else ''}" for s, f in zip(shapes, flags)]
    return f" (operands {' and '.join(given)})"


def _gemm_infer(types, flags):
    _check_flags(types, flags)
    try:
        return _matmul_infer(tuple(_swapped_type(t, s) for t, s in zip(types, flags)), None)
    except ValueError as exc:
        raise ValueError(f"{exc}{_transposed_note([t.shape for t in types], flags)}") from None


def _np_swap(x: np.ndarray, swap: bool) -> np.ndarray:
    return np.swapaxes(x, -1, -2) if swap else x


def _gemm_ref(flags, a, b):
    try:
        return _matmul_ref(None, _np_swap(a, flags[0]), _np_swap(b, flags[1]))
    except ValueError as exc:
        raise ValueError(f"{exc}{_transposed_note([a.shape, b.shape], flags)}") from None


def _swap_entries(entries: tuple, swap: bool) -> tuple:
    return entries[:-2] + (entries[-1], entries[-2]) if swap else tuple(entries)


def _gemm_shape(node, in_shapes):
    swapped = [_swap_entries(tuple(s), f) for s, f in zip(in_shapes, node.arg)]
    return _matmul_shape(node, swapped)


def _gemm_grad(node, g):
    (a, b), flags = node.src, node.arg
    ga, gb = _matmul_grads(*(_swap_last(x) if f else x for x, f in zip((a, b), flags)), g)
    return tuple(_swap_last(gx) if f else gx for gx, f in zip((ga, gb), flags))


GEMM = defop("gemm", LINALG, _gemm_infer, ref=_gemm_ref, shape=_gemm_shape, grad=_gemm_grad)


# --- builders ----------------------------------------------------------------------------------


def _promote(a, b) -> tuple[Node, Node]:
    """Both operands as nodes of their common dtype (NumPy 2 promotion, Python scalars weak)."""
    dtype = upcast(dtype_or_weak(a), dtype_or_weak(b))
    return cast(as_tensor(a), dtype), cast(as_tensor(b), dtype)


def _build_error(what: str, message: str, exc=ValueError):
    trace = user_trace()
    return exc(f"{what}: {message}" + (f"\n  created at {trace}" if trace is not None else ""))


def matmul(a, b) -> Node:
    """Matrix product like ``np.matmul`` (1-d operands, broadcast batch axes); also ``a @ b``."""
    if is_weak(a) or is_weak(b):
        raise _build_error(
            "matmul", "operands must be arrays, not Python scalars (use *)", TypeError
        )
    a, b = _promote(a, b)
    return make(MATMUL, (a, b))


def gemm(a, b, trans_a: bool = False, trans_b: bool = False) -> Node:
    """``matmul`` of ``a`` and ``b`` with the last two axes of ``a`` (``trans_a``) and of ``b``
    (``trans_b``) swapped first, as BLAS's transpose flags do, without copying a transpose.

    ``gemm(a, b, trans_a=True)`` is ``matmul(swapaxes(a, -1, -2), b)``; the specialize rewrites
    build it from a matmul of a transposed operand.
    """
    if is_weak(a) or is_weak(b):
        raise _build_error("gemm", "operands must be arrays, not Python scalars (use *)", TypeError)
    a, b = _promote(a, b)
    flags = (bool(trans_a), bool(trans_b))
    return make(GEMM, (a, b), flags) if any(flags) else make(MATMUL, (a, b))


def sum_of_products(a: Node, b: Node, trans_a: bool = False, trans_b: bool = False) -> Node:
    """``sum(gemm(a, b, trans_a, trans_b), axis=0)`` for stacks of matrices ``a``, ``b`` (3-d,
    the same length) as one product of the stacked operands.

    sum_i A_i B_i = [A_1 ... A_N] @ [B_1; ...; B_N]: one BLAS call of depth N*k instead of N
    products and an (N, m, n) intermediate (the weight gradient of a scan, of a batched layer).
    The caller vouches that the stacks have the same length.
    """
    gt = _g()
    depth = a.shape[0] * (a.shape[1] if trans_a else a.shape[2])  # N*k, k the contracted size
    if trans_a:  # A_i = a_i.T: the a_i stacked on top of each other, transposed
        left = gt.reshape(a, (depth, a.shape[2]))
    else:  # the a_i side by side
        left = gt.reshape(gt.transpose(a, (1, 0, 2)), (a.shape[1], depth))
    if trans_b:  # B_i = b_i.T: the b_i side by side, transposed
        right = gt.reshape(gt.transpose(b, (1, 0, 2)), (b.shape[1], depth))
    else:  # the b_i stacked
        right = gt.reshape(b, (depth, b.shape[2]))
    return make(GEMM, (left, right), (trans_a, trans_b)) if trans_a or trans_b else \
        make(MATMUL, (left, right))


def dot(a, b) -> Node:
    """``np.dot``: a scalar multiplies, 1-d and 2-d operands use matmul, N-d operands contract the
    last axis of ``a`` with the second-to-last of ``b`` (Python scalars stay weakly typed)."""
    if is_weak(a) or is_weak(b):
        return _g().mul(a, b)
    a, b = _promote(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return _g().mul(a, b)
    if (a.ndim <= 2 and b.ndim <= 2) or b.ndim == 1:
        return matmul(a, b)
    return tensordot(a, b, ([a.ndim - 1], [b.ndim - 2]))


def _tensordot_axes(axes, ndim_a: int, ndim_b: int) -> tuple[list, list]:
    if isinstance(axes, int):
        if not 0 <= axes <= min(ndim_a, ndim_b):
            raise _build_error(
                "tensordot", f"cannot sum over {axes} axes of {ndim_a}-d and {ndim_b}-d operands"
            )
        return list(range(ndim_a - axes, ndim_a)), list(range(axes))
    try:
        axes_a, axes_b = axes
    except (TypeError, ValueError):
        raise _build_error(
            "tensordot", f"axes must be an int or a pair of sequences, got {axes!r}", TypeError
        )
    axes_a = [axes_a] if isinstance(axes_a, int) else list(axes_a)
    axes_b = [axes_b] if isinstance(axes_b, int) else list(axes_b)
    if len(axes_a) != len(axes_b):
        raise _build_error(
            "tensordot", f"{len(axes_a)} axes of a cannot be summed against {len(axes_b)} of b"
        )
    axes_a = [normalize_axis(x, ndim_a, "tensordot") for x in axes_a]
    axes_b = [normalize_axis(x, ndim_b, "tensordot") for x in axes_b]
    if len(set(axes_a)) != len(axes_a) or len(set(axes_b)) != len(axes_b):
        raise _build_error("tensordot", f"repeated axis in {axes!r}")
    return axes_a, axes_b


def _product(entries):
    total = 1
    for e in entries:
        total = total * e
    return total


def _as_matrix(x: Node, n_rows: int) -> Node:
    """``x`` reshaped to 2-d: its first ``n_rows`` axes become the rows, the rest the columns."""
    if x.ndim == 2 and n_rows == 1:
        return x
    entries = [shape_entry(x, i) for i in range(x.ndim)]
    return _g().reshape(x, [_product(entries[:n_rows]), _product(entries[n_rows:])])


def tensordot(a, b, axes=2) -> Node:
    """``np.tensordot``: sum over ``axes`` (an int n: the last n of ``a`` with the first n of ``b``;
    or a pair of axis sequences), built from transpose, reshape and matmul."""
    gt = _g()
    a, b = _promote(a, b)
    axes_a, axes_b = _tensordot_axes(axes, a.ndim, b.ndim)
    for x, y in zip(axes_a, axes_b):
        size_a, size_b = a.type.shape[x], b.type.shape[y]
        if size_a is not None and size_b is not None and size_a != size_b:
            raise _build_error(
                "tensordot",
                f"axis {x} of {a.type} and axis {y} of {b.type} differ ({size_a} != {size_b})",
            )
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [i for i in range(b.ndim) if i not in axes_b]
    rows = _as_matrix(gt.transpose(a, free_a + axes_a), len(free_a))
    cols = _as_matrix(gt.transpose(b, axes_b + free_b), len(axes_b))
    out = matmul(rows, cols)
    if len(free_a) == 1 and len(free_b) == 1:
        return out
    return gt.reshape(
        out, [shape_entry(a, i) for i in free_a] + [shape_entry(b, i) for i in free_b]
    )


def outer(a, b) -> Node:
    """``np.outer``: every element of ``a`` (flattened) times every element of ``b``."""
    gt = _g()
    a, b = _promote(a, b)
    a = a if a.ndim == 1 else gt.flatten(a)
    b = b if b.ndim == 1 else gt.flatten(b)
    return gt.mul(gt.dimshuffle(a, (0, "x")), gt.dimshuffle(b, ("x", 0)))


def batched_dot(a, b) -> Node:
    """Theano's batched_dot: for each ``i`` of the first axis, the last axis of ``a[i]`` summed
    against the first axis of ``b[i]`` (``np.dot`` for matrices and vectors)."""
    gt = _g()
    a, b = _promote(a, b)
    if a.ndim < 2 or b.ndim < 2:
        raise _build_error(
            "batched_dot", f"operands must be at least 2-d, got {a.type} and {b.type}", TypeError
        )
    size_a, size_b = a.type.shape[0], b.type.shape[0]
    if size_a is not None and size_b is not None and size_a != size_b:
        raise _build_error("batched_dot", f"batch sizes differ: {a.type} and {b.type}")
    batch = shape_entry(a, 0)
    free_a = [shape_entry(a, i) for i in range(1, a.ndim - 1)]
    free_b = [shape_entry(b, i) for i in range(2, b.ndim)]
    rows = (
        a if a.ndim == 3 else gt.reshape(a, [batch, _product(free_a), shape_entry(a, a.ndim - 1)])
    )
    cols = (
        b
        if b.ndim == 3
        else gt.reshape(b, [shape_entry(b, 0), shape_entry(b, 1), _product(free_b)])
    )
    out = matmul(rows, cols)
    return out if a.ndim == 3 and b.ndim == 3 else gt.reshape(out, [batch] + free_a + free_b)
