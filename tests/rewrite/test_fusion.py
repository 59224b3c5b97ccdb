"""Elementwise fusion: what gets grouped, that fused graphs compute what the plain ones do
(broadcasting, 0-size, strided and negative-stride inputs, every dtype), the fused ops
themselves (shape rules, gradients, printing), and the cost of the phase."""

from __future__ import annotations

import time

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from graphc.ir import FunctionGraph
from graphc.ir.node import toposort
from graphc.opdefs.fused import FUSED_ELEMWISE, FUSED_REDUCE, expand, fused_elemwise, fused_reduce
from graphc.printing import debugprint
from graphc.rewrite import Mode
from graphc.rewrite.fusion import MAX_GROUP_SIZE, fuse
from graphc.runtime.reference import RunError
from tests.helpers import assert_matches, layouts, random_array
from tests.rewrite.util import compiled_ops, op_names

FUSED = ("fused_elemwise", "fused_reduce")


def inputs_for(specs):
    """Symbolic inputs for ``(shape, dtype)`` specs: static 1 where the shape has a 1."""
    return [gt.tensor(dtype, shape=tuple(1 if s == 1 else None for s in shape), name=f"in{i}")
            for i, (shape, dtype) in enumerate(specs)]


def values_for(specs, seed=0):
    rng = np.random.default_rng(seed)
    return [random_array(shape, dtype, rng, low=0.5 if dtype.startswith("float") else -3)
            for shape, dtype in specs]


def check_fused(build, specs, mode=None):
    """Compile ``build`` with fusion and in reference mode; compare on every input layout.
    Returns the fused function."""
    inputs = inputs_for(specs)
    outputs = build(*inputs)
    f = gc.function(inputs, outputs, mode=mode or "FAST_RUN", on_unused_input="ignore")
    plain = gc.function(inputs, outputs, mode="reference", on_unused_input="ignore")
    values = values_for(specs)
    for layout in ("contiguous", "strided", "negative"):
        arrays = [layouts(v).get(layout, v) for v in values]
        got, want = f(*arrays), plain(*arrays)
        for g, w in zip(*([got, want] if isinstance(got, list) else [[got], [want]])):
            assert_matches(g, w)
    return f


def fused_nodes(f):
    return [n for n in toposort(f.fgraph.outputs) if n.op.name in FUSED]


def inner_ops(node):
    program = node.arg if node.op is FUSED_ELEMWISE else node.arg[2]
    return [n.op.name for n in toposort([program.node]) if not n.is_leaf]


# --- fusion never changes results ----------------------------------------------------------------
# (label, build, input specs, ops the fused graph must hold)
F32, F64, I32, I64, B = "float32", "float64", "int32", "int64", "bool"
CASES = [
    ("chain broadcast", lambda x, y: gt.tanh(x * y + gt.exp(-x)) * gt.sigmoid(y) + gt.log1p(x * x),
     [((4, 3), F32), ((1, 3), F32)], ["fused_elemwise"]),
    ("chain 0-size", lambda x, y: gt.tanh(x * y + gt.exp(-x)) - y,
     [((0, 3), F64), ((1, 3), F64)], ["fused_elemwise"]),
    ("0-size sum", lambda x, y: gt.sum(gt.exp(x) * y, 0), [((0, 3), F32), ((1, 3), F32)],
     ["fused_reduce"]),
    ("scalars", lambda x, y: gt.sqrt(x * y + 1.0) - x, [((), F64), ((), F64)], ["fused_elemwise"]),
    ("int arithmetic", lambda x, y: (x + y) * 3 - x // 2 + abs(y), [((5, 2), I32), ((5, 1), I32)],
     ["fused_elemwise"]),
    ("int where", lambda x, y: gt.where(x > y, x - y, y * 2), [((3, 4), I64), ((3, 4), I64)],
     ["fused_elemwise"]),
    ("bool logic", lambda a, b: gt.sum(gt.cast((a & b) | ~a, "int32") * 3, 1),
     [((4, 5), B), ((1, 5), B)], ["fused_reduce"]),
    ("casts inside", lambda x, i: gt.cast(x, F32) * 2 + gt.cast(i, F32) - gt.cast(x > 1, F32),
     [((3, 3), F64), ((3, 1), I32)], ["fused_elemwise"]),
    ("where float", lambda x, y: gt.where(x > 1, gt.exp(x), gt.log(y)) * y,
     [((2, 6), F32), ((2, 6), F32)], ["fused_elemwise"]),
    ("intermediate is an output", lambda x: [gt.exp(x), gt.tanh(gt.exp(x) + 1) * x],
     [((5,), F64)], ["fused_elemwise", "exp"]),
    ("cheap value in two groups", lambda x, y: [gt.exp(x * y) + 1, gt.sum(gt.sin(x * y), 0)],
     [((3, 4), F32), ((3, 4), F32)], ["fused_elemwise", "fused_reduce"]),
    ("costly value in two groups", lambda x: [gt.sin(gt.exp(x) + 1), gt.cos(gt.exp(x) * 2)],
     [((6,), F64)], ["fused_elemwise", "exp"]),
    ("value and its reduction", lambda x: gt.exp(x) - gt.max(gt.exp(x), 0, keepdims=True),
     [((4, 3), F64)], ["exp", "max", "sub"]),
    ("reduce after broadcast", lambda x, v: gt.prod(x * v + 1.0, 0), [((3, 4), F64), ((4,), F64)],
     ["fused_reduce"]),
]
REDUCTIONS = [
    ("sum", lambda e: gt.sum(e, 1)), ("sum all", lambda e: gt.sum(e)),
    ("prod", lambda e: gt.prod(e, 0, keepdims=True)), ("max", lambda e: gt.max(e, 1)),
    ("min", lambda e: gt.min(e, (0, 1))), ("any", lambda e: gt.any(e > 1, 0)),
    ("all", lambda e: gt.all(e > 0.3, 1, keepdims=True)), ("argmax", lambda e: gt.argmax(e, 1)),
    ("argmin", lambda e: gt.argmin(e, 0)),
    ("max all keepdims", lambda e: gt.max(e, None, keepdims=True)),
]


