"""Reverse-mode differentiation: ``grad``, ``Lop``, ``Rop``, ``jacobian``, ``hessian``,
and ``verify_grad`` (finite differences) for users and tests.

One loop walks the graph from the cost back to the inputs, asking each op's gradient rule
for the gradients of its inputs and summing the contributions of a variable used many
times. Gradients are ordinary graphs, so they can be differentiated again.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from .ir.node import Node, substitute, toposort
from .ir.op import ELEMWISE
from .ir.types import is_float
from .opdefs.common import as_tensor


class DisconnectedInputError(ValueError):
    """``grad`` was asked for a variable the cost does not depend on."""


class NullGradientError(TypeError):
    """The gradient passes through an op that has no gradient rule."""


class GradientError(AssertionError):
    """``verify_grad`` found the symbolic gradient far from finite differences."""


def _gt():
    import graphc.tensor as gt

    return gt


def _label(var: Node) -> str:
    return var.name or str(var.type)


def _as_list(value) -> tuple[list, bool]:
    if isinstance(value, (list, tuple)):
        return list(value), True
    return [value], False


def grad(cost, wrt, consider_constant=None, disconnected_inputs="raise", known_grads=None,
         return_disconnected="zero", stabilize=True):
    """Symbolic gradient of the scalar ``cost`` with respect to ``wrt`` (a variable or a list).

    With ``stabilize`` (the default) the cost is first rewritten by the stabilize rules
    (``log(softmax(x))`` -> ``log_softmax(x)``, cross-entropy of softmax -> one fused op, ...),
    keeping every ``wrt`` node intact, so that the gradient of a naive formula is the stable
    one; ``stabilize=False`` differentiates the graph as built.

    >>> import graphc as gc, graphc.tensor as gt
    >>> x = gt.dscalar("x")
    >>> gx = gc.grad(x ** 3, x)          # 3 * x ** 2
    """
    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError(f"grad: disconnected_inputs must be 'raise', 'warn' or 'ignore', got {disconnected_inputs!r}")
    wrt_list, as_list = _as_list(wrt)
    wrt_list = [as_tensor(w) for w in wrt_list]
    for w in wrt_list:
        if not is_float(w.dtype):
            raise TypeError(f"grad: cannot differentiate with respect to {_label(w)} of integer/bool dtype "
                            f"{w.dtype}" + (f" (created at {w.trace})" if w.trace else ""))
    seeds: dict[Node, Node] = {}
    if cost is not None:
        cost = as_tensor(cost)
        if cost.ndim != 0:
            raise TypeError(f"grad: the cost must be a scalar, got {cost.type}"
                            + (f" (created at {cost.trace})" if cost.trace else "") + "; sum or mean it first")
        if not is_float(cost.dtype):
            raise TypeError(f"grad: the cost has dtype {cost.dtype}; only float costs can be differentiated")
        seeds[cost] = _gt().ones_like(cost)
    for var, g in (known_grads or {}).items():
        var = as_tensor(var)
        g = as_tensor(g)
        if g.ndim != var.ndim:
            raise ValueError(f"grad: known gradient of {_label(var)} has ndim {g.ndim}, expected {var.ndim}")
        seeds[var] = _gt().cast(g, var.dtype) if g.dtype != var.dtype else g
    if not seeds:
        raise ValueError("grad: give a cost or known_grads")
    if stabilize and cost is not None and not known_grads:
        grads = _stable_backpropagate(cost, seeds[cost], wrt_list, consider_constant or ())
    else:
        grads = backpropagate(seeds, wrt_list, consider_constant or ())
    out = []
    for w in wrt_list:
        g = grads.get(w)
        if g is None:
            msg = (f"grad: the cost does not depend on {_label(w)}"
                   + (f" (created at {w.trace})" if w.trace else "")
                   + "; pass disconnected_inputs='ignore' to get zeros")
            if disconnected_inputs == "raise":
                raise DisconnectedInputError(msg)
            if disconnected_inputs == "warn":
                warnings.warn(msg, stacklevel=2)
            g = _gt().zeros_like(w) if return_disconnected == "zero" else None
        out.append(g)
    return out if as_list else out[0]


def _stable_backpropagate(cost: Node, seed: Node, wrt: list, consider_constant) -> dict:
    """``backpropagate`` from ``cost`` rewritten by the stabilize rules.

    Each ``wrt`` (and constant) node that is not an input leaf stands in as a fresh input
    while the cost is rewritten and differentiated, so no rule can rewrite it away; the
    gradients then refer to the original nodes again. Falls back to the graph as built when
    a ``wrt`` node depends on another (a placeholder would cut that path).
    """
    from .ir.node import INPUT, SHARED, new_input
    from .rewrite.pattern import PatternMatcher, graph_rewrite
    from .rewrite.pipeline import rewrite_sets

    constants = [as_tensor(c) for c in consider_constant]
    held = [n for n in dict.fromkeys(wrt + constants) if n.op not in (INPUT, SHARED)]
    if _nested([w for w in wrt if w.op not in (INPUT, SHARED)], wrt):
        return backpropagate({cost: seed}, wrt, constants)
    stand_in = {n: new_input(n.type, n.name) for n in held}
    (held_cost,) = substitute([cost], stand_in)
    (stable,) = graph_rewrite([held_cost], PatternMatcher(rewrite_sets()["stabilize"].rules))
    if stable is held_cost:  # nothing to stabilize
        return backpropagate({cost: seed}, wrt, constants)
    grads = backpropagate({stable: seed}, [stand_in.get(w, w) for w in wrt],
                          [stand_in.get(c, c) for c in constants])
    wrt_grads = {w: grads[stand_in.get(w, w)] for w in wrt if stand_in.get(w, w) in grads}
    back = {p: n for n, p in stand_in.items()}
    keys = list(wrt_grads)
    return dict(zip(keys, substitute([wrt_grads[k] for k in keys], back)))


def _nested(inner: list, wrt: list) -> bool:
    """Whether some node of ``inner`` has another ``wrt`` node among its ancestors."""
    targets = {id(w) for w in wrt}
    for node in inner:
        if any(id(a) in targets and a is not node for a in toposort([node])):
            return True
    return False


def _depends_on(order: list[Node], wrt: Sequence[Node], constants: set) -> set:
    """Ids of the nodes whose value depends on some ``wrt`` (through non-constant paths)."""
    live = {id(w) for w in wrt}
    for node in order:
        if id(node) in live or id(node) in constants:
            continue
        if any(id(s) in live for s in node.src):
            live.add(id(node))
    return live


def backpropagate(seeds: dict, wrt: Sequence[Node], consider_constant=()) -> dict:
    """Accumulate gradients from ``seeds`` (node -> its gradient) back to ``wrt``."""
    constants = {id(as_tensor(c)) for c in consider_constant}
    order = toposort(list(seeds))
    live = _depends_on(order, wrt, constants)
    grads: dict[Node, Node] = {}
    for node, g in seeds.items():
        _accumulate(grads, node, g)
    for node in reversed(order):
        g = grads.get(node)
        if g is None or node.is_leaf or id(node) in constants:
            continue
        for src, gi in zip(node.src, _input_grads(node, g)):
            if gi is None or id(src) not in live or not is_float(src.dtype):
                continue
            _accumulate(grads, src, _fit(gi, src, node))
    return grads


def _input_grads(node: Node, g: Node) -> tuple:
    op = node.op
    if op.grad is None:
        if not op.differentiable:
            return (None,) * len(node.src)
        raise NullGradientError(f"grad: op {op.name} has no gradient rule"
                                + (f" (node created at {node.trace})" if node.trace else ""))
    grads = op.grad(node, g)
    if len(grads) != len(node.src):
        raise RuntimeError(f"gradient rule of {op.name} returned {len(grads)} gradients for {len(node.src)} inputs")
    return grads


def _fit(gi, src: Node, node: Node) -> Node:
    """Sum a broadcast gradient back to ``src``'s shape and give it ``src``'s dtype."""
    gi = as_tensor(gi)
    if node.op.kind == ELEMWISE:
        gi = _gt().sum_to(gi, src)
    if gi.dtype != src.dtype:
        gi = _gt().cast(gi, src.dtype)
    if gi.ndim != src.ndim:
        raise RuntimeError(f"gradient rule of {node.op.name} gave a {gi.ndim}-d gradient for a {src.ndim}-d input")
    return gi


def _accumulate(grads: dict, node: Node, g: Node) -> None:
    prev = grads.get(node)
    grads[node] = g if prev is None else prev + g


# --- Lop / Rop / jacobian / hessian -----------------------------------------------------------

def Lop(f, wrt, eval_points, consider_constant=None, disconnected_inputs="raise"):
    """Vector-Jacobian product: ``eval_points`` (shaped like ``f``) times d``f``/d``wrt``."""
    fs, _ = _as_list(f)
    points, _ = _as_list(eval_points)
    if len(fs) != len(points):
        raise ValueError("Lop: give one eval point per output")
    return grad(None, wrt, consider_constant, disconnected_inputs, known_grads=dict(zip(fs, points)))


def Rop(f, wrt, eval_points, disconnected_inputs="raise"):
    """Jacobian-vector product: d``f``/d``wrt`` times ``eval_points`` (shaped like ``wrt``).

    Built as the transpose of ``Lop``: with ``u`` a dummy shaped like ``f``,
    ``Lop(f, wrt, u)`` is linear in ``u``, and its ``Lop`` with respect to ``u`` is the Rop.
    """
    gt = _gt()
    f_list, f_is_list = _as_list(f)
    wrt_list, wrt_is_list = _as_list(wrt)
    points, _ = _as_list(eval_points)
    if len(points) != len(wrt_list):
        raise ValueError("Rop: give one eval point per wrt variable")
    out = []
    for fi in f_list:
        u = gt.tensor(fi.dtype, shape=fi.type.shape, name="rop_dummy")
        lops = Lop(fi, wrt_list, u, disconnected_inputs=disconnected_inputs)
        total = None
        for lop, v in zip(lops, points):
            term = (lop * as_tensor(v)).sum()
            total = term if total is None else total + term
        rop = grad(total, u, disconnected_inputs="ignore")
        # the result is linear in u, so it reads only u's shape (in sum_to): give it f's
        out.append(substitute([rop], {u: gt.zeros_like(fi)})[0])
    return out if f_is_list else out[0]


def _static_size(var: Node, what: str) -> int:
    if None in var.type.shape:
        raise ValueError(f"{what}: the expression's shape must be static for now ({var.type}); "
                         "give the inputs a static shape, e.g. gt.tensor('float64', shape=(3,))")
    return int(np.prod(var.type.shape)) if var.ndim else 1


def jacobian(expression, wrt, consider_constant=None, disconnected_inputs="raise"):
    """The Jacobian of ``expression`` with respect to ``wrt``: shape ``expression.shape + wrt.shape``."""
    gt = _gt()
    expression = as_tensor(expression)
    wrt_list, as_list = _as_list(wrt)
    n = _static_size(expression, "jacobian")
    flat = gt.flatten(expression) if expression.ndim != 1 else expression
    if expression.ndim == 0:
        rows = [grad(expression, wrt_list, consider_constant, disconnected_inputs)]
    else:
        rows = [grad(flat[i], wrt_list, consider_constant, disconnected_inputs) for i in range(n)]
    out = []
    for k, w in enumerate(wrt_list):
        if expression.ndim == 0:
            out.append(rows[0][k])
            continue
        stacked = gt.stack([r[k] for r in rows])
        shape = list(expression.type.shape) + [stacked.shape[i + 1] for i in range(w.ndim)]
        out.append(gt.reshape(stacked, shape))
    return out if as_list else out[0]


def hessian(cost, wrt, consider_constant=None, disconnected_inputs="raise"):
    """The matrix of second derivatives of the scalar ``cost`` with respect to vector ``wrt``."""
    wrt_list, as_list = _as_list(wrt)
    out = []
    for w in wrt_list:
        g = grad(cost, w, consider_constant, disconnected_inputs)
        out.append(jacobian(g, w, consider_constant, disconnected_inputs))
    return out if as_list else out[0]


# --- verify_grad ------------------------------------------------------------------------------

def verify_grad(fn, point, n_tests: int = 2, rng=None, eps: float = 1e-7, abs_tol: float = 1e-6,
                rel_tol: float = 1e-5, mode=None):
    """Check the symbolic gradient of ``fn`` at ``point`` against central differences.

    ``fn`` maps symbolic inputs (one per array of ``point``) to one symbolic output; the
    output is projected on a random tensor to make a scalar cost. Everything runs in float64.
    Raises ``GradientError`` with the largest absolute and relative errors and where they are.
    """
    from .compile import function

    gt = _gt()
    rng = rng if rng is not None else np.random.default_rng(42)
    values = [np.asarray(p) if isinstance(p, np.ndarray) and p.dtype == np.float64 else np.asarray(p, dtype="float64")
              for p in point]
    inputs = [gt.tensor("float64", shape=(None,) * v.ndim, name=f"input{i}") for i, v in enumerate(values)]
    out = as_tensor(fn(*inputs))
    if not is_float(out.dtype):
        raise TypeError(f"verify_grad: fn returned {out.type}, which cannot be differentiated")
    out = gt.cast(out, "float64")
    # NOTE: no default updates: every evaluation must see the same random draws
    f_out = function(inputs, out, mode=mode, on_unused_input="ignore", no_default_updates=True)
    out_shape = np.shape(f_out(*values))
    for _ in range(n_tests):
        proj = rng.standard_normal(out_shape)
        cost = (out * gt.constant(proj)).sum()
        f_cost = function(inputs, cost, mode=mode, on_unused_input="ignore", no_default_updates=True)
        f_grad = function(inputs, grad(cost, inputs, disconnected_inputs="ignore"), mode=mode,
                          on_unused_input="ignore", no_default_updates=True)
        analytic = f_grad(*values)
        for i, (value, sym) in enumerate(zip(values, analytic)):
            numeric = _numeric_grad(f_cost, values, i, eps)
            _compare(i, value.shape, sym, numeric, abs_tol, rel_tol)


def _numeric_grad(f_cost, values, index, eps):
    base = [np.array(v, copy=True) for v in values]
    x = base[index]
    flat = x.reshape(-1)
    out = np.zeros(x.size)
    for k in range(x.size):
        orig = flat[k]
        step = eps * max(1.0, abs(orig))
        flat[k] = orig + step
        plus = float(f_cost(*base))
        flat[k] = orig - step
        minus = float(f_cost(*base))
        flat[k] = orig
        out[k] = (plus - minus) / (2 * step)
    return out.reshape(x.shape)


def _compare(i, shape, analytic, numeric, abs_tol, rel_tol):
    analytic = np.asarray(analytic, dtype="float64")
    abs_err = np.abs(analytic - numeric)
    rel_err = abs_err / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-8)
    bad = (abs_err > abs_tol) & (rel_err > rel_tol)
    if bad.any() or not np.all(np.isfinite(analytic) == np.isfinite(numeric)):
        where = np.unravel_index(int(np.argmax(np.where(bad, abs_err, -1))), shape) if shape else ()
        raise GradientError(
            f"verify_grad: gradient of input {i} (shape {shape}) is wrong: max abs error "
            f"{abs_err.max():.3g}, max rel error {rel_err.max():.3g}; worst at index {where}: "
            f"symbolic {analytic[where] if shape else analytic!r}, numeric {numeric[where] if shape else numeric!r}")
