"""Philox4x32-10: the NumPy reference against the published known answers, the stream layout,
the conversions to samples, and the LLVM emission (CPU JIT and NVPTX + ptxas)."""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import subprocess

import numpy as np
import pytest

from graphc.random import philox

# Random123 kat_vectors, philox4x32_10: counter, key -> block
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def _python_philox(counter, key, rounds=10):
    """Philox4x32 on Python ints, one block: an independent check of the vectorised code."""
    c, k = list(counter), list(key)
    for r in range(rounds):
        if r:
            k = [(k[0] + philox.PHILOX_W[0]) & 0xFFFFFFFF, (k[1] + philox.PHILOX_W[1]) & 0xFFFFFFFF]
        p0, p1 = philox.PHILOX_M[0] * c[0], philox.PHILOX_M[1] * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & 0xFFFFFFFF, (p0 >> 32) ^ c[3] ^ k[1], p0 & 0xFFFFFFFF]
    return c


@pytest.mark.parametrize("counter,key,expected", KAT, ids=["zeros", "ones", "pi"])
def test_known_answers(counter, key, expected):
    got = philox.philox4x32(np.array(counter, np.uint32), np.array(key, np.uint32))
    assert got.dtype == np.uint32
    assert [int(w) for w in got] == list(expected)
    assert _python_philox(counter, key) == list(expected)


def test_vectorised_blocks_match_one_at_a_time():
    rng = np.random.default_rng(1)
    counters = rng.integers(0, 2**32, size=(64, 4), dtype=np.uint32)
    keys = rng.integers(0, 2**32, size=(64, 2), dtype=np.uint32)
    got = philox.philox4x32(counters, keys)
    assert got.shape == (64, 4)
    for c, k, g in zip(counters, keys, got):
        assert [int(w) for w in g] == _python_philox([int(v) for v in c], [int(v) for v in k])
    # one key broadcast over many counters, on a strided view of the counters
    wide = np.repeat(counters, 2, axis=0)[::2]
    np.testing.assert_array_equal(philox.philox4x32(wide, keys[0]),
                                  philox.philox4x32(counters, keys[:1]))


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="counters must be"):
        philox.philox4x32(np.zeros(3, np.uint32), np.zeros(2, np.uint32))
    with pytest.raises(ValueError, match="4 uint32 words"):
        philox.random_words(np.zeros(4, np.int64), 3)


def test_stream_words_are_blocks_of_the_call_counter():
    state = np.array([7, 8, 5, 1], np.uint32)
    words = philox.random_words(state, 10)
    blocks = [_python_philox([i, 0, 5, 1], [7, 8]) for i in range(3)]
    assert [int(w) for w in words] == [w for b in blocks for w in b][:10]
    # any window of the stream is the same words
    for start, n in [(0, 0), (3, 5), (4, 4), (7, 3)]:
        np.testing.assert_array_equal(philox.random_words(state, n, start), words[start:start + n])


@pytest.mark.parametrize("count,expected", [(0, (1, 0)), (0xFFFFFFFF, (0, 1)), (2**64 - 1, (0, 0))])
def test_advance_carries_into_the_high_word(count, expected):
    state = np.array([3, 4, count & 0xFFFFFFFF, count >> 32], np.uint32)
    new = philox.advance(state)
    assert new.dtype == np.uint32 and [int(w) for w in new] == [3, 4, *expected]


def test_initial_states_differ_per_draw_and_seed():
    states = {tuple(philox.initial_state(seed, i)) for seed in (0, 1, 2**64 - 1) for i in range(20)}
    assert len(states) == 60
    np.testing.assert_array_equal(philox.initial_state(5, 2), philox.initial_state(5, 2))
    assert [int(w) for w in philox.initial_state(5, 2)[2:]] == [0, 0]
    for bad in (-1, 2**64):
        with pytest.raises(ValueError, match="seed"):
            philox.initial_state(bad, 0)


