"""Elementwise LLVM kernels against NumPy: every op x every dtype it accepts (special values
included), casts between all dtypes, layouts (strided, negative strides, 0-size, 0-d, size-1
broadcasting known statically or only at run time), ranges of axis 0, in place, fused programs,
determinism, vectorisation and NVPTX code generation of the target-neutral core."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.codegen.kernel import CannotEmit, array_layout_ok, kernel_source
from graphc.ir.node import make, toposort
from graphc.ir.types import ALL_DTYPES
from graphc.opdefs.elementwise import ELEMWISE_OPS
from graphc.opdefs.fused import FUSED_ELEMWISE
from graphc.runtime.reference import evaluate, run_node
from tests.codegen.kernel_helpers import (
    assert_identical,
    assert_within_ulps,
    run_kernel,
)
from tests.helpers import assert_matches, layouts, random_array

# results within a few ulp of NumPy (graphc's math library); every other op must be exact
MATH_ULPS = {name: 8.0 for name in (
    "exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sin", "cos", "tan", "sinh",
    "cosh", "tanh", "sigmoid", "softplus", "erf")}
# (op, dtype) pairs the emitter declines (the runtime runs them on NumPy)
NOT_EMITTED = {"arcsin", "arccos", "arctan", "arctan2", "erfc", "pow"}
NOT_EMITTED_PAIRS = {("int_div", "float32"), ("int_div", "float64"), ("mod", "float32"),
                     ("mod", "float64"), ("sub", "bool")}
TABLE_OPS = sorted(n for n in ELEMWISE_OPS if n not in ("cast", "where"))
ROWS = [(name, dtype) for name in TABLE_OPS for dtype in ELEMWISE_OPS[name].props["accepts"]]


def special_values(dtype: str) -> np.ndarray:
    """The awkward values of ``dtype`` plus a few ordinary random ones."""
    rng = np.random.default_rng(len(dtype))
    if dtype == "bool":
        return np.array([False, True])
    if np.dtype(dtype).kind == "f":
        info = np.finfo(dtype)
        values = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.0, -7.0, 1e-3, 100.0, -100.0,
                  1e30, -1e30, info.tiny, -info.tiny, info.smallest_subnormal, info.max,
                  -info.max, np.inf, -np.inf, np.nan, 88.5, -745.5, 1e5, 3e9, -3e9, 2.0 ** 63,
                  255.5, 65535.5, -129.0]
        return np.concatenate([np.array(values, dtype), rng.uniform(-6, 6, 12).astype(dtype)])
    info = np.iinfo(dtype)
    values = {int(info.min), int(info.min) + 1, int(info.max), int(info.max) - 1, 0, 1, 2, 3, 7,
              100, -1, -7, -100}
    values = sorted(v for v in values if info.min <= v <= info.max)
    return np.concatenate([np.array(values, dtype), random_array(8, dtype, rng, -50, 50)])


def operands(name: str, dtype: str, nin: int) -> list[np.ndarray]:
    """1-d arrays covering every pair (or triple sample) of special values."""
    values = special_values(dtype)
    if name in ("sin", "cos", "tan"):  # graphc's sin/cos are accurate for |x| < 1e6 (float32)
        values = values[~(np.abs(values) > 1e5)]
    if nin == 1:
        return [values]
    if nin == 2:
        return [np.repeat(values, values.size), np.tile(values, values.size)]
    rng = np.random.default_rng(3)
    pick = [rng.choice(values, 400) for _ in range(nin)]
    pick[0][: values.size] = values
    return pick


def table_node(name: str, dtype: str, ndim: int = 1):
    op = ELEMWISE_OPS[name]
    inputs = [gt.tensor(dtype, shape=(None,) * ndim) for _ in range(op.props["nin"])]
    return make(op, tuple(inputs), None)


def expected_of(node, arrays) -> np.ndarray:
    return run_node(node, list(arrays))


def check(node, arrays, context: str, ulps: float | None = None, ranges=None):
    expected = expected_of(node, arrays)
    got = run_kernel(kernel_source(node), arrays, expected.shape, ranges)
    if ulps is None:
        assert_identical(got, expected, context)
    else:
        assert_within_ulps(got, expected, ulps, context)


@pytest.mark.parametrize("name, dtype", ROWS)
def test_op_matches_numpy_on_special_values(name, dtype):
    node = table_node(name, dtype)
    if name in NOT_EMITTED or (name, dtype) in NOT_EMITTED_PAIRS:
        with pytest.raises(CannotEmit):
            kernel_source(node)
        return
    arrays = operands(name, dtype, ELEMWISE_OPS[name].props["nin"])
    check(node, arrays, f"{name}[{dtype}]", MATH_ULPS.get(name))


def cast_node(source: str, target: str, ndim: int = 1):
    return gt.cast(gt.tensor(source, shape=(None,) * ndim), target)


@pytest.mark.parametrize("target", ALL_DTYPES)
@pytest.mark.parametrize("source", ALL_DTYPES)
def test_cast_matches_numpy(source, target):
    if source == target:
        pytest.skip("no cast node between equal dtypes")
    check(cast_node(source, target), [special_values(source)], f"cast {source}->{target}")


def where_node(dtype: str, ndim: int = 1):
    cond = gt.tensor("bool", shape=(None,) * ndim)
    return gt.where(cond, gt.tensor(dtype, shape=(None,) * ndim),
                    gt.tensor(dtype, shape=(None,) * ndim))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_where_matches_numpy(dtype):
    values = special_values(dtype)
    cond = np.arange(values.size) % 3 == 0
    check(where_node(dtype), [cond, values, values[::-1].copy()], f"where[{dtype}]")


# --- layouts, broadcasting, ranges -----------------------------------------------------------

LAYOUT_OPS = [
    ("add", "float32", lambda a, b: a + b), ("mul", "int16", lambda a, b: a * b),
    ("lt", "uint8", np.less), ("xor", "bool", np.bitwise_xor), ("exp", "float32", np.exp),
    ("tanh", "float64", np.tanh),
]
SHAPES = [  # (first input, second input)
    ((4, 5), (4, 5)), ((4, 1), (1, 5)), ((1, 1), (6, 7)), ((0, 5), (1, 5)), ((3, 0), (3, 1)),
    ((2, 3, 4), (1, 3, 1)), ((5, 1, 3), (5, 4, 3)), ((), ()), ((9,), (1,)), ((0,), (0,)),
]


def _symbolic(value: np.ndarray, static: bool):
    shape = tuple(1 if static and s == 1 else None for s in value.shape)
    return gt.tensor(value.dtype.name, shape=shape)


def layout_case(name: str, dtype: str, shapes, static: bool):
    """The node of a layout test and its input values."""
    rng = np.random.default_rng(1)
    nin = ELEMWISE_OPS[name].props["nin"]
    values = [random_array(shape, dtype, rng) for shape in shapes[:nin]]
    node = make(ELEMWISE_OPS[name], tuple(_symbolic(v, static) for v in values), None)
    return node, values


@pytest.mark.parametrize("static", [True, False], ids=["static-ones", "runtime-ones"])
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("name, dtype, reference", LAYOUT_OPS,
                         ids=lambda v: getattr(v, "__name__", v))
def test_layouts_and_broadcasting(name, dtype, reference, shapes, static):
    node, values = layout_case(name, dtype, shapes, static)
    source = kernel_source(node)
    expected = np.asarray(reference(*values))
    for layout in layouts(values[0]):
        arrays = [layouts(v)[layout] for v in values]
        got = run_kernel(source, arrays, expected.shape)
        if name in MATH_ULPS:
            assert_within_ulps(got, expected, MATH_ULPS[name], layout)
        else:
            assert_identical(got, expected, layout)


def test_ranges_of_axis_0_compute_exactly_those_rows():
    x = gt.tensor("float32", shape=(None, None))
    source = kernel_source(fuse(gt.exp(x) * 2))
    value = random_array((7, 5), "float32")
    whole = run_kernel(source, [value], (7, 5))
    split = run_kernel(source, [value], (7, 5), ranges=[(0, 3), (3, 7)])
    assert_identical(split, whole)
    out = np.full((7, 5), -1.0, np.float32)
    run_kernel(source, [value], None, ranges=[(2, 5)], out=out)
    assert_identical(out[2:5], whole[2:5])
    assert np.all(out[:2] == -1) and np.all(out[5:] == -1)


@pytest.mark.parametrize("shape, bias_shape", [((64, 300), (64, 300)), ((64, 300), (1, 300)),
                                               ((5000,), (5000,))])
def test_in_place_output_equal_to_an_input(shape, bias_shape):
    x = gt.tensor("float32", shape=(None,) * len(shape))
    b = gt.tensor("float32", shape=tuple(1 if s == 1 else None for s in bias_shape))
    source = kernel_source(fuse(gt.tanh(x) * b + x))
    value, bias = random_array(shape, "float32"), random_array(bias_shape, "float32")
    apart = run_kernel(source, [value, bias], np.broadcast_shapes(shape, bias_shape))
    assert_matches(apart, np.tanh(value) * bias + value)
    buffer = value.copy()
    run_kernel(source, [buffer, bias], None, out=buffer)
    assert_identical(buffer, apart, "in place")


def test_output_with_strides():
    x = gt.tensor("int32", shape=(None, None))
    source = kernel_source(fuse(x * 3 + 1))
    value = random_array((4, 6), "int32")
    out = np.zeros((4, 12), np.int32)[:, ::2]
    run_kernel(source, [value], None, out=out)
    assert_identical(out, value * 3 + 1)


# --- fused programs --------------------------------------------------------------------------

def fuse(expression):
    """The fused_elemwise node FAST_RUN makes of ``expression`` (its output node)."""
    inputs = [n for n in toposort([expression]) if n.op.name == "input"]
    f = gc.function(inputs, expression, mode="FAST_RUN")
    (out,) = f.fgraph.outputs
    assert out.op is FUSED_ELEMWISE, out
    return out


def _chain(x, y):
    return gt.tanh(x * y + gt.exp(-x)) * gt.sigmoid(y) + gt.log1p(x * x)


FUSED = {
    "chain": (_chain, ((6, 33), (6, 33))),
    "leaky-clip": (lambda x, y: gt.where(x > 0, x, 0.01 * x) + gt.clip(y, -1.0, 1.0),
                   ((5, 9), (5, 9))),
    "bias-broadcast": (lambda x, b: gt.exp(x - b) * 2 + gt.sqrt(gt.abs(b)), ((7, 19), (19,))),
    "scalar-input": (lambda x, s: gt.softplus(x * s) - s, ((3, 4, 5), ())),
    "powers": (lambda x, y: x ** 2 + y ** 3 - x ** 0.5 + 1 / y, ((40,), (40,))),
    "erf-sin": (lambda x, y: gt.erf(x) * gt.sin(y) + gt.cos(x * y), ((11, 3), (1, 3))),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(FUSED))
def test_fused_programs(case, dtype):
    build, shapes = FUSED[case]
    rng = np.random.default_rng(5)
    values = [np.abs(random_array(s, dtype, rng)) + 0.1 for s in shapes]
    inputs = [gt.tensor(dtype, shape=tuple(1 if n == 1 else None for n in v.shape)) for v in values]
    node = fuse(build(*inputs))
    arrays = evaluate(list(node.src), dict(zip(inputs, values)))
    expected = run_node(node, arrays)
    for layout in ("contiguous", "negative"):
        laid = [layouts(a)[layout] if a.ndim else a for a in arrays]
        assert_matches(run_kernel(kernel_source(node), laid, expected.shape), expected)


def test_fused_integer_and_bool_programs():
    i = gt.tensor("int32", shape=(None, None))
    j = gt.tensor("int32", shape=(1, None))
    x = gt.tensor("float64", shape=(None, None))
    values = {i: random_array((6, 8), "int32", low=-40, high=40),
              j: random_array((1, 8), "int32", low=-5, high=5), x: random_array((6, 8), "float64")}
    values[x][0, :3] = np.nan
    for expression in ((i // j) % 5 + i * 7 - (j ** 2), gt.logical_and(x > 0, i < j) | gt.isnan(x),
                       gt.cast(i, "float64") * x + gt.cast(x > 1, "float64"),
                       gt.maximum(gt.cast(x, "int16"), gt.cast(j, "int16")) + 1):
        node = fuse(expression)
        arrays = evaluate(list(node.src), values)
        assert_identical(run_kernel(kernel_source(node), arrays, run_node(node, arrays).shape),
                         run_node(node, arrays), str(expression))


def test_fused_program_with_an_unsupported_op_cannot_emit():
    x = gt.tensor("float32", shape=(None,))
    with pytest.raises(CannotEmit, match="arctan"):
        kernel_source(fuse(gt.arctan(x) * 2 + x))


def test_plain_pow_and_unsupported_nodes_cannot_emit():
    x = gt.tensor("float32", shape=(None,))
    with pytest.raises(CannotEmit):
        kernel_source(make(ELEMWISE_OPS["pow"], (x, x), None))
    with pytest.raises(CannotEmit):
        kernel_source(gt.dot(gt.tensor("float32", shape=(None, None)), x))


# --- identity of kernels ---------------------------------------------------------------------

def test_kernel_text_is_deterministic_and_size_independent():
    a = _chain(gt.tensor("float32", shape=(None, None)), gt.tensor("float32", shape=(None, None)))
    b = _chain(gt.tensor("float32", shape=(4, 5)), gt.tensor("float32", shape=(4, 5)))
    first, again, sized = kernel_source(fuse(a)), kernel_source(fuse(a)), kernel_source(fuse(b))
    assert first == again and first.name == sized.name and first.ir == sized.ir
    assert first.name.startswith("k_") and len(first.name) == 18
    assert re.search(rf'define void @"?{first.name}"?\(', first.ir)
    assert (first.n_inputs, first.kind, first.out_dtype) == (2, "elemwise", "float32")
    other_ndim = kernel_source(fuse(_chain(gt.tensor("float32", shape=(None,)),
                                           gt.tensor("float32", shape=(None,)))))
    other_dtype = kernel_source(fuse(_chain(gt.tensor("float64", shape=(None, None)),
                                            gt.tensor("float64", shape=(None, None)))))
    assert len({first.name, other_ndim.name, other_dtype.name}) == 3


def test_kernel_name_is_the_same_in_another_process():
    script = textwrap.dedent("""
        import graphc.tensor as gt
        from graphc.codegen.kernel import kernel_source
        x = gt.tensor("float64", shape=(None, 1))
        print(kernel_source(gt.exp(x) + gt.sin(x) * 3).name)
    """)
    x = gt.tensor("float64", shape=(None, 1))
    here = kernel_source(gt.exp(x) + gt.sin(x) * 3).name
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120)
    assert run.stdout.strip() == here


def test_array_layout_matches_numpy():
    assert array_layout_ok()


# --- vectorisation and NVPTX -----------------------------------------------------------------

@pytest.mark.parametrize("dtype, vector", [("float32", r"<\d+ x float>"),
                                           ("float64", r"<\d+ x double>")])
def test_exp_tanh_chain_vectorises_without_calls(dtype, vector):
    from graphc.codegen.jit import JitModule

    x = gt.tensor(dtype, shape=(None, None))
    source = kernel_source(fuse(gt.tanh(gt.exp(x) * 0.5 - x)))
    compiled = JitModule(source.ir)
    assert re.search(vector, compiled.optimized_ir)
    callees = set(re.findall(r"\bcall [^@]*@([\w.]+)", compiled.optimized_ir))
    assert all(c.startswith(("llvm.", source.name)) for c in callees), callees


PTX_SCRIPT = textwrap.dedent("""
    import sys
    import llvmlite.binding as llvm
    from llvmlite import ir
    import graphc.tensor as gt
    import graphc as gc
    from graphc.codegen.elemwise import I64, PTR, emit_elemwise_core, finish_ir
    from graphc.codegen.kernel import program_of
    from graphc.codegen.jit import optimize
    from graphc.ir.node import toposort
    from graphc.opdefs.fused import FUSED_ELEMWISE
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    machine = llvm.Target.from_triple("nvptx64-nvidia-cuda").create_target_machine(
        cpu="sm_80", opt=3)
    x, y = gt.tensor("float32", shape=(None, None)), gt.tensor("float32", shape=(1, None))
    out = (gt.tanh(x * y + gt.exp(-x)) * gt.sigmoid(y) + gt.log1p(x * x)
           + gt.cast(gt.cast(x, "int32") // 3, "float32") + gt.erf(gt.floor(x)) ** 2)
    f = gc.function([x, y], out, mode="FAST_RUN")
    (node,) = [n for n in toposort(f.fgraph.outputs) if n.op is FUSED_ELEMWISE]
    root, params, _ = program_of(node)
    module = ir.Module()
    module.triple = "nvptx64-nvidia-cuda"
    module.data_layout = str(machine.target_data)
    core = emit_elemwise_core(module, "core", root, params, node.dtype)
    n = 3 * (len(params) + 1)
    kernel = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * n + [I64, I64]), "kernel")
    kernel.calling_convention = "ptx_kernel"
    builder = ir.IRBuilder(kernel.append_basic_block())
    builder.call(core, kernel.args)
    builder.ret_void()
    parsed = llvm.parse_assembly(finish_ir(str(module)))
    parsed.verify()
    optimize(parsed, machine)
    sys.stderr.write(str(parsed))
    sys.stdout.write(machine.emit_assembly(parsed))
