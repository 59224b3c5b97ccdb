"""The ``graphc`` command (graphc/__main__.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import graphc
from graphc.__main__ import main, parse_size
from graphc.runtime.cache import DiskCache


def test_info_prints_versions_and_flags(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"graphc {graphc.__version__}" in out
    assert f"numpy {np.__version__}" in out
    assert "llvmlite " in out and "cuda available: " in out
    for flag in ("floatX", "device", "mode", "cache_dir"):
        assert f"  {flag} = " in out


KEY = "0123456789abcdef" * 4


def _populated(root):
    cache = DiskCache(root)
    cache.put("kernels", KEY, b"k" * 2000)
    cache.put("kernels", "f" * 64, b"k" * 100)
    cache.put("graphs", "a" * 64, b"g" * 10)
    old = time.time() - 30 * 86400
    os.utime(root / "kernels" / f"{KEY}.entry", (old, old))
    return cache


def _graphc(root, *args):
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(root))
    result = subprocess.run([sys.executable, "-m", "graphc", *args], capture_output=True,
                            text=True, timeout=60, env=env, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cache_commands_in_a_subprocess_use_graphc_cache_dir(tmp_path):
    root = tmp_path / "cache"
    _populated(root)
    use = ("from graphc.runtime.cache import default_cache as d; "
           f"d().get('kernels', '{'f' * 64}'); d().get('graphs', '{KEY}')")
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(root))
    subprocess.run([sys.executable, "-c", use], env=env, timeout=60, check=True)
    out = _graphc(root, "cache", "info")
    assert f"graphc cache at {root} (from GRAPHC_CACHE_DIR)" in out
    assert re.search(r"total: .* 1 hits, 1 misses, 0 writes", out), out  # counted at exit
    assert re.search(r"kernels: +2 entries +2\.1 KiB", out), out
    assert re.search(r"graphs: +1 entry +60 B", out) and re.search(r"total: +3 entries", out), out
    listed = _graphc(root, "cache", "list").splitlines()
    assert listed[0].split() == ["namespace", "key", "size", "last", "used"]
    assert [line.split()[:2] for line in listed[1:]][-1] == ["kernels", KEY]  # least recent last
    assert len(listed) == 4
    out = _graphc(root, "cache", "prune", "--older-than", "7")
    assert out.startswith("removed 1 entry (2.0 KiB); kept 2 entries (210 B)"), out
    out = _graphc(root, "cache", "clear")
    assert out == f"removed 2 entries (210 B) from {root}\n"
    assert "total:         0 entries" in _graphc(root, "cache")  # bare `cache` is `cache info`


@pytest.fixture
def cache_dir(tmp_path):
    with graphc.config.change_flags(cache_dir=str(tmp_path / "cache")):
        yield tmp_path / "cache"


def test_cache_prune_to_a_size_and_list_a_namespace(cache_dir, capsys):
    _populated(cache_dir)
    assert main(["cache", "list", "--namespace", "graphs"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].split()[:2] == ["graphs", "a" * 64]
    assert main(["cache", "prune", "--max-size", "1K"]) == 0
    assert capsys.readouterr().out.startswith("removed 1 entry (2.0 KiB); kept 2 entries")
    assert sorted(e.key for e in DiskCache(cache_dir).entries()) == ["a" * 64, "f" * 64]
    assert main(["cache", "clear", "--namespace", "kernels"]) == 0
    assert [e.namespace for e in DiskCache(cache_dir).entries()] == ["graphs"]


def test_cache_list_and_info_of_an_absent_cache(cache_dir, capsys):
    assert main(["cache", "list"]) == 0
    assert capsys.readouterr().out == "the cache is empty\n"
    assert main(["cache", "info"]) == 0
    assert "does not exist yet" in capsys.readouterr().out
    assert not cache_dir.exists()  # looking does not create it


@pytest.mark.parametrize("args, message", [
    (["cache", "prune", "--max-size", "lots"], "not a size: 'lots'"),
    (["cache", "prune", "--older-than", "-3"], "not a number of days: '-3'"),
    (["cache", "compact"], "invalid choice: 'compact'"),
    (["cache", "list", "--namespace", "objects"], "invalid choice: 'objects'"),
])
def test_cache_usage_errors(cache_dir, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("text, size", [("0", 0), ("123", 123), ("1K", 1024), ("100M", 100 << 20),
                                        ("1.5G", 3 << 29), ("2kb", 2048), ("10MiB", 10 << 20),
                                        (" 7 ", 7)])
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_no_command_prints_usage(capsys):
    assert main([]) == 2
    assert "usage: graphc" in capsys.readouterr().err


def test_python_dash_m_graphc():
    result = subprocess.run([sys.executable, "-m", "graphc", "info"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"graphc {graphc.__version__}\n")
