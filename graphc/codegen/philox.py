"""Philox4x32-10 as LLVM IR, for kernels that draw random numbers on the CPU or the GPU.

``emit_philox4x32(builder, counter_words, key_words)`` emits the ten rounds with nothing but i32/i64
integer arithmetic (no calls, no intrinsics), so the same code lowers for x86-64 and for
``nvptx64-nvidia-cuda``. It computes exactly what ``graphc.random.philox.philox4x32`` computes
in NumPy, the reference it is tested against.

``emit_philox_blocks`` wraps it in a function that fills ``n`` blocks, used by the tests and as
the model of a random kernel: ``void NAME(ptr counters, ptr key, ptr out, i64 n)`` where
``counters`` and ``out`` hold ``4 * n`` words and ``key`` two.
"""

from __future__ import annotations

from llvmlite import ir

from ..random.philox import PHILOX_M, PHILOX_W, ROUNDS

__all__ = ["emit_philox4x32", "emit_philox_blocks"]

I32 = ir.IntType(32)
I64 = ir.IntType(64)


def _mulhilo(builder: ir.IRBuilder, multiplier: int, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """The high and low 32-bit halves of the 64-bit product ``multiplier * x``."""
    product = builder.mul(ir.Constant(I64, multiplier), builder.zext(x, I64))
    high = builder.trunc(builder.lshr(product, ir.Constant(I64, 32)), I32)
    return high, builder.trunc(product, I32)


def emit_philox4x32(builder: ir.IRBuilder, counter_words, key_words, rounds: int = ROUNDS) -> list:
    """The four i32 words of Philox4x32-``rounds`` of four i32 counter words under two i32 key
    words (values in ``builder``'s current block)."""
    c0, c1, c2, c3 = counter_words
    k0, k1 = key_words
    for r in range(rounds):
        if r:  # the key is bumped between rounds (wrapping i32 adds)
            k0 = builder.add(k0, ir.Constant(I32, PHILOX_W[0]))
            k1 = builder.add(k1, ir.Constant(I32, PHILOX_W[1]))
        hi0, lo0 = _mulhilo(builder, PHILOX_M[0], c0)
        hi1, lo1 = _mulhilo(builder, PHILOX_M[1], c2)
        c0, c1, c2, c3 = (builder.xor(builder.xor(hi1, c1), k0), lo1,
                          builder.xor(builder.xor(hi0, c3), k1), lo0)
    return [c0, c1, c2, c3]


def emit_philox_blocks(module: ir.Module, name: str, addrspace: int = 0) -> ir.Function:
    """``void name(ptr counters, ptr key, ptr out, i64 n)``: ``out[4i:4i+4]`` = Philox of
    ``counters[4i:4i+4]`` under ``key[0:2]`` for ``i < n`` (pointers in ``addrspace``)."""
    ptr = ir.PointerType(addrspace=addrspace)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, ptr, I64]), name)
    counters, key, out, n = fn.args
    entry, loop, done = (fn.append_basic_block(b) for b in ("entry", "loop", "done"))
    builder = ir.IRBuilder(entry)
    key_words = [_load(builder, key, ir.Constant(I64, j)) for j in range(2)]
    builder.cbranch(builder.icmp_signed(">", n, ir.Constant(I64, 0)), loop, done)
    builder.position_at_end(loop)
    i = builder.phi(I64, "i")
    i.add_incoming(ir.Constant(I64, 0), entry)
    base = builder.mul(i, ir.Constant(I64, 4))
    offsets = [builder.add(base, ir.Constant(I64, j)) for j in range(4)]
    words = emit_philox4x32(builder, [_load(builder, counters, o) for o in offsets], key_words)
    for offset, word in zip(offsets, words):
        builder.store(word, builder.gep(out, [offset], inbounds=True, source_etype=I32))
    following = builder.add(i, ir.Constant(I64, 1))
    i.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, n), loop, done)
    builder.position_at_end(done)
    builder.ret_void()
    return fn


def _load(builder: ir.IRBuilder, pointer, index) -> ir.Value:
    return builder.load(builder.gep(pointer, [index], inbounds=True, source_etype=I32), typ=I32)
