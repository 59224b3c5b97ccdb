"""The IR's contract: hash-consing, immutability, walks, substitution, provenance."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from tests.helpers import neg_chain
from graphc.ir import (
    CONSTANT,
    INPUT,
    Node,
    clients,
    clone,
    constant,
    graph_inputs,
    make,
    substitute,
    toposort,
)
from graphc.runtime.reference import RunError

THIS_FILE = __file__


def here() -> int:
    """The caller's line number."""
    return sys._getframe(1).f_lineno


# --- hash-consing -----------------------------------------------------------------------------

def test_same_op_src_arg_is_the_same_object():
    x, y = gt.dmatrix("x"), gt.dmatrix("y")
    assert gt.exp(x) is gt.exp(x)
    assert x + y is x + y
    assert (x + y).sum(axis=0) is (x + y).sum(axis=0)
    assert x + y is not y + x  # structure, not algebra
    assert x.sum(axis=0) is not x.sum(axis=1)


def test_make_returns_the_live_equal_node():
    x = gt.dvector("x")
    node = gt.exp(x)
    assert make(node.op, node.src, node.arg) is node
    assert make(node.op, [x], node.arg) is node  # any sequence of inputs


def test_two_inputs_with_the_same_name_are_distinct():
    a, b = gt.matrix("x"), gt.matrix("x")
    assert a is not b
    assert a.type == b.type
    assert gt.exp(a) is not gt.exp(b)


def test_shared_variables_are_distinct_even_with_equal_values():
    a, b = gc.shared(np.zeros(3), name="w"), gc.shared(np.zeros(3), name="w")
    assert a is not b


@pytest.mark.parametrize("value, dtype", [
    (1.0, "float64"), (1, "int64"), (True, "bool"), (1.0, "float32"), ([1, 2, 3], "int64"),
    (np.zeros((0, 3)), "float64"), (np.arange(6).reshape(2, 3), "int64"),
])
def test_constants_are_hashed_by_value(value, dtype):
    a = constant(value, dtype)
    b = constant(np.array(value, dtype=dtype), dtype)
    assert a is b
    assert a.op is CONSTANT
    assert a.dtype == dtype
    assert a.type.shape == np.shape(value)


def test_constants_of_different_dtype_or_shape_are_distinct():
    assert constant(1.0) is not constant(1)
    assert constant(1.0).dtype == "float64" and constant(1).dtype == "int64"
    assert constant(1.0, "float32") is not constant(1.0, "float64")
    assert constant([1.0]) is not constant(1.0)
    assert constant(np.zeros((2, 0))) is not constant(np.zeros((0, 2)))


def test_nan_constants_are_equal_and_signed_zeros_are_not():
    assert constant(np.nan) is constant(float("nan"))
    assert constant([np.nan, 1.0]) is constant(np.array([np.nan, 1.0]))
    # bitwise equality: 0.0 and -0.0 behave differently (1 / x), so they stay distinct
    assert constant(0.0) is not constant(-0.0)


def test_constant_value_is_copied_and_read_only():
    value = np.arange(3.0)
    node = constant(value)
    value[0] = 99.0
    assert node.arg.value[0] == 0.0
    with pytest.raises(ValueError):
        node.arg.value[0] = 5.0


def test_float16_constant_becomes_float32():
    assert constant(np.float16(1.5)).dtype == "float32"


def test_unsupported_constant_dtype_is_a_type_error():
    with pytest.raises(TypeError, match="complex128"):
        constant(1j)


# --- immutability -----------------------------------------------------------------------------

@pytest.mark.parametrize("attr", ["op", "src", "arg", "type", "trace"])
def test_node_fields_cannot_be_assigned(attr):
    x = gt.dvector("x")
    y = gt.exp(x)
    before = getattr(y, attr)
    with pytest.raises(AttributeError, match="immutable"):
        setattr(y, attr, None)
    assert getattr(y, attr) is before


