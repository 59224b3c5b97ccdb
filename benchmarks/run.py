"""graphc against NumPy, PyTensor and jax.jit, in one run, as a markdown table.

    python benchmarks/run.py [--quick] [--out benchmarks/results-DATE.md]

PyTensor and JAX are measured when they import (``bash scripts/bench_env.sh`` makes an
environment with both). Times are the best of several runs; compile times that must be
cold or warm run in fresh processes (warm: the same disk cache, a new process).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def best_time(fn, repeat: int = 5, number: int = 1) -> float:
    fn()  # warm up (compiles, caches)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def peers() -> dict:
    found = {}
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_platforms", "cpu")
        found["jax"] = (jax, jnp)
    except Exception:  # noqa: BLE001  (any import failure: not installed here)
        pass
    try:
        import pytensor
        import pytensor.tensor as pt

        found["pytensor"] = (pytensor, pt)
    except Exception:  # noqa: BLE001
        pass
    return found


# --- 1. the fused elementwise chain ----------------------------------------------------------

def bench_chain(n: int, found: dict) -> dict:
    import graphc as gc
    import graphc.tensor as gt

    rng = np.random.default_rng(0)
    xv, yv = (rng.uniform(0.1, 2, n).astype("float32") for _ in range(2))
    times = {"numpy": best_time(lambda: np.tanh(xv * yv + np.exp(-xv)) * (1 / (1 + np.exp(-yv))) + np.log1p(xv * xv))}
    x, y = gt.fvector("x"), gt.fvector("y")
    f = gc.function([x, y], gt.tanh(x * y + gt.exp(-x)) * gt.sigmoid(y) + gt.log1p(x * x))
    times["graphc"] = best_time(lambda: f(xv, yv))
    if "jax" in found:
        jax, jnp = found["jax"]
        g = jax.jit(lambda x, y: jnp.tanh(x * y + jnp.exp(-x)) * jax.nn.sigmoid(y) + jnp.log1p(x * x))
        xj, yj = jnp.asarray(xv), jnp.asarray(yv)
        times["jax"] = best_time(lambda: g(xj, yj).block_until_ready())
    if "pytensor" in found:
        pytensor, pt = found["pytensor"]
        a, b = pt.fvector(), pt.fvector()
        h = pytensor.function([a, b], pt.tanh(a * b + pt.exp(-a)) * pt.sigmoid(b) + pt.log1p(a * a))
        times["pytensor"] = best_time(lambda: h(xv, yv), repeat=3)
    return times


# --- 2. row-wise logsumexp and softmax --------------------------------------------------------

def bench_rows(kind: str, found: dict, n: int = 4096) -> dict:
    import graphc as gc
    import graphc.tensor as gt

    xv = np.random.default_rng(0).standard_normal((n, n)).astype("float32")

    def np_lse(v):
        m = v.max(1, keepdims=True)
        return np.log(np.exp(v - m).sum(1)) + m[:, 0]

    def np_softmax(v):
        e = np.exp(v - v.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    times = {"numpy": best_time(lambda: (np_lse if kind == "logsumexp" else np_softmax)(xv), repeat=3)}
    x = gt.fmatrix("x")
    out = gt.logsumexp(x, axis=1) if kind == "logsumexp" else gt.nnet.softmax(x, axis=1)
    f = gc.function([x], out)
    times["graphc"] = best_time(lambda: f(xv), repeat=3)
    if "jax" in found:
        jax, jnp = found["jax"]
        g = jax.jit(lambda v: jax.nn.logsumexp(v, axis=1) if kind == "logsumexp" else jax.nn.softmax(v, axis=1))
        xj = jnp.asarray(xv)
        times["jax"] = best_time(lambda: g(xj).block_until_ready(), repeat=3)
    if "pytensor" in found:
        pytensor, pt = found["pytensor"]
        from pytensor.tensor.special import softmax

        a = pt.fmatrix()
        h = pytensor.function([a], pt.logsumexp(a, axis=1) if kind == "logsumexp" else softmax(a, axis=1))
        times["pytensor"] = best_time(lambda: h(xv), repeat=3)
    return times


# --- 3. MLP training step -------------------------------------------------------------------

SIZES = (784, 1024, 1024, 10)
BATCH = 256


def mlp_data():
    rng = np.random.default_rng(0)
    params = []
    for a, b in zip(SIZES, SIZES[1:]):
        params += [(rng.standard_normal((a, b)) / np.sqrt(a)).astype("float32"), np.zeros(b, "float32")]
    x = rng.standard_normal((BATCH, SIZES[0])).astype("float32")
    y = rng.integers(0, SIZES[-1], BATCH)
    return params, x, y


def graphc_mlp_graph(params):
    """(inputs, cost, updates) of the MLP's SGD step over shared copies of ``params``."""
    import graphc as gc
    import graphc.tensor as gt

    shared = [gc.shared(p) for p in params]
    x, y = gt.fmatrix("x"), gt.lvector("y")
    h = x
    for i in range(0, len(shared), 2):
        h = gt.dot(h, shared[i]) + shared[i + 1]
        if i + 2 < len(shared):
            h = gt.nnet.relu(h)
    cost = gt.nnet.categorical_crossentropy(gt.nnet.softmax(h), y).mean()
    grads = gc.grad(cost, shared)
    return [x, y], cost, [(p, p - np.float32(0.01) * g) for p, g in zip(shared, grads)]


