"""Elementwise ops: each row defines one op (NumPy reference, dtype rule, gradient).

Every elementwise op takes inputs of one dtype and equal ndim (the builder ``apply``
promotes dtypes by NumPy 2's rules and prepends broadcast dimensions), and broadcasts
size-1 dimensions at run time like NumPy. The autodiff loop sums the gradient of a
broadcast input back to that input's shape, so the rules below ignore broadcasting.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from ..ir.node import Node, constant, make
from ..ir.op import ELEMWISE, OpDef, defop
from ..ir.types import ALL_DTYPES, FLOAT_DTYPES, INT_DTYPES, TensorType, as_dtype, float_of, is_float, upcast
from .common import as_tensor, broadcast_static, dtype_or_weak, is_weak

ELEMWISE_OPS: dict[str, OpDef] = {}


# --- dtype rules: (dtypes of the user's args, weak ones as Python types) -> loop dtype -------

def ufunc_rule(ufunc):
    """The loop NumPy's ``ufunc`` picks, with float16 read as float32."""

    known: dict = {}  # loop dtype by argument dtypes: resolve_dtypes is slow next to a lookup

    def rule(dtypes):
        key = tuple(dtypes)
        found = known.get(key)
        if found is None:
            found = known[key] = resolve(key)
        return found

    def resolve(dtypes):
        # NOTE: resolve_dtypes takes int and float as weak, not bool; a strong bool promotes alike
        dtypes = tuple(np.dtype("bool") if d is bool else d for d in dtypes)
        try:
            loop = ufunc.resolve_dtypes(dtypes + (None,))
        except TypeError:
            names = ", ".join(getattr(d, "name", getattr(d, "__name__", str(d))) for d in dtypes)
            raise TypeError(f"NumPy's {ufunc.__name__} has no loop for ({names})") from None
        return as_dtype(loop[0])

    return rule


def float_rule(dtypes):
    return float_of(upcast(*dtypes))


def common_rule(dtypes):
    return upcast(*dtypes)


def round_rule(dtypes):
    """NumPy's round keeps integer dtypes; other inputs round in their float dtype."""
    (dtype,) = dtypes
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return as_dtype(dtype)
    return ufunc_rule(np.rint)(dtypes)


# --- output dtype given the loop dtype ------------------------------------------------------

def same(dtype):
    return dtype


def to_bool(dtype):
    return "bool"


def _infer(op_name, out_dtype, accepts):
    def infer(types, arg):
        dtypes = {t.dtype for t in types}
        if len(dtypes) != 1:
            raise TypeError(f"inputs must share one dtype, got {sorted(dtypes)} (use the gt.{op_name} builder)")
        if len({t.ndim for t in types}) != 1:
            raise ValueError("inputs must have equal ndim (use the builder, which adds broadcast axes)")
        (dtype,) = dtypes
        if dtype not in accepts:
            raise TypeError(f"dtype {dtype} is not supported (supported: {', '.join(accepts)})")
        return TensorType(out_dtype(dtype), broadcast_static(types))

    return infer


def broadcast_shape(node, in_shapes):
    from .shape import broadcast_dim

    return tuple(broadcast_dim([s[axis] for s in in_shapes]) for axis in range(node.ndim))


def elemwise(name, nin, ref, grad=None, *, rule, out=same, accepts=ALL_DTYPES, **props):
    """Define an elementwise op and its builder; returns the builder function."""
    if isinstance(ref, np.ufunc):
        props["ufunc"] = ref  # lets a backend write the result into a given buffer
    op = defop(name, ELEMWISE, _infer(name, out, accepts), ref=_nary(ref), shape=broadcast_shape,
               grad=grad, differentiable=grad is not None, props=dict(nin=nin, rule=rule, accepts=accepts, **props))
    ELEMWISE_OPS[name] = op

    def builder(*args):
        if len(args) != nin:
            raise TypeError(f"{name} takes {nin} argument(s), got {len(args)}")
        return apply(op, args)

    builder.__name__ = builder.__qualname__ = name
    builder.op = op
    return builder


def _nary(fn):
    return lambda arg, *xs: fn(*xs)