""")
FORBIDDEN = {"exp", "exp2", "log", "log2", "log10", "sin", "cos", "tan", "pow", "tanh", "powi"}


def test_core_compiles_for_nvptx(tmp_path):
    import llvmlite.binding as llvm

    llvm.initialize_all_targets()
    try:
        llvm.Target.from_triple("nvptx64-nvidia-cuda")
    except RuntimeError:
        pytest.skip("llvmlite was built without the NVPTX target")
    # in a subprocess: should LLVM abort on some construct, the test fails instead of pytest dying
    run = subprocess.run([sys.executable, "-c", PTX_SCRIPT], capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    ptx, optimized_ir = run.stdout, run.stderr
    intrinsics = {m.split(".")[0] for m in re.findall(r"@llvm\.([\w.]+)", optimized_ir)}
    assert not intrinsics & FORBIDDEN, intrinsics & FORBIDDEN
    assert ".entry kernel" in ptx
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        pytest.skip("ptxas not on the PATH: PTX generated but not assembled")
    source = tmp_path / "kernel.ptx"
    source.write_text(ptx)
    check_run = subprocess.run([ptxas, "-arch=sm_80", str(source), "-o", str(tmp_path / "k.cubin")],
                               capture_output=True, text=True, timeout=120, check=False)
    assert check_run.returncode == 0, check_run.stderr[-3000:]



POW_EXPONENTS = {"float32": (0, 1, 2, 3, -1, 0.5), "float64": (0, 1, 2, 3, -1, 0.5),
                 "int8": (0, 1, 2, 3, 7), "uint16": (0, 2, 5), "int64": (0, 3, 11)}


@pytest.mark.parametrize("dtype", sorted(POW_EXPONENTS))
def test_pow_with_a_constant_exponent(dtype):
    from graphc.ir.node import constant
    from graphc.opdefs.fused import fused_elemwise

    x = gt.tensor(dtype, shape=(None,))
    values = special_values(dtype)
    for exponent in POW_EXPONENTS[dtype]:
        root = make(ELEMWISE_OPS["pow"], (x, constant(np.full(1, exponent, dtype))), None)
        node = fused_elemwise(root, [x])
        ulps = 2.0 if exponent == 3 else None  # x*x*x rounds twice
        check(node, [values], f"{dtype} ** {exponent}", ulps)
    if dtype.startswith("uint"):
        return  # every constant exponent of an unsigned dtype is emitted
    unsupported = constant(np.full(1, -1 if "int" in dtype else 2.5, dtype))
    root = make(ELEMWISE_OPS["pow"], (x, unsupported), None)
    with pytest.raises(CannotEmit, match="pow"):
        kernel_source(fused_elemwise(root, [x]))
