"""graphc's LLVM math library against NumPy, in ulps; vectorisation; NVPTX code generation."""
import ctypes
import math
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from llvmlite import ir

from graphc.codegen.jit import JitModule
from graphc.codegen.mathlib import MATH_FUNCTIONS, emit_math, unary_map_kernel

DTYPES = ["float32", "float64"]
NAMES = sorted(MATH_FUNCTIONS)
# Wider reference type: float64 NumPy for float32, long double NumPy for float64 where it is wider.
WIDE = {"float32": np.float64,
        "float64": np.longdouble if np.finfo(np.longdouble).nmant > 52 else np.float64}
# Largest |x| for which sin/cos meet the ulp bar (documented in graphc/codegen/mathlib.py).
TRIG_LIMIT = {"float32": 1e6, "float64": 1e15}
BARS = {name: 4.0 for name in NAMES} | {"erf": 8.0}


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x < 0, e, 1) / (1 + e)


def _erf(x):
    # NumPy has no erf; math.erf is float64 libm (< 1 ulp). float32 inputs are exact in float64.
    return np.frompyfunc(math.erf, 1, 1)(x.astype(np.float64)).astype(np.float64)


REFERENCES = {
    "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "tanh": np.tanh,
    "sin": np.sin, "cos": np.cos, "sigmoid": _sigmoid, "erf": _erf,
    "softplus": lambda x: np.logaddexp(np.zeros((), x.dtype), x),
}

# Where the interesting values are: (log10 |x| range, uniform range, negatives allowed).
DOMAINS = {
    "exp": ((-30, 3), (-760, 720), True), "expm1": ((-30, 3), (-60, 720), True),
    "log": ((-300, 300), (0, 4), False), "log1p": ((-30, 30), (-1, 4), True),
    "tanh": ((-30, 2), (-25, 25), True), "sigmoid": ((-30, 3), (-760, 760), True),
    "softplus": ((-30, 3), (-760, 760), True), "erf": ((-30, 1), (-7, 7), True),
    "sin": ((-30, 6), (-1e6, 1e6), True), "cos": ((-30, 6), (-1e6, 1e6), True),
}


@pytest.fixture(scope="module")
def kernels():
    module = ir.Module()
    for dtype in DTYPES:
        for name in NAMES:
            unary_map_kernel(module, f"{name}_{dtype}", name, dtype)
    return JitModule(module)


def apply(kernels, name, x):
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    fn = kernels.cfunc(f"{name}_{x.dtype}", None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
    fn(x.ctypes.data, out.ctypes.data, x.size)
    return out


def reference(name, x):
    with np.errstate(all="ignore"):
        return REFERENCES[name](x.astype(WIDE[x.dtype.name]))


def ulp_error(ours, exact, dtype):
    """|ours - exact| in ulps of the exact value rounded to dtype (the smaller ulp at 2^k)."""
    with np.errstate(all="ignore"):
        rounded = exact.astype(dtype)
        same = (ours == rounded) | (np.isnan(ours) & np.isnan(rounded))
        finite = np.isfinite(ours) & np.isfinite(rounded)
        below = np.nextafter(np.abs(rounded), np.zeros((), dtype))
        spacing = np.spacing(below).astype(exact.dtype)
        error = np.abs(ours.astype(exact.dtype) - exact) / spacing
    return np.where(same, 0.0, np.where(finite, error, np.inf)).astype(np.float64)


def thresholds(dtype):
    """Overflow / underflow edges of exp and friends, with their neighbours."""
    info = np.finfo(dtype)
    edges = np.array([np.log(info.max), np.log(info.tiny), np.log(info.smallest_subnormal),
                      -np.log(info.max), np.log(info.max) / 2], dtype)
    return np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])


def specials(dtype):
    info = np.finfo(dtype)
    tiny = [info.smallest_subnormal, info.tiny, info.tiny / 3, info.max, info.eps, 1.0, 0.5, 2.0]
    values = np.array(tiny + [-v for v in tiny] + [0.0, -0.0, np.inf, -np.inf, np.nan], dtype)
    return np.concatenate([values, np.nextafter(values, 0), thresholds(dtype)])


def near_multiples_of_half_pi(dtype, limit):
    """Floats nearest to k*pi/2 (worst cases for range reduction) and their neighbours."""
    k = np.arange(1, int(limit / (np.pi / 2)), dtype=np.float64)
    nearest = (k.astype(np.longdouble) * np.longdouble(np.pi) / 2).astype(dtype)
    nearest = nearest[np.abs(nearest) <= limit]
    return np.concatenate([nearest, np.nextafter(nearest, 0), np.nextafter(nearest, np.inf)])


