"""The tanh RNN through scan: graphc against a NumPy loop, PyTensor's scan and jax.lax.scan.

    python benchmarks/scan_speed.py [--steps 100] [--hidden 256] [--batch 32]

``h_t = tanh(x_t W + h_{t-1} U + b)`` over ``steps`` steps, float32; "forward" returns every
state, "forward+grad" the loss ``sum(h)`` and its gradients with respect to W, U, b. Run it
with ``.bench-venv/bin/python`` (``scripts/bench_env.sh``) to include the peers; without
them only graphc and NumPy are measured. The "time per step" rows run the same loop on a
state of 4 values for 1000 steps: what a step costs beyond its arithmetic. Prints a markdown
table like ``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run import best_time, peers, row, table_header  # noqa: E402


def make_data(steps: int, hidden: int, batch: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(hidden)
    return dict(
        x=rng.standard_normal((steps, batch, hidden)).astype("float32"),
        h0=np.zeros((batch, hidden), "float32"),
        w=(rng.standard_normal((hidden, hidden)) * scale).astype("float32"),
        u=(rng.standard_normal((hidden, hidden)) * scale).astype("float32"),
        b=np.zeros(hidden, "float32"),
    )


# --- NumPy ---------------------------------------------------------------------------------------

def numpy_forward(d) -> np.ndarray:
    h, out = d["h0"], np.empty(d["x"].shape, "float32")
    for t, x_t in enumerate(d["x"]):
        h = np.tanh(x_t @ d["w"] + h @ d["u"] + d["b"])
        out[t] = h
    return out


def numpy_forward_grad(d):
    hs = numpy_forward(d)
    w, u = d["w"], d["u"]
    gw, gu, gb = np.zeros_like(w), np.zeros_like(u), np.zeros_like(d["b"])
    carry = np.zeros_like(d["h0"])
    for t in range(len(hs) - 1, -1, -1):
        g = (carry + 1.0) * (1.0 - hs[t] * hs[t])
        h_prev = hs[t - 1] if t else d["h0"]
        gw += d["x"][t].T @ g
        gu += h_prev.T @ g
        gb += g.sum(axis=0)
        carry = g @ u.T
    return hs.sum(), gw, gu, gb


# --- graphc --------------------------------------------------------------------------------------

def graphc_functions(d):
    import graphc as gc
    import graphc.tensor as gt

    x, h0 = gt.tensor3("x", dtype="float32"), gt.matrix("h0", dtype="float32")
    w, u = gt.matrix("w", dtype="float32"), gt.matrix("u", dtype="float32")
    b = gt.vector("b", dtype="float32")
    h, _ = gc.scan(lambda x_t, h: gt.tanh(gt.dot(x_t, w) + gt.dot(h, u) + b), sequences=x, outputs_info=h0)
    loss = h.sum()
    forward = gc.function([x, h0, w, u, b], h)
    train = gc.function([x, h0, w, u, b], [loss] + gc.grad(loss, [w, u, b]))
    args = [d[k] for k in ("x", "h0", "w", "u", "b")]
    return (lambda: forward(*args)), (lambda: train(*args))


# --- peers ---------------------------------------------------------------------------------------

def jax_functions(d, jax, jnp):
    def forward(x, h0, w, u, b):
        def step(h, x_t):
            h = jnp.tanh(x_t @ w + h @ u + b)
            return h, h

        return jax.lax.scan(step, h0, x)[1]

    fwd = jax.jit(forward)
    grad = jax.jit(jax.value_and_grad(lambda x, h0, w, u, b: forward(x, h0, w, u, b).sum(), argnums=(2, 3, 4)))
    args = [jnp.asarray(d[k]) for k in ("x", "h0", "w", "u", "b")]
    return (lambda: fwd(*args).block_until_ready()), (lambda: jax.block_until_ready(grad(*args)))


def pytensor_functions(d, pytensor, pt):
    x, h0 = pt.tensor3("x", dtype="float32"), pt.matrix("h0", dtype="float32")
    w, u = pt.matrix("w", dtype="float32"), pt.matrix("u", dtype="float32")
    b = pt.vector("b", dtype="float32")
    h, _ = pytensor.scan(lambda x_t, h: pt.tanh(pt.dot(x_t, w) + pt.dot(h, u) + b), sequences=x, outputs_info=h0)
    loss = h.sum()
    fwd = pytensor.function([x, h0, w, u, b], h)
    train = pytensor.function([x, h0, w, u, b], [loss] + pytensor.grad(loss, [w, u, b]))
    args = [d[k] for k in ("x", "h0", "w", "u", "b")]
    return (lambda: fwd(*args)), (lambda: train(*args))


def check(d, graphc_fwd, graphc_train) -> None:
    """graphc's results agree with the NumPy loop (float32 tolerances)."""
    np.testing.assert_allclose(graphc_fwd(), numpy_forward(d), rtol=1e-4, atol=1e-5)
    for got, want in zip(graphc_train(), numpy_forward_grad(d)):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)


def measure(d, found, repeat: int, check_results: bool) -> tuple[dict, dict]:
    """Forward and forward+grad times of every framework on the data ``d``."""
    forward, train = {}, {}
    g_fwd, g_train = graphc_functions(d)
    if check_results:
        check(d, g_fwd, g_train)
    forward["graphc"], train["graphc"] = best_time(g_fwd, repeat), best_time(g_train, repeat)
    forward["numpy"] = best_time(lambda: numpy_forward(d), repeat)
    train["numpy"] = best_time(lambda: numpy_forward_grad(d), repeat)
    makers = {"jax": jax_functions, "pytensor": pytensor_functions}
    for name, modules in found.items():
        fwd, tr = makers[name](d, *modules)
        forward[name], train[name] = best_time(fwd, repeat), best_time(tr, repeat)
    return forward, train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    d = make_data(args.steps, args.hidden, args.batch)
    found = peers()
    forward, train = measure(d, found, args.repeat, check_results=True)
    # per-step overhead: the same loop on a tiny state, where the work per step is negligible
    tiny_steps = 1000
    tiny_fwd, tiny_train = measure(make_data(tiny_steps, 4, 1), found, args.repeat, check_results=True)
    per_step = {k: v / tiny_steps for k, v in tiny_fwd.items()}
    per_step_train = {k: v / tiny_steps for k, v in tiny_train.items()}
    size = f"{args.steps} steps, hidden {args.hidden}, batch {args.batch}, float32"
    lines = [*table_header("scan benchmark", found),
             row(f"tanh RNN forward, {size}", forward),
             row(f"tanh RNN forward+grad (W, U, b), {size}", train),
             row(f"time per step, forward, hidden 4, batch 1, {tiny_steps} steps", per_step),
             row(f"time per step, forward+grad, hidden 4, batch 1, {tiny_steps} steps", per_step_train)]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