def test_node_fields_cannot_be_deleted_or_added():
    y = gt.exp(gt.dvector("x"))
    with pytest.raises(AttributeError):
        del y.type
    with pytest.raises(AttributeError):
        y.tag = "extra"
    with pytest.raises(AttributeError):
        y.name_ = "typo"


def test_only_the_name_may_change():
    x = gt.dvector()
    y = gt.exp(x)
    y.name = "ey"
    assert y.name == "ey"
    assert repr(y) == "<ey: float64[?]>"
    x.name = "x"
    assert str(x) == "x"


def test_shared_container_cannot_be_replaced():
    w = gc.shared(np.zeros(2), name="w")
    with pytest.raises(AttributeError):
        w.container = [np.ones(2)]
    w.set_value(np.ones(2))  # the value changes through set_value only
    assert np.array_equal(w.get_value(), np.ones(2))


def test_nodes_are_not_built_by_calling_the_class():
    with pytest.raises(TypeError, match="make"):
        Node()


def test_make_rejects_non_node_inputs():
    op = gt.exp(gt.dvector()).op
    with pytest.raises(TypeError, match="exp: inputs must be graph nodes"):
        make(op, [np.zeros(3)])
    with pytest.raises(TypeError, match="exp: inputs must be graph nodes, got int"):
        make(op, [1])


def test_make_rejects_an_unhashable_arg():
    x = gt.dvector()
    op = x.sum(axis=0).op
    with pytest.raises(TypeError, match="sum: the op's arg must be hashable"):
        make(op, [x], [[0], False])


# --- toposort ---------------------------------------------------------------------------------

def _diamond():
    x, y = gt.dvector("x"), gt.dvector("y")
    a = gt.exp(x)
    b = gt.log(y)
    c = a * b
    d = c + a
    return x, y, a, b, c, d


def test_toposort_puts_inputs_before_users_and_each_node_once():
    x, y, a, b, c, d = _diamond()
    order = toposort([d])
    assert len(order) == len({id(n) for n in order})
    position = {n: i for i, n in enumerate(order)}
    for node in order:
        for src in node.src:
            assert position[src] < position[node]
    assert set(order) == {x, y, a, b, c, d}


def test_toposort_order_is_depth_first_left_to_right():
    x, y, a, b, c, d = _diamond()
    assert toposort([d]) == [x, a, y, b, c, d]


def test_toposort_is_deterministic_and_respects_output_order():
    x, y, a, b, c, d = _diamond()
    first = toposort([b, a])
    assert first == toposort([b, a])
    assert first == [y, b, x, a]
    assert toposort([a, b]) == [x, a, y, b]


def test_graph_inputs_and_clients():
    x, y, a, b, c, d = _diamond()
    assert graph_inputs([d]) == [x, y]
    users = clients([d])
    assert users[a] == [c, d]
    assert users[x] == [a]
    assert users[d] == []


def test_graph_inputs_include_constants_and_shared():
    w = gc.shared(np.ones(3), name="w")
    x = gt.dvector("x")
    leaves = graph_inputs([x * w + 2.0])
    assert x in leaves and w in leaves
    assert any(n.op is CONSTANT for n in leaves)


# --- substitute / clone -----------------------------------------------------------------------

def test_substitute_rebuilds_only_what_depends_on_the_replaced_node():
    x, y, a, b, c, d = _diamond()
    z = gt.dvector("z")
    (new_d,) = substitute([d], {y: z})
    assert new_d is not d
    assert new_d.op is d.op
    new_c, new_a = new_d.src
    assert new_a is a  # untouched subgraph is shared
    assert new_c.src == (a, gt.log(z))
    assert new_d is a * gt.log(z) + a  # hash-consing: equal to building it directly


def test_substitute_of_an_output_and_with_an_empty_mapping():
    x, y, a, b, c, d = _diamond()
    z = gt.dvector("z")
    assert substitute([d, a], {}) == [d, a]
    assert substitute([d], {d: z}) == [z]


