"""An LSTM layer through scan: graphc against PyTensor's scan and jax.lax.scan.

    python benchmarks/lstm_speed.py [--steps 50] [--batch 32] [--inputs 64] [--hidden 128]

The same hand-written LSTM in every framework: ``z = x_t W + h U + b`` (4 gates), input,
forget and output gates sigmoid, cell candidate tanh, ``c = f c + i g``, ``h = o tanh(c)``,
float32; "forward" returns every ``h``, "forward+grad" the loss ``sum(h)`` and its gradients
with respect to W, U, b. Every framework starts from the same values and graphc's results are
checked against a NumPy loop. Run with ``.bench-venv/bin/python`` (``scripts/bench_env.sh``) to
include the peers. Prints a markdown table like ``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run import best_time, peers, row, table_header  # noqa: E402

NAMES = ("x", "h0", "c0", "w", "u", "b")


def make_data(steps: int, batch: int, inputs: int, hidden: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.standard_normal((steps, batch, inputs)).astype("float32"),
        h0=np.zeros((batch, hidden), "float32"), c0=np.zeros((batch, hidden), "float32"),
        w=(rng.standard_normal((inputs, 4 * hidden)) / np.sqrt(inputs)).astype("float32"),
        u=(rng.standard_normal((hidden, 4 * hidden)) / np.sqrt(hidden)).astype("float32"),
        b=np.zeros(4 * hidden, "float32"),
    )


def numpy_forward(d) -> np.ndarray:
    h, c, n = d["h0"], d["c0"], d["h0"].shape[1]
    out = []
    for x_t in d["x"]:
        z = x_t @ d["w"] + h @ d["u"] + d["b"]
        i, f, o = (1 / (1 + np.exp(-z[:, k * n:(k + 1) * n])) for k in range(3))
        c = f * c + i * np.tanh(z[:, 3 * n:])
        h = o * np.tanh(c)
        out.append(h)
    return np.array(out)


def _step(math, sigmoid, dot):
    def step(x_t, h, c, w, u, b):
        n = h.shape[1]
        z = dot(x_t, w) + dot(h, u) + b
        i, f, o = sigmoid(z[:, :n]), sigmoid(z[:, n:2 * n]), sigmoid(z[:, 2 * n:3 * n])
        c = f * c + i * math.tanh(z[:, 3 * n:])
        return o * math.tanh(c), c

    return step


def graphc_functions(d):
    import graphc as gc
    import graphc.tensor as gt

    x = gt.tensor3("x", dtype="float32")
    h0, c0, w, u = (gt.matrix(k, dtype="float32") for k in ("h0", "c0", "w", "u"))
    b = gt.vector("b", dtype="float32")
    step = _step(gt, gt.sigmoid, gt.dot)
    (h, _), _ = gc.scan(lambda x_t, h, c: step(x_t, h, c, w, u, b), sequences=x,
                        outputs_info=[h0, c0])
    loss = h.sum()
    inputs = [x, h0, c0, w, u, b]
    forward = gc.function(inputs, h)
    train = gc.function(inputs, [loss] + gc.grad(loss, [w, u, b]))
    args = [d[k] for k in NAMES]
    return (lambda: forward(*args)), (lambda: train(*args))


def jax_functions(d, jax, jnp):
    step = _step(jnp, jax.nn.sigmoid, jnp.dot)

    def forward(x, h0, c0, w, u, b):
        def body(carry, x_t):
            h, c = step(x_t, *carry, w, u, b)
            return (h, c), h

        return jax.lax.scan(body, (h0, c0), x)[1]

    fwd = jax.jit(forward)
    grad = jax.jit(jax.value_and_grad(lambda *a: forward(*a).sum(), argnums=(3, 4, 5)))
    args = [jnp.asarray(d[k]) for k in NAMES]
    return (lambda: fwd(*args).block_until_ready()), (lambda: jax.block_until_ready(grad(*args)))


def pytensor_functions(d, pytensor, pt):
    x = pt.tensor3("x", dtype="float32")
    h0, c0, w, u = (pt.matrix(k, dtype="float32") for k in ("h0", "c0", "w", "u"))
    b = pt.vector("b", dtype="float32")
    step = _step(pt, pt.sigmoid, pt.dot)
    (h, _), _ = pytensor.scan(lambda x_t, h, c: step(x_t, h, c, w, u, b), sequences=x,
                              outputs_info=[h0, c0])
    loss = h.sum()
    inputs = [x, h0, c0, w, u, b]
    fwd = pytensor.function(inputs, h)
    train = pytensor.function(inputs, [loss] + pytensor.grad(loss, [w, u, b]))
    args = [d[k] for k in NAMES]
    return (lambda: fwd(*args)), (lambda: train(*args))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    d = make_data(args.steps, args.batch, args.inputs, args.hidden)
    found = peers()
    g_fwd, g_train = graphc_functions(d)
    np.testing.assert_allclose(g_fwd(), numpy_forward(d), rtol=1e-4, atol=1e-5)
    forward = {"graphc": best_time(g_fwd, args.repeat)}
    train = {"graphc": best_time(g_train, args.repeat)}
    makers = {"jax": jax_functions, "pytensor": pytensor_functions}
    for name, modules in found.items():
        fwd, tr = makers[name](d, *modules)
        forward[name], train[name] = best_time(fwd, args.repeat), best_time(tr, args.repeat)
    size = (f"{args.steps} steps, batch {args.batch}, {args.inputs} inputs, hidden {args.hidden}, "
            "float32")
    lines = [*table_header("LSTM benchmark", found),
             row(f"LSTM forward, {size}", forward),
             row(f"LSTM forward+grad (W, U, b), {size}", train)]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
