"""CPU kernels for the random draws ``random_uniform01``, ``random_normal01``,
``random_integers`` and ``random_binomial``.

A draw's values are a pure function of their position: value ``i`` of a uniform, normal or
integer draw comes from Philox block ``i // V`` (``V`` values per block: 4 for float32, 2 for
float64 and integers), so a kernel over any range of positions computes exactly what the NumPy
reference (``graphc.random.philox``, ``graphc.random.ops``) computes for them, and a big draw
splits over threads by position.

Kernel (the CPU convention of ``graphc.codegen.kernel``; ``N_PARAMS`` parameter inputs)::

    void NAME(PyObject* state, [PyObject* param, ...] PyObject* out, int64 start, int64 stop)

``state`` is the uint32[4] state and the parameters flat vectors (any stride: 0 for a
broadcast scalar) checked by ``ops.kernel_params``; ``out`` is a contiguous vector (the caller
passes the draw flattened); the kernel writes ``out[start:stop]``. Full blocks run in one loop,
the partial blocks at either end store only their values inside the range.

- uniform01: float32 ``(w >> 8) * 2^-24`` of each word; float64 ``((w0 >> 5) 2^26 + (w1 >> 6))
  * 2^-53`` of each pair: exact, as in the reference.
- normal01: those uniforms (float32 ones widened) in pairs through
  ``graphc.random.boxmuller.box_muller`` run on LLVM arithmetic: the reference's operations,
  each rounded once, in its order; float32 values are the float64 results rounded.
- integers: ``low + mulhi64(x, high - low)`` (an i128 product) of the 64-bit ``x`` of a pair
  of words, truncated to the dtype as NumPy's ``astype`` does.
- binomial: position ``i`` loops over its trials; trial ``t`` reads the float64 uniform of
  words ``2 size t + 2 i`` (half a block), as the reference's trial-major words.
"""

from __future__ import annotations

from llvmlite import ir

from ..random.boxmuller import box_muller
from ..random.philox import values_per_block
from .elemwise import I64, PTR, counted_loop, i64
from .philox import I32, emit_philox4x32

__all__ = ["RANDOM_KERNEL_OPS", "LlvmArithmetic", "emit_random_core"]

RANDOM_KERNEL_OPS = ("random_uniform01", "random_normal01", "random_integers", "random_binomial")
N_PARAMS = {"random_integers": 2, "random_binomial": 2}  # (low, high) and (n, p)
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


def _uniform_pair(builder: ir.IRBuilder, high, low):
    """The float64 in [0, 1) of two words: their top 53 bits."""
    top = builder.shl(builder.zext(builder.lshr(high, ir.Constant(I32, 5)), I64), i64(26))
    bits = builder.or_(top, builder.zext(builder.lshr(low, ir.Constant(I32, 6)), I64))
    return builder.fmul(builder.uitofp(bits, F64), ir.Constant(F64, 2.0 ** -53))


def _uniforms(builder: ir.IRBuilder, words: list, dtype: str) -> list:
    """The uniforms in [0, 1) of one block's four words (4 float32 or 2 float64)."""
    if dtype == "float32":
        scale = ir.Constant(F32, 2.0 ** -24)
        return [builder.fmul(builder.uitofp(builder.lshr(w, ir.Constant(I32, 8)), F32), scale)
                for w in words]
    return [_uniform_pair(builder, *words[0:2]), _uniform_pair(builder, *words[2:4])]


def _block(builder: ir.IRBuilder, index, state: list) -> list:
    """The four words of block ``index`` (i64) of the stream ``state``."""
    counter = [builder.trunc(index, I32), builder.trunc(builder.lshr(index, i64(32)), I32),
               state[2], state[3]]
    return emit_philox4x32(builder, counter, state[:2])


def _integer(builder: ir.IRBuilder, high_word, low_word, low, high):
    """``low + mulhi64(x, high - low)`` of the 64-bit ``x`` of two words (wrapping i64)."""
    i128 = ir.IntType(128)
    x = builder.or_(builder.shl(builder.zext(high_word, I64), i64(32)), builder.zext(low_word, I64))
    span = builder.sub(high, low)  # the uint64 span's bits
    product = builder.mul(builder.zext(x, i128), builder.zext(span, i128))
    return builder.add(low, builder.trunc(builder.lshr(product, ir.Constant(i128, 64)), I64))


def _block_values(builder: ir.IRBuilder, op_name: str, dtype: str, words: list, param) -> list:
    """The values of one block's positions; ``param(k, j)`` loads parameter k at position j."""
    if op_name == "random_integers":
        return [_integer(builder, words[2 * j], words[2 * j + 1], param(0, j), param(1, j))
                for j in range(2)]
    u = _uniforms(builder, words, dtype)
    if op_name == "random_uniform01":
        return u
    if dtype == "float32":
        u = [builder.fpext(v, F64) for v in u]
    arithmetic = LlvmArithmetic(builder)
    z = [value for k in range(0, len(u), 2) for value in box_muller(arithmetic, u[k], u[k + 1])]
    return [builder.fptrunc(v, F32) for v in z] if dtype == "float32" else z


_INT_BITS = {"bool": 8, "int8": 8, "uint8": 8, "int16": 16, "uint16": 16, "int32": 32,
             "uint32": 32, "int64": 64, "uint64": 64}


def _element_type(dtype: str) -> ir.Type:
    return {"float32": F32, "float64": F64}.get(dtype) or ir.IntType(_INT_BITS[dtype])


