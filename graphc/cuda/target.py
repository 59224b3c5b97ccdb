"""The NVPTX target: LLVM IR -> PTX (llvmlite), PTX -> cubin (``ptxas``), both cached on disk.

PTX is made for one compute capability (``sm_80`` unless the device says otherwise). Before
LLVM sees a module, ``check_lowerable`` rejects anything NVPTX cannot lower (on NVPTX,
``llvm.exp``/``llvm.pow``/``frem``... make LLVM abort the whole process instead of raising):
such a kernel is a ``CannotEmit`` (the op then runs on the host).

Entries live in the disk cache's ``cuda`` namespace, keyed like CPU kernels (IR, triple,
compute capability, llvmlite and ABI versions); a cubin's key adds the PTX and ptxas's version.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading

from ..codegen.scalar import CannotEmit

__all__ = [
    "DEFAULT_ARCH",
    "LOWERABLE_INTRINSICS",
    "TRIPLE",
    "PtxasError",
    "check_lowerable",
    "compile_ptx",
    "cubin",
    "data_layout",
    "ptx",
    "ptxas_path",
    "run_ptxas",
]

TRIPLE = "nvptx64-nvidia-cuda"
DEFAULT_ARCH = "sm_80"
CACHE_NAMESPACE = "cuda"
# intrinsics the kernels may call; anything else is refused before LLVM sees it
LOWERABLE_INTRINSICS = re.compile(
    r"llvm\.(fma|fabs|sqrt|floor|ceil|rint|trunc|copysign|maxnum|minnum)\.f(32|64)"
    r"|llvm\.nvvm\.(read\.ptx\.sreg\.(tid|ntid|ctaid|nctaid)\.x|shfl\.sync\.down\.i32"
    r"|barrier0|barrier\.cta\.sync\.aligned\.all)"  # (what LLVM upgrades barrier0 to)
    r"|llvm\.(smax|smin|umax|umin)\.i(8|16|32|64)")
_DECLARE = re.compile(r'^declare [^@]*@"?([\w.]+)"?\(', re.MULTILINE)
_FREM = re.compile(r"= frem ")
_lock = threading.Lock()


class PtxasError(RuntimeError):
    """ptxas rejected a PTX module (the message holds its diagnostics)."""


def check_lowerable(ir_text: str) -> None:
    """Raise ``CannotEmit`` if the module calls an intrinsic NVPTX may not lower, or uses
    ``frem`` (no PTX instruction; LLVM would abort)."""
    for name in _DECLARE.findall(ir_text):
        if not LOWERABLE_INTRINSICS.fullmatch(name):
            raise CannotEmit(f"the CUDA target cannot call {name}")
    if _FREM.search(ir_text):
        raise CannotEmit("the CUDA target has no float remainder (frem)")


def _arch_number(arch: str) -> int:
    match = re.fullmatch(r"sm_(\d+)a?", arch)
    if not match:
        raise ValueError(f"a CUDA architecture looks like 'sm_80', got {arch!r}")
    return int(match[1])


@functools.cache
def _machine(arch: str):
    import llvmlite.binding as llvm

    _arch_number(arch)
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    # NOTE: no fast-math anywhere: divisions and square roots stay IEEE (div.rn, sqrt.rn)
    return llvm.Target.from_triple(TRIPLE).create_target_machine(cpu=arch, opt=3)


def data_layout(arch: str = DEFAULT_ARCH) -> str:
    """The NVPTX data layout (modules must carry it: it sets i64/double alignment to 8)."""
    return str(_machine(arch).target_data)


def compile_ptx(ir_text: str, arch: str = DEFAULT_ARCH) -> str:
    """The PTX of an LLVM module (optimised at O3) for ``arch``."""
    import llvmlite.binding as llvm

    from ..codegen.jit import optimize

    check_lowerable(ir_text)
    with _lock:  # one target machine per arch, shared by threads
        machine = _machine(arch)
        module = llvm.parse_assembly(ir_text)
        module.triple = TRIPLE
        module.data_layout = str(machine.target_data)
        module.verify()
        optimize(module, machine)
        return machine.emit_assembly(module)


def _key(ir_text: str, arch: str) -> str:
    from ..runtime.cache import KernelTarget, kernel_key

    return kernel_key(ir_text, KernelTarget(TRIPLE, arch, ""))


def ptx(ir_text: str, arch: str = DEFAULT_ARCH, use_cache: bool = True) -> str:
    """``compile_ptx`` through the disk cache."""
    from ..runtime.cache import default_cache

    cache = default_cache() if use_cache else None
    key = _key(ir_text, arch)
    if cache is not None:
        found = cache.get(CACHE_NAMESPACE, key)
        if found is not None:
            return found.decode()
    text = compile_ptx(ir_text, arch)
    if cache is not None:
        cache.put(CACHE_NAMESPACE, key, text.encode())
    return text


def ptxas_path() -> str | None:
    """``ptxas`` on the PATH (or in ``$CUDA_HOME/bin``), else None."""
    found = shutil.which("ptxas")
    if found is None and os.environ.get("CUDA_HOME"):
        candidate = os.path.join(os.environ["CUDA_HOME"], "bin", "ptxas")
        found = candidate if os.access(candidate, os.X_OK) else None
    return found


@functools.cache
def _ptxas_version(path: str) -> str:
    return subprocess.run([path, "--version"], capture_output=True, text=True).stdout.strip()


def run_ptxas(ptx_text: str, arch: str = DEFAULT_ARCH) -> bytes:
    """Assemble PTX into a cubin with ``ptxas -arch=<arch>``; raises ``PtxasError``."""
    path = ptxas_path()
    if path is None:
        raise FileNotFoundError("ptxas is not on the PATH (it comes with the CUDA toolkit)")
    with tempfile.TemporaryDirectory(prefix="graphc-ptxas-") as folder:
        source, target = os.path.join(folder, "k.ptx"), os.path.join(folder, "k.cubin")
        with open(source, "w") as f:
            f.write(ptx_text)
        done = subprocess.run([path, f"-arch={arch}", source, "-o", target],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise PtxasError(f"ptxas -arch={arch} failed:\n{done.stderr.strip()}")
        with open(target, "rb") as f:
            return f.read()


def cubin(ptx_text: str, arch: str, use_cache: bool = True) -> bytes | None:
    """The cubin of ``ptx_text`` for ``arch`` (cached), or None without ptxas (the driver
    then compiles the PTX itself when it loads it)."""
    from ..runtime.cache import default_cache

    path = ptxas_path()
    if path is None:
        return None
    digest = hashlib.sha256(ptx_text.encode()).hexdigest()
    key = _key(f"cubin {_ptxas_version(path)} {digest}", arch)
    cache = default_cache() if use_cache else None
    if cache is not None:
        found = cache.get(CACHE_NAMESPACE, key)
        if found is not None:
            return found
    image = run_ptxas(ptx_text, arch)
    if cache is not None:
        cache.put(CACHE_NAMESPACE, key, image)
    return image
