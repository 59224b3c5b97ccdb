"""The on-disk cache (graphc/runtime/cache.py). Every test uses its own temporary directory."""

from __future__ import annotations

import multiprocessing
import os
import stat
import struct
import time
import warnings

import numpy as np
import pytest

import graphc as gc
import graphc.runtime.cache as cache_mod
import graphc.tensor as gt
from graphc.rewrite import Mode
from graphc.runtime.cache import (
    NAMESPACES,
    DiskCache,
    KernelTarget,
    as_target,
    default_cache,
    graph_cache_key,
    host_target,
    kernel_key,
)

KEY = "0123456789abcdef" * 4
TARGET = KernelTarget("x86_64-unknown-linux-gnu", "skylake", "+avx2,+fma,-avx512f")


@pytest.fixture
def cache(tmp_path):
    return DiskCache(tmp_path / "cache")


def _key(i: int) -> str:
    return f"{i:064x}"


def _entry_path(cache, namespace=NAMESPACES[0], key=KEY):
    return cache.root / namespace / f"{key}.entry"


# --- get / put -------------------------------------------------------------------------------

@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("payload", [b"", b"\x00", b"kernel object code", bytes(range(256)) * 4096],
                         ids=["empty", "one byte", "text", "1 MiB"])
def test_put_then_get_returns_the_payload(cache, namespace, payload):
    assert cache.get(namespace, KEY) is None
    assert cache.put(namespace, KEY, payload) is True
    assert cache.get(namespace, KEY) == payload
    other = next(ns for ns in NAMESPACES if ns != namespace)
    assert cache.get(other, KEY) is None  # namespaces are separate
    counts = cache.stats()
    assert counts[namespace] == {"hits": 1, "misses": 1, "writes": 1, "corrupt": 0, "rejected": 0,
                                 "errors": 0}
    assert counts[other]["misses"] == 1 and counts[other]["hits"] == 0


def test_put_takes_bytes_like_values_and_overwrites(cache):
    cache.put("kernels", KEY, bytearray(b"first"))
    cache.put("kernels", KEY, memoryview(b"second"))
    assert cache.get("kernels", KEY) == b"second"
    assert [e.key for e in cache.entries()] == [KEY]


@pytest.mark.parametrize("namespace, key", [
    ("objects", KEY), ("", KEY), ("kernels", ""), ("kernels", "abc"), ("kernels", KEY.upper()),
    ("kernels", "../" + KEY), ("kernels", KEY + "/x"), ("kernels", "g" * 64), ("kernels", None)])
def test_bad_namespace_or_key_is_a_value_error(cache, namespace, key):
    with pytest.raises(ValueError, match="cache (namespace|key)"):
        cache.get(namespace, key)
    with pytest.raises(ValueError, match="cache (namespace|key)"):
        cache.put(namespace, key, b"x")


def test_layout_and_permissions_are_private(tmp_path):
    old = os.umask(0)  # even a permissive umask gives private directories
    try:
        cache = DiskCache(tmp_path / "a" / "cache")
        cache.put("graphs", KEY, b"payload")
    finally:
        os.umask(old)
    for directory in (cache.root, cache.root / "graphs"):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    path = _entry_path(cache, "graphs")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    raw = path.read_bytes()
    assert raw.startswith(b"GRAPHCE\x00") and raw.endswith(b"payload")
    assert sorted(os.listdir(cache.root / "graphs")) == [f"{KEY}.entry"]  # no temporary left


def test_default_root_is_config_cache_dir(tmp_path):
    with gc.config.change_flags(cache_dir=str(tmp_path / "from_config")):
        assert DiskCache().root == tmp_path / "from_config"
        first = default_cache()
        assert first.root == tmp_path / "from_config" and default_cache() is first
    with gc.config.change_flags(cache_dir=str(tmp_path / "other")):
        assert default_cache().root == tmp_path / "other"


# --- damaged, foreign and unsafe entries -----------------------------------------------------

