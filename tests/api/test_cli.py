"""The ``graphc`` command (graphc/__main__.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import graphc
from graphc.__main__ import main


def test_info_prints_versions_and_flags(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"graphc {graphc.__version__}" in out
    assert f"numpy {np.__version__}" in out
    assert "llvmlite " in out and "cuda available: " in out
    for flag in ("floatX", "device", "mode", "cache_dir"):
        assert f"  {flag} = " in out


def test_cache_is_not_implemented_yet(capsys):
    assert main(["cache"]) == 2
    assert "not implemented yet" in capsys.readouterr().err
    assert main(["cache", "clear"]) == 2
    assert "graphc cache clear: not implemented yet" in capsys.readouterr().err


def test_no_command_prints_usage(capsys):
    assert main([]) == 2
    assert "usage: graphc" in capsys.readouterr().err


def test_python_dash_m_graphc():
    result = subprocess.run([sys.executable, "-m", "graphc", "info"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"graphc {graphc.__version__}\n")
    result = subprocess.run([sys.executable, "-m", "graphc", "cache", "info"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "not implemented yet" in result.stderr