def sample(name, dtype, rng, count=1 << 15):
    """Random bit patterns (every exponent), log-uniform and uniform values, and specials."""
    itype = np.uint32 if dtype == "float32" else np.uint64
    bits = rng.integers(0, np.iinfo(itype).max, size=2 * count, dtype=itype, endpoint=True)
    (lo_exp, hi_exp), (lo, hi), negative = DOMAINS[name]
    magnitude = 10.0 ** rng.uniform(lo_exp, hi_exp, count)
    signs = rng.choice([-1.0, 1.0], count) if negative else 1.0
    with np.errstate(over="ignore"):
        values = (signs * magnitude).astype(dtype)
    parts = [bits.view(dtype), values,
             rng.uniform(lo, hi, count).astype(dtype), specials(dtype)]
    if name == "log1p":
        parts.append(-(10.0 ** rng.uniform(-30, 0, count)).astype(dtype))
    if name in ("sin", "cos"):
        parts.append(near_multiples_of_half_pi(dtype, 1e5))
        top = np.log10(TRIG_LIMIT[dtype])
        parts.append((signs * 10.0 ** rng.uniform(top - 9, top, count)).astype(dtype))
    return np.concatenate(parts)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_accuracy_in_ulps(kernels, name, dtype):
    x = sample(name, dtype, np.random.default_rng(sum(map(ord, name + dtype))))
    if name in ("sin", "cos"):
        x = x[~(np.abs(x) > TRIG_LIMIT[dtype])]  # NaN and inf stay
    ours = apply(kernels, name, x)
    error = ulp_error(ours, reference(name, x), dtype)
    worst = int(np.argmax(error))
    assert error[worst] <= BARS[name], (
        f"{name} {dtype}: {error[worst]:.2f} ulp at x={x[worst]!r}: got {ours[worst]!r}, "
        f"reference {reference(name, x[worst:worst + 1])[0]!r}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_trig_beyond_accurate_range_is_finite_and_bounded(kernels, name, dtype):
    rng = np.random.default_rng(7)
    info = np.finfo(dtype)
    x = np.concatenate([10.0 ** rng.uniform(np.log10(TRIG_LIMIT[dtype]), np.log10(info.max), 4096),
                        [info.max, -info.max, 2.0 ** 60, 2.0 ** 100]]).astype(dtype)
    x[::2] *= -1
    ours = apply(kernels, name, x)
    assert np.all(np.isfinite(ours)) and np.all(np.abs(ours) <= 1)


INF, NAN = math.inf, math.nan
EXACT = [
    ("exp", -INF, 0.0), ("exp", INF, INF), ("exp", 0.0, 1.0), ("exp", -0.0, 1.0),
    ("exp", 1e4, INF), ("exp", -1e4, 0.0),
    ("log", 0.0, -INF), ("log", -0.0, -INF), ("log", -1.0, NAN), ("log", -INF, NAN),
    ("log", INF, INF), ("log", 1.0, 0.0),
    ("log1p", -1.0, -INF), ("log1p", -2.0, NAN), ("log1p", INF, INF), ("log1p", -INF, NAN),
    ("log1p", 0.0, 0.0), ("log1p", -0.0, -0.0),
    ("expm1", -INF, -1.0), ("expm1", INF, INF), ("expm1", 0.0, 0.0), ("expm1", -0.0, -0.0),
    ("expm1", -1e4, -1.0), ("expm1", 1e4, INF),
    ("tanh", INF, 1.0), ("tanh", -INF, -1.0), ("tanh", 0.0, 0.0), ("tanh", -0.0, -0.0),
    ("tanh", 50.0, 1.0), ("tanh", -50.0, -1.0),
    ("sigmoid", -INF, 0.0), ("sigmoid", INF, 1.0), ("sigmoid", 0.0, 0.5), ("sigmoid", -1e4, 0.0),
    ("softplus", -INF, 0.0), ("softplus", INF, INF), ("softplus", 1e4, 1e4),
    ("softplus", -1e4, 0.0),
    ("erf", INF, 1.0), ("erf", -INF, -1.0), ("erf", 0.0, 0.0), ("erf", -0.0, -0.0),
    ("erf", 10.0, 1.0), ("erf", -10.0, -1.0),
    ("sin", 0.0, 0.0), ("sin", -0.0, -0.0), ("sin", INF, NAN), ("sin", -INF, NAN),
    ("cos", 0.0, 1.0), ("cos", -0.0, 1.0), ("cos", INF, NAN), ("cos", -INF, NAN),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, x, expected", EXACT)
def test_special_values_are_exact(kernels, name, x, expected, dtype):
    got = apply(kernels, name, np.array([x], dtype))[0]
    assert got.dtype == np.dtype(dtype)
    if math.isnan(expected):
        assert np.isnan(got), f"{name}({x}) = {got}, expected nan"
    else:
        assert got == expected and np.signbit(got) == np.signbit(expected), (
            f"{name}({x}) = {got!r}, expected {expected!r}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_nan_in_nan_out(kernels, name, dtype):
    x = np.array([np.nan, -np.nan, 1.0, np.nan], dtype)
    got = apply(kernels, name, x)
    assert np.isnan(got[[0, 1, 3]]).all() and not np.isnan(got[2])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_empty_and_single_element(kernels, name, dtype):
    assert apply(kernels, name, np.empty(0, dtype)).shape == (0,)
    x = np.array([0.25], dtype)
    assert ulp_error(apply(kernels, name, x), reference(name, x), dtype)[0] <= BARS[name]


def test_emit_math_rejects_bad_input():
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.FloatType(), [ir.FloatType()]), "f")
    builder = ir.IRBuilder(fn.append_basic_block())
    with pytest.raises(ValueError, match="unknown function 'gamma'"):
        emit_math(builder, "gamma", fn.args[0], "float32")
    with pytest.raises(TypeError, match="float32 or float64, got int32"):
        emit_math(builder, "exp", fn.args[0], "int32")
    with pytest.raises(TypeError, match="float64 needs double"):
        emit_math(builder, "exp", fn.args[0], "float64")


def _host_has_simd():
    import llvmlite.binding as llvm
    features = llvm.get_host_cpu_features()
    return any(features.get(name, False) for name in ("avx2", "avx", "sse2", "neon"))


@pytest.mark.skipif(not _host_has_simd(), reason="host CPU reports no SIMD features")
@pytest.mark.parametrize("name", ["exp", "tanh", "sin"])
def test_loop_vectorises(name):
    module = ir.Module()
    unary_map_kernel(module, "kernel", name, "float32")
    compiled = JitModule(module)
    assert re.search(r"<\d+ x float>", compiled.optimized_ir), compiled.optimized_ir[:2000]
    callees = set(re.findall(r"\bcall [^@]*@([\w.]+)", compiled.optimized_ir))
    assert all(callee.startswith("llvm.") for callee in callees), callees  # inline, no libm


PTX_SCRIPT = textwrap.dedent("""
    import sys
    import llvmlite.binding as llvm
    from llvmlite import ir
    from graphc.codegen.mathlib import MATH_FUNCTIONS, unary_map_kernel
    from graphc.codegen.jit import optimize
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    machine = llvm.Target.from_triple("nvptx64-nvidia-cuda").create_target_machine(
        cpu="sm_80", opt=3)
    module = ir.Module()
    module.triple = "nvptx64-nvidia-cuda"
    module.data_layout = str(machine.target_data)
    for dtype in ("float32", "float64"):
        for name in MATH_FUNCTIONS:
            unary_map_kernel(module, f"{name}_{dtype}", name, dtype).calling_convention = (
                "ptx_kernel")
    parsed = llvm.parse_assembly(str(module))
    parsed.verify()
    optimize(parsed, machine)
    sys.stderr.write(str(parsed))
    sys.stdout.write(machine.emit_assembly(parsed))
""")
ALLOWED = {"fma", "fabs", "floor", "rint", "nearbyint", "trunc", "sqrt", "copysign",
           "minnum", "maxnum"}


def test_nvptx_kernels_compile_to_valid_ptx(tmp_path):
    import llvmlite.binding as llvm
    llvm.initialize_all_targets()
    try:
        llvm.Target.from_triple("nvptx64-nvidia-cuda")
    except RuntimeError:
        pytest.skip("llvmlite was built without the NVPTX target")
    # in a subprocess: should LLVM abort on some construct, the test fails instead of pytest dying
    run = subprocess.run([sys.executable, "-c", PTX_SCRIPT], check=False,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    ptx, optimized_ir = run.stdout, run.stderr
    intrinsics = {m.split(".")[0] for m in re.findall(r"@llvm\.([\w.]+)", optimized_ir)}
    assert intrinsics and intrinsics <= ALLOWED, intrinsics - ALLOWED
    assert ptx.count(".entry") == 2 * len(NAMES)
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        pytest.skip("ptxas not on the PATH: PTX generated but not assembled")
    source = tmp_path / "mathlib.ptx"
    source.write_text(ptx)
    check = subprocess.run([ptxas, "-arch=sm_80", str(source), "-o", str(tmp_path / "out.cubin")],
                           check=False, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-3000:]