def test_uniform_conversion_uses_the_top_bits():
    words = np.array([0, 0xFFFFFFFF, 0x80000000, 0x000000FF], np.uint32)
    f32 = philox.uniform01(words, "float32")
    assert f32.dtype == np.float32
    assert f32.tolist() == [0.0, 1 - 2.0**-24, 0.5, 0.0]
    f64 = philox.uniform01(words, "float64")
    assert f64.dtype == np.float64
    expected = [((0 >> 5) * 2**26 + (0xFFFFFFFF >> 6)) * 2.0**-53,
                ((0x80000000 >> 5) * 2**26 + (0xFF >> 6)) * 2.0**-53]
    assert f64.tolist() == expected
    assert philox.uniform01(np.full(2, 0xFFFFFFFF, np.uint32), "float64")[0] == 1 - 2.0**-53


def test_normal_is_box_muller_of_the_uniforms():
    words = philox.random_words(np.array([1, 2, 0, 0], np.uint32), 8)
    u = philox.uniform01(words, "float64").reshape(-1, 2)
    expected = []
    for u1, u2 in u:
        r = math.sqrt(-2 * math.log(1 - u1))
        expected += [r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)]
    z = philox.standard_normal(words, "float64", 3)
    np.testing.assert_allclose(z, expected[:3], rtol=1e-13)
    z32 = philox.standard_normal(words[:4], "float32", 4)
    assert z32.dtype == np.float32 and z32.shape == (4,)


@pytest.mark.parametrize("bound", [1, 2, 7, 2**32 - 1, 2**32 + 5, 2**63 + 11, 2**64 - 1])
def test_uniform_below_is_the_high_half_of_the_product(bound):
    words = philox.random_words(np.array([9, 9, 0, 0], np.uint32), 64)
    got = philox.uniform_below(words, np.uint64(bound))
    pairs = words.reshape(-1, 2)
    expected = [((int(h) << 32 | int(lo)) * bound) >> 64 for h, lo in pairs]
    assert got.dtype == np.uint64 and [int(v) for v in got] == expected
    assert all(0 <= v < bound for v in expected)


# --- LLVM emission --------------------------------------------------------------------------------

def _counters(n):
    rng = np.random.default_rng(3)
    counters = rng.integers(0, 2**32, size=(n, 4), dtype=np.uint32)
    counters[:3] = [KAT[0][0], KAT[1][0], KAT[2][0]]
    return counters


def test_llvm_philox_matches_numpy_on_the_cpu():
    from llvmlite import ir

    from graphc.codegen.jit import JitModule
    from graphc.codegen.philox import emit_philox_blocks

    module = ir.Module("philox_test")
    emit_philox_blocks(module, "philox_blocks")
    jit = JitModule(module)
    fill = jit.cfunc("philox_blocks", None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                     ctypes.c_int64)
    counters = _counters(257)
    for key in (KAT[0][1], KAT[1][1], KAT[2][1]):
        key = np.array(key, np.uint32)
        out = np.zeros_like(counters)
        fill(counters.ctypes.data, key.ctypes.data, out.ctypes.data, len(counters))
        np.testing.assert_array_equal(out, philox.philox4x32(counters, key))
    out = np.full((1, 4), 7, np.uint32)
    fill(counters.ctypes.data, key.ctypes.data, out.ctypes.data, 0)  # n = 0 writes nothing
    assert (out == 7).all()


def _ptx_of_philox() -> str:
    from llvmlite import ir

    from graphc.codegen.philox import emit_philox_blocks
    from graphc.cuda.target import compile_ptx

    module = ir.Module("philox_ptx")
    fn = emit_philox_blocks(module, "philox_blocks", addrspace=1)
    kernel = module.add_metadata([fn, ir.MetaDataString(module, "kernel"),
                                  ir.Constant(ir.IntType(32), 1)])
    module.add_named_metadata("nvvm.annotations", kernel)
    return compile_ptx(str(module))  # the CUDA backend's own path: checks, O3, sm_80