def _corrupt(raw: bytes, how: str) -> bytes:
    header = 8 + 2 + 8 + 32
    if how == "empty":
        return b""
    if how == "half header":
        return raw[:header // 2]
    if how == "truncated payload":
        return raw[:-3]
    if how == "trailing bytes":
        return raw + b"xx"
    if how == "flipped payload byte":
        return raw[:-1] + bytes([raw[-1] ^ 1])
    if how == "flipped digest byte":
        return raw[:header - 1] + bytes([raw[header - 1] ^ 1]) + raw[header:]
    if how == "magic":
        return b"NOTGRAPH" + raw[8:]
    if how == "format version":
        return raw[:8] + struct.pack("<H", 99) + raw[10:]
    if how == "length field":
        return raw[:10] + struct.pack("<Q", 2**40) + raw[18:]
    raise AssertionError(how)


CORRUPTIONS = ["empty", "half header", "truncated payload", "trailing bytes",
               "flipped payload byte", "flipped digest byte", "magic", "format version",
               "length field"]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_corrupt_entry_is_deleted_and_a_miss(cache, how):
    cache.put("kernels", KEY, b"some compiled kernel" * 10)
    path = _entry_path(cache)
    path.write_bytes(_corrupt(path.read_bytes(), how))
    assert cache.get("kernels", KEY) is None
    assert not path.exists()
    assert cache.stats()["kernels"]["corrupt"] == 1
    assert cache.put("kernels", KEY, b"rebuilt") and cache.get("kernels", KEY) == b"rebuilt"


def test_entries_of_another_user_are_never_loaded(cache, monkeypatch):
    cache.put("kernels", KEY, b"mine")
    uid = os.getuid()
    monkeypatch.setattr(cache_mod, "_current_uid", lambda: uid + 1)
    assert cache.get("kernels", KEY) is None
    assert _entry_path(cache).exists()  # not ours to delete
    assert cache.stats()["kernels"]["rejected"] == 1
    assert cache.entries() == []
    with pytest.warns(RuntimeWarning, match="not a directory owned by this user"):
        assert cache.put("kernels", _key(1), b"x") is False  # nor written into their directory
    assert not _entry_path(cache, key=_key(1)).exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_entry_chowned_to_another_user_is_rejected(cache):
    cache.put("kernels", KEY, b"mine")
    os.chown(_entry_path(cache), 4242, -1)
    assert cache.get("kernels", KEY) is None and cache.entries() == []
    assert cache.stats()["kernels"]["rejected"] == 1


def test_symlinked_entry_is_not_followed(cache, tmp_path):
    elsewhere = DiskCache(tmp_path / "elsewhere")
    elsewhere.put("kernels", KEY, b"planted")
    cache.put("kernels", _key(1), b"creates the directory")
    os.symlink(_entry_path(elsewhere), _entry_path(cache))
    assert cache.get("kernels", KEY) is None
    assert [e.key for e in cache.entries()] == [_key(1)]


def test_failed_write_keeps_the_old_entry_and_leaves_no_temporary(cache, monkeypatch):
    cache.put("kernels", KEY, b"old")

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.warns(RuntimeWarning, match="could not write"):
        assert cache.put("kernels", KEY, b"new") is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.put("kernels", _key(1), b"new") is False  # warned once per cache
    monkeypatch.undo()
    assert cache.get("kernels", KEY) == b"old"
    assert os.listdir(cache.root / "kernels") == [f"{KEY}.entry"]
    assert cache.stats()["kernels"]["errors"] == 2


def test_unwritable_root_is_a_failed_write_not_an_exception(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = DiskCache(blocker / "cache")
    with pytest.warns(RuntimeWarning, match="cannot create"):
        assert cache.put("graphs", KEY, b"x") is False
    assert cache.get("graphs", KEY) is None
    assert cache.entries() == [] and cache.info()["entries"] == 0


# --- concurrency -----------------------------------------------------------------------------

def _payload(seed: int) -> bytes:
    return np.random.default_rng(seed).bytes(1 << 20)


def _writer(root: str, seed: int, stop, results) -> None:
    """Write one key over and over until the reader is done (at least 5 times)."""
    cache, payload, ok, rounds = DiskCache(root), _payload(seed), True, 0
    while (rounds < 5 or not stop.is_set()) and rounds < 10_000:
        ok &= cache.put("kernels", KEY, payload)
        rounds += 1
    results.put(("writer", ok, rounds))


def _reader(root: str, seeds: tuple, stop, results) -> None:
    """Read the key until 300 hits; every hit must be one whole payload."""
    cache, valid = DiskCache(root), {_payload(s) for s in seeds}
    hits = bad = lost = 0
    deadline = time.monotonic() + 60
    while hits < 300 and time.monotonic() < deadline:
        data = cache.get("kernels", KEY)
        if data is None:
            lost += hits > 0  # once written, the entry never disappears
        else:
            hits += 1
            bad += data not in valid
    stop.set()
    results.put(("reader", hits, bad, lost, cache.stats()["kernels"]["corrupt"]))


def test_concurrent_writers_of_one_key_all_succeed_and_readers_see_whole_entries(tmp_path):
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                      else "spawn")
    root, seeds = str(tmp_path / "cache"), (1, 2, 3)
    stop, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_reader, args=(root, seeds, stop, results))]
    procs += [ctx.Process(target=_writer, args=(root, s, stop, results)) for s in seeds]
    for p in procs:
        p.start()
    reports = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert reports[0] == ("reader", 300, 0, 0, 0)  # 300 hits, none bad, lost or corrupt
    assert all(ok and rounds >= 5 for _, ok, rounds in reports[1:])
    assert DiskCache(root).get("kernels", KEY) in {_payload(s) for s in seeds}
    assert os.listdir(os.path.join(root, "kernels")) == [f"{KEY}.entry"]