def apply(op: OpDef, args, loop_dtype: str | None = None) -> Node:
    """Promote ``args`` to the op's loop dtype, align their ndim and build the node."""
    if loop_dtype is None:
        try:
            loop_dtype = op.props["rule"]([dtype_or_weak(a) for a in args])
        except TypeError as exc:
            from ..ir.node import build_error
            from ..ir.provenance import user_trace

            raise TypeError(build_error(op, [a for a in args if isinstance(a, Node)], str(exc), user_trace())) from None
    nodes = [_to_loop_dtype(a, loop_dtype, op) for a in args]
    return make(op, align_ndim(nodes))


class ScalarOverflowError(TypeError, OverflowError):
    """A Python scalar does not fit the tensor's dtype (NumPy 2 raises OverflowError)."""


def _to_loop_dtype(value, dtype: str, op: OpDef) -> Node:
    if isinstance(value, Node):
        return value if value.dtype == dtype else cast(value, dtype)
    if is_weak(value):
        try:
            return constant(np.asarray(value, dtype=dtype))
        except OverflowError as exc:
            from ..ir.node import build_error
            from ..ir.provenance import user_trace

            message = f"{exc}; cast the tensor to a wider dtype first"
            raise ScalarOverflowError(build_error(op, [], message, user_trace())) from None
    node = as_tensor(value)
    return node if node.dtype == dtype else cast(node, dtype)


def align_ndim(nodes):
    ndim = max(n.ndim for n in nodes)
    if all(n.ndim == ndim for n in nodes):
        return nodes
    from .shape import dimshuffle

    return [n if n.ndim == ndim else dimshuffle(n, ("x",) * (ndim - n.ndim) + tuple(range(n.ndim))) for n in nodes]


# --- the gradient rules use the builders below, so they are looked up at call time ---------

def _g():
    import graphc.tensor as gt

    return gt


LN2, LN10 = math.log(2.0), math.log(10.0)
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
NUMBERS = INT_DTYPES + FLOAT_DTYPES


def _sigmoid(x):
    x = np.asarray(x)
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _erf(x):
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x)).astype(x.dtype)  # 0-d gives a float


def _erfc(x):
    return np.asarray(np.frompyfunc(math.erfc, 1, 1)(x)).astype(x.dtype)  # 0-d gives a float


def _cast_ref(arg, x):
    return x.astype(arg)


def _cast_infer(types, arg):
    return TensorType(arg, types[0].shape)


def _cast_grad(node, g):
    (x,) = node.src
    return (cast(g, x.dtype),) if is_float(x.dtype) and is_float(node.dtype) else (None,)


CAST = defop("cast", ELEMWISE, _cast_infer, ref=_cast_ref, grad=_cast_grad,
             shape=lambda node, s: s[0], props=dict(nin=1))
ELEMWISE_OPS["cast"] = CAST


def cast(x, dtype) -> Node:
    """``x`` converted to ``dtype`` (NumPy's ``astype``: truncation, wrap-around)."""
    dtype = as_dtype(dtype)
    x = as_tensor(x)
    return x if x.dtype == dtype else make(CAST, (x,), dtype)


# --- arithmetic ------------------------------------------------------------------------------
add = elemwise("add", 2, np.add, lambda n, g: (g, g), rule=ufunc_rule(np.add), commutative=True)
sub = elemwise("sub", 2, np.subtract, lambda n, g: (g, -g), rule=ufunc_rule(np.subtract))
mul = elemwise("mul", 2, np.multiply, lambda n, g: (g * n.src[1], g * n.src[0]),
               rule=ufunc_rule(np.multiply), commutative=True)
true_div = elemwise("true_div", 2, np.true_divide,
                    lambda n, g: (g / n.src[1], -g * n / n.src[1]),
                    rule=ufunc_rule(np.true_divide), accepts=FLOAT_DTYPES)
int_div = elemwise("int_div", 2, np.floor_divide, None, rule=ufunc_rule(np.floor_divide), accepts=NUMBERS)
mod = elemwise("mod", 2, np.remainder, lambda n, g: (g, -g * _g().int_div(n.src[0], n.src[1])),
               rule=ufunc_rule(np.remainder), accepts=NUMBERS)


