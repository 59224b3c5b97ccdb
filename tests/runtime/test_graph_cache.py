"""The graph cache: a process that has seen a graph skips its rewrites (and its compiles)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.config import config
from graphc.runtime.cache import DiskCache

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import graphc as gc, graphc.tensor as gt
    from graphc.runtime.kernels import LIBRARY
    x = gt.dmatrix("x")
    w = gc.shared(np.arange(3.0), "w")
    out = gt.log(1 + gt.exp(x * w)).sum(axis=1)
    f = gc.function([x], out, updates={w: w * 2})
    result = f(np.ones((2, 3)))
    print(json.dumps({"cache": f.graph_cache, "fired": f.fgraph.fired, "result": result.tolist(),
                      "w": w.get_value().tolist(), "stats": LIBRARY.stats,
                      "emitter": "graphc.codegen.kernel" in sys.modules}))
""")


@pytest.fixture
def cache_dir(tmp_path):
    with config.change_flags(cache_dir=str(tmp_path)):
        yield tmp_path


def _run(cache_dir) -> dict:
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(cache_dir))
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_new_process_loads_the_rewritten_graph_and_its_kernels(cache_dir):
    cold, warm = _run(cache_dir), _run(cache_dir)
    assert cold["cache"] == "miss" and warm["cache"] == "hit"
    assert warm["fired"] == cold["fired"] and "local_log1p" in cold["fired"]
    assert warm["result"] == cold["result"] and warm["w"] == cold["w"] == [0.0, 2.0, 4.0]
    expected = np.log1p(np.exp(np.arange(3.0))).sum()
    np.testing.assert_allclose(cold["result"], [expected, expected])
    assert cold["stats"]["compiled"] > 0 and cold["emitter"]
    # warm: kernels read from the disk by the names stored with the graph, no IR built
    assert warm["stats"]["compiled"] == 0 and warm["stats"]["loaded"] == cold["stats"]["compiled"]
    assert not warm["emitter"]


def test_a_warm_graph_whose_kernels_were_pruned_compiles_them_again(cache_dir):
    cold = _run(cache_dir)
    DiskCache(cache_dir).clear("kernels")
    warm = _run(cache_dir)
    assert warm["cache"] == "hit" and warm["emitter"]
    assert warm["stats"]["compiled"] == cold["stats"]["compiled"] and warm["result"] == cold["result"]


def test_the_same_graph_twice_in_one_process_hits(cache_dir):
    x = gt.dvector("x")
    f = gc.function([x], gt.exp(x) * 2 + 1)
    g = gc.function([x], gt.exp(x) * 2 + 1)
    assert (f.graph_cache, g.graph_cache) == ("miss", "hit")
    assert g.fgraph.outputs == f.fgraph.outputs  # hash-consed: the very same nodes
    np.testing.assert_array_equal(g(np.arange(3.0)), np.exp(np.arange(3.0)) * 2 + 1)


def test_a_different_mode_or_exclusion_is_a_different_entry(cache_dir):
    x = gt.dvector("x")
    out = gt.log(1 + x)
    assert gc.function([x], out).graph_cache == "miss"
    f = gc.function([x], out, mode=gc.rewrite.Mode("FAST_RUN").excluding("local_log1p"))
    assert f.graph_cache == "miss" and "local_log1p" not in f.fgraph.fired
    assert gc.function([x], out, mode="FAST_COMPILE").graph_cache == "miss"


def test_a_corrupt_entry_is_a_miss_and_is_rebuilt(cache_dir):
    x = gt.dvector("x")
    out = gt.tanh(x) * 3
    gc.function([x], out)
    entries = DiskCache(cache_dir).entries("graphs")
    assert entries
    for entry in entries:
        data = entry.path.read_bytes()
        entry.path.write_bytes(data[: len(data) // 2])
    f = gc.function([x], out)
    assert f.graph_cache == "miss"
    np.testing.assert_allclose(f(np.ones(2)), np.tanh(np.ones(2)) * 3)
    assert gc.function([x], out).graph_cache == "hit"


def test_the_cache_can_be_turned_off_and_reference_mode_never_uses_it(cache_dir):
    x = gt.dvector("x")
    with config.change_flags(disk_cache=False):
        assert gc.function([x], x + 5).graph_cache == "off"
    assert gc.function([x], x + 5, mode="reference").graph_cache == "off"
    assert not DiskCache(cache_dir).entries("graphs")
