"""Operator overloading for graph nodes: ``x + y``, ``x[1:]``, ``x.sum(axis=0)`` ...

Every method defers to the function of the same meaning in ``graphc.tensor``; no op
knowledge lives here. ``==`` and ``!=`` keep Python identity semantics (nodes are dict
keys); use ``gt.eq`` / ``gt.neq`` for elementwise comparison, as in Theano.
"""

from __future__ import annotations

_gt = None


def gt():
    global _gt
    if _gt is None:
        import graphc.tensor as module

        _gt = module
    return _gt


class TensorOperators:
    __slots__ = ()
    __array_priority__ = 1000  # numpy arrays defer to our reflected operators

    def __add__(self, other): return gt().add(self, other)
    def __radd__(self, other): return gt().add(other, self)
    def __sub__(self, other): return gt().sub(self, other)
    def __rsub__(self, other): return gt().sub(other, self)
    def __mul__(self, other): return gt().mul(self, other)
    def __rmul__(self, other): return gt().mul(other, self)
    def __truediv__(self, other): return gt().true_div(self, other)
    def __rtruediv__(self, other): return gt().true_div(other, self)
    def __floordiv__(self, other): return gt().int_div(self, other)
    def __rfloordiv__(self, other): return gt().int_div(other, self)
    def __mod__(self, other): return gt().mod(self, other)
    def __rmod__(self, other): return gt().mod(other, self)
    def __pow__(self, other): return gt().pow(self, other)
    def __rpow__(self, other): return gt().pow(other, self)
    def __matmul__(self, other): return gt().matmul(self, other)
    def __rmatmul__(self, other): return gt().matmul(other, self)
    def __neg__(self): return gt().neg(self)
    def __pos__(self): return self
    def __abs__(self): return gt().abs(self)
    def __lt__(self, other): return gt().lt(self, other)
    def __le__(self, other): return gt().le(self, other)
    def __gt__(self, other): return gt().gt(self, other)
    def __ge__(self, other): return gt().ge(self, other)
    def __and__(self, other): return gt().and_(self, other)
    def __rand__(self, other): return gt().and_(other, self)
    def __or__(self, other): return gt().or_(self, other)
    def __ror__(self, other): return gt().or_(other, self)
    def __xor__(self, other): return gt().xor(self, other)
    def __rxor__(self, other): return gt().xor(other, self)
    def __invert__(self): return gt().invert(self)
    def __getitem__(self, index): return gt().subtensor(self, index)

    def __bool__(self):
        raise TypeError("a symbolic variable has no truth value; use gt.switch/gt.where for conditions")

    def __iter__(self):
        raise TypeError("a symbolic variable is not iterable; index it (x[i]) or use scan")

    def __len__(self):
        raise TypeError("a symbolic variable has no len(); use x.shape[0]")

    __hash__ = object.__hash__
    __eq__ = object.__eq__
    __ne__ = object.__ne__

    @property
    def T(self): return gt().transpose(self)
    @property
    def shape(self): return gt().shape(self)
    @property
    def size(self): return gt().prod(gt().shape(self))

    def sum(self, axis=None, keepdims=False, dtype=None): return gt().sum(self, axis, keepdims, dtype)
    def prod(self, axis=None, keepdims=False, dtype=None): return gt().prod(self, axis, keepdims, dtype)
    def mean(self, axis=None, keepdims=False): return gt().mean(self, axis, keepdims)
    def var(self, axis=None, keepdims=False, ddof=0): return gt().var(self, axis, keepdims, ddof)
    def std(self, axis=None, keepdims=False, ddof=0): return gt().std(self, axis, keepdims, ddof)
    def max(self, axis=None, keepdims=False): return gt().max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return gt().min(self, axis, keepdims)
    def argmax(self, axis=None, keepdims=False): return gt().argmax(self, axis, keepdims)
    def argmin(self, axis=None, keepdims=False): return gt().argmin(self, axis, keepdims)
    def any(self, axis=None, keepdims=False): return gt().any(self, axis, keepdims)
    def all(self, axis=None, keepdims=False): return gt().all(self, axis, keepdims)
    def reshape(self, *shape, ndim=None):
        return gt().reshape(self, shape[0] if len(shape) == 1 else shape, ndim=ndim)
    def flatten(self, ndim=1): return gt().flatten(self, ndim)
    def dimshuffle(self, *pattern):
        return gt().dimshuffle(self, pattern[0] if len(pattern) == 1 and isinstance(pattern[0], (list, tuple)) else pattern)
    def transpose(self, *axes):
        return gt().transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (list, tuple)) else (axes or None))
    def squeeze(self, axis=None): return gt().squeeze(self, axis)
    def astype(self, dtype): return gt().cast(self, dtype)
    def clip(self, a_min, a_max): return gt().clip(self, a_min, a_max)
    def dot(self, other): return gt().dot(self, other)
    def sort(self, axis=-1): return gt().sort(self, axis)
    def argsort(self, axis=-1): return gt().argsort(self, axis)
    def cumsum(self, axis=None): return gt().cumsum(self, axis)
    def cumprod(self, axis=None): return gt().cumprod(self, axis)
    def round(self): return gt().round(self)
    def nonzero_values(self): return self[gt().neq(self, 0)]
