"""NVVM building blocks for kernels: thread indices, warp shuffles, barriers, shared memory
and the kernel annotation. Only intrinsics the NVPTX back end lowers are used."""
from __future__ import annotations

from llvmlite import ir

__all__ = ["I32", "I64", "PTR", "WARP", "Threads", "annotate_kernel", "barrier", "from_bits",
           "kernel_function", "shared_array", "shuffle_down", "to_bits"]

I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
SHARED_PTR = ir.PointerType(addrspace=3)
WARP = 32
FULL_MASK = ir.Constant(I32, -1)


def _declare(module: ir.Module, name: str, ret: ir.Type, args: list) -> ir.Function:
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, args), name)
    return fn


def kernel_function(module: ir.Module, name: str, arg_types: list) -> ir.Function:
    """A ``void name(args)`` function marked as a kernel (an ``.entry`` in the PTX)."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), arg_types), name)
    annotate_kernel(module, fn)
    return fn


def annotate_kernel(module: ir.Module, fn: ir.Function) -> None:
    """Add ``fn`` to ``!nvvm.annotations`` as a kernel."""
    annotations = module.add_named_metadata("nvvm.annotations")
    annotations.add(module.add_metadata([fn, ir.MetaDataString(module, "kernel"),
                                         ir.Constant(I32, 1)]))


class Threads:
    """This thread's place in the launch, as i64 values read at the builder's position."""

    def __init__(self, builder: ir.IRBuilder):
        def read(register: str):
            fn = _declare(builder.module, f"llvm.nvvm.read.ptx.sreg.{register}", I32, [])
            return builder.zext(builder.call(fn, []), I64)

        self.thread, self.block_size = read("tid.x"), read("ntid.x")
        self.block, self.grid_size = read("ctaid.x"), read("nctaid.x")
        self.global_id = builder.add(builder.mul(self.block, self.block_size), self.thread)
        self.global_size = builder.mul(self.grid_size, self.block_size)
        self.lane = builder.and_(self.thread, ir.Constant(I64, WARP - 1))
        self.warp = builder.lshr(self.thread, ir.Constant(I64, 5))
        self.n_warps = builder.lshr(builder.add(self.block_size, ir.Constant(I64, WARP - 1)),
                                    ir.Constant(I64, 5))


def barrier(builder: ir.IRBuilder) -> None:
    """``__syncthreads()``: every thread of the block reaches it."""
    builder.call(_declare(builder.module, "llvm.nvvm.barrier0", ir.VoidType(), []), [])


def shared_array(module: ir.Module, name: str, element: ir.Type, count: int) -> ir.Value:
    """A block-shared array of ``count`` elements; returns its ``ptr addrspace(3)``."""
    array = ir.GlobalVariable(module, ir.ArrayType(element, count), name, addrspace=3)
    array.linkage = "internal"
    array.initializer = ir.Constant(array.value_type, None)
    array.align = 8
    # NOTE: an opaque pointer type, so that GEPs on it give opaque shared-memory pointers
    array.type = SHARED_PTR
    return array


def to_bits(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """``value`` (i1 ... i64, float, double) as the bits of an i32 (<= 32 bits) or an i64."""
    ty = value.type
    if isinstance(ty, ir.FloatType):
        return builder.bitcast(value, I32)
    if isinstance(ty, ir.DoubleType):
        return builder.bitcast(value, I64)
    if ty.width < 32:
        return builder.zext(value, I32)
    return value


def from_bits(builder: ir.IRBuilder, bits: ir.Value, ty: ir.Type) -> ir.Value:
    """The inverse of ``to_bits`` (``bits`` may also be a wider integer: it is truncated)."""
    if isinstance(ty, (ir.FloatType, ir.DoubleType)):
        width = 32 if isinstance(ty, ir.FloatType) else 64
        if bits.type.width != width:
            bits = builder.trunc(bits, ir.IntType(width))
        return builder.bitcast(bits, ty)
    if bits.type.width > ty.width:
        return builder.trunc(bits, ty)
    return bits


def _shuffle32(builder: ir.IRBuilder, bits: ir.Value, delta: int) -> ir.Value:
    fn = _declare(builder.module, "llvm.nvvm.shfl.sync.down.i32", I32, [I32] * 4)
    return builder.call(fn, [FULL_MASK, bits, ir.Constant(I32, delta),
                             ir.Constant(I32, WARP - 1)])


def shuffle_down(builder: ir.IRBuilder, value: ir.Value, delta: int) -> ir.Value:
    """The ``value`` of the lane ``delta`` above this one (``shfl.sync.down``, all 32 lanes
    taking part); 64-bit values move as two 32-bit halves."""
    bits = to_bits(builder, value)
    if bits.type.width == 32:
        moved = _shuffle32(builder, bits, delta)
    else:
        low = _shuffle32(builder, builder.trunc(bits, I32), delta)
        high = _shuffle32(builder, builder.trunc(builder.lshr(bits, ir.Constant(I64, 32)), I32),
                          delta)
        moved = builder.or_(builder.shl(builder.zext(high, I64), ir.Constant(I64, 32)),
                            builder.zext(low, I64))
    return from_bits(builder, moved, value.type)