# --- last use, prune, clear, info ------------------------------------------------------------

def _age(cache, key, days, namespace="kernels"):
    then = time.time() - days * 86400
    os.utime(_entry_path(cache, namespace, key), (then, then))


def test_hit_touches_the_entry(cache):
    cache.put("kernels", KEY, b"x")
    _age(cache, KEY, 3)
    assert cache.entries()[0].mtime < time.time() - 2 * 86400
    cache.get("kernels", KEY)
    assert cache.entries()[0].mtime > time.time() - 60


def test_prune_to_a_size_drops_least_recently_used_first(cache):
    for i in range(4):
        cache.put("kernels" if i % 2 else "graphs", _key(i), bytes(1000))
        _age(cache, _key(i), 10 - i, "kernels" if i % 2 else "graphs")
    cache.get("graphs", _key(0))  # the oldest entry is used again: now the newest
    size = cache.entries()[0].size
    removed = cache.prune(max_bytes=2 * size)
    assert sorted(e.key for e in removed) == [_key(1), _key(2)]
    assert sorted(e.key for e in cache.entries()) == [_key(0), _key(3)]
    assert cache.prune(max_bytes=2 * size) == []
    assert [e.key for e in cache.prune(max_bytes=size + 1)] == [_key(3)]
    assert len(cache.prune(max_bytes=0)) == 1 and cache.entries() == []


def test_prune_by_age_and_corruption(cache):
    for i, days in enumerate([40, 8, 2, 0]):
        cache.put("kernels", _key(i), b"k%d" % i)
        _age(cache, _key(i), days)
    path = _entry_path(cache, key=_key(3))
    path.write_bytes(path.read_bytes()[:-1])
    removed = cache.prune(older_than_days=7)
    assert sorted(e.key for e in removed) == [_key(0), _key(1), _key(3)]
    assert [e.key for e in cache.entries()] == [_key(2)]


def test_prune_removes_only_stale_temporaries(cache):
    cache.put("graphs", KEY, b"x")
    stale, fresh = cache.root / "graphs" / ".tmp-dead", cache.root / "graphs" / ".tmp-live"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert cache.prune() == []
    assert not stale.exists() and fresh.exists()
    assert cache.get("graphs", KEY) == b"x"


@pytest.mark.parametrize("kwargs", [{"max_bytes": -1}, {"max_bytes": 1.5},
                                    {"older_than_days": -1}, {"older_than_days": float("nan")}])
def test_prune_rejects_bad_limits(cache, kwargs):
    with pytest.raises(ValueError, match="prune"):
        cache.prune(**kwargs)


def test_clear_and_info(cache):
    info = cache.info()
    assert info["exists"] is False and info["entries"] == 0 and info["location"] == str(cache.root)
    cache.put("kernels", _key(0), b"12345")
    cache.put("kernels", _key(1), b"")
    cache.put("graphs", _key(2), b"1")
    (cache.root / "kernels" / ".tmp-x").write_bytes(b"")
    info = cache.info()
    header = 50
    assert info["namespaces"] == {"kernels": {"entries": 2, "bytes": 2 * header + 5},
                                  "graphs": {"entries": 1, "bytes": header + 1},
                                  "cuda": {"entries": 0, "bytes": 0}}
    assert (info["entries"], info["bytes"], info["exists"]) == (3, 3 * header + 6, True)
    assert [e.key for e in cache.clear("graphs")] == [_key(2)]
    assert [e.namespace for e in cache.entries()] == ["kernels", "kernels"]
    assert len(cache.clear()) == 2 and cache.entries() == []
    assert os.listdir(cache.root / "kernels") == []  # temporaries too
    with pytest.raises(ValueError, match="namespace"):
        cache.clear("objects")


# --- keys ------------------------------------------------------------------------------------