@pytest.mark.parametrize("label,build,specs,present", CASES, ids=[c[0] for c in CASES])
def test_fused_graph_computes_what_the_plain_graph_does(label, build, specs, present):
    f = check_fused(build, specs)
    ops = compiled_ops(f)
    for name in present:
        assert name in ops, f"{name} missing from {ops}"


@pytest.mark.parametrize("label,reduce", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_every_reduction_takes_an_elementwise_prologue(label, reduce, dtype):
    f = check_fused(lambda x, y: reduce(gt.exp(x) * y - x), [((3, 5), dtype), ((1, 5), dtype)])
    assert compiled_ops(f) == ["fused_reduce"]


# --- what gets grouped ---------------------------------------------------------------------------

def test_an_elementwise_chain_and_its_sum_become_one_node():
    x, y = gt.fmatrix("x"), gt.fmatrix("y")
    z = x
    for i in range(10):
        z = gt.tanh(z) * y if i % 2 else z - gt.exp(y)
    f = gc.function([x, y], gt.sum(z))
    ops = compiled_ops(f)
    assert ops == ["fused_reduce"], ops
    assert set(inner_ops(fused_nodes(f)[0])) == {"tanh", "mul", "sub", "exp"}
    values = values_for([((3, 4), F32), ((3, 4), F32)])
    assert_matches(f(*values), gc.function([x, y], gt.sum(z), mode="reference")(*values))


def test_logsumexp_core_is_one_max_and_one_fused_sum():
    x = gt.dmatrix("x")
    f = gc.function([x], gt.sum(gt.exp(x - gt.max(x, 1, keepdims=True)), 1))
    ops = compiled_ops(f)
    assert sorted(ops) == ["fused_reduce", "max"], ops
    (fused,) = fused_nodes(f)
    assert fused.arg[0] == "sum" and {"exp", "sub"} <= set(inner_ops(fused))
    assert fused.src[0] is x and fused.src[1].op.name == "max"


def test_a_hand_written_softmax_computes_its_exponentials_once():
    def softmax(x):
        e = gt.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    # stabilize would turn the formula into the softmax op: leave it out
    f = check_fused(softmax, [((4, 7), F32)], mode=Mode("FAST_RUN").excluding("stabilize"))
    # exp(x - m) feeds the sum and the division: costly, so computed once, with the sub
    assert sorted(compiled_ops(f)) == ["fused_elemwise", "max", "sum", "true_div"]
    (fused,) = fused_nodes(f)
    assert inner_ops(fused) == ["sub", "exp"]


def test_excluding_fusion_leaves_the_graph_unfused():
    x, y = gt.fmatrix("x"), gt.fmatrix("y")
    out = gt.sum(gt.tanh(x * y + gt.exp(-x)), 0)
    f = gc.function([x, y], out, mode=Mode("FAST_RUN").excluding("fusion"))
    assert not set(compiled_ops(f)) & set(FUSED)
    assert "fusion" not in f.fgraph.phase_times
    fused = gc.function([x, y], out)
    assert compiled_ops(fused) == ["fused_reduce"]
    values = values_for([((3, 2), F32), ((3, 2), F32)])
    assert_matches(fused(*values), f(*values))


def test_a_costly_value_used_by_two_groups_is_computed_once():
    f = check_fused(lambda x: [gt.sin(gt.exp(x) + 1), gt.cos(gt.exp(x) * 2)], [((4,), F64)])
    assert compiled_ops(f).count("exp") == 1
    assert all("exp" not in inner_ops(n) for n in fused_nodes(f))
    assert len(fused_nodes(f)) == 2


def test_a_cheap_value_used_by_two_groups_is_copied_into_each():
    f = check_fused(lambda x, y: [gt.exp(x * y) + 1, gt.sum(gt.sin(x * y), 0)],
                    [((3, 4), F64), ((3, 4), F64)])
    assert "mul" not in compiled_ops(f)
    assert all("mul" in inner_ops(n) for n in fused_nodes(f))


def test_a_value_that_is_also_an_output_is_computed_once():
    f = check_fused(lambda x: [x * 3, gt.tanh(x * 3) - x], [((5,), F64)])
    ops = compiled_ops(f)
    assert ops.count("mul") == 1 and "fused_elemwise" in ops
    (fused,) = fused_nodes(f)
    assert "mul" not in inner_ops(fused)


def test_a_costly_op_is_not_repeated_along_a_broadcast_axis():
    a, v = gt.tensor(F64, shape=(None, None), name="a"), gt.tensor(F64, shape=(1, None), name="v")
    f = gc.function([a, v], gt.sqrt(a * gt.exp(v)))
    ops = compiled_ops(f)
    assert "exp" in ops and "fused_elemwise" in ops  # exp(v) computed once per column
    # a cheap op is fine to repeat
    f = gc.function([a, v], gt.sqrt(a * (v + 1.0)))
    assert compiled_ops(f) == ["fused_elemwise"]


def test_groups_stop_at_non_elementwise_ops():
    f = check_fused(lambda x: gt.exp(gt.exp(x).T * 2), [((2, 3), F64)])
    ops = compiled_ops(f)
    assert ops.count("exp") == 1 and "dimshuffle" in ops and "fused_elemwise" in ops


def test_reductions_fuse_only_with_their_own_prologue():
    # exp(x) feeds both the max and the subtraction: costly, so it is computed once
    f = check_fused(lambda x: gt.sum(gt.exp(x) - gt.max(gt.exp(x), 1, keepdims=True), 1),
                    [((3, 4), F64)])
    assert sorted(compiled_ops(f)) == ["exp", "fused_reduce", "max"]


def test_single_nodes_and_bare_reductions_stay_plain():
    x = gt.dmatrix("x")
    for out in (gt.exp(x), gt.sum(x, 0), gt.sum(gt.exp(x).T, 0)):
        f = gc.function([x], out)
        assert not set(compiled_ops(f)) & set(FUSED), compiled_ops(f)


def test_one_element_constants_are_copied_into_the_program():
    x = gt.dmatrix("x")
    f = gc.function([x], gt.exp(x * 2.5) + np.ones((1, 1)))
    (fused,) = fused_nodes(f)
    assert list(fused.src) == [x]
    big = np.arange(3.0)
    f = check_fused(lambda x: gt.exp(x * 2.5) + big, [((2, 3), F64)])
    (fused,) = fused_nodes(f)
    assert len(fused.src) == 2 and fused.src[1].op.name in ("constant", "dimshuffle")


def test_equal_groups_on_inputs_of_other_sizes_share_one_program():
    a = gt.tensor(F32, shape=(2, 3), name="a")
    b = gt.tensor(F32, shape=(None, 7), name="b")
    f, g = (gc.function([v], gt.tanh(v * 2.0) + v) for v in (a, b))
    (fa,), (fb,) = fused_nodes(f), fused_nodes(g)
    assert fa.arg is fb.arg or fa.arg == fb.arg
    assert fa.arg.node is fb.arg.node
    assert fa.type.shape == (2, 3) and fb.type.shape == (None, 7)


def test_fusing_twice_changes_nothing():
    x, y = gt.dvector("x"), gt.dvector("y")
    f = gc.function([x, y], [gt.exp(x * y) + y, gt.sum(gt.sin(x) * y)])
    fgraph = FunctionGraph([x, y], f.fgraph.outputs)
    fuse(fgraph, frozenset())
    assert all(a is b for a, b in zip(fgraph.outputs, f.fgraph.outputs))
    assert not fgraph.fired


def test_fusion_is_logged_and_keeps_the_users_line():
    x = gt.dvector("x")
    out = gt.exp(x) * 2.0 + x  # this line
    f = gc.function([x], out)
    (fused,) = fused_nodes(f)
    assert f.fgraph.fired.count("fusion") == 1
    assert fused.trace is not None and "this line" in str(fused.trace)


def test_a_run_time_error_names_the_users_op_and_line_not_the_fused_op():
    x, y = gt.dvector("x"), gt.dvector("y")
    product = gt.exp(x) * y; line = product.trace[1]  # noqa: E702
    f = gc.function([x, y], product + 1.0)
    assert compiled_ops(f) == ["fused_elemwise"]
    with pytest.raises(RunError) as info:
        f(np.ones(3), np.ones(4))
    message = str(info.value)
    assert message.startswith("mul:") and "float64(3,)" in message and "float64(4,)" in message
    assert f"line {line}" in message and "p0" not in message


def test_an_empty_max_in_a_fused_reduction_names_the_max():
    x = gt.dmatrix("x")
    f = gc.function([x], gt.max(gt.exp(x) + 1.0, 0))
    assert compiled_ops(f) == ["fused_reduce"]
    with pytest.raises(RunError, match="^max: max of an empty axis"):
        f(np.ones((0, 2)))


def test_fusing_a_2000_node_chain_takes_well_under_a_second():
    x = gt.fvector("x")
    z = x
    for i in range(2000):
        z = gt.sin(z) if i % 2 else z * 1.5
    fgraph = FunctionGraph([x], [z])
    # this thread's CPU time: neither other processes nor this process's other threads (BLAS
    # threads spinning after an earlier test's product) count
    start = time.thread_time()
    fuse(fgraph, frozenset())
    elapsed = time.thread_time() - start
    # groups stop at MAX_GROUP_SIZE ops, so that one kernel's code stays bounded
    groups = -(-2000 // MAX_GROUP_SIZE)
    assert op_names(fgraph.outputs) == ["fused_elemwise"] * groups
    assert elapsed < 0.5, f"fusing 2,000 nodes took {elapsed:.3f} s"
    f = gc.function([x], z)
    assert compiled_ops(f) == ["fused_elemwise"] * groups
    value = np.linspace(-1, 1, 5, dtype=F32)
    assert_matches(f(value), gc.function([x], z, mode="reference")(value))


# --- printing ------------------------------------------------------------------------------------

def test_debugprint_shows_the_program_of_each_fused_node():
    x, y = gt.fmatrix("x"), gt.fmatrix("y")
    f = gc.function([x, y], [gt.tanh(x * y + gt.exp(-x)), gt.sum(gt.exp(x - y), 1)])
    text = debugprint(f, file="str")
    assert "fused_elemwise{tanh(p0 * p1 + exp(-p0))}" in text
    assert "fused_reduce{sum(exp(p0 - p1), axis=(1,), keepdims=False)}" in text
    expected = "fused_elemwise{tanh(p0 * p1 + exp(-p0))}(x, y)"
    assert gc.printing.pprint(f.fgraph.outputs[0]) == expected


def test_a_long_program_prints_shortened():
    x = gt.dvector("x")
    z = x
    for _ in range(100):
        z = gt.sin(z) + x
    label = gc.printing.op_label(fused_elemwise(z, [x]))
    assert label.startswith("fused_elemwise{") and label.endswith("...}") and len(label) < 200


# --- the fused ops -----------------------------------------------------------------------------

def test_fused_ops_build_from_a_graph_and_expand_back():
    x, y = gt.dmatrix("x"), gt.dvector("y")
    yb = gt.dimshuffle(y, ("x", 0))
    node = fused_elemwise(gt.exp(x) * yb - 1.0, [x, yb])
    assert node.op is FUSED_ELEMWISE and node.src == (x, yb) and node.type == (gt.exp(x) * yb).type
    assert expand(node) is gt.exp(x) * yb - 1.0
    red = fused_reduce(gt.max(gt.exp(x) * yb, 0), [x, yb])
    assert expand(red) is gt.max(gt.exp(x) * yb, 0)
    assert red.op is FUSED_REDUCE and red.type == gt.max(gt.exp(x) * yb, 0).type


def test_fused_op_builders_reject_bad_cuts():
    x, y = gt.dmatrix("x"), gt.dmatrix("y")
    with pytest.raises(ValueError, match="not elementwise"):
        fused_elemwise(gt.exp(x.T) + 1.0, [x])
    with pytest.raises(ValueError, match="not used"):
        fused_elemwise(gt.exp(x), [x, y])
    with pytest.raises(ValueError, match="prologue"):
        fused_reduce(gt.sum_to(gt.exp(x), y), [x, y])
    node = fused_elemwise(gt.exp(x) + y, [x, y])
    with pytest.raises(TypeError, match="fused_elemwise"):
        gc.ir.make(FUSED_ELEMWISE, (x, gt.fvector("v").dimshuffle("x", 0)), node.arg)
    column = gt.tensor(F64, shape=(None, 1), name="column")
    bcast = fused_elemwise(gt.exp(x) + column, [x, column])
    with pytest.raises(ValueError, match="size-1"):
        gc.ir.make(FUSED_ELEMWISE, (x, y), bcast.arg)


GRAD_CASES = [
    ("elemwise broadcast", lambda x, y: fused_elemwise(gt.tanh(x * y) + gt.exp(-x), [x, y]),
     [(3, 4), (1, 4)]),
    ("elemwise where", lambda x, y: fused_elemwise(gt.where(x > 0, x * y, y - x), [x, y]),
     [(2, 3), (2, 3)]),
    ("sum", lambda x, y: fused_reduce(gt.sum(gt.sin(x) * y, 1), [x, y]), [(3, 4), (3, 1)]),
    ("max keepdims", lambda x, y: fused_reduce(gt.max(x * y + x, 0, keepdims=True), [x, y]),
     [(4, 3), (1, 3)]),
    ("prod", lambda x, y: fused_reduce(gt.prod(x + y, 1), [x, y]), [(2, 3), (2, 3)]),
]


@pytest.mark.parametrize("label,fn,shapes", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_fused_ops_have_the_gradient_of_their_expansion(label, fn, shapes):
    rng = np.random.default_rng(1)
    point = [layouts(rng.uniform(0.5, 2.0, s))["strided" if i else "negative"]
             for i, s in enumerate(shapes)]
    verify_grad(fn, point, mode="reference")
    verify_grad(fn, point)


def test_a_fused_graph_serialises_and_loads_back():
    from graphc.ir import serialize

    x, y = gt.dmatrix("x"), gt.dvector("y")
    f = gc.function([x, y], [gt.tanh(x * y + 1.0), gt.max(gt.exp(x) - y, 1)])
    x2, y2 = gt.dmatrix("x"), gt.dvector("y")
    loaded = serialize.loads(serialize.dumps([x, y], f.fgraph.outputs), [x2, y2])
    assert [n.op.name for n in loaded] == ["fused_elemwise", "fused_reduce"]
    assert loaded[0].arg.node is f.fgraph.outputs[0].arg.node  # the same hash-consed program
    assert serialize.graph_key([x2, y2], loaded) == serialize.graph_key([x, y], f.fgraph.outputs)
    values = values_for([((2, 3), F64), ((3,), F64)])
    g = gc.function([x2, y2], loaded, mode="reference")
    for got, want in zip(g(*values), f(*values)):
        assert_matches(got, want)


def test_a_group_of_constants_alone_is_left_unfused():
    three = gt.constant(np.array([3.0]))
    folded_out = Mode("FAST_RUN").excluding("constant_folding")
    f = check_fused(lambda x: [gt.exp(three * 2.0) + 1.0, gt.sum(gt.exp(three - 1.0) * x)],
                    [((4,), F64)], mode=folded_out)
    ops = compiled_ops(f)
    assert "fused_reduce" in ops and "fused_elemwise" not in ops and ops.count("exp") == 2