def test_substitute_does_not_change_the_original_graph():
    x, y, a, b, c, d = _diamond()
    before = toposort([d])
    substitute([d], {x: gt.dvector("z")})
    assert toposort([d]) == before


def test_substitute_keeps_the_replaced_nodes_provenance():
    x = gt.dvector("x")
    y = gt.exp(x); line = here()
    (new,) = substitute([y], {x: gt.dvector("z")})
    assert tuple(new.trace) == (THIS_FILE, line)


def test_clone_without_copy_inputs_is_the_same_graph():
    x, y, a, b, c, d = _diamond()
    assert clone([d]) == [d]


def test_clone_with_copy_inputs_gives_fresh_inputs():
    x, y, a, b, c, d = _diamond()
    w = gc.shared(np.ones(2), name="w")
    out = d * w
    (new,) = clone([out], copy_inputs=True)
    leaves = graph_inputs([new])
    fresh = [leaf for leaf in leaves if leaf.op is INPUT]
    assert [leaf.name for leaf in fresh] == ["x", "y"]
    assert not ({x, y} & set(fresh))
    assert [leaf.type for leaf in fresh] == [x.type, y.type]
    assert w in leaves  # shared variables are kept: their values are state
    f = gc.function(fresh, new)
    g = gc.function([x, y], out)
    args = (np.array([0.5, 1.0]), np.array([2.0, 3.0]))
    np.testing.assert_allclose(f(*args), g(*args))


def test_clone_with_replace_and_copy_inputs():
    x, y, a, b, c, d = _diamond()
    z = gt.dvector("z")
    (new,) = clone([d], replace={x: z}, copy_inputs=True)
    leaves = graph_inputs([new])
    assert z in leaves and x not in leaves and y not in leaves


# --- a deep graph -----------------------------------------------------------------------------

def test_100k_node_chain_needs_no_recursion():
    limit = sys.getrecursionlimit()
    x = gt.dvector("x")
    y = neg_chain(x, 100_000)
    order = toposort([y])
    assert len(order) == 100_001
    assert order[0] is x and order[-1] is y
    z = gt.dvector("z")
    (w,) = substitute([y], {x: z})
    assert graph_inputs([w]) == [z]
    f = gc.function([z], w, mode="reference")
    value = np.array([1.5, -2.0])
    np.testing.assert_array_equal(f(value), value)  # an even number of negations
    assert sys.getrecursionlimit() == limit


# --- provenance -------------------------------------------------------------------------------

def test_nodes_record_the_users_line():
    x = gt.dmatrix("x"); line = here()
    y = gt.exp(x) * 2; line_y = here()
    assert tuple(x.trace) == (THIS_FILE, line)
    assert tuple(y.trace) == (THIS_FILE, line_y)
    assert f'line {line_y}' in str(y.trace) and "gt.exp(x) * 2" in str(y.trace)


def test_build_error_names_the_op_the_types_and_the_line():
    x = gt.dmatrix("x", shape=(2, 3))
    y = gt.dmatrix("y", shape=(4, 3))
    line = here() + 2
    with pytest.raises(ValueError) as info:
        x + y
    message = str(info.value)
    assert message.startswith("add:")
    assert "(2, 3)" in message and "(4, 3)" in message
    assert "float64[2,3]" in message and "float64[4,3]" in message
    assert f'{THIS_FILE}", line {line}' in message


def test_run_time_error_names_the_op_the_shapes_and_the_creating_line():
    x, y = gt.dmatrix("x"), gt.dmatrix("y")
    total = x + y; line = here()
    f = gc.function([x, y], total.sum())
    with pytest.raises(RunError) as info:
        f(np.ones((2, 3)), np.ones((4, 3)))
    message = str(info.value)
    assert message.startswith("add:")
    assert "float64(2, 3)" in message and "float64(4, 3)" in message
    assert f'{THIS_FILE}", line {line}' in message
    assert isinstance(info.value, ValueError)