def _cast_int(builder: ir.IRBuilder, value, dtype: str):
    """An i64 as NumPy's ``astype(dtype)`` of int64 (wrapping; bool: nonzero)."""
    if dtype == "bool":
        return builder.zext(builder.icmp_signed("!=", value, i64(0)), ir.IntType(8))
    if dtype in ("float32", "float64"):
        return builder.sitofp(value, _element_type(dtype))
    bits = _INT_BITS[dtype]
    return value if bits == 64 else builder.trunc(value, ir.IntType(bits))


class _Arrays:
    """The core's arguments: the state's words, the parameters (data, stride), ``out``."""

    def __init__(self, builder: ir.IRBuilder, args, n_params: int):
        def stride(strides):
            return builder.load(strides, typ=I64)

        data, _, strides = args[0:3]
        step = stride(strides)
        self.state = [builder.load(builder.gep(data, [builder.mul(step, i64(j))],
                                               source_etype=ir.IntType(8)), typ=I32)
                      for j in range(4)]
        self.params = [(args[3 * k], stride(args[3 * k + 2])) for k in range(1, n_params + 1)]
        self.out, self.out_dims = args[3 * n_params + 3], args[3 * n_params + 4]
        self.builder = builder

    def param(self, k: int, position, typ):
        data, stride = self.params[k]
        b = self.builder
        return b.load(b.gep(data, [b.mul(position, stride)], source_etype=ir.IntType(8)), typ=typ)


def emit_random_core(module: ir.Module, name: str, op_name: str, dtype: str) -> ir.Function:
    """``void name(state data, dims, strides, [param data, dims, strides ...], out data, dims,
    strides, i64 start, i64 stop)`` writing positions [start, stop) of the draw ``op_name``."""
    if op_name not in RANDOM_KERNEL_OPS:
        raise ValueError(f"no random kernel for {op_name}")
    n_params = N_PARAMS.get(op_name, 0)
    arrays_args = [PTR] * (3 * n_params + 6)  # (data, dims, strides) per array
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), arrays_args + [I64, I64]), name)
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    arrays = _Arrays(builder, fn.args, n_params)
    start, stop = fn.args[-2:]
    if op_name == "random_binomial":
        _emit_binomial(builder, arrays, dtype, start, stop)
    else:
        _emit_blocks(builder, arrays, op_name, dtype, start, stop)
    builder.ret_void()
    return fn


def _emit_blocks(builder: ir.IRBuilder, arrays: _Arrays, op_name: str, dtype: str, start, stop):
    """Positions [start, stop) block by block: a loop over the whole blocks, and the partial
    blocks at either end storing (and reading parameters at) positions inside the range only."""
    per = 2 if op_name == "random_integers" else values_per_block(dtype)
    element = _element_type(dtype)

    def block(index, guarded: bool):
        base = builder.mul(index, i64(per))
        positions = [builder.add(base, i64(j)) for j in range(per)]
        inside = None
        if guarded:
            inside = [builder.and_(builder.icmp_signed(">=", p, start),
                                   builder.icmp_signed("<", p, stop)) for p in positions]

        def param(k, j):  # outside the range: read position start, which exists
            position = builder.select(inside[j], positions[j], start) if guarded else positions[j]
            return arrays.param(k, position, I64)

        values = _block_values(builder, op_name, dtype, _block(builder, index, arrays.state), param)
        for j, value in enumerate(values):
            if op_name == "random_integers":
                value = _cast_int(builder, value, dtype)
            pointer = builder.gep(arrays.out, [positions[j]], inbounds=True, source_etype=element)
            if not guarded:
                builder.store(value, pointer)
                continue
            with builder.if_then(inside[j]):
                builder.store(value, pointer)

    first_block = builder.sdiv(start, i64(per))
    last_block = builder.sdiv(stop, i64(per))  # the block of position stop (if any)
    head = builder.icmp_signed("!=", builder.srem(start, i64(per)), i64(0))
    tail = builder.icmp_signed("!=", builder.srem(stop, i64(per)), i64(0))
    nonempty = builder.icmp_signed("<", start, stop)
    with builder.if_then(builder.and_(nonempty, head)):
        block(first_block, guarded=True)
    full_start = builder.select(head, builder.add(first_block, i64(1)), first_block)

    def body(index, carried):
        block(index, guarded=False)
        return carried

    counted_loop(builder, full_start, last_block, [], body)
    # the tail block is the head block when both ends fall in one block: done already
    shared = builder.and_(head, builder.icmp_signed("==", first_block, last_block))
    with builder.if_then(builder.and_(builder.and_(nonempty, tail), builder.not_(shared))):
        block(last_block, guarded=True)


def _emit_binomial(builder: ir.IRBuilder, arrays: _Arrays, dtype: str, start, stop):
    """Position i counts the trials t < n_i whose uniform (words ``2 size t + 2 i`` and the
    next) is below p_i: the reference's trial-major order of words."""
    size = builder.load(arrays.out_dims, typ=I64)
    element = _element_type(dtype)

    def position(i, carried):
        trials = arrays.param(0, i, I64)
        p = arrays.param(1, i, F64)

        def trial(t, counts):
            word = builder.add(builder.mul(builder.mul(size, t), i64(2)), builder.mul(i, i64(2)))
            words = _block(builder, builder.lshr(word, i64(2)), arrays.state)
            second = builder.trunc(builder.lshr(word, i64(1)), ir.IntType(1))  # words 2, 3
            u = _uniform_pair(builder, builder.select(second, words[2], words[0]),
                              builder.select(second, words[3], words[1]))
            hit = builder.zext(builder.fcmp_ordered("<", u, p), I64)
            return [builder.add(counts[0], hit)]

        (count,) = counted_loop(builder, i64(0), trials, [i64(0)], trial)
        pointer = builder.gep(arrays.out, [i], inbounds=True, source_etype=element)
        builder.store(_cast_int(builder, count, dtype), pointer)
        return carried

    counted_loop(builder, start, stop, [], position)
