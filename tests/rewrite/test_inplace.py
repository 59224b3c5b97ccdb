"""The inplace phase: dead buffers and shared variables are written in place, never a live one."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.rewrite import Mode
from graphc.runtime.reference import RunError

INPLACE = Mode("FAST_RUN").excluding("fusion")  # fusion off so the steps stay one op each
NO_INPLACE = INPLACE.excluding("inplace")


def _reused(f) -> list[str]:
    program = getattr(f.program, "base", f.program)  # the CPU backend keeps the reference plan
    return [node.op.name for node, _, _, _, reuse in program.steps if reuse is not None]


def _compare(inputs, outputs, values, **kw):
    f = gc.function(inputs, outputs, mode=INPLACE, **kw)
    g = gc.function(inputs, outputs, mode=NO_INPLACE, **kw)
    copies = [v.copy() for v in values]
    got = f(*values)
    for v, c in zip(values, copies):
        np.testing.assert_array_equal(v, c)  # inputs are never written
    for a, b in zip(got if isinstance(got, list) else [got], g(*values) if isinstance(got, list) else [g(*values)]):
        np.testing.assert_array_equal(a, b)
    return f


def test_a_chain_reuses_its_intermediate_buffers():
    x = gt.dvector("x")
    f = _compare([x], (gt.exp(x) + 1) * 2 - gt.sin(x), [np.linspace(-1, 1, 7)])
    assert _reused(f) == ["add", "mul", "sub"]
    assert _reused(gc.function([x], (gt.exp(x) + 1) * 2, mode=NO_INPLACE)) == []


def test_inputs_shared_values_and_constants_are_never_overwritten():
    x = gt.dvector("x")
    w = gc.shared(np.arange(3.0), "w")
    c = np.array([1.0, 2.0, 3.0])
    f = _compare([x], ((x + 1) * w) + c, [np.ones(3)])
    np.testing.assert_array_equal(w.get_value(), np.arange(3.0))
    assert _reused(f) == ["mul", "add"]


def test_a_buffer_read_later_through_a_view_is_not_overwritten():
    x = gt.dmatrix("x")
    t = gt.exp(x)
    view = t.T
    f = _compare([x], [t + 1, view * 2], [np.arange(6.0).reshape(2, 3)])
    assert "add" not in _reused(f)


def test_a_buffer_that_is_also_an_output_is_not_overwritten():
    x = gt.dvector("x")
    t = gt.exp(x)
    f = _compare([x], [t, t + 1], [np.arange(3.0)])
    assert _reused(f) == []


def test_a_step_that_reads_its_buffer_twice_through_a_view_is_left_alone():
    x = gt.dmatrix("x")
    t = gt.exp(x)
    f = _compare([x], t + t.T, [np.arange(9.0).reshape(3, 3)])
    assert "add" not in _reused(f)


def test_run_time_broadcasting_falls_back_to_a_new_buffer():
    x, y = gt.dvector("x"), gt.dvector("y")
    out = gt.exp(x) + y  # exp(x) may have one element while y has three
    f = _compare([x, y], out, [np.array([0.5]), np.arange(3.0)])
    assert _reused(f) == ["add"]
    np.testing.assert_allclose(f(np.array([0.5]), np.arange(3.0)), np.exp(0.5) + np.arange(3.0))


def test_gradient_graphs_with_sum_to_keep_their_values():
    # sum_to returns its input when nothing sums: that buffer is aliased, not dead
    x, y, c = gt.dmatrix("x"), gt.dvector("y"), gt.dmatrix("c")
    gx, gy = gc.grad(((x - y) * c).sum(), [x, y])
    rng = np.random.default_rng(0)
    _compare([x, y, c], [gx, gy], [rng.random((2, 3)), rng.random(3), rng.random((2, 3))])


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_shared_variable_updates_write_into_its_buffer(dtype):
    w = gc.shared(np.arange(4).astype(dtype), "w")
    x = gt.tensor(dtype, (None,), "x")
    f = gc.function([x], [], updates={w: w - x}, mode=INPLACE)
    before = w.get_value(borrow=True)
    f(np.ones(4, dtype))
    assert w.get_value(borrow=True) is before
    np.testing.assert_array_equal(w.get_value(), np.arange(4) - 1)
    g = gc.function([x], [], updates={w: w - x}, mode=NO_INPLACE)
    g(np.ones(4, dtype))
    assert w.get_value(borrow=True) is not before
    np.testing.assert_array_equal(w.get_value(), np.arange(4) - 2)


def test_update_of_a_variable_that_is_also_an_output_returns_the_old_value():
    w = gc.shared(np.zeros(3), "w")
    f = gc.function([], w, updates={w: w + 1}, mode=INPLACE)
    np.testing.assert_array_equal(f(), np.zeros(3))
    np.testing.assert_array_equal(f(), np.ones(3))
    np.testing.assert_array_equal(w.get_value(), np.full(3, 2.0))


def test_updates_read_the_old_values_of_each_other():
    a, b = gc.shared(np.ones(2), "a"), gc.shared(np.full(2, 10.0), "b")
    f = gc.function([], [], updates=[(a, a + b), (b, b * 2)], mode=INPLACE)
    f()
    np.testing.assert_array_equal(a.get_value(), [11.0, 11.0])
    np.testing.assert_array_equal(b.get_value(), [20.0, 20.0])
    f()
    np.testing.assert_array_equal(a.get_value(), [31.0, 31.0])


def test_a_failing_call_leaves_in_place_updates_unwritten():
    w = gc.shared(np.zeros(3), "w")
    x, y = gt.dvector("x"), gt.dvector("y")
    f = gc.function([x, y], x + y, updates={w: w + x.sum()}, mode=INPLACE)
    with pytest.raises(RunError):
        f(np.ones(3), np.ones(2))
    np.testing.assert_array_equal(w.get_value(), np.zeros(3))


def test_an_update_that_changes_the_shape_is_not_written_in_place():
    w = gc.shared(np.zeros(1), "w")
    x = gt.dvector("x")
    f = gc.function([x], [], updates={w: w + x}, mode=INPLACE)
    before = w.get_value(borrow=True)
    f(np.arange(3.0))
    np.testing.assert_array_equal(w.get_value(), np.arange(3.0))
    np.testing.assert_array_equal(before, [0.0])


def test_read_only_shared_values_are_not_written():
    value = np.zeros(3)
    value.setflags(write=False)
    w = gc.shared(value, "w", borrow=True)
    f = gc.function([], [], updates={w: w + 1}, mode=INPLACE)
    f()
    np.testing.assert_array_equal(w.get_value(), np.ones(3))
    np.testing.assert_array_equal(value, np.zeros(3))
