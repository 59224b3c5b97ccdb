"""Minimal host JIT on llvmlite: MCJIT for this CPU, O3 with the loop and SLP vectorisers."""
from __future__ import annotations

import ctypes
import functools

import llvmlite.binding as llvm
from llvmlite import ir

__all__ = ["JitModule", "host_target_machine", "optimize"]


@functools.cache
def _host_cpu() -> tuple[str, str]:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    from ..runtime.cache import EXTRA_FEATURES

    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten() + EXTRA_FEATURES


def host_target_machine(opt: int = 3) -> llvm.TargetMachine:
    """A new target machine for the host CPU's name and features.

    Not cached: an MCJIT engine takes ownership of its target machine and frees it with itself.
    """
    cpu, features = _host_cpu()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=cpu, features=features, opt=opt, jit=True)


def optimize(module: llvm.ModuleRef, machine: llvm.TargetMachine, speed_level: int = 3) -> None:
    """Run LLVM's default O``speed_level`` pipeline, vectorisers on, over ``module`` in place."""
    tuning = llvm.create_pipeline_tuning_options(speed_level=speed_level)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(module, builder)


class JitModule:
    """One LLVM module compiled for the host; keeps its engine alive while referenced."""

    def __init__(self, module: ir.Module | str, optimize_level: int = 3):
        machine = host_target_machine()
        parsed = llvm.parse_assembly(str(module))
        parsed.triple = machine.triple
        parsed.data_layout = str(machine.target_data)
        parsed.verify()
        if optimize_level:
            optimize(parsed, machine, optimize_level)
        self.optimized_ir = str(parsed)
        self._module, self._machine = parsed, machine
        self._engine = llvm.create_mcjit_compiler(parsed, machine)
        self._engine.finalize_object()

    @functools.cached_property
    def assembly(self) -> str:
        """The module's assembly, made on first use (it costs as much as compiling)."""
        return self._machine.emit_assembly(self._module)

    def address(self, name: str) -> int:
        """The entry address of the compiled function ``name``."""
        address = self._engine.get_function_address(name)
        if not address:
            raise KeyError(f"no function {name!r} in this JIT module")
        return address

    def cfunc(self, name: str, restype, *argtypes):
        """``name`` as a ctypes function (it holds a reference to this module)."""
        func = ctypes.CFUNCTYPE(restype, *argtypes)(self.address(name))
        func.jit_module = self
        return func
