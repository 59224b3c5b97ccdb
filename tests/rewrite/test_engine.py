"""The rewrite engine: patterns, rule sets, modes, exclusions, the log of what fired."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.config import config
from graphc.ir.node import toposort
from graphc.rewrite import Mode, P, PatternMatcher, Rule, RewriteSet, describe, graph_rewrite
from graphc.rewrite.pattern import check_replacement
from tests.rewrite.util import NO_FUSION, compiled_ops

EXP, LOG, ADD, MUL = gt.exp.op, gt.log.op, gt.add.op, gt.mul.op


def test_pattern_binds_and_matches_commutative_inputs():
    x, y = gt.dvector("x"), gt.dvector("y")
    pattern = P(ADD, P(EXP, P.var("a")), P.var("b"))
    for node in (gt.exp(x) + y, y + gt.exp(x)):
        bindings = {}
        assert pattern.match(node, bindings)
        assert bindings["a"] is x and bindings["b"] is y
    assert not pattern.match(gt.log(x) + y, {})


def test_a_variable_bound_twice_must_be_the_same_node():
    x, y = gt.dvector("x"), gt.dvector("y")
    same = P(MUL, P.var("a"), P.var("a"))
    assert same.match(x * x, {})
    assert not same.match(x * y, {})


def test_const_pattern_sees_through_dimshuffle_and_checks_every_element():
    x = gt.dmatrix("x")
    one = P(MUL, P.var("x"), P.const(1))
    assert one.match(x * 1, {})  # 1 is dimshuffled to a (1, 1) constant
    assert one.match(x * np.ones((1, 3)), {})
    assert not one.match(x * np.array([[1.0, 2.0]]), {})
    assert not one.match(x * x, {})
    assert not P(MUL, P.var("x"), P.const(1)).match(x * np.ones((0, 3)), {})  # empty: no value


def test_graph_rewrite_reaches_a_fixed_point_bottom_up():
    x = gt.dvector("x")
    out = gt.exp(gt.log(gt.exp(gt.log(x))))
    rules = PatternMatcher([Rule("exp_log", P(EXP, P(LOG, P.var("v"))), lambda v: v)])
    fired = []
    assert graph_rewrite([out], rules, fired=fired) == [x]
    assert fired == ["exp_log", "exp_log"]


def test_graph_rewrite_is_bounded_against_rules_that_never_settle(caplog):
    x = gt.dvector("x")
    grow = PatternMatcher([Rule("grow", P(EXP, P.var("v")), lambda v: gt.exp(gt.exp(v)))])
    fired = []
    (out,) = graph_rewrite([gt.exp(x)], grow, max_passes=3, fired=fired)
    assert out.op is EXP and fired
    assert "without reaching a fixed point" in caplog.text


def test_a_rule_that_changes_the_type_is_refused():
    x = gt.dvector("x")
    bad = PatternMatcher([Rule("bad", P(EXP, P.var("v")), lambda v: gt.cast(v, "float32"))])
    with pytest.raises(TypeError, match="rewrite bad changed float64"):
        graph_rewrite([gt.exp(x)], bad)
    with pytest.raises(TypeError, match="static shape"):
        check_replacement(gt.tensor("float64", (3,)), gt.tensor("float64", (4,)), "r")


def test_rewritten_nodes_keep_the_users_line():
    x = gt.dvector("x")
    out = gt.log(1 + x) * 2 * 3  # this line
    f = gc.function([x], out)
    line = "test_engine.py"
    for node in toposort(f.fgraph.outputs):
        if not node.is_leaf:
            assert node.trace is not None and line in str(node.trace), (node, node.trace)


def test_print_rewrites_names_each_rule(capsys):
    x = gt.dvector("x")
    with config.change_flags(print_rewrites=True):
        gc.function([x], -(-x) * 1)
    out = capsys.readouterr().out
    assert "rewrite local_double_neg: neg" in out
    assert "rewrite local_mul_one" in out


def test_excluding_a_rule_or_a_phase_by_name():
    x = gt.dvector("x")
    out = (x * 2) * 3
    assert compiled_ops(gc.function([x], out, mode=NO_FUSION)) == ["mul"]
    f = gc.function([x], out, mode=NO_FUSION.excluding("local_mul_constants"))
    assert "local_mul_constants" not in f.fgraph.fired and compiled_ops(f).count("mul") == 2
    g = gc.function([x], out, mode=Mode("FAST_RUN", exclude=["canonicalize", "stabilize", "specialize", "fusion"]))
    assert g.fgraph.fired == []
    np.testing.assert_allclose(f(np.arange(3.0)), np.arange(3.0) * 6)


def test_unknown_names_and_modes_are_clear_errors():
    with pytest.raises(ValueError, match="no rewrite or phase named 'local_nope'"):
        Mode("FAST_RUN").excluding("local_nope")
    x = gt.dvector("x")
    with pytest.raises(ValueError, match="function: mode must be one of"):
        gc.function([x], x, mode="FAST")
    with pytest.raises(TypeError, match="mode must be a Mode"):
        gc.function([x], x, mode=3)


def test_modes_compare_with_their_names():
    assert Mode("FAST_RUN") == "FAST_RUN" and Mode("FAST_RUN") != "reference"
    assert Mode("FAST_RUN").excluding("fusion") != "FAST_RUN"
    assert Mode("FAST_RUN").excluding("fusion") == Mode("FAST_RUN", ["fusion"])
    assert "fusion" not in Mode("FAST_RUN").excluding("fusion").phases
    assert not Mode("FAST_RUN").excluding("inplace").inplace and Mode("FAST_RUN").inplace
    assert Mode("reference").phases == ("gradient_markers",)


def test_reference_mode_runs_the_graph_as_built():
    x = gt.dvector("x")
    f = gc.function([x], (x * 1) + 0, mode="reference")
    assert compiled_ops(f) == ["dimshuffle", "mul", "dimshuffle", "add"]


def test_describe_lists_phases_sets_and_rules():
    text = describe()
    assert "FAST_RUN: gradient_markers, canonicalize" in text
    assert "[canonicalize]" in text and "local_mul_one" in text and "constant_folding" in text


def test_rule_names_are_unique_within_a_set():
    rules = RewriteSet("demo")
    rules.local("local_demo")(lambda node: None)
    with pytest.raises(ValueError, match="defined twice"):
        rules.local("local_demo")(lambda node: None)


def test_phase_times_are_recorded():
    x = gt.dvector("x")
    f = gc.function([x], gt.exp(x) + 1)
    assert set(f.fgraph.phase_times) >= {"canonicalize", "stabilize", "specialize", "fusion"}
    assert all(t >= 0 for t in f.fgraph.phase_times.values())
