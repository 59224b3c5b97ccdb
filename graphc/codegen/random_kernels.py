"""CPU kernels for the random draws ``random_uniform01`` and ``random_normal01``.

A draw's values are a pure function of their position: value ``i`` comes from Philox block
``i // V`` (``V = philox.values_per_block(dtype)``: 4 for float32, 2 for float64), so
a kernel over any range of positions computes exactly what the NumPy reference
(``graphc.random.philox``) computes for them, and a big draw splits over threads by position.

Kernel (the CPU convention of ``graphc.codegen.kernel``, one input)::

    void NAME(PyObject* state, PyObject* out, int64 start, int64 stop)

``state`` is the uint32[4] state (any stride), ``out`` a contiguous vector (the caller passes
the draw flattened); the kernel writes ``out[start:stop]``. Full blocks run in one loop, the
partial blocks at either end store only their values inside the range.

- uniform01: float32 ``(w >> 8) * 2^-24`` of each word; float64 ``((w0 >> 5) 2^26 + (w1 >> 6))
  * 2^-53`` of each pair: exact, as in the reference.
- normal01: those uniforms (float32 ones widened) in pairs through
  ``graphc.random.boxmuller.box_muller`` run on LLVM arithmetic: the reference's operations,
  each rounded once, in its order; float32 values are the float64 results rounded.
"""

from __future__ import annotations

from llvmlite import ir

from ..random.boxmuller import box_muller
from ..random.philox import values_per_block
from .elemwise import I64, PTR, counted_loop, i64
from .philox import I32, emit_philox4x32

__all__ = ["RANDOM_KERNEL_OPS", "LlvmArithmetic", "emit_random_core"]

RANDOM_KERNEL_OPS = ("random_uniform01", "random_normal01")
F32, F64 = ir.FloatType(), ir.DoubleType()


class LlvmArithmetic:
    """The arithmetic ``box_muller`` runs on, emitting float64 LLVM IR (no fast-math flags)."""

    def __init__(self, builder: ir.IRBuilder):
        self.b = builder
        module = builder.module
        self._sqrt = module.declare_intrinsic("llvm.sqrt", [F64])
        self._rint = module.declare_intrinsic("llvm.rint", [F64])

    def const(self, value):
        return ir.Constant(F64, float(value))

    def add(self, x, y):
        return self.b.fadd(x, y)

    def sub(self, x, y):
        return self.b.fsub(x, y)

    def mul(self, x, y):
        return self.b.fmul(x, y)

    def div(self, x, y):
        return self.b.fdiv(x, y)

    def sqrt(self, x):
        return self.b.call(self._sqrt, [x])

    def rint(self, x):
        return self.b.call(self._rint, [x])

    def gt(self, x, y):
        return self.b.fcmp_ordered(">", x, y)

    def eq(self, x, y):
        return self.b.fcmp_ordered("==", x, y)

    def select(self, cond, x, y):
        return self.b.select(cond, x, y)

    def split(self, v):
        b = self.b
        bits = b.bitcast(v, I64)
        exponent = b.sub(b.and_(b.lshr(bits, i64(52)), i64(0x7FF)), i64(1023))
        mantissa = b.or_(b.and_(bits, i64(0x000FFFFFFFFFFFFF)), i64(0x3FF0000000000000))
        return b.sitofp(exponent, F64), b.bitcast(mantissa, F64)


def _uniforms(builder: ir.IRBuilder, words: list, dtype: str) -> list:
    """The uniforms in [0, 1) of one block's four words (4 float32 or 2 float64)."""
    if dtype == "float32":
        scale = ir.Constant(F32, 2.0 ** -24)
        return [builder.fmul(builder.uitofp(builder.lshr(w, ir.Constant(I32, 8)), F32), scale)
                for w in words]
    values = []
    for high, low in (words[0:2], words[2:4]):
        top = builder.shl(builder.zext(builder.lshr(high, ir.Constant(I32, 5)), I64), i64(26))
        bits = builder.or_(top, builder.zext(builder.lshr(low, ir.Constant(I32, 6)), I64))
        values.append(builder.fmul(builder.uitofp(bits, F64), ir.Constant(F64, 2.0 ** -53)))
    return values


def _block_values(builder: ir.IRBuilder, op_name: str, dtype: str, block, state: list) -> list:
    """The values of positions ``V block .. V block + V - 1`` of the draw."""
    counter = [builder.trunc(block, I32), builder.trunc(builder.lshr(block, i64(32)), I32),
               state[2], state[3]]
    u = _uniforms(builder, emit_philox4x32(builder, counter, state[:2]), dtype)
    if op_name == "random_uniform01":
        return u
    if dtype == "float32":
        u = [builder.fpext(v, F64) for v in u]
    arithmetic = LlvmArithmetic(builder)
    z = [value for k in range(0, len(u), 2) for value in box_muller(arithmetic, u[k], u[k + 1])]
    return [builder.fptrunc(v, F32) for v in z] if dtype == "float32" else z


def emit_random_core(module: ir.Module, name: str, op_name: str, dtype: str) -> ir.Function:
    """``void name(state data, dims, strides, out data, dims, strides, i64 start, i64 stop)``
    writing positions [start, stop) of the draw ``op_name`` of ``dtype`` into ``out``."""
    if op_name not in RANDOM_KERNEL_OPS or dtype not in ("float32", "float64"):
        raise ValueError(f"no random kernel for {op_name} of {dtype}")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * 6 + [I64, I64]), name)
    state_data, _, state_strides, out, _, _, start, stop = fn.args
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    stride = builder.load(state_strides, typ=I64)
    state = [builder.load(builder.gep(state_data, [builder.mul(stride, i64(j))],
                                      source_etype=ir.IntType(8)), typ=I32) for j in range(4)]
    element = F32 if dtype == "float32" else F64
    per = values_per_block(dtype)

    def store(values, block, guarded: bool):
        base = builder.mul(block, i64(per))
        for j, value in enumerate(values):
            position = builder.add(base, i64(j))
            pointer = builder.gep(out, [position], inbounds=True, source_etype=element)
            if not guarded:
                builder.store(value, pointer)
                continue
            inside = builder.and_(builder.icmp_signed(">=", position, start),
                                  builder.icmp_signed("<", position, stop))
            with builder.if_then(inside):
                builder.store(value, pointer)

    def partial(block):
        store(_block_values(builder, op_name, dtype, block, state), block, guarded=True)

    first_block = builder.sdiv(start, i64(per))
    last_block = builder.sdiv(stop, i64(per))  # the block of position stop (if any)
    head = builder.icmp_signed("!=", builder.srem(start, i64(per)), i64(0))
    tail = builder.icmp_signed("!=", builder.srem(stop, i64(per)), i64(0))
    nonempty = builder.icmp_signed("<", start, stop)
    with builder.if_then(builder.and_(nonempty, head)):
        partial(first_block)
    full_start = builder.select(head, builder.add(first_block, i64(1)), first_block)

    def body(block, carried):
        store(_block_values(builder, op_name, dtype, block, state), block, guarded=False)
        return carried

    counted_loop(builder, full_start, last_block, [], body)
    # the tail block is the head block when both ends fall in one block: done already
    shared = builder.and_(head, builder.icmp_signed("==", first_block, last_block))
    with builder.if_then(builder.and_(builder.and_(nonempty, tail), builder.not_(shared))):
        partial(last_block)
    builder.ret_void()
    return fn