def test_llvm_philox_compiles_for_nvptx_and_passes_ptxas(tmp_path):
    ptx = _ptx_of_philox()
    assert ".entry philox_blocks" in ptx
    assert "mul.wide.u32" in ptx or "mul.hi.u32" in ptx  # the 32x32 -> 64-bit products
    assert "call" not in ptx  # target-neutral: no host or libdevice calls
    if shutil.which("ptxas") is None:
        pytest.skip("ptxas is not on the PATH")
    source = tmp_path / "philox.ptx"
    source.write_text(ptx)
    command = ["ptxas", "-arch=sm_80", str(source), "-o", os.fspath(tmp_path / "philox.cubin")]
    result = subprocess.run(command,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "philox.cubin").stat().st_size > 0


# --- Box-Muller: the same bits from NumPy and from LLVM ---------------------------------------

def _llvm_box_muller():
    """``bm(u1, u2, z0, z1, n)`` over float64 arrays: ``boxmuller.box_muller`` emitted as IR."""
    from llvmlite import ir

    from graphc.codegen.elemwise import counted_loop
    from graphc.codegen.jit import JitModule
    from graphc.codegen.random_kernels import LlvmArithmetic
    from graphc.random.boxmuller import box_muller

    f64, ptr, i64 = ir.DoubleType(), ir.PointerType(), ir.IntType(64)
    module = ir.Module("box_muller_test")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr] * 4 + [i64]), "bm")
    u1s, u2s, z0s, z1s, n = fn.args
    builder = ir.IRBuilder(fn.append_basic_block("entry"))

    def body(i, carried):
        def at(p):
            return builder.gep(p, [i], source_etype=f64)

        u1, u2 = builder.load(at(u1s), typ=f64), builder.load(at(u2s), typ=f64)
        z0, z1 = box_muller(LlvmArithmetic(builder), u1, u2)
        builder.store(z0, at(z0s))
        builder.store(z1, at(z1s))
        return carried

    counted_loop(builder, ir.Constant(i64, 0), n, [], body)
    builder.ret_void()
    jit = JitModule(module)
    return jit.cfunc("bm", None, *[ctypes.c_void_p] * 4, ctypes.c_int64)


def test_box_muller_is_the_same_bits_in_numpy_and_llvm():
    from graphc.random.boxmuller import NUMPY, box_muller

    ulp = 2.0**-53
    edges = np.array([0.0, ulp, 2 * ulp, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875,
                      1 - 2.0**-0.5, 1 - 2.0**-0.5 + ulp, 1 - 2.0**-0.5 - ulp, 2.0**-24,
                      1 - 2.0**-24, 1 - 2 * ulp, 1 - ulp])
    u1, u2 = (a.reshape(-1) for a in np.meshgrid(edges, edges))
    rng = np.random.default_rng(4)
    random = [philox.uniform01(rng.integers(0, 2**32, 2 * 50_000, dtype=np.uint32), "float64"),
              philox.uniform01(rng.integers(0, 2**32, 50_000, dtype=np.uint32), "float32")]
    u1 = np.concatenate([u1, random[0][:25_000], random[1][:25_000].astype(np.float64)])
    u2 = np.concatenate([u2, random[0][25_000:], random[1][25_000:].astype(np.float64)])
    z0, z1 = np.empty_like(u1), np.empty_like(u1)
    _llvm_box_muller()(u1.ctypes.data, u2.ctypes.data, z0.ctypes.data, z1.ctypes.data, u1.size)
    expected = box_muller(NUMPY, u1, u2)
    assert z0.tobytes() == expected[0].tobytes() and z1.tobytes() == expected[1].tobytes()
    # and they are Box-Muller: radius and angle within a few ulp of libm's
    radius = np.sqrt(-2 * np.log1p(-u1))
    np.testing.assert_allclose(np.hypot(z0, z1), radius, rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(z0, radius * np.cos(2 * np.pi * u2), rtol=0, atol=1e-14)
    np.testing.assert_allclose(z1, radius * np.sin(2 * np.pi * u2), rtol=0, atol=1e-14)
    assert z0[0] == 0 and z1[0] == 0  # u1 = 0: radius 0