def test_kernel_key_is_stable_and_ignores_feature_order():
    key = kernel_key("define void @k() { ret void }", TARGET)
    assert len(key) == 64 and int(key, 16) >= 0
    assert kernel_key("define void @k() { ret void }", TARGET) == key
    shuffled = ("x86_64-unknown-linux-gnu", "skylake", "-avx512f,+fma,+avx2")
    assert kernel_key("define void @k() { ret void }", shuffled) == key
    as_mapping = {"triple": TARGET.triple, "cpu": TARGET.cpu,
                  "features": ["+fma", "+avx2", "-avx512f"]}
    assert kernel_key("define void @k() { ret void }", as_mapping) == key


@pytest.mark.parametrize("change", ["ir", "triple", "cpu", "feature", "abi", "llvmlite",
                                    "speed level"])
def test_kernel_key_covers_every_component(change, monkeypatch):
    ir, target = "define void @k() { ret void }", TARGET
    before = kernel_key(ir, target)
    if change == "ir":
        ir += " "
    elif change == "triple":
        target = target._replace(triple="nvptx64-nvidia-cuda")
    elif change == "cpu":
        target = target._replace(cpu="znver4")
    elif change == "feature":
        target = target._replace(features="+avx2,+fma,+avx512f")
    elif change == "abi":
        monkeypatch.setattr(cache_mod, "KERNEL_ABI_VERSION", cache_mod.KERNEL_ABI_VERSION + 1)
    elif change == "speed level":
        monkeypatch.setattr(cache_mod, "KERNEL_SPEED_LEVEL", cache_mod.KERNEL_SPEED_LEVEL + 1)
    else:
        monkeypatch.setattr(cache_mod, "_llvmlite_version", lambda: "0.0.0")
    assert kernel_key(ir, target) != before


def test_host_target_describes_this_machine():
    target = host_target()
    assert target.triple and target.cpu and target.features.startswith(("+", "-"))
    assert len(kernel_key("", target)) == 64


def test_host_target_has_the_features_the_compiler_uses():
    """An object compiled with other options (an older graphc's) is never served for a key."""
    from graphc.codegen.jit import _host_cpu

    cpu, features = _host_cpu()
    assert host_target().cpu == cpu
    assert as_target(host_target()).features == as_target(("", "", features)).features


def _graph():
    x = gt.matrix("x")
    return [x], [gt.exp(x).sum(axis=0)]


def test_graph_cache_key_covers_mode_and_flags():
    flags = {"floatX": "float32"}
    key = graph_cache_key(*_graph(), "FAST_RUN", flags)
    assert graph_cache_key(*_graph(), "FAST_RUN", [("floatX", "float32")]) == key
    assert graph_cache_key(*_graph(), Mode("FAST_RUN"), {"floatX": "float32"}) == key
    others = {graph_cache_key(*_graph(), "FAST_COMPILE", {"floatX": "float32"}),
              graph_cache_key(*_graph(), Mode("FAST_RUN").excluding("fusion"), flags),
              graph_cache_key(*_graph(), "FAST_RUN", {"floatX": "float64"}),
              graph_cache_key(*_graph(), "FAST_RUN")}
    assert len(others) == 4 and key not in others


# --- counts shared between processes ---------------------------------------------------------

def test_flushed_counts_add_up_over_processes(tmp_path):
    first, second = DiskCache(tmp_path), DiskCache(tmp_path)  # two processes, in effect
    first.put("kernels", KEY, b"x")
    first.get("kernels", KEY)
    second.get("graphs", KEY)
    first.flush_stats()
    first.flush_stats()  # nothing new: nothing added twice
    second.flush_stats()
    second.get("kernels", KEY)
    second.flush_stats()
    total = DiskCache(tmp_path).lifetime_stats()
    kernels, graphs = total["kernels"], total["graphs"]
    assert (kernels["hits"], kernels["writes"], graphs["misses"]) == (2, 1, 1)
    assert total["kernels"]["misses"] == 0 and first.stats()["kernels"]["hits"] == 1


def test_damaged_counts_restart_from_zero_and_clear_resets_them(tmp_path):
    cache = DiskCache(tmp_path)
    cache.get("kernels", KEY)
    cache.flush_stats()
    (tmp_path / "stats.json").write_text('{"kernels": {"hits": "many"')
    assert cache.lifetime_stats()["kernels"]["misses"] == 0
    cache.get("kernels", KEY)
    cache.flush_stats()
    assert cache.lifetime_stats()["kernels"]["misses"] == 1
    cache.clear()
    assert cache.lifetime_stats()["kernels"]["misses"] == 0
