"""Initialisers: shapes, dtypes, seeding, the scales they promise, orthogonality, errors."""

import numpy as np
import pytest

import graphc.nn as nn
from graphc.config import config
from graphc.nn import init

SCALED = {  # initialiser -> (distribution, expected scale from (fan_in, fan_out))
    "glorot_uniform": ("uniform", lambda i, o: np.sqrt(6 / (i + o))),
    "glorot_normal": ("normal", lambda i, o: np.sqrt(2 / (i + o))),
    "he_uniform": ("uniform", lambda i, o: np.sqrt(6 / i)),
    "he_normal": ("normal", lambda i, o: np.sqrt(2 / i)),
}


@pytest.mark.parametrize("shape", [(300, 200), (64, 16, 3, 3)])
@pytest.mark.parametrize("name", list(SCALED))
def test_scaled_initialisers(name, shape):
    kind, scale = SCALED[name]
    fan_in, fan_out = init.fans(shape)
    w = init.get(name)(shape, rng=0, dtype="float64")
    assert w.shape == shape and w.dtype == np.float64
    expected = scale(fan_in, fan_out)
    if kind == "uniform":
        assert np.abs(w).max() <= expected
        assert np.abs(w).max() > 0.99 * expected
        assert w.std() == pytest.approx(expected / np.sqrt(3), rel=0.03)
    else:
        assert w.std() == pytest.approx(expected, rel=0.03)
    assert abs(w.mean()) < 0.05 * expected


def test_fans_of_dense_and_conv_shapes():
    assert init.fans((5, 7)) == (5, 7)
    assert init.fans((8, 4, 3, 3)) == (36, 72)
    assert init.fans((6,)) == (6, 6)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (6, 2, 2)])
def test_orthogonal(shape):
    w = init.orthogonal(shape, rng=1, dtype="float64", gain=2.0)
    flat = w.reshape(shape[0], -1) / 2.0
    small = min(flat.shape)
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)


@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                                  "orthogonal"])
def test_seeding(name):
    fn = init.get(name)
    np.testing.assert_array_equal(fn((4, 3), rng=5), fn((4, 3), rng=np.random.default_rng(5)))
    assert not np.array_equal(fn((4, 3), rng=5), fn((4, 3), rng=6))
    generator = np.random.default_rng(0)
    assert not np.array_equal(fn((4, 3), rng=generator), fn((4, 3), rng=generator))


def test_dtypes_and_constants():
    assert nn.glorot_uniform((2, 2), dtype="float32").dtype == np.float32
    with config.change_flags(floatX="float32"):
        assert nn.he_normal((2, 2)).dtype == np.float32
    np.testing.assert_array_equal(nn.zeros((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(init.ones(2), np.ones(2))
    np.testing.assert_array_equal(init.constant(0.5)((2,)), [0.5, 0.5])


@pytest.mark.parametrize("call,error,match", [
    (lambda: init.glorot_uniform((2, 2), dtype="int32"), TypeError, "float arrays"),
    (lambda: init.orthogonal((3,)), ValueError, "at least 2 dimensions"),
    (lambda: init.get("lecun"), ValueError, "unknown initialiser"),
    (lambda: init.he_normal((2, 2), rng="seed"), TypeError, "numpy Generator"),
])
def test_initialiser_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
