"""graphc.config: flags, GRAPHC_FLAGS, change_flags, and floatX in the constructors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.config import config


def run_python(code: str, flags: str | None = None, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("GRAPHC_FLAGS", "GRAPHC_CACHE_DIR")}
    if flags is not None:
        environ["GRAPHC_FLAGS"] = flags
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True,
                          timeout=60)


def test_defaults_without_graphc_flags():
    result = run_python("import graphc; print(graphc.config)")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for item in ("floatX='float64'", "device='cpu'", "mode='FAST_RUN'", "print_rewrites=False",
                 "compute_test_value='off'"):
        assert item in text


def test_unknown_flags_and_bad_values_raise():
    with pytest.raises(AttributeError, match="no flag 'floatx'"):
        config.floatx = "float32"
    with pytest.raises(AttributeError, match="no flag 'colour'"):
        getattr(config, "colour")
    with pytest.raises(ValueError, match="floatX must be one of"):
        config.floatX = "float16"
    with pytest.raises(ValueError, match="mode must be one of"):
        config.mode = "FAST"
    assert config.floatX == "float64" and config.mode == "FAST_RUN"


def test_change_flags_sets_and_restores():
    with config.change_flags(floatX="float32", mode="reference") as flags:
        assert flags is config
        assert config.floatX == "float32" and config.mode == "reference"
        with config.change_flags(floatX="float64"):
            assert config.floatX == "float64"
        assert config.floatX == "float32"
    assert config.floatX == "float64" and config.mode == "FAST_RUN"


def test_change_flags_restores_after_an_exception():
    with pytest.raises(KeyError):
        with config.change_flags(floatX="float32"):
            raise KeyError("boom")
    assert config.floatX == "float64"


def test_change_flags_with_a_bad_value_changes_nothing():
    with pytest.raises(ValueError):
        with config.change_flags(mode="reference", floatX="float16"):
            pass
    assert config.mode == "FAST_RUN" and config.floatX == "float64"
    with pytest.raises(AttributeError):
        with config.change_flags(nonsense=1):
            pass


@pytest.mark.parametrize("floatX", ["float32", "float64"])
def test_floatX_drives_the_constructors(floatX):
    with config.change_flags(floatX=floatX):
        assert gt.matrix().dtype == floatX
        assert gt.scalar().dtype == floatX
        assert gt.tensor(shape=(None, 3)).dtype == floatX
        assert gt.zeros((2, 3)).dtype == floatX
        assert gt.ones((2,)).dtype == floatX
        assert gt.as_tensor(1.5).dtype == floatX
        assert gt.fmatrix().dtype == "float32" and gt.dmatrix().dtype == "float64"
        assert gt.zeros((2,), dtype="int32").dtype == "int32"
        f = gc.function([], gt.zeros((2, 3)))
    result = f()
    assert result.dtype == floatX and result.shape == (2, 3)
    np.testing.assert_array_equal(result, np.zeros((2, 3)))


def test_config_mode_is_the_default_mode_of_functions():
    x = gt.dvector("x")
    with config.change_flags(mode="reference"):
        f = gc.function([x], x + 1)
    assert f.mode == "reference"
    assert gc.function([x], x + 1).mode == "FAST_RUN"


def test_config_device_is_the_default_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycuda", None)
    x = gt.dvector("x")
    with config.change_flags(device="cuda"):
        with pytest.raises(RuntimeError, match="pycuda"):
            gc.function([x], x + 1)


def test_graphc_flags_environment_variable():
    code = "import graphc; c = graphc.config; print(c.floatX, c.mode, c.print_rewrites, c.device)"
    result = run_python(code, " floatX = float32 ,mode=reference,,print_rewrites=yes ")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["float32", "reference", "True", "cpu"]
    result = run_python(code, "print_rewrites=off")
    assert result.stdout.split() == ["float64", "FAST_RUN", "False", "cpu"]


def test_graphc_flags_floatX_reaches_the_constructors():
    code = "import graphc.tensor as gt; print(gt.matrix().dtype, gt.zeros((2,)).dtype)"
    result = run_python(code, "floatX=float32")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["float32", "float32"]


@pytest.mark.parametrize("flags, message", [
    ("nonsense=1", "GRAPHC_FLAGS: graphc.config has no flag 'nonsense'"),
    ("floatX=float16", "GRAPHC_FLAGS: config.floatX must be one of"),
    ("floatX", "GRAPHC_FLAGS: expected name=value, got 'floatX'"),
    ("print_rewrites=maybe", "GRAPHC_FLAGS: expected a boolean"),
])
def test_bad_graphc_flags_fail_at_import(flags, message):
    result = run_python("import graphc", flags)
    assert result.returncode != 0
    assert message in result.stderr


def test_cache_dir_follows_the_environment(tmp_path):
    code = "import graphc; print(graphc.config.cache_dir)"
    result = run_python(code, GRAPHC_CACHE_DIR=str(tmp_path))
    assert result.stdout.strip() == str(tmp_path)
    result = run_python(code, XDG_CACHE_HOME=str(tmp_path))
    assert result.stdout.strip() == str(tmp_path / "graphc")


def test_repr_lists_the_flags():
    text = repr(config)
    assert text.startswith("graphc.config(") and "floatX='float64'" in text
