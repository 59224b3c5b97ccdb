"""The shape set: a shape asked of a computed value comes from the shape rules of the ops that
compute it, so the computation itself drops out of the compiled graph (and the values agree
with the unrewritten graph, also with size-1 broadcasting at run time)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc.tensor as gt
from graphc.ir import toposort
from graphc.ir.op import SHAPE
from tests.helpers import random_array
from tests.rewrite.util import check_rewrite, compiled_ops, op_names

NO_FUSION = ("fusion",)  # the scalar shape arithmetic stays visible op by op


def _inputs(*ndims, dtype="float64"):
    return [gt.tensor(dtype, (None,) * n, name) for n, name in zip(ndims, "xyz")]


def _values(*shapes, dtype="float64"):
    rng = np.random.default_rng(4)
    return [random_array(s, dtype, rng) for s in shapes]


def _kinds(f) -> set[str]:
    return {n.op.kind for n in toposort(f.fgraph.outputs) if not n.is_leaf}


@pytest.mark.parametrize("mode", ["FAST_RUN", "FAST_COMPILE"])
@pytest.mark.parametrize("shape_x, shape_y", [
    ((3, 2), (3, 2)), ((1, 2), (4, 2)), ((4, 2), (1, 2)), ((1, 2), (1, 2)), ((0, 2), (1, 2)),
])
def test_shape_of_a_sum_never_computes_the_sum(mode, shape_x, shape_y):
    x, y = _inputs(2, 2)
    out = (x + y).shape[0]
    assert "add" in op_names([out])
    f = check_rewrite([x, y], out, _values(shape_x, shape_y), fired=["local_shape_i_to_entry"],
                      absent=["add"], mode=mode, exclude=NO_FUSION if mode == "FAST_RUN" else ())
    assert f(*_values(shape_x, shape_y)) == np.broadcast_shapes(shape_x, shape_y)[0]


def test_shape_of_a_static_broadcast_is_a_constant():
    x = gt.tensor("float64", (None, 3), "x")
    y = gt.tensor("float64", (1, None), "y")
    f = check_rewrite([x, y], [(x * y).shape[1], (x * y).shape], _values((2, 3), (1, 3)),
                      absent=["mul"], exclude=NO_FUSION)
    assert _kinds(f) <= {SHAPE}
    assert f.fgraph.outputs[0].op.name == "constant"


def test_reshaped_exp_shape_never_computes_exp():
    (x,) = _inputs(2)
    out = gt.exp(x).reshape((-1,)).shape
    f = check_rewrite([x], out, _values((3, 5)), fired=["local_shape_to_entries"],
                      absent=["exp", "reshape"], exclude=NO_FUSION)
    assert list(f(*_values((3, 5)))) == [15]


def test_shape_of_a_product_runs_only_shape_ops():
    (x,) = _inputs(2)
    f = check_rewrite([x], gt.dot(x, x.T).shape, _values((4, 3)), absent=["matmul", "gemm"])
    assert _kinds(f) == {SHAPE}
    assert list(f(*_values((4, 3)))) == [4, 4]


# (expression, shapes of the inputs, the op that must drop out)
SHAPE_CASES = [
    (lambda x, y: gt.matmul(x, y).shape, [(1, 2, 3), (4, 3, 5)], "matmul"),
    (lambda x, y: gt.gemm(x, y, trans_a=True).shape, [(3, 2), (3, 4)], "gemm"),
    (lambda x, y: gt.sum(x * y, axis=1).shape, [(3, 1), (1, 4)], "sum"),
    (lambda x, y: gt.max(x, axis=0, keepdims=True).shape, [(3, 5), (1, 1)], "max"),
    (lambda x, y: gt.concatenate([x, y]).shape, [(2, 3), (4, 3)], "concatenate"),
    (lambda x, y: x[1:, ::2].shape, [(5, 7), (1, 1)], "subtensor"),
    (lambda x, y: gt.nnet.softmax(x).shape[1], [(2, 6), (1, 1)], "softmax"),
    (lambda x, y: gt.zeros((x.shape[0] * 2, 3)).shape, [(4, 1), (1, 1)], "alloc"),
    (lambda x, y: gt.sort(gt.tanh(x), axis=0).shape, [(3, 2), (1, 1)], "sort"),
    (lambda x, y: gt.exp(x).T.reshape((2, -1)).shape, [(3, 4), (1, 1)], "exp"),
    (lambda x, y: gt.exp(x).shape[-1:], [(3, 4), (1, 1)], "exp"),
]


@pytest.mark.parametrize("build, shapes, dropped", SHAPE_CASES)
def test_shapes_of_computed_values(build, shapes, dropped):
    x, y = _inputs(*(len(s) for s in shapes))
    out = build(x, y)
    assert dropped in op_names([out])
    check_rewrite([x, y], out, _values(*shapes), absent=[dropped], exclude=NO_FUSION)


def test_symbolic_index_into_a_shape():
    (x,) = _inputs(3)
    i = gt.lscalar("i")
    out = gt.exp(x).shape[i]
    f = check_rewrite([x, i], out, _values((2, 3, 4)) + [np.array(-1)], absent=["exp"],
                      exclude=NO_FUSION)
    assert f(*_values((2, 3, 4)), np.array(1)) == 3


def test_entry_of_a_make_vector():
    s = gt.lscalar("s")
    vec = gt.make_vector([s, s * 2, s + 1])
    f = check_rewrite([s], [vec[1], vec[1:]], [np.array(3)],
                      fired=["local_subtensor_of_shape_vector"], absent=["subtensor"],
                      exclude=NO_FUSION)
    assert [np.asarray(v).tolist() for v in f(np.array(3))] == [6, [6, 4]]


@pytest.mark.parametrize("build", [
    lambda e: gt.reshape(e, e.shape),
    lambda e: gt.reshape(e, (e.shape[0], e.shape[1])),
    lambda e: gt.broadcast_to(e, gt.exp(e).shape),
    lambda e: gt.reshape(e, gt.make_vector([gt.shape_i(e, 0), 3])),
])
def test_reshape_to_its_own_shape_disappears(build):
    x = gt.tensor("float64", (None, 3), "x")
    e = gt.tanh(gt.exp(x))
    out = build(e)
    assert out.op.name in ("reshape", "broadcast_to")
    f = check_rewrite([x], out, _values((4, 3)), fired=["local_reshape_to_own_shape"],
                      exclude=NO_FUSION)
    assert f.fgraph.outputs[0].op.name == "tanh"


@pytest.mark.parametrize("build, shape", [
    (lambda e: gt.reshape(e, (e.shape[1], e.shape[0])), (3, 3)),   # sizes swapped
    (lambda e: gt.reshape(e, (e.shape[0], -1)), (2, 3)),          # -1 is not a size
    (lambda e: gt.broadcast_to(e, (4, e.shape[1])), (1, 3)),       # really broadcasts
])
def test_reshape_to_another_shape_stays(build, shape):
    (x,) = _inputs(2)
    f = check_rewrite([x], build(gt.exp(x)), _values(shape), exclude=NO_FUSION)
    assert "local_reshape_to_own_shape" not in f.fgraph.fired


def test_shape_of_an_input_stays_one_op():
    (x,) = _inputs(2)
    f = check_rewrite([x], x.shape, _values((2, 3)))
    assert compiled_ops(f) == ["shape"]
    z = gt.tensor("float64", (2, 3), "z")
    f = check_rewrite([z], [z.shape, gt.shape_i(z, 1)], _values((2, 3)))
    assert compiled_ops(f) == []


def test_long_chain_resolves_within_the_pass_limit():
    (x,) = _inputs(2)
    y = x
    for _ in range(300):
        y = gt.exp(y) if y.op.name != "exp" else gt.tanh(y)
    f = check_rewrite([x], y.shape[1], _values((2, 3)), absent=["exp", "tanh"])
    assert compiled_ops(f) == ["shape_i"]


@pytest.mark.parametrize("value", [np.array([[1.0, -2.0], [3.0, 4.0]]), np.zeros((0, 2))])
def test_value_dependent_shape_keeps_what_it_needs(value):
    # the length of x[x > 0] is the count of positive values: that count stays, the gather goes
    (x,) = _inputs(2)
    out = x[x > 0].shape[0]
    f = check_rewrite([x], out, [value], absent=["advanced_subtensor"], exclude=NO_FUSION)
    assert "gt" in compiled_ops(f) and "sum" in compiled_ops(f)
    assert f(value) == int((value > 0).sum())


def test_arange_with_symbolic_bounds_keeps_its_length_arithmetic():
    start, stop = gt.lscalar("start"), gt.lscalar("stop")
    out = gt.exp(gt.cast(gt.arange(start, stop, 3), "float64")).shape[0]
    f = check_rewrite([start, stop], out, [np.array(2), np.array(12)], absent=["arange", "exp"],
                      exclude=NO_FUSION)
    assert f(np.array(2), np.array(12)) == len(np.arange(2, 12, 3))
    assert f(np.array(5), np.array(1)) == 0


def test_excluding_the_shape_set_keeps_the_computation():
    x, y = _inputs(2, 2)
    check_rewrite([x, y], (x + y).shape[0], _values((3, 2), (3, 2)), present=["add"],
                  exclude=NO_FUSION + ("shape",))