def _pow_grad(node, g):
    gt = _g()
    x, y = node.src
    gx = g * y * x ** (y - 1)
    gy = gt.switch(gt.eq(x, 0), 0, g * node * gt.log(gt.switch(gt.eq(x, 0), 1, x)))
    return gx, gy


pow = elemwise("pow", 2, np.power, _pow_grad, rule=ufunc_rule(np.power), accepts=NUMBERS)
neg = elemwise("neg", 1, np.negative, lambda n, g: (-g,), rule=ufunc_rule(np.negative), accepts=NUMBERS)
abs = elemwise("abs", 1, np.absolute, lambda n, g: (g * _g().sign(n.src[0]),),
               rule=ufunc_rule(np.absolute))
sign = elemwise("sign", 1, np.sign, None, rule=ufunc_rule(np.sign), accepts=NUMBERS)
sqr = elemwise("sqr", 1, np.square, lambda n, g: (g * 2 * n.src[0],), rule=ufunc_rule(np.square), accepts=NUMBERS)
maximum = elemwise("maximum", 2, np.maximum,
                   lambda n, g: (g * _g().cast(n.src[0] >= n.src[1], g.dtype), g * _g().cast(n.src[0] < n.src[1], g.dtype)),
                   rule=ufunc_rule(np.maximum), commutative=True)
minimum = elemwise("minimum", 2, np.minimum,
                   lambda n, g: (g * _g().cast(n.src[0] <= n.src[1], g.dtype), g * _g().cast(n.src[0] > n.src[1], g.dtype)),
                   rule=ufunc_rule(np.minimum), commutative=True)

# --- transcendental (float loops) ------------------------------------------------------------
exp = elemwise("exp", 1, np.exp, lambda n, g: (g * n,), rule=ufunc_rule(np.exp), accepts=FLOAT_DTYPES)
exp2 = elemwise("exp2", 1, np.exp2, lambda n, g: (g * n * LN2,), rule=ufunc_rule(np.exp2), accepts=FLOAT_DTYPES)
log = elemwise("log", 1, np.log, lambda n, g: (g / n.src[0],), rule=ufunc_rule(np.log), accepts=FLOAT_DTYPES)
log2 = elemwise("log2", 1, np.log2, lambda n, g: (g / (n.src[0] * LN2),), rule=ufunc_rule(np.log2), accepts=FLOAT_DTYPES)
log10 = elemwise("log10", 1, np.log10, lambda n, g: (g / (n.src[0] * LN10),), rule=ufunc_rule(np.log10),
                 accepts=FLOAT_DTYPES)
log1p = elemwise("log1p", 1, np.log1p, lambda n, g: (g / (n.src[0] + 1),), rule=ufunc_rule(np.log1p), accepts=FLOAT_DTYPES)
expm1 = elemwise("expm1", 1, np.expm1, lambda n, g: (g * (n + 1),), rule=ufunc_rule(np.expm1), accepts=FLOAT_DTYPES)
sqrt = elemwise("sqrt", 1, np.sqrt, lambda n, g: (g * 0.5 / n,), rule=ufunc_rule(np.sqrt), accepts=FLOAT_DTYPES)
sin = elemwise("sin", 1, np.sin, lambda n, g: (g * _g().cos(n.src[0]),), rule=ufunc_rule(np.sin), accepts=FLOAT_DTYPES)
cos = elemwise("cos", 1, np.cos, lambda n, g: (-g * _g().sin(n.src[0]),), rule=ufunc_rule(np.cos), accepts=FLOAT_DTYPES)
tan = elemwise("tan", 1, np.tan, lambda n, g: (g * (1 + n * n),), rule=ufunc_rule(np.tan), accepts=FLOAT_DTYPES)
arcsin = elemwise("arcsin", 1, np.arcsin, lambda n, g: (g / _g().sqrt(1 - n.src[0] * n.src[0]),),
                  rule=ufunc_rule(np.arcsin), accepts=FLOAT_DTYPES)
