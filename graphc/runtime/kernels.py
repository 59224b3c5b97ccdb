"""Compiled kernels: LLVM IR -> object code (cached on disk) -> callable functions.

All kernels of one process live in one MCJIT engine; object files are added to it as
they are compiled or read from the disk cache. A function's kernels that this process has
not loaded yet are compiled together, as one LLVM module and one object file: one
optimisation run and one cache entry per batch, which is what makes a cold compile cheap
and a warm one a single file read.

Kernel names are hashes of their IR (``graphc.codegen.kernel``), so a name stands for one
piece of code in every process and a kernel is never loaded twice.

Two ways to call a kernel ``k(in0, ..., out, start, stop)`` (arrays as PyObject pointers):

- ``fast_call(source)``: a Python builtin made from an LLVM wrapper ``k_py(self, args,
  nargs)`` (CPython's METH_FASTCALL convention) that runs the whole of ``out``: about 0.1 us
  per call, against 1-1.5 us through ctypes. It keeps the GIL: for small work.
- ``range_call(source)``: a ctypes function over ``[start, stop)`` of the output's first
  axis, which releases the GIL, so threads can run chunks of big work at once.

Neither checks its arguments: the caller passes arrays of the kernel's dtypes and ndim.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Iterable

from .cache import KERNEL_SPEED_LEVEL, default_cache, host_target, kernel_key

_lock = threading.Lock()


class KernelLibrary:
    """The process's compiled kernels, by name."""

    def __init__(self):
        self._engine = None
        self.addresses: dict[str, int] = {}
        self._fast: dict[str, object] = {}
        self._range: dict[str, object] = {}
        self._keep_alive: list = []
        self.stats = {"compiled": 0, "loaded": 0, "batches": 0}

    def _ensure_engine(self):
        if self._engine is None:
            import llvmlite.binding as llvm

            from ..codegen.jit import host_target_machine

            machine = host_target_machine()
            empty = llvm.parse_assembly("")
            empty.triple = machine.triple
            empty.data_layout = str(machine.target_data)
            self._engine = llvm.create_mcjit_compiler(empty, machine)
        return self._engine

    def load(self, sources: Iterable, use_cache: bool = True) -> dict[str, int]:
        """Addresses of the kernels ``sources`` (KernelSource), compiling what is missing."""
        sources = list(sources)
        with _lock:
            missing = {s.name: s for s in sources if s.name not in self.addresses}
            if missing:
                self._add_batch(list(missing.values()), use_cache)
            return {s.name: self.addresses[s.name] for s in sources}

    def _add_batch(self, sources: list, use_cache: bool) -> None:
        import llvmlite.binding as llvm

        engine = self._ensure_engine()
        sources.sort(key=lambda s: s.name)
        key = kernel_key("\n".join(s.name for s in sources), host_target())
        cache = default_cache() if use_cache else None
        obj = cache.get("kernels", key) if cache is not None else None
        if obj is None:
            obj = self._compile(sources)
            self.stats["compiled"] += len(sources)
            if cache is not None:
                cache.put("kernels", key, obj)
        else:
            self.stats["loaded"] += len(sources)
        engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.finalize_object()
        self.stats["batches"] += 1
        for s in sources:
            for name in (s.name, s.name + "_py"):
                address = engine.get_function_address(name)
                if not address:
                    raise RuntimeError(f"kernel {name} is missing from its compiled object")
                self.addresses[name] = address

    def fast_call(self, source):
        """``f(in0, ..., out)``: the kernel over all of ``out``, as a Python builtin."""
        func = self._fast.get(source.name)
        if func is None:
            self.load([source])
            method = _PyMethodDef(source.name.encode() + b"_py", self.addresses[source.name + "_py"],
                                  _METH_FASTCALL, None)
            owner = _ReturnValue()  # what the wrapper returns (and increfs): never immortal
            func = _new_builtin(ctypes.addressof(method), owner, None)
            self._keep_alive.append((method, owner))
            self._fast[source.name] = func
        return func

    def range_call(self, source):
        """``f(in0, ..., out, start, stop)`` over rows [start, stop) of out, GIL released."""
        func = self._range.get(source.name)
        if func is None:
            self.load([source])
            proto = ctypes.CFUNCTYPE(None, *([ctypes.py_object] * (source.n_inputs + 1)),
                                     ctypes.c_int64, ctypes.c_int64)
            func = self._range[source.name] = proto(self.addresses[source.name])
        return func

    def _compile(self, sources: list) -> bytes:
        import llvmlite.binding as llvm

        from ..codegen.jit import optimize

        from ..codegen.jit import host_target_machine

        machine = host_target_machine()
        module = None
        for s in sources:
            part = llvm.parse_assembly(s.ir + "\n" + fastcall_wrapper(s))
            part.triple = machine.triple
            part.data_layout = str(machine.target_data)
            if module is None:
                module = part
            else:
                module.link_in(part)
        module.verify()
        optimize(module, machine, speed_level=KERNEL_SPEED_LEVEL)
        return machine.emit_object(module)


class _PyMethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


class _ReturnValue:
    __slots__ = ()


_METH_FASTCALL = 0x80
_new_builtin = ctypes.pythonapi.PyCFunction_NewEx
_new_builtin.restype = ctypes.py_object
_new_builtin.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.py_object]

# offsets in NumPy's PyArrayObject (checked by graphc.codegen.kernel.array_layout_ok)
_ND_OFFSET, _DIMS_OFFSET = 24, 32


def fastcall_wrapper(source) -> str:
    """LLVM IR of ``NAME_py(self, args, nargs)``, appended to the kernel's own module: calls
    NAME over all rows of args[-1] (the output) and returns ``self`` with a new reference."""
    n = source.n_inputs + 1
    loads = "\n".join(f"  %p{i} = getelementptr ptr, ptr %args, i64 {i}\n  %a{i} = load ptr, ptr %p{i}"
                      for i in range(n))
    call_args = ", ".join(f"ptr %a{i}" for i in range(n))
    out = f"%a{n - 1}"
    return f"""
define ptr @{source.name}_py(ptr %self, ptr %args, i64 %nargs) {{
entry:
{loads}
  %ndp = getelementptr i8, ptr {out}, i64 {_ND_OFFSET}
  %nd = load i32, ptr %ndp
  %dimsp = getelementptr i8, ptr {out}, i64 {_DIMS_OFFSET}
  %dims = load ptr, ptr %dimsp
  %scalar = icmp eq i32 %nd, 0
  br i1 %scalar, label %call, label %rows
rows:
  %d0 = load i64, ptr %dims
  br label %call
call:
  %stop = phi i64 [1, %entry], [%d0, %rows]
  call void @{source.name}({call_args}, i64 0, i64 %stop)
  %rc = load i64, ptr %self
  %rc1 = add i64 %rc, 1
  store i64 %rc1, ptr %self
  ret ptr %self
}}
"""


class KernelStub:
    """A kernel known by name (from the graph cache): its IR is only built if its object
    code is not on disk, so a warm process neither generates IR nor imports the emitter."""

    __slots__ = ("name", "n_inputs", "kind", "out_dtype", "node")

    def __init__(self, name: str, n_inputs: int, kind: str, out_dtype: str, node):
        self.name, self.n_inputs, self.kind, self.out_dtype, self.node = name, n_inputs, kind, out_dtype, node

    @property
    def ir(self) -> str:
        from ..codegen.kernel import kernel_source

        source = kernel_source(self.node)
        if source.name != self.name:
            raise RuntimeError(f"kernel {self.name}: the emitter now builds {source.name} for this node")
        return source.ir


LIBRARY = KernelLibrary()
