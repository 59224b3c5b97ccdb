"""Every kind of CUDA kernel emitted as PTX and checked by ``ptxas -arch=sm_80`` (no GPU
needed): every elementwise op x dtype, casts, fused programs, broadcast patterns, every
reduction x dtype x axes x keepdims, fused reductions; plus the target's guards and cache."""
from __future__ import annotations

import re

import pytest

from graphc.cuda.kernel import CannotEmit, cuda_kernel_source, kernel_ptx
from graphc.cuda.target import (
    DEFAULT_ARCH,
    PtxasError,
    check_lowerable,
    compile_ptx,
    cubin,
    ptx,
    ptxas_path,
    run_ptxas,
)
from graphc.ir.types import ALL_DTYPES
from graphc.opdefs.elementwise import ELEMWISE_OPS
from graphc.runtime.cache import default_cache
from tests.cuda.kernel_table import (
    AXES_ROWS,
    REDUCE_DTYPES,
    REDUCTIONS,
    TABLE_OPS,
    cast_node,
    compiled_output,
    emitted,
    fused_cases,
    link,
    op_node,
    reduce_node,
)

needs_ptxas = pytest.mark.skipif(ptxas_path() is None, reason="ptxas is not on the PATH")


def assemble(sources) -> str:
    """The PTX of all ``sources`` in one module, accepted by ptxas for sm_80."""
    text = compile_ptx(link(sources), DEFAULT_ARCH)
    assert f".target {DEFAULT_ARCH}" in text
    for source in sources:
        for entry in source.entries:
            assert re.search(rf"\.entry {entry}\(", text), f"no kernel {entry} in the PTX"
    run_ptxas(text, DEFAULT_ARCH)
    return text


@needs_ptxas
@pytest.mark.parametrize("name", TABLE_OPS)
def test_every_elementwise_op_and_dtype(name):
    sources = []
    for dtype in ELEMWISE_OPS[name].props["accepts"]:
        if not emitted(name, dtype):
            with pytest.raises(CannotEmit):
                cuda_kernel_source(op_node(name, dtype))
            continue
        sources.append(cuda_kernel_source(op_node(name, dtype)))
        assert sources[-1].kind == "elemwise"
        assert sources[-1].out_dtype == op_node(name, dtype).dtype
    if sources:
        assemble(sources)


@needs_ptxas
@pytest.mark.parametrize("source_dtype", ALL_DTYPES)
def test_casts_to_every_dtype(source_dtype):
    assemble([cuda_kernel_source(cast_node(source_dtype, target)) for target in ALL_DTYPES
              if target != source_dtype])


@needs_ptxas
@pytest.mark.parametrize("ndim", [0, 1, 3, 4])
@pytest.mark.parametrize("static_one", [False, True])
def test_ranks_and_static_broadcast(ndim, static_one):
    assemble([cuda_kernel_source(op_node(name, "float32", ndim, static_one))
              for name in ("add", "where", "clip", "exp")])


@needs_ptxas
@pytest.mark.parametrize("name", REDUCTIONS)
def test_every_reduction_dtype_and_axes(name):
    rows = [(dtype, 2, (1,), False) for dtype in REDUCE_DTYPES]
    rows += [("float32", ndim, axes, keepdims) for ndim, axes in AXES_ROWS
             for keepdims in (False, True)]
    sources = []
    for dtype, ndim, axes, keepdims in rows:
        node = reduce_node(name, dtype, ndim, axes, keepdims)
        if node is not None and node.op.name == name:
            sources.append(cuda_kernel_source(node))
            assert sources[-1].keepdims == keepdims and sources[-1].axes == tuple(axes)
    assert len(sources) >= len(REDUCE_DTYPES) + 4
    text = assemble(sources)
    assert "shfl.sync.down.b32" in text and "bar.sync" in text and ".shared" in text


