"""scan as a graph: build-time and run-time errors, rewriting of the inner graph, the
compiled backend, serialisation and the graph cache."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.ir import serialize
from graphc.ir.node import toposort
from graphc.rewrite import Mode
from graphc.runtime.reference import RunError
from graphc.scan.op import SCAN, SCAN_OUTPUT
from tests.helpers import MODES, assert_matches


def _scan_nodes(f):
    return [n for n in toposort(f.fgraph.outputs) if n.op is SCAN]


# --- errors ---------------------------------------------------------------------------------------

def test_step_output_dtype_must_match_outputs_info():
    h0 = gt.fvector("h0")
    with pytest.raises(TypeError) as info:
        gc.scan(lambda h: h + gt.constant(1.0), outputs_info=h0, n_steps=3)  # float64 constant
    message = str(info.value)
    assert "float64[?]" in message and "float32[?]" in message
    assert "test_scan_graph.py" in message and "gc.scan(" in message


def test_step_output_ndim_must_match_outputs_info():
    with pytest.raises(TypeError, match=r"float64\[\?,\?\].*float64\[\?\]"):
        gc.scan(lambda h: gt.outer(h, h), outputs_info=gt.dvector("h0"), n_steps=2)


def test_number_of_outputs_must_match_outputs_info():
    with pytest.raises(ValueError, match="returned 2 outputs.*1 entries"):
        gc.scan(lambda h: [h, h], outputs_info=[gt.dvector()], n_steps=2)


@pytest.mark.parametrize("kwargs,error,pattern", [
    (dict(), ValueError, "sequences or n_steps"),
    (dict(n_steps=-2), ValueError, "negative"),
    (dict(n_steps=gt.dscalar()), TypeError, "integer scalar"),
    (dict(n_steps=3, truncate_gradient=0), ValueError, "truncate_gradient"),
    (dict(sequences=gt.dscalar()), TypeError, "at least one dimension"),
    (dict(n_steps=3, outputs_info=dict(initial=gt.dscalar(), taps=[-2])), TypeError, "leading axis"),
    (dict(n_steps=3, outputs_info=dict(initial=gt.dvector(), taps=[1])), ValueError, "negative"),
])
def test_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        gc.scan(lambda *args: args[0] if args else gt.constant(1.0), **kwargs)


@pytest.mark.parametrize("mode", MODES)
def test_run_time_errors_name_the_scan(mode):
    x, h0, n = gt.dvector("x"), gt.dscalar("h0"), gt.lscalar("n")
    out, _ = gc.scan(lambda v, h: h + v, sequences=x, outputs_info=h0, n_steps=n)
    f = gc.function([x, h0, n], out, mode=mode)
    with pytest.raises(RunError, match=r"(?s)sequence 0 has 2 entries, fewer than the 3 steps.*gc.scan\("):
        f(np.ones(2), 0.0, 3)
    with pytest.raises(RunError, match="negative number of steps"):
        f(np.ones(2), 0.0, -1)
    assert_matches(f(np.ones(2), 0.0, 0), np.zeros(0))


@pytest.mark.parametrize("mode", MODES)
def test_a_step_changing_the_state_shape_is_a_run_time_error(mode):
    x, h0 = gt.dvector("x"), gt.dvector("h0")
    out, _ = gc.scan(lambda v, h: gt.concatenate([h, v[None]]), sequences=x, outputs_info=h0)
    f = gc.function([x, h0], out, mode=mode)
    with pytest.raises(ValueError, match=r"step 0: .*output 0 has shape \(3,\), but \(2,\)"):
        f(np.ones(2), np.zeros(2))


@pytest.mark.parametrize("mode", MODES)
def test_an_error_inside_the_step_names_the_inner_op_and_step(mode):
    h0, w = gt.dvector("h0"), gt.dmatrix("w")
    out, _ = gc.scan(lambda h: gt.dot(h, w), outputs_info=h0, n_steps=2)
    f = gc.function([h0, w], out, mode=mode)
    with pytest.raises(RunError, match=r"(?s)matmul.*in step 0 of scan"):
        f(np.ones(3), np.ones((4, 4)))


# --- the inner graph is rewritten and compiled, the outer graph keeps it intact --------------

def test_fast_run_compiles_the_rewritten_inner_graph():
    xs, h0 = gt.dmatrix("xs"), gt.dvector("h0")
    h, _ = gc.scan(lambda x_t, h: gt.log(1 + gt.exp(x_t * h)) * 1, sequences=xs, outputs_info=h0)
    built = h.src[0].arg
    assert built.backend is None
    f = gc.function([xs, h0], h, mode="FAST_RUN")
    (node,) = _scan_nodes(f)
    info = node.arg
    assert info.backend == "cpu" and info.inputs == built.inputs
    inner_ops = {n.op.name for n in toposort(info.outputs)}
    assert "fused_elemwise" in inner_ops and "mul" not in inner_ops  # x * 1 dropped, the rest fused
    assert "local_mul_one" in f.fgraph.fired
    x = np.random.default_rng(0).standard_normal((5, 3))
    expected, state = [], np.zeros(3)
    for row in x:
        state = np.log1p(np.exp(row * state))
        expected.append(state)
    assert_matches(f(x, np.zeros(3)), np.array(expected))


def test_fast_compile_rewrites_the_inner_graph_for_the_reference_backend():
    xs = gt.dmatrix("xs")
    out, _ = gc.map(lambda row: row * 1 + 0, sequences=xs)
    f = gc.function([xs], out, mode="FAST_COMPILE")
    (node,) = _scan_nodes(f)
    assert node.arg.backend == "reference"
    assert node.arg.outputs == node.arg.inputs  # row * 1 + 0 -> row
    assert_matches(f(np.ones((2, 2))), np.ones((2, 2)))


def test_excluding_the_inner_graphs_phase_runs_the_graph_as_built():
    xs = gt.dmatrix("xs")
    out, _ = gc.map(lambda row: row * 2, sequences=xs)
    f = gc.function([xs], out, mode=Mode("FAST_RUN").excluding("inner_graphs"))
    (node,) = _scan_nodes(f)
    assert node.arg.backend is None
    assert_matches(f(np.ones((2, 2))), np.full((2, 2), 2.0))


def test_a_scan_of_constants_is_not_folded_and_its_inner_graph_is_its_own():
    out, _ = gc.scan(lambda h: h * 2 + 0, outputs_info=gt.constant(np.ones(2)), n_steps=3)
    for mode in ("FAST_COMPILE", "FAST_RUN"):
        f = gc.function([], out, mode=mode)
        assert len(_scan_nodes(f)) == 1
        assert_matches(f(), np.array([[2.0, 2], [4, 4], [8, 8]]))
    # the user's graph is untouched by the compilation
    assert out.src[0].arg.backend is None


def test_outer_rewrites_see_through_scan_outputs():
    xs = gt.dmatrix("xs")
    out, _ = gc.scan(lambda row, acc: acc + row, sequences=xs, outputs_info=gt.zeros((3,), dtype="float64"))
    f = gc.function([xs], out.shape, mode="FAST_RUN")
    assert not _scan_nodes(f)  # the shape comes from n_steps and the initial value, no loop runs
    assert list(f(np.ones((4, 3)))) == [4, 3]


# --- serialisation and the graph cache ----------------------------------------------------------

def test_serialize_round_trip_of_a_scan_graph():
    xs, h0 = gt.dmatrix("xs"), gt.dvector("h0")
    w = gc.shared(np.eye(2), name="w")
    h, _ = gc.scan(lambda x_t, h: gt.tanh(x_t + gt.dot(h, w)), sequences=xs, outputs_info=h0)
    cost = gc.grad(h.sum(), w)
    data = serialize.dumps([xs, h0], [h, cost])
    loaded = serialize.loads(data, [xs, h0], serialize.shared_order([h, cost], [xs, h0]))
    assert serialize.graph_key([xs, h0], loaded) == serialize.graph_key([xs, h0], [h, cost])
    x = np.random.default_rng(0).standard_normal((4, 2))
    for mode in MODES:
        want = gc.function([xs, h0], [h, cost], mode=mode)(x, np.zeros(2))
        got = gc.function([xs, h0], loaded, mode=mode)(x, np.zeros(2))
        for a, b in zip(got, want):
            assert_matches(a, b)


def test_graph_cache_hit_rebuilds_the_compiled_scan():
    xs = gt.dmatrix("xs")

    def build():
        out, _ = gc.scan(lambda row, acc: acc * 0.5 + gt.sin(row), sequences=xs,
                         outputs_info=gt.zeros((2,), dtype="float64"))
        return out

    first = gc.function([xs], build(), mode="FAST_RUN")
    second = gc.function([xs], build(), mode="FAST_RUN")
    assert (first.graph_cache, second.graph_cache) == ("miss", "hit")
    (node,) = _scan_nodes(second)
    assert node.arg.backend == "cpu"
    x = np.random.default_rng(1).standard_normal((3, 2))
    assert_matches(second(x), first(x))


def test_scan_outputs_are_views_of_one_packed_result():
    xs = gt.dmatrix("xs")
    outs, _ = gc.scan(lambda row, a, b: [a + row, b * 2], sequences=xs,
                      outputs_info=[gt.zeros((2,), dtype="float64"), gt.ones((2,), dtype="int64")])
    assert outs[0].op is SCAN_OUTPUT and outs[0].src[0] is outs[1].src[0]
    f = gc.function([xs], outs)
    a, b = f(np.full((3, 2), 2.0))
    assert_matches(a, np.array([[2.0, 2], [4, 4], [6, 6]]))
    assert_matches(b, np.array([[2, 2], [4, 4], [8, 8]]))


# --- work moved out of the loop -------------------------------------------------------------------

def _inner_ops(out):
    return [n.op.name for n in toposort(out.src[0].arg.outputs) if not n.is_leaf]


def test_row_wise_work_on_sequences_runs_before_the_loop():
    xs, h0 = gt.dmatrix("xs"), gt.dvector("h0")
    w, u, b = gt.dmatrix("w"), gt.dmatrix("u"), gt.dvector("b")
    h, _ = gc.scan(lambda x_t, h: gt.tanh(gt.dot(x_t, w) + b + gt.dot(h, u)), sequences=xs, outputs_info=h0)
    assert _inner_ops(h).count("matmul") == 1  # only h @ u stays in the step
    (pushed,) = [s for s in h.src[0].src[1:] if s.op.name == "add"]  # xs @ w + b, once
    assert pushed.ndim == 2
    mapped, _ = gc.map(lambda x_t: gt.exp(x_t) * 2, sequences=xs)
    assert _inner_ops(mapped) == []  # the whole step is row-wise
    rng = np.random.default_rng(3)
    values = [rng.standard_normal(s) for s in [(4, 2), (3,), (2, 3), (3, 3), (3,)]]
    for mode in MODES:
        got = gc.function([xs, h0, w, u, b], h, mode=mode)(*values)
        state, expected = values[1], []
        for row in values[0]:
            state = np.tanh(row @ values[2] + values[4] + state @ values[3])
            expected.append(state)
        assert_matches(got, np.array(expected))
        assert_matches(gc.function([xs], mapped, mode=mode)(values[0]), np.exp(values[0]) * 2)


def test_backward_steps_do_not_recompute_the_forward_step():
    xs, h0, w = gt.dmatrix("xs"), gt.dvector("h0"), gt.dmatrix("w")
    h, _ = gc.scan(lambda x_t, h: gt.tanh(x_t + gt.dot(h, w)), sequences=xs, outputs_info=h0)
    f = gc.function([xs, h0, w], gc.grad(h.sum(), w), mode="FAST_RUN")
    backward = [n for n in _scan_nodes(f) if n.arg.name == "grad_of_scan"]
    assert len(backward) == 1
    inner = [n.op.name for n in toposort(backward[0].arg.outputs) if not n.is_leaf]
    assert "tanh" not in " ".join(inner)  # reads the stored tanh(...) instead
    # g @ w.T stays; the weight gradient sum_t h_prev.T @ g is one product after the loop
    assert sum(name in ("matmul", "gemm") for name in inner) == 1
    assert backward[0].arg.history.count(False) == 1  # the gradient window, no accumulator


def test_weight_gradients_are_one_product_after_the_backward_loop():
    xs, h0 = gt.dmatrix("xs"), gt.dvector("h0")
    w, u, b = gt.dmatrix("w"), gt.dmatrix("u"), gt.dvector("b")
    h, _ = gc.scan(lambda x_t, h: gt.tanh(gt.dot(x_t, w) + b + gt.dot(h, u)) * 2.0,
                   sequences=xs, outputs_info=h0)
    cost = (h ** 2).sum()
    rng = np.random.default_rng(4)
    values = [rng.standard_normal(s) for s in [(5, 2), (3,), (2, 3), (3, 3), (3,)]]
    f = gc.function([xs, h0, w, u, b], gc.grad(cost, [w, u, b]), mode="FAST_RUN")
    backward = [n for n in _scan_nodes(f) if n.arg.name == "grad_of_scan"]
    assert backward[0].arg.history.count(False) == 1  # neither u's nor b's gradient accumulates
    ref = gc.function([xs, h0, w, u, b], gc.grad(cost, [w, u, b]), mode="reference")
    for got, expected in zip(f(*values), ref(*values)):
        assert_matches(got, expected)