arccos = elemwise("arccos", 1, np.arccos, lambda n, g: (-g / _g().sqrt(1 - n.src[0] * n.src[0]),),
                  rule=ufunc_rule(np.arccos), accepts=FLOAT_DTYPES)
arctan = elemwise("arctan", 1, np.arctan, lambda n, g: (g / (1 + n.src[0] * n.src[0]),),
                  rule=ufunc_rule(np.arctan), accepts=FLOAT_DTYPES)


def _arctan2_grad(node, g):
    y, x = node.src
    r2 = x * x + y * y
    return g * x / r2, -g * y / r2


arctan2 = elemwise("arctan2", 2, np.arctan2, _arctan2_grad, rule=ufunc_rule(np.arctan2), accepts=FLOAT_DTYPES)
sinh = elemwise("sinh", 1, np.sinh, lambda n, g: (g * _g().cosh(n.src[0]),), rule=ufunc_rule(np.sinh), accepts=FLOAT_DTYPES)
cosh = elemwise("cosh", 1, np.cosh, lambda n, g: (g * _g().sinh(n.src[0]),), rule=ufunc_rule(np.cosh), accepts=FLOAT_DTYPES)
tanh = elemwise("tanh", 1, np.tanh, lambda n, g: (g * (1 - n * n),), rule=ufunc_rule(np.tanh), accepts=FLOAT_DTYPES)
sigmoid = elemwise("sigmoid", 1, _sigmoid, lambda n, g: (g * n * (1 - n),), rule=float_rule, accepts=FLOAT_DTYPES)
softplus = elemwise("softplus", 1, lambda x: np.logaddexp(np.zeros((), x.dtype), x),
                    lambda n, g: (g * sigmoid(n.src[0]),), rule=float_rule, accepts=FLOAT_DTYPES)
erf = elemwise("erf", 1, _erf, lambda n, g: (g * TWO_OVER_SQRT_PI * exp(-n.src[0] * n.src[0]),),
               rule=float_rule, accepts=FLOAT_DTYPES)
erfc = elemwise("erfc", 1, _erfc, lambda n, g: (-g * TWO_OVER_SQRT_PI * exp(-n.src[0] * n.src[0]),),
                rule=float_rule, accepts=FLOAT_DTYPES)

# --- rounding (piecewise constant: zero gradient) --------------------------------------------
round = elemwise("round", 1, np.round, None, rule=round_rule, accepts=NUMBERS)
floor = elemwise("floor", 1, np.floor, None, rule=ufunc_rule(np.floor))
ceil = elemwise("ceil", 1, np.ceil, None, rule=ufunc_rule(np.ceil))

# --- comparisons and logic (bool results: no gradient) --------------------------------------
def comparison(name, ufunc, py_compare, **props):
    """A comparison; like NumPy, a Python int beyond an int tensor's range compares exactly."""
    compare = elemwise(name, 2, ufunc, None, rule=ufunc_rule(ufunc), out=to_bool, **props)

    def builder(x, y):
        known = _compare_out_of_range(py_compare, x, y)
        return compare(x, y) if known is None else known

    builder.__name__ = builder.__qualname__ = name
    builder.op = compare.op
    return builder


def _compare_out_of_range(py_compare, x, y):
    """The all-True/all-False result of comparing an int tensor with an int it cannot hold."""
    tensor, scalar = (x, y) if type(y) is int else (y, x)
    if type(scalar) is not int or not isinstance(tensor, Node) or tensor.dtype not in INT_DTYPES:
        return None
    info = np.iinfo(tensor.dtype)
    if int(info.min) <= scalar <= int(info.max):
        return None
    inside = int(info.min) if scalar < info.min else int(info.max)  # every element compares alike
    result = py_compare(inside, scalar) if tensor is x else py_compare(scalar, inside)
    return _g().full_like(tensor, result, "bool")