@needs_ptxas
@pytest.mark.parametrize("case", sorted(fused_cases()))
def test_fused_programs(case):
    inputs, output = fused_cases()[case]
    node = compiled_output(inputs, output)
    assert node.op.name.startswith("fused_") or node.op.kind in ("elemwise", "reduce")
    source = cuda_kernel_source(node)
    assert source.kind == ("reduce" if node.op.kind == "reduce" else "elemwise")
    assemble([source])


def test_reduction_entries_and_state():
    node = reduce_node("argmax", "float32", 2, (1,), False)
    source = cuda_kernel_source(node)
    assert source.entries == tuple(f"{source.name}_{p}" for p in ("block", "serial", "merge"))
    assert source.state_slots == 2 and source.axes == (1,) and source.out_dtype == "int64"
    assert cuda_kernel_source(reduce_node("sum", "float32", 2, (0,), True)).state_slots == 1


def test_kernel_text_depends_only_on_structure():
    first = cuda_kernel_source(op_node("mul", "float64", 2))
    again = cuda_kernel_source(op_node("mul", "float64", 2))
    assert first.name == again.name and first.ir == again.ir
    assert cuda_kernel_source(op_node("mul", "float32", 2)).name != first.name


def test_64_bit_values_move_whole():
    """The module carries NVPTX's data layout: int64/double accesses are not split."""
    text = kernel_ptx(cuda_kernel_source(op_node("add", "float64", 1)), use_cache=False)
    assert re.search(r"ld\.global\.(b|f|u)64", text) and re.search(r"st\.global\.(b|f|u)64", text)


@pytest.mark.parametrize("intrinsic", ["llvm.exp.f32", "llvm.pow.f64", "llvm.log.f32",
                                       "llvm.sin.f64", "llvm.tanh.f32"])
def test_intrinsics_nvptx_cannot_lower_are_refused(intrinsic):
    ty = "double" if intrinsic.endswith("f64") else "float"
    n_args = 2 if "pow" in intrinsic else 1
    args = ", ".join([ty] * n_args)
    text = f'declare {ty} @"{intrinsic}"({args})\n'
    with pytest.raises(CannotEmit, match=re.escape(intrinsic)):
        check_lowerable(text)
    with pytest.raises(CannotEmit):
        compile_ptx(text)  # refused before LLVM sees it: never a process abort


def test_frem_is_refused():
    text = "define float @f(float %a, float %b) {\n  %r = frem float %a, %b\n  ret float %r\n}\n"
    with pytest.raises(CannotEmit, match="frem"):
        compile_ptx(text)


def test_allowed_intrinsics_pass_the_check():
    check_lowerable('declare double @"llvm.fma.f64"(double, double, double)\n'
                    'declare i32 @"llvm.nvvm.shfl.sync.down.i32"(i32, i32, i32, i32)\n')


def test_architectures():
    source = cuda_kernel_source(op_node("exp", "float32", 1))
    assert ".target sm_90" in kernel_ptx(source, "sm_90", use_cache=False)
    with pytest.raises(ValueError, match="sm_80"):
        kernel_ptx(source, "compute_80", use_cache=False)


def test_ptx_and_cubins_are_cached_in_the_cuda_namespace():
    source = cuda_kernel_source(op_node("sqr", "int16", 3))
    cache = default_cache()
    before = cache.stats()["cuda"]
    text = ptx(source.ir, DEFAULT_ARCH)
    assert ptx(source.ir, DEFAULT_ARCH) == text
    after = cache.stats()["cuda"]
    assert after["writes"] == before["writes"] + 1 and after["hits"] == before["hits"] + 1
    assert any(e.namespace == "cuda" for e in cache.entries("cuda"))
    if ptxas_path() is not None:
        image = cubin(text, DEFAULT_ARCH)
        assert image[:4] == b"\x7fELF" and cubin(text, DEFAULT_ARCH) == image


@needs_ptxas
def test_ptxas_errors_are_reported():
    with pytest.raises(PtxasError, match="ptxas"):
        run_ptxas(".version 7.0\n.target sm_80\n.address_size 64\nnot ptx at all\n")
