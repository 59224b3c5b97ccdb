"""Gradients of the indexing ops against finite differences (verify_grad), on contiguous,
strided and negative-stride points, with broadcast values and repeated advanced indices."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.autodiff import GradientError, verify_grad
from tests.helpers import MODES, layouts

MASK_34 = np.array([[True, False, False, True], [False, False, False, False], [True, True, False, True]])
MASK_4 = np.array([True, False, True, True])


def _away_from_zero(shape, seed):
    """Values at least 0.5 from zero, so a mask ``x > 0`` is stable under finite differences."""
    r = np.random.default_rng(seed).uniform(-2, 2, size=shape)
    return np.sign(r) * (0.5 + np.abs(r))


# (id, fn, shapes of the inputs)
GRAD_CASES = [
    ("int", lambda x: x[1], [(4, 3)]),
    ("slices_negative_step", lambda x: x[1:-1, ::-2], [(5, 4)]),
    ("newaxis_ellipsis", lambda x: x[None, ..., 1], [(2, 3, 4)]),
    ("symbolic_bounds", lambda x: x[x.shape[0] - 3:, gt.cast(x.shape[1], "int32") - 1], [(5, 4)]),
    ("symbolic_step", lambda x: x[::1 - x.shape[0] // 2], [(5, 2)]),
    ("empty_slice", lambda x: x[3:1], [(4, 2)]),
    ("scalar_result", lambda x: x[1, -1], [(2, 3)]),
    ("advanced_repeated", lambda x: x[[0, 2, 0, -1, 0]], [(4, 3)]),
    ("advanced_2d_repeated", lambda x: x[np.array([[0, 1], [1, 1]])], [(3, 2)]),
    ("advanced_separated", lambda x: x[[[0, 1], [1, 1]], :, [2, 2]], [(3, 2, 3)]),
    ("advanced_adjacent_with_int", lambda x: x[:, [0, 0, 1], 1], [(2, 3, 2)]),
    ("row_label_pick", lambda x: x[gt.arange(x.shape[0]), [2, 0, 1]], [(3, 4)]),
    ("mask", lambda x: x[MASK_34], [(3, 4)]),
    ("mask_second_axis", lambda x: x[:, MASK_4], [(3, 4)]),
    ("mask_value_dependent", lambda x: x[x > 0], [(3, 4)]),
    ("set_basic", lambda x, y: gt.set_subtensor(x[1:3], y), [(4, 3), (2, 3)]),
    ("set_basic_broadcast", lambda x, y: gt.set_subtensor(x[1:3, ::-1], y), [(4, 3), (1, 3)]),
    ("set_basic_scalar", lambda x, y: gt.set_subtensor(x[::2, 0], y), [(4, 3), ()]),
    ("set_advanced_repeated", lambda x, y: gt.set_subtensor(x[[0, 2, 0]], y), [(4, 3), (3, 3)]),
    ("set_advanced_repeated_broadcast", lambda x, y: gt.set_subtensor(x[[0, 2, 0]], y), [(4, 3), (3,)]),
    ("set_advanced_repeated_scalar", lambda x, y: gt.set_subtensor(x[[1, 1], [2, 2]], y), [(3, 3), ()]),
    ("set_mask", lambda x, y: gt.set_subtensor(x[MASK_34], y), [(3, 4), (1,)]),
    ("inc_basic", lambda x, y: gt.inc_subtensor(x[:, 1:], y), [(3, 4), (3, 3)]),
    ("inc_basic_broadcast", lambda x, y: gt.inc_subtensor(x[-1:0:-1], y), [(4, 3), (3, 1)]),
    ("inc_advanced_repeated", lambda x, y: gt.inc_subtensor(x[[0, 2, 0]], y), [(4, 3), (3, 3)]),
    ("inc_advanced_repeated_broadcast", lambda x, y: gt.inc_subtensor(x[[0, 2, 0]], y), [(4, 3), (1, 3)]),
    ("inc_advanced_two_arrays", lambda x, y: gt.inc_subtensor(x[[0, 0, 3], [1, 1, -1]], y), [(4, 5), (3,)]),
    ("inc_mask", lambda x, y: gt.inc_subtensor(x[:, MASK_4], y), [(3, 4), (3, 1)]),
    ("take", lambda x: gt.take(x, [[0, 2], [2, 2]], axis=1), [(2, 3)]),
    ("take_flat", lambda x: gt.take(x, [5, 0, 5]), [(2, 3)]),
    ("take_along_axis", lambda x: gt.take_along_axis(x, np.array([[1, 1, 0]]), 0), [(2, 3)]),
    ("chained", lambda x: gt.set_subtensor(x[0], x[1] * x[2])[::-1, [1, 1]], [(3, 2)]),
    ("second_order", lambda x: gc.grad((x[[0, 0, 1]] ** 3).sum(), x), [(3, 2)]),
    ("second_order_set", lambda x, y: gc.grad((gt.set_subtensor(x[[1, 1]], y) ** 2).sum(), y),
     [(3, 2), (2,)]),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_indexing_gradient(case, mode):
    _, fn, shapes = case
    points = [_away_from_zero(shape, seed) for seed, shape in enumerate(shapes)]
    for layout in ("contiguous", "strided", "negative"):
        laid_out = [layouts(p).get(layout, p) for p in points]
        verify_grad(fn, laid_out, mode=mode, n_tests=1, rng=np.random.default_rng(3))


def test_set_gradient_ignores_overwritten_values():
    """Only the last of repeated writes reaches the output, so the others get zero gradient."""
    x, y = gt.dmatrix("x"), gt.dmatrix("y")
    gx, gy = gc.grad(gt.set_subtensor(x[[0, 2, 0]], y).sum(), [x, y])
    f = gc.function([x, y], [gx, gy])
    got_x, got_y = f(np.ones((4, 2)), np.ones((3, 2)))
    np.testing.assert_array_equal(got_x, [[0, 0], [1, 1], [0, 0], [1, 1]])
    np.testing.assert_array_equal(got_y, [[0, 0], [1, 1], [1, 1]])


def test_advanced_gradient_accumulates_repeats():
    x = gt.dvector("x")
    g = gc.grad((x[[1, 1, 1, 3]] * np.array([1.0, 2.0, 3.0, 4.0])).sum(), x)
    np.testing.assert_array_equal(gc.function([x], g)(np.zeros(5)), [0, 6, 0, 4, 0])


def test_wrong_gradient_is_caught():
    """A control: verify_grad on these shapes does fail for a wrong gradient."""
    with pytest.raises(GradientError):
        verify_grad(lambda v: gt.set_subtensor(v[[0, 0]], gt.zero_grad(v[1:3])), [np.arange(3.0) + 1])


def test_gradient_of_integer_index_is_disconnected():
    x, i = gt.dvector("x"), gt.lscalar("i")
    g = gc.grad(x[i:].sum(), x)
    np.testing.assert_array_equal(gc.function([x, i], g)(np.zeros(4), 1), [0, 1, 1, 1])