def graphc_mlp():
    import graphc as gc

    inputs, cost, updates = graphc_mlp_graph(mlp_data()[0])
    return gc.function(inputs, cost, updates=updates)


def numpy_mlp_step(params, x, y, lr=np.float32(0.01)):
    w1, b1, w2, b2, w3, b3 = params
    a1 = x @ w1 + b1
    h1 = np.maximum(a1, 0)
    a2 = h1 @ w2 + b2
    h2 = np.maximum(a2, 0)
    logits = h2 @ w3 + b3
    e = np.exp(logits - logits.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    cost = -np.log(p[np.arange(len(y)), y]).mean()
    d = p
    d[np.arange(len(y)), y] -= 1
    d /= len(y)
    gw3, gb3 = h2.T @ d, d.sum(0)
    d = (d @ w3.T) * (a2 > 0)
    gw2, gb2 = h1.T @ d, d.sum(0)
    d = (d @ w2.T) * (a1 > 0)
    gw1, gb1 = x.T @ d, d.sum(0)
    for p_, g in zip(params, (gw1, gb1, gw2, gb2, gw3, gb3)):
        p_ -= lr * g
    return cost


def bench_mlp(found: dict) -> dict:
    params, x, y = mlp_data()
    times = {"numpy": best_time(lambda: numpy_mlp_step(params, x, y), repeat=5)}
    f = graphc_mlp()
    times["graphc"] = best_time(lambda: f(x, y), repeat=5)
    if "jax" in found:
        jax, jnp = found["jax"]
        ps = [jnp.asarray(p) for p in mlp_data()[0]]

        def loss(ps, x, y):
            h = x
            for i in range(0, len(ps), 2):
                h = h @ ps[i] + ps[i + 1]
                if i + 2 < len(ps):
                    h = jax.nn.relu(h)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), y[:, None], 1))

        @jax.jit
        def step(ps, x, y):
            c, g = jax.value_and_grad(loss)(ps, x, y)
            return c, [p - 0.01 * gi for p, gi in zip(ps, g)]

        xj, yj = jnp.asarray(x), jnp.asarray(y)
        state = {"ps": ps}

        def run():
            c, state["ps"] = step(state["ps"], xj, yj)
            c.block_until_ready()

        times["jax"] = best_time(run, repeat=5)
    if "pytensor" in found:
        times["pytensor"] = _pytensor_mlp_step(found)
    return times


def _pytensor_mlp_step(found):
    pytensor, pt = found["pytensor"]
    params, x, y = mlp_data()
    shared = [pytensor.shared(p) for p in params]
    a, b = pt.fmatrix(), pt.lvector()
    h = a
    for i in range(0, len(shared), 2):
        h = pt.dot(h, shared[i]) + shared[i + 1]
        if i + 2 < len(shared):
            h = pt.maximum(h, 0)
    from pytensor.tensor.special import log_softmax

    cost = -log_softmax(h, axis=1)[pt.arange(b.shape[0]), b].mean()
    grads = pytensor.grad(cost, shared)
    f = pytensor.function([a, b], cost, updates=[(p, p - np.float32(0.01) * g) for p, g in zip(shared, grads)])
    return best_time(lambda: f(x, y), repeat=5)


# --- 4. call overhead ------------------------------------------------------------------------

