"""Compiled scans rewrite their inner graph again for each call's static shapes
(graphc/scan/specialize.py): results equal the general graph's, a variant per shape
combination, the compiling mode's exclusions kept."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.ir.node import toposort
from graphc.rewrite import Mode
from tests.helpers import assert_matches


def _scan_nodes(f):
    return [n for n in toposort(f.fgraph.outputs) if n.op.name == "scan"]


def _ops(info) -> list[str]:
    return [n.op.name for n in toposort(list(info.outputs)) if not n.is_leaf]


def _rnn_grad(mode="FAST_RUN"):
    x, h0, w = gt.dtensor3("x"), gt.dmatrix("h0"), gt.dmatrix("w")
    h, _ = gc.scan(lambda x_t, h: gt.tanh(x_t + gt.dot(h, w)), sequences=x, outputs_info=h0)
    cost = (h * h).sum()
    return gc.function([x, h0, w], gc.grad(cost, [w, h0]), mode=mode)


def _values(batch, rng):
    return [rng.standard_normal((5, batch, 3)), rng.standard_normal((batch, 3)),
            rng.standard_normal((3, 3)) * 0.5]


def test_each_shape_combination_gets_its_variant_with_static_shapes():
    f, ref = _rnn_grad(), _rnn_grad("reference")
    rng = np.random.default_rng(0)
    for batch in (4, 2, 4):
        values = _values(batch, rng)
        for got, expected in zip(f(*values), ref(*values)):
            np.testing.assert_allclose(got, expected, rtol=1e-12)
    backward = [n.arg for n in _scan_nodes(f) if n.arg.name == "grad_of_scan"][0]
    assert sorted(v.inputs[0].type.shape for v in backward.variants.values()) == [(2, 3), (4, 3)]
    for variant in backward.variants.values():
        assert "sum_to" not in _ops(variant) and "sum_to" in _ops(backward)


def test_the_compiling_modes_exclusions_are_kept():
    f = _rnn_grad(Mode("FAST_RUN").excluding("local_static_sum_to"))
    f(*_values(4, np.random.default_rng(1)))
    backward = [n.arg for n in _scan_nodes(f) if n.arg.name == "grad_of_scan"][0]
    assert backward.exclude == ("local_static_sum_to",)
    (variant,) = backward.variants.values()
    assert "sum_to" in _ops(variant)


def test_values_that_contradict_static_shapes_get_the_usual_error():
    x = gt.tensor("float64", shape=(None, 3), name="x")
    total, _ = gc.scan(lambda row, acc: acc + row, sequences=x, outputs_info=gt.zeros((3,), "float64"))
    f = gc.function([x], total)
    assert_matches(f(np.ones((4, 3))), np.cumsum(np.ones((4, 3)), axis=0))
    with pytest.raises(Exception, match="shape"):
        f(np.ones((4, 5)))