eq = comparison("eq", np.equal, operator.eq, commutative=True)
neq = comparison("neq", np.not_equal, operator.ne, commutative=True)
lt = comparison("lt", np.less, operator.lt)
le = comparison("le", np.less_equal, operator.le)
gt = comparison("gt", np.greater, operator.gt)
ge = comparison("ge", np.greater_equal, operator.ge)
BITWISE = ("bool",) + INT_DTYPES
and_ = elemwise("and", 2, np.bitwise_and, None, rule=ufunc_rule(np.bitwise_and), accepts=BITWISE, commutative=True)
or_ = elemwise("or", 2, np.bitwise_or, None, rule=ufunc_rule(np.bitwise_or), accepts=BITWISE, commutative=True)
xor = elemwise("xor", 2, np.bitwise_xor, None, rule=ufunc_rule(np.bitwise_xor), accepts=BITWISE, commutative=True)
invert = elemwise("invert", 1, np.invert, None, rule=ufunc_rule(np.invert), accepts=BITWISE)
isnan = elemwise("isnan", 1, np.isnan, None, rule=ufunc_rule(np.isnan), out=to_bool)
isinf = elemwise("isinf", 1, np.isinf, None, rule=ufunc_rule(np.isinf), out=to_bool)


def logical_and(x, y): return and_(cast(as_tensor(x), "bool"), cast(as_tensor(y), "bool"))
def logical_or(x, y): return or_(cast(as_tensor(x), "bool"), cast(as_tensor(y), "bool"))
def logical_xor(x, y): return xor(cast(as_tensor(x), "bool"), cast(as_tensor(y), "bool"))
def logical_not(x): return invert(cast(as_tensor(x), "bool"))
def isfinite(x): return logical_not(logical_or(isnan(x), isinf(x)))


# --- ternary ---------------------------------------------------------------------------------

def _clip_grad(node, g):
    gt = _g()
    x, lo, hi = node.src
    inside = gt.cast(gt.logical_and(x >= lo, x <= hi), g.dtype)
    return g * inside, g * gt.cast(x < lo, g.dtype), g * gt.cast(x > hi, g.dtype)


CLIP = elemwise("clip", 3, np.clip, _clip_grad, rule=common_rule).op


def clip(x, a_min, a_max) -> Node:
    """Limit ``x`` to ``[a_min, a_max]`` (NumPy's clip; bounds may be tensors)."""
    loop_dtype = CLIP.props["rule"]([dtype_or_weak(v) for v in (x, a_min, a_max)])
    if loop_dtype in INT_DTYPES:  # like NumPy, Python int bounds beyond the dtype's range clamp
        a_min, a_max = (_clamp_int(b, loop_dtype) for b in (a_min, a_max))
    return apply(CLIP, (x, a_min, a_max), loop_dtype)


def _clamp_int(bound, dtype: str):
    if type(bound) is not int:
        return bound
    info = np.iinfo(dtype)
    return min(max(bound, int(info.min)), int(info.max))


def _where_infer(types, arg):
    cond, a, b = types
    if cond.dtype != "bool" or a.dtype != b.dtype:
        raise TypeError(f"where needs a bool condition and branches of one dtype, got {cond.dtype}, {a.dtype}, {b.dtype}")
    if not cond.ndim == a.ndim == b.ndim:
        raise ValueError("inputs must have equal ndim (use the builder)")
    return TensorType(a.dtype, broadcast_static(types))


def _where_grad(node, g):
    gt = _g()
    cond = node.src[0]
    zero = gt.zeros_like(g)
    return None, gt.switch(cond, g, zero), gt.switch(cond, zero, g)


WHERE = defop("where", ELEMWISE, _where_infer, ref=lambda arg, c, a, b: np.where(c, a, b), shape=broadcast_shape,
              grad=_where_grad, props=dict(nin=3))
ELEMWISE_OPS["where"] = WHERE


def where(condition, x, y) -> Node:
    """``x`` where ``condition`` holds, else ``y`` (NumPy's 3-argument where)."""
    cond = cast(as_tensor(condition), "bool")
    dtype = common_rule([dtype_or_weak(x), dtype_or_weak(y)])
    a, b = _to_loop_dtype(x, dtype, WHERE), _to_loop_dtype(y, dtype, WHERE)
    return make(WHERE, align_ndim([cond, a, b]))


switch = where
