"""graphc.function and graphc.shared: calling, inputs, outputs, updates, givens, errors."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.runtime.reference import RunError
from tests.helpers import MODES, layouts


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


# --- outputs and calling ----------------------------------------------------------------------

def test_single_output_is_returned_bare(mode):
    x = gt.dvector("x")
    f = gc.function([x], x * 2, mode=mode)
    result = f(np.array([1.0, 2.0]))
    assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(result, [2.0, 4.0])


@pytest.mark.parametrize("container", [list, tuple])
def test_a_list_of_outputs_is_returned_as_a_list(mode, container):
    x = gt.dvector("x")
    f = gc.function([x], container([x * 2, x.sum()]), mode=mode)
    result = f(np.array([1.0, 2.0]))
    assert isinstance(result, list) and len(result) == 2
    np.testing.assert_array_equal(result[0], [2.0, 4.0])
    assert result[1].shape == () and result[1].dtype == np.float64 and result[1] == 3.0


def test_no_outputs_returns_an_empty_list():
    x = gt.dvector("x")
    assert gc.function([x], [], on_unused_input="ignore")(np.ones(2)) == []
    assert gc.function([x], on_unused_input="ignore")(np.ones(2)) == []


def test_scalar_outputs_are_0d_arrays():
    x = gt.dvector("x")
    result = gc.function([x], x.sum())(np.ones(3))
    assert isinstance(result, np.ndarray) and result.shape == ()


def test_call_by_position_and_by_name(mode):
    x, y = gt.dvector("x"), gt.dvector("y")
    f = gc.function([x, y], x - y, mode=mode)
    a, b = np.array([5.0]), np.array([2.0])
    for result in (f(a, b), f(x=a, y=b), f(y=b, x=a), f(a, y=b)):
        np.testing.assert_array_equal(result, [3.0])


@pytest.mark.parametrize("args, kwargs, message", [
    ((), {}, "missing input(s) 'x', 'y'"),
    ((np.ones(1),), {}, "missing input(s) 'y'"),
    ((np.ones(1), np.ones(1), np.ones(1)), {}, "takes 2 inputs, got 3"),
    ((np.ones(1),), {"x": np.ones(1)}, "input 'x' given twice"),
    ((), {"z": np.ones(1)}, "no input named 'z'"),
])
def test_missing_extra_and_duplicate_arguments(args, kwargs, message):
    x, y = gt.dvector("x"), gt.dvector("y")
    f = gc.function([x, y], x + y, name="f")
    with pytest.raises(TypeError) as info:
        f(*args, **kwargs)
    assert message in str(info.value)
    assert "'f'" in str(info.value)


def test_unnamed_inputs_are_called_by_position_and_labelled_by_index():
    x = gt.dvector()
    f = gc.function([x], x + 1)
    np.testing.assert_array_equal(f(np.zeros(2)), [1.0, 1.0])
    with pytest.raises(TypeError, match="#0"):
        f()


# --- checks at compile time -------------------------------------------------------------------

def test_inputs_must_be_a_list_of_distinct_input_variables():
    x = gt.dvector("x")
    with pytest.raises(TypeError, match=r"function\(\[x\], y\)"):
        gc.function(x, x)
    with pytest.raises(ValueError, match="listed twice"):
        gc.function([x, x], x)
    with pytest.raises(TypeError, match="symbolic input variables"):
        gc.function([x * 2], x)
    w = gc.shared(np.ones(2), name="w")
    with pytest.raises(TypeError, match="shared variable w cannot be an input"):
        gc.function([w], w * 2)


def test_an_input_missing_from_the_list_is_an_error():
    x, y = gt.dvector("x"), gt.dvector("y")
    with pytest.raises(ValueError, match="needs input y"):
        gc.function([x], x + y)


def test_unknown_mode_and_device():
    x = gt.dvector("x")
    with pytest.raises(ValueError, match="mode must be one of"):
        gc.function([x], x, mode="FAST")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        gc.function([x], x, device="tpu")


def test_cuda_without_pycuda_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycuda", None)  # find_spec then reports it missing
    x = gt.dvector("x")
    with pytest.raises(RuntimeError) as info:
        gc.function([x], x, device="cuda")
    assert 'pip install -e ".[cuda]"' in str(info.value)
    assert not gc.cuda_available()


@pytest.mark.parametrize("policy", ["raise", "warn", "ignore"])
def test_on_unused_input(policy):
    x, unused = gt.dvector("x"), gt.dvector("unused")
    if policy == "raise":
        with pytest.raises(ValueError, match="input unused is not used"):
            gc.function([x, unused], x * 2, on_unused_input=policy)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = gc.function([x, unused], x * 2, on_unused_input=policy)
    messages = [str(w.message) for w in caught]
    if policy == "warn":
        assert len(messages) == 1 and "input unused is not used" in messages[0]
        assert caught[0].filename == __file__  # the warning points at the user's call
    else:
        assert messages == []
    np.testing.assert_array_equal(f(np.ones(2), np.zeros(3)), [2.0, 2.0])


def test_on_unused_input_rejects_unknown_policies():
    x = gt.dvector("x")
    with pytest.raises(ValueError, match="on_unused_input"):
        gc.function([x], x, on_unused_input="silently")


# --- input conversion -------------------------------------------------------------------------

def test_wrong_ndim_is_a_type_error():
    x = gt.dmatrix("x")
    f = gc.function([x], x + 1)
    expected = r"input 'x': expected a 2-d float64 array, got ndim 1 \(shape \(3,\)\)"
    with pytest.raises(TypeError, match=expected):
        f(np.ones(3))


@pytest.mark.parametrize("var, value", [
    (gt.fvector("v"), np.ones(3, "float64")),
    (gt.ivector("v"), np.ones(3, "int64")),
    (gt.ivector("v"), np.ones(3, "float32")),
    (gt.bvector("v"), np.ones(3, "uint8")),
    (gt.lvector("v"), np.ones(3, "uint64")),
])
def test_unsafe_dtype_is_a_type_error_unless_downcast_is_allowed(var, value):
    f = gc.function([var], var * 1)
    with pytest.raises(TypeError, match="cannot be cast safely") as info:
        f(value)
    assert "allow_input_downcast=True" in str(info.value)
    g = gc.function([var], var * 1, allow_input_downcast=True)
    result = g(value)
    assert result.dtype == var.dtype
    np.testing.assert_array_equal(result, value.astype(var.dtype))


@pytest.mark.parametrize("var, value", [
    (gt.dvector("v"), np.arange(3, dtype="float32")),
    (gt.dvector("v"), np.arange(3, dtype="int32")),
    (gt.lvector("v"), np.arange(3, dtype="int8")),
    (gt.fvector("v"), np.arange(3, dtype="uint8")),
    (gt.ivector("v"), np.array([True, False, True])),
])
def test_safe_upcasts_are_accepted(var, value):
    result = gc.function([var], var * 1)(value)
    assert result.dtype == var.dtype
    np.testing.assert_array_equal(result, value.astype(var.dtype))


@pytest.mark.parametrize("var, value, expected", [
    (gt.fvector("v"), [1.0, 2.5], np.array([1.0, 2.5], "float32")),
    (gt.ivector("v"), [1, 2], np.array([1, 2], "int32")),
    (gt.dscalar("v"), 1.5, np.array(1.5)),
    (gt.fscalar("v"), 0.25, np.array(0.25, "float32")),
    (gt.iscalar("v"), 7, np.array(7, "int32")),
    (gt.dmatrix("v"), [[1, 2], [3, 4]], np.array([[1.0, 2.0], [3.0, 4.0]])),
])
def test_python_lists_and_numbers_are_accepted(var, value, expected):
    result = gc.function([var], var * 1)(value)
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("var, value", [
    (gt.ivector("v"), [2 ** 40]),
    (gt.bscalar("v"), 300),
    (gt.fvector("v"), [1e300]),
    (gt.ivector("v"), [1.5]),
])
def test_python_values_that_do_not_fit_are_type_errors(var, value):
    f = gc.function([var], var * 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stray RuntimeWarning either
        with pytest.raises(TypeError, match="input 'v'"):
            f(value)


def test_static_shape_contradiction_is_a_value_error():
    x = gt.tensor("float64", shape=(2, None), name="x")
    f = gc.function([x], x * 2)
    assert f(np.ones((2, 5))).shape == (2, 5)
    expected = r"input 'x': shape \(3, 5\) contradicts the static shape \(2, \?\)"
    with pytest.raises(ValueError, match=expected):
        f(np.ones((3, 5)))


@pytest.mark.parametrize("layout", ["contiguous", "strided", "negative"])
def test_non_contiguous_inputs(mode, layout):
    value = np.arange(12.0).reshape(3, 4)
    x = gt.dmatrix("x")
    f = gc.function([x], x * 2 + 1, mode=mode)
    np.testing.assert_array_equal(f(layouts(value)[layout]), value * 2 + 1)


def test_empty_inputs(mode):
    x = gt.dmatrix("x")
    f = gc.function([x], [x + 1, x.sum(axis=0)], mode=mode)
    a, b = f(np.ones((0, 3)))
    assert a.shape == (0, 3) and b.shape == (3,)
    np.testing.assert_array_equal(b, np.zeros(3))


# --- aliasing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("build", [lambda x: x, lambda x: x.T, lambda x: x.reshape((6,)),
                                   lambda x: gt.stop_gradient(x)])
def test_outputs_never_alias_inputs(mode, build):
    x = gt.dmatrix("x")
    f = gc.function([x], build(x), mode=mode)
    value = np.arange(6.0).reshape(2, 3)
    original = value.copy()
    result = f(value)
    assert not np.shares_memory(result, value)
    result[...] = -1.0
    np.testing.assert_array_equal(value, original)
    np.testing.assert_array_equal(f(value), build_ref(build, original))


def build_ref(build, value):
    return gc.function([x := gt.dmatrix()], build(x), mode="reference")(value.copy())


def test_outputs_never_alias_shared_values_or_constants(mode):
    w = gc.shared(np.arange(3.0), name="w")
    c = gt.constant(np.arange(3.0))
    f = gc.function([], [w, w.T, c], mode=mode)
    first = f()
    for out in first:
        out[...] = 100.0
    np.testing.assert_array_equal(w.get_value(), [0.0, 1.0, 2.0])
    for out in f():
        np.testing.assert_array_equal(out, [0.0, 1.0, 2.0])


def test_equal_outputs_are_distinct_arrays(mode):
    x = gt.dvector("x")
    a, b = gc.function([x], [x * 2, x * 2], mode=mode)(np.ones(2))
    assert not np.shares_memory(a, b)


def test_an_output_equal_to_an_update_does_not_alias_the_shared_value(mode):
    w = gc.shared(np.zeros(2), name="w")
    f = gc.function([], w + 1, updates=[(w, w + 1)], mode=mode)
    result = f()
    result[...] = -5.0
    np.testing.assert_array_equal(w.get_value(), [1.0, 1.0])
    np.testing.assert_array_equal(f(), [2.0, 2.0])


# --- shared variables -------------------------------------------------------------------------

def test_shared_copies_its_value_unless_borrowed():
    value = np.zeros(3)
    copied, borrowed = gc.shared(value, name="c"), gc.shared(value, name="b", borrow=True)
    value[0] = 7.0
    np.testing.assert_array_equal(copied.get_value(), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(borrowed.get_value(), [7.0, 0.0, 0.0])
    assert borrowed.get_value(borrow=True) is value
    assert copied.get_value() is not copied.get_value(borrow=True)


def test_get_value_returns_a_copy():
    w = gc.shared(np.zeros(2), name="w")
    w.get_value()[0] = 1.0
    np.testing.assert_array_equal(w.get_value(), [0.0, 0.0])


@pytest.mark.parametrize("value, dtype", [
    (np.zeros((2, 3), "float32"), "float32"), (1.5, "float64"), (3, "int64"),
    (np.zeros(2, "float16"), "float32"), (np.array([True]), "bool"),
])
def test_shared_dtype_follows_the_value(value, dtype):
    w = gc.shared(value)
    assert w.dtype == dtype
    assert w.type.shape == (None,) * np.ndim(value)
    assert isinstance(w, gc.SharedVariable)


def test_shared_static_shape():
    w = gc.shared(np.zeros(3), shape=(3,))
    assert w.type.shape == (3,)
    with pytest.raises(ValueError, match=r"contradicts shape=\(4,\)"):
        gc.shared(np.zeros(3), shape=(4,))
    with pytest.raises(ValueError, match="contradicts static shape"):
        w.set_value(np.zeros(4))


def test_set_value_copies_unless_borrowed_and_may_change_the_shape():
    w = gc.shared(np.zeros(2), name="w")
    new = np.ones(5)
    w.set_value(new)
    new[0] = 9.0
    np.testing.assert_array_equal(w.get_value(), np.ones(5))
    w.set_value(new, borrow=True)
    assert w.get_value(borrow=True) is new
    np.testing.assert_array_equal(gc.function([], w * 1)(), new)


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((2, 2), "float32"), TypeError, "expected ndim 1, got 2"),
    (np.zeros(2, "float64"), TypeError, "float64 value cannot be stored in a float32"),
    (np.zeros(2, "int64"), TypeError, "int64 value cannot be stored"),
    (np.zeros(2, "complex64"), TypeError, "cannot be stored"),
])
def test_set_value_with_wrong_ndim_or_dtype_raises_and_keeps_the_value(bad, error, message):
    w = gc.shared(np.arange(3, dtype="float32"), name="w")
    with pytest.raises(error, match=message):
        w.set_value(bad)
    np.testing.assert_array_equal(w.get_value(), np.arange(3, dtype="float32"))
    assert w.get_value().dtype == np.float32


def test_set_value_accepts_safe_casts_and_python_values():
    w = gc.shared(np.zeros(2, "float32"), name="w")
    w.set_value(np.array([1, 2], "int8"))
    assert w.get_value().dtype == np.float32
    w.set_value([0.5, 1.5])
    np.testing.assert_array_equal(w.get_value(), np.array([0.5, 1.5], "float32"))


# --- updates ----------------------------------------------------------------------------------

def test_updates_accumulate_between_calls(mode):
    x = gt.dvector("x")
    total = gc.shared(np.zeros(2), name="total")
    calls = gc.shared(np.int64(0), name="calls")
    f = gc.function([x], total + x, updates=[(total, total + x), (calls, calls + 1)], mode=mode)
    np.testing.assert_array_equal(f(np.array([1.0, 2.0])), [1.0, 2.0])
    np.testing.assert_array_equal(f(np.array([1.0, 2.0])), [2.0, 4.0])
    np.testing.assert_array_equal(total.get_value(), [2.0, 4.0])
    assert calls.get_value() == 2 and calls.get_value().dtype == np.int64


@pytest.mark.parametrize("as_dict", [False, True])
def test_updates_are_computed_from_the_old_values(mode, as_dict):
    a, b = gc.shared(np.float64(1.0), name="a"), gc.shared(np.float64(2.0), name="b")
    updates = {a: b, b: a} if as_dict else [(a, b), (b, a)]
    swap = gc.function([], [], updates=updates, mode=mode)
    swap()
    assert (a.get_value(), b.get_value()) == (2.0, 1.0)
    swap()
    assert (a.get_value(), b.get_value()) == (1.0, 2.0)


def test_an_update_value_does_not_alias_another_shared_value(mode):
    a, b = gc.shared(np.zeros(2), name="a"), gc.shared(np.ones(2), name="b")
    gc.function([], [], updates=[(a, b)], mode=mode)()
    assert not np.shares_memory(a.get_value(borrow=True), b.get_value(borrow=True))


def test_updating_one_shared_variable_twice_is_a_compile_time_error():
    w = gc.shared(np.zeros(2), name="w")
    with pytest.raises(ValueError, match="w is updated twice"):
        gc.function([], [], updates=[(w, w + 1), (w, w + 2)])


def test_an_update_of_another_dtype_is_a_compile_time_type_error():
    w = gc.shared(np.zeros(2, "float32"), name="w")
    x = gt.dvector("x")
    expected = r"update of w has type float64\[\?\] but the variable is float32"
    with pytest.raises(TypeError, match=expected) as info:
        gc.function([x], [], updates=[(w, w + x)])
    assert ".astype('float32')" in str(info.value)
    f = gc.function([x], [], updates=[(w, (w + x).astype("float32"))])
    f(np.ones(2))
    assert w.get_value().dtype == np.float32


@pytest.mark.parametrize("target, expr, error", [
    (lambda w, x: x, lambda w, x: x, TypeError),                 # not a shared variable
    (lambda w, x: w, lambda w, x: w.sum(), TypeError),           # ndim changes
    (lambda w, x: w, lambda w, x: gt.zeros((3,)), ValueError),  # static shape contradicts
])
def test_invalid_updates(target, expr, error):
    w = gc.shared(np.zeros(2), name="w", shape=(2,))
    x = gt.dvector("x")
    with pytest.raises(error, match="update"):
        gc.function([x], [], updates=[(target(w, x), expr(w, x))], on_unused_input="ignore")


def test_a_failing_call_changes_no_shared_variable(mode):
    a, b = gc.shared(np.ones(3), name="a"), gc.shared(np.ones(3), name="b")
    m = gt.dvector("m")
    f = gc.function([m], a.sum(), updates=[(a, a + 1), (b, b + m)], mode=mode)
    with pytest.raises(RunError, match="add") as info:
        f(np.ones(4))  # b + m cannot broadcast
    assert "float64(3,), float64(4,)" in str(info.value)
    np.testing.assert_array_equal(a.get_value(), np.ones(3))
    np.testing.assert_array_equal(b.get_value(), np.ones(3))
    f(np.ones(3))
    np.testing.assert_array_equal(a.get_value(), 2 * np.ones(3))


# --- givens -----------------------------------------------------------------------------------

def test_givens_replace_a_variable(mode):
    x, y = gt.dvector("x"), gt.dvector("y")
    f = gc.function([y], x * 2, givens={x: y + 1}, mode=mode)
    np.testing.assert_array_equal(f(np.array([1.0, 2.0])), [4.0, 6.0])


def test_givens_with_a_shared_variable_replace_an_input(mode):
    x = gt.dvector("x")
    data = gc.shared(np.array([1.0, 2.0, 3.0]), name="data")
    f = gc.function([], x.sum(), givens=[(x, data)], mode=mode)
    assert f() == 6.0
    data.set_value(np.array([10.0]))
    assert f() == 10.0


def test_givens_safe_cast_and_type_errors():
    x, i = gt.dvector("x"), gt.ivector("i")
    f = gc.function([i], x * 2, givens={x: i})
    result = f(np.array([1, 2], "int32"))
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, [2.0, 4.0])
    with pytest.raises(TypeError, match="cannot be replaced"):
        gc.function([], x, givens={x: gt.dmatrix("m")})
    with pytest.raises(TypeError, match="keys must be variables"):
        gc.function([x], x, givens={1: x})


def test_function_repr_and_name():
    x = gt.dvector("x")
    f = gc.function([x], x, name="ident", mode="reference")
    assert repr(f) == "<graphc.Function ident inputs=['x'] mode=reference>"
    assert f.mode == "reference"


def test_a_one_kernel_function_takes_the_direct_call_path():
    x = gt.dvector("x")
    f = gc.function([x], x + 1)
    g = gc.function([x], [gt.exp(x).sum()])
    assert f._direct is not None and g._direct is not None
    value = np.arange(4.0)
    first = f(value)
    assert first is not value and not np.shares_memory(first, value)
    first[0] = 100.0  # results are fresh arrays: the next call does not see this
    np.testing.assert_array_equal(f(value), value + 1)
    np.testing.assert_array_equal(f(x=value), value + 1)  # by name: the general path
    np.testing.assert_array_equal(f([0, 1, 2]), np.array([1.0, 2.0, 3.0]))  # converted input
    assert isinstance(g(value), list) and np.isclose(g(value)[0], np.exp(value).sum())
    with pytest.raises(TypeError):
        f(value, value)
    s = gc.shared(np.ones(3))
    h = gc.function([x], x + s)
    assert h._direct is None  # shared state: the general path keeps its checks
