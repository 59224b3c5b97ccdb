"""Runs the CUDA kernels' LLVM IR on the CPU, one OS thread per GPU thread, for tests on
machines without a GPU.

The NVVM intrinsics are renamed to functions that call back into Python: thread and block
indices come from thread-local state, ``shfl.sync.down`` exchanges values among the 32
threads of a warp (two barriers per shuffle) and ``barrier0`` waits for the whole block.
Blocks run one after another (their shared memory is one global of the JIT module). Slow,
but exact about what each thread computes: it checks the kernels' indexing, the warp and
block reductions, the second pass and the host's argument lists (``graphc.cuda.launch``)
against NumPy.
"""
from __future__ import annotations

import ctypes
import re
import threading

import llvmlite.binding as llvm
import numpy as np

from graphc.codegen.jit import JitModule

_REGISTERS = ("tid", "ntid", "ctaid", "nctaid")
_REGISTER_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32)
_SHUFFLE_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
                               ctypes.c_int32)
_BARRIER_FN = ctypes.CFUNCTYPE(None)

_STUBS = """
@sim_register_fn = global ptr null
@sim_shuffle_fn = global ptr null
@sim_barrier_fn = global ptr null
""" + "".join(f"""
define i32 @sim.{reg}() {{
  %f = load ptr, ptr @sim_register_fn
  %v = call i32 %f(i32 {k})
  ret i32 %v
}}
""" for k, reg in enumerate(_REGISTERS)) + """
define i32 @sim.shfl(i32 %mask, i32 %v, i32 %delta, i32 %c) {
  %f = load ptr, ptr @sim_shuffle_fn
  %r = call i32 %f(i32 %mask, i32 %v, i32 %delta, i32 %c)
  ret i32 %r
}
define void @sim.barrier() {
  %f = load ptr, ptr @sim_barrier_fn
  call void %f()
  ret void
}
"""


def _host_ir(text: str) -> str:
    """The kernel module's text with the NVVM parts replaced by the simulator's stubs."""
    text = re.sub(r'^target (triple|datalayout) = .*$', "", text, flags=re.MULTILINE)
    text = re.sub(r'^declare .*@"llvm\.nvvm\.[^\n]*\n', "", text, flags=re.MULTILINE)
    for reg in _REGISTERS:
        text = text.replace(f'@"llvm.nvvm.read.ptx.sreg.{reg}.x"', f'@"sim.{reg}"')
    text = text.replace('@"llvm.nvvm.shfl.sync.down.i32"', '@"sim.shfl"')
    text = text.replace('@"llvm.nvvm.barrier0"', '@"sim.barrier"')
    text = text.replace(" addrspace(3)", "")
    return text + _STUBS


class _Block:
    """The threads of one block: their indices, and the rendezvous of shuffles and barriers."""

    def __init__(self, size: int, block: int, grid: int):
        self.size, self.block, self.grid = size, block, grid
        self.local = threading.local()
        self.everyone = threading.Barrier(size)
        self.warps = [threading.Barrier(32) for _ in range(size // 32)]
        self.slots = [[0] * 32 for _ in range(size // 32)]

    def register(self, which: int) -> int:
        return (self.local.thread, self.size, self.block, self.grid)[which]

    def shuffle(self, mask: int, value: int, delta: int, clamp: int) -> int:
        lane, warp = self.local.thread % 32, self.local.thread // 32
        self.slots[warp][lane] = value
        self.warps[warp].wait()
        source = lane + delta
        result = self.slots[warp][source] if source <= clamp else value
        self.warps[warp].wait()
        return result

    def barrier(self) -> None:
        self.everyone.wait()


class Simulator:
    """The entries of one ``CudaKernelSource``, callable with a ``graphc.cuda.launch.Launch``."""

    def __init__(self, source):
        self.jit = JitModule(_host_ir(source.ir), optimize_level=1)
        self.current: _Block | None = None
        self._callbacks = (_REGISTER_FN(lambda w: self.current.register(w)),
                           _SHUFFLE_FN(lambda m, v, d, c: self.current.shuffle(m, v, d, c)),
                           _BARRIER_FN(lambda: self.current.barrier()))
        for name, callback in zip(("sim_register_fn", "sim_shuffle_fn", "sim_barrier_fn"),
                                  self._callbacks):
            address = self.jit._engine.get_global_value_address(name)
            pointer = ctypes.cast(callback, ctypes.c_void_p).value
            ctypes.c_void_p.from_address(address).value = pointer

    def launch(self, launch) -> None:
        argtypes = [_ctype(a) for a in launch.args]
        kernel = self.jit.cfunc(launch.kernel, None, *argtypes)
        values = [a.item() for a in launch.args]
        if launch.block % 32:
            raise ValueError("blocks are whole warps")
        for block in range(launch.grid):
            self.current = _Block(launch.block, block, launch.grid)
            errors = []

            def thread(t, current=self.current):
                current.local.thread = t
                try:
                    kernel(*values)
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

            workers = [threading.Thread(target=thread, args=(t,)) for t in range(launch.block)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            if errors:
                raise errors[0]


def _ctype(value):
    if isinstance(value, np.uintp):
        return ctypes.c_uint64
    if isinstance(value, np.int32):
        return ctypes.c_int32
    return ctypes.c_int64


llvm.initialize_native_target()