def bench_overhead(found: dict) -> dict:
    import graphc as gc
    import graphc.tensor as gt

    xv = np.arange(10, dtype="float64")
    n = 20000
    times = {"numpy": best_time(lambda: xv + 1, number=n)}
    x = gt.dvector("x")
    f = gc.function([x], x + 1)
    times["graphc"] = best_time(lambda: f(xv), number=n)
    if "jax" in found:
        jax, jnp = found["jax"]
        g = jax.jit(lambda v: v + 1)
        xj = jnp.asarray(xv)
        times["jax"] = best_time(lambda: g(xj).block_until_ready(), number=n // 4)
    if "pytensor" in found:
        pytensor, pt = found["pytensor"]
        a = pt.dvector()
        h = pytensor.function([a], a + 1)
        h.trust_input = True
        times["pytensor"] = best_time(lambda: h(xv), number=n)
    return times


# --- 5. compile times (fresh processes) -------------------------------------------------------

CHILD = r"""
import sys, time, json
sys.path.insert(0, {here!r})
import run as bench
task, n = {task!r}, {n}
t0 = time.perf_counter()
built = None
if task == "graphc_chain":
    import graphc as gc, graphc.tensor as gt
    t0 = time.perf_counter()
    x = gt.fvector("x")
    v = x
    for i in range(n):
        v = (gt.tanh(v), v * 1.01 + 0.1, gt.exp(-v))[i % 3]
    cost = v.sum()
    outputs = [cost, gc.grad(cost, x)]
    built = time.perf_counter()
    f = gc.function([x], outputs)
elif task == "graphc_mlp":
    import graphc as gc
    params = bench.mlp_data()[0]  # the data is not part of the compile time
    t0 = time.perf_counter()
    args = bench.graphc_mlp_graph(params)
    built = time.perf_counter()
    f = gc.function(*args[:2], updates=args[2])
elif task == "jax_chain":
    import jax, jax.numpy as jnp
    t0 = time.perf_counter()
    def cost(x):
        v = x
        for i in range(n):
            v = (jnp.tanh(v), v * 1.01 + 0.1, jnp.exp(-v))[i % 3]
        return v.sum()
    g = jax.jit(jax.value_and_grad(cost))
    g(jnp.ones(8, jnp.float32))[0].block_until_ready()
elif task == "pytensor_chain":
    import pytensor, pytensor.tensor as pt
    t0 = time.perf_counter()
    x = pt.fvector()
    v = x
    for i in range(n):
        v = (pt.tanh(v), v * 1.01 + 0.1, pt.exp(-v))[i % 3]
    cost = v.sum()
    f = pytensor.function([x], [cost, pytensor.grad(cost, x)])
end = time.perf_counter()
print(json.dumps({{"total": end - t0, "compile": end - (built or t0)}}))
"""


def child(task: str, n: int, cache_dir: str) -> dict:
    """Seconds to build and compile in a fresh process (after its imports): ``total``
    (graph + gradient + compile; for JAX trace + compile) and ``compile`` (``function`` alone)."""
    code = CHILD.format(here=str(HERE), task=task, n=n)
    env = dict(os.environ, GRAPHC_CACHE_DIR=cache_dir)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's imports come from bytecode caches
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{task} {n}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_compile(task: str, n: int, found: dict) -> dict:
    times = {}
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold", "warm"):
            result = child(f"graphc_{task}", n, cache)
            times[f"graphc {label}"] = result["compile"]
            times[f"graphc {label} incl. graph"] = result["total"]
    if task == "chain":
        for peer in ("jax", "pytensor"):
            if peer in found and not (peer == "pytensor" and n > 500):
                with tempfile.TemporaryDirectory() as cache:
                    times[peer] = child(f"{peer}_chain", n, cache)["total"]
    return times


# --- the report ------------------------------------------------------------------------------

def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def table_header(title: str, found) -> list[str]:
    """The first lines of a benchmark's markdown table: what ran where, and the columns."""
    return [f"{title}, {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, "
            f"peers: {', '.join(found) or 'none'}", "",
            "| work | times | ratios (> 1: graphc is faster) |", "| --- | --- | --- |"]


def row(label: str, times: dict, base: str = "graphc") -> str:
    cells = [f"{k}: {fmt(v)}" for k, v in times.items()]
    ratios = [f"{k}/{base} = {v / times[base]:.2f}" for k, v in times.items() if k != base and base in times]
    return f"| {label} | {'; '.join(cells)} | {'; '.join(ratios)} |"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer cases")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    found = peers()
    lines = table_header("graphc benchmarks", found)
    for size in ((1 << 20,) if args.quick else (1 << 22, 1 << 24)):
        lines.append(row(f"fused chain, 2^{size.bit_length() - 1} float32", bench_chain(size, found)))
        print(lines[-1], flush=True)
    for kind in ("logsumexp", "softmax"):
        n = 1024 if args.quick else 4096
        lines.append(row(f"row-wise {kind}, {n}x{n} float32", bench_rows(kind, found, n)))
        print(lines[-1], flush=True)
    lines.append(row("MLP 784-1024-1024-10 training step, batch 256", bench_mlp(found), base="graphc"))
    print(lines[-1], flush=True)
    lines.append(row("call overhead, x + 1 on 10 float64", bench_overhead(found)))
    print(lines[-1], flush=True)
    lines.append(row("compile MLP training function (new process)", bench_compile("mlp", 0, found), base="graphc cold"))
    print(lines[-1], flush=True)
    for n in ((100,) if args.quick else (100, 500, 2000)):
        lines.append(row(f"compile chain of {n} ops + gradient (new process)", bench_compile("chain", n, found),
                         base="graphc cold incl. graph"))
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        print()
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
