"""Training time per epoch of the digits CNN: graphc.nn against the same model hand-written in
PyTensor and in JAX (each measured when it imports; ``bash scripts/bench_env.sh`` makes an
environment with both).

The model: conv 3x3 (1 -> 16, same, ReLU) - max pool 2 - conv 3x3 (16 -> 32, same, ReLU) -
max pool 2 - dense (128 -> 64, ReLU) - dense (64 -> 10), mean softmax cross-entropy, plain SGD,
float32, minibatches of 32 over the 1,437 training digits (45 steps per epoch). Every framework
starts from the same weights. An epoch is timed after a first, compiling, epoch; the best of
``--repeat`` epochs is reported, with the compile time and the loss after the timed epochs.
The digits come from scikit-learn when it imports, else random data of the same shape
(the time per epoch does not depend on the values). All three reach the same loss, which
checks that they train the same model.

BLAS threads matter for these small matrix products: on a loaded 2-core machine, graphc's
epoch took 4.1 s with OpenBLAS's default threads and 0.59 s with ``OPENBLAS_NUM_THREADS=1``
(JAX 0.06 s, PyTensor 1.7 s). The header line shows the setting of the run.

    .bench-venv/bin/python benchmarks/cnn_epoch.py [--repeat 3] [--only graphc]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

BATCH, LEARNING_RATE, SEED = 32, 0.05, 0


def load_data():
    """(images (N, 1, 8, 8) float32, labels int32) and where they came from."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(SEED)
        return (rng.random((1437, 1, 8, 8), dtype="float32"),
                rng.integers(0, 10, 1437).astype("int32"), "random data (no scikit-learn)")
    digits = load_digits()
    order = np.random.default_rng(SEED).permutation(len(digits.target))[:1437]
    images = (digits.images[order] / 16.0).astype("float32")[:, None]
    return images, digits.target[order].astype("int32"), "scikit-learn digits"


def initial_weights():
    """The same starting point for every framework (He-uniform convolutions and dense layers)."""
    rng = np.random.default_rng(SEED)

    def he(shape, fan_in):
        limit = np.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, shape).astype("float32")

    return {
        "c1": he((16, 1, 3, 3), 9), "b1": np.zeros(16, "float32"),
        "c2": he((32, 16, 3, 3), 144), "b2": np.zeros(32, "float32"),
        "d1": he((128, 64), 128), "e1": np.zeros(64, "float32"),
        "d2": he((64, 10), 64), "e2": np.zeros(10, "float32"),
    }


def batches(n: int, epoch: int):
    order = np.random.default_rng(epoch).permutation(n)
    return [order[i:i + BATCH] for i in range(0, n, BATCH)]


# --- graphc ---------------------------------------------------------------------------------

def graphc_step():
    import graphc as gc
    import graphc.nn as nn
    import graphc.tensor as gt

    w = initial_weights()
    with gc.config.change_flags(floatX="float32"):  # parameters float32, like the peers'
        model = nn.Sequential(
            nn.Conv2D(1, 16, 3, padding="same", activation="relu"), nn.MaxPool2D(2),
            nn.Conv2D(16, 32, 3, padding="same", activation="relu"), nn.MaxPool2D(2),
            nn.Flatten(), nn.Dense(128, 64, activation="relu"), nn.Dense(64, 10))
    assert all(p.dtype == "float32" for p in model.params)
    for var, key in zip(model.params, ["c1", "b1", "c2", "b2", "d1", "e1", "d2", "e2"]):
        var.set_value(w[key])
    x, y = gt.tensor4("x", dtype="float32"), gt.ivector("y")
    cost = nn.categorical_crossentropy(model(x, training=True), y, from_logits=True)
    return gc.function([x, y], cost, updates=nn.sgd(cost, model.params, LEARNING_RATE))


# --- PyTensor -------------------------------------------------------------------------------

def pytensor_step():
    import pytensor
    import pytensor.tensor as pt

    params = {k: pytensor.shared(v, name=k, shape=v.shape) for k, v in initial_weights().items()}

    def conv_same(x, w, b, size):
        # im2col by hand: the 9 shifted views of the zero-padded input, contracted with the
        # filters over (channel, tap) in one tensordot
        n, c = x.shape[0], x.shape[1]
        zeros = pt.zeros((n, c, size + 2, size + 2), "float32")
        padded = pt.set_subtensor(zeros[:, :, 1:-1, 1:-1], x)
        taps = pt.stack([padded[:, :, i:i + size, j:j + size] for i in range(3) for j in range(3)],
                        axis=2)                                           # (N, Cin, 9, H, W)
        filters = w.reshape((w.shape[0], w.shape[1], 9))                  # (Cout, Cin, 9)
        out = pt.tensordot(taps, filters, axes=[[1, 2], [1, 2]]).dimshuffle(0, 3, 1, 2)
        return pt.maximum(out + b[None, :, None, None], 0)

    def pool(x):
        n, c, h, w = x.shape
        return x.reshape((n, c, h // 2, 2, w // 2, 2)).max(axis=(3, 5))

    x, y = pt.tensor4("x", dtype="float32", shape=(None, 1, 8, 8)), pt.ivector("y")
    h = pool(conv_same(x, params["c1"], params["b1"], 8))
    h = pool(conv_same(h, params["c2"], params["b2"], 4))
    h = pt.maximum(h.reshape((h.shape[0], 128)) @ params["d1"] + params["e1"], 0)
    logits = h @ params["d2"] + params["e2"]
    log_p = logits - pt.logsumexp(logits, axis=1, keepdims=True)
    cost = -log_p[pt.arange(y.shape[0]), y].mean()
    grads = pytensor.grad(cost, list(params.values()))
    updates = [(p, p - np.float32(LEARNING_RATE) * g) for p, g in zip(params.values(), grads)]
    return pytensor.function([x, y], cost, updates=updates)


# --- JAX ------------------------------------------------------------------------------------

def jax_step():
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_platforms", "cpu")
    params = {k: jnp.asarray(v) for k, v in initial_weights().items()}

    def conv_same(x, w, b):
        out = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                           dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return jax.nn.relu(out + b[None, :, None, None])

    def pool(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def loss(p, x, y):
        h = pool(conv_same(x, p["c1"], p["b1"]))
        h = pool(conv_same(h, p["c2"], p["b2"]))
        h = jax.nn.relu(h.reshape(h.shape[0], -1) @ p["d1"] + p["e1"])
        log_p = jax.nn.log_softmax(h @ p["d2"] + p["e2"])
        return -jnp.mean(log_p[jnp.arange(y.shape[0]), y])

    @jax.jit
    def update(p, x, y):
        cost, grads = jax.value_and_grad(loss)(p, x, y)
        return jax.tree_util.tree_map(lambda a, g: a - LEARNING_RATE * g, p, grads), cost

    state = {"params": params}

    def step(x, y):
        state["params"], cost = update(state["params"], x, y)
        return cost.block_until_ready()

    return step


# --- timing ---------------------------------------------------------------------------------

def run_epoch(step, images, labels, epoch: int) -> float:
    losses = [float(step(images[b], labels[b])) * len(b) for b in batches(len(labels), epoch)]
    return sum(losses) / len(labels)


def measure(name: str, build, images, labels, repeat: int) -> dict:
    start = time.perf_counter()
    step = build()
    run_epoch(step, images, labels, 0)  # compiles (graphc: on first call, kernels; JAX: trace)
    compile_s = time.perf_counter() - start
    best, loss = float("inf"), None
    for epoch in range(1, repeat + 1):
        start = time.perf_counter()
        loss = run_epoch(step, images, labels, epoch)
        best = min(best, time.perf_counter() - start)
    return {"name": name, "epoch_s": best, "compile_s": compile_s, "loss": loss}


FRAMEWORKS = {"graphc": graphc_step, "pytensor": pytensor_step, "jax": jax_step}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=list(FRAMEWORKS), action="append")
    args = parser.parse_args(argv)
    images, labels, source = load_data()
    steps = (len(labels) + BATCH - 1) // BATCH
    print(f"# CNN epoch on {source}: {len(labels)} images, batch {BATCH}, {steps} steps; "
          f"{platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}\n")
    print("| framework | epoch (s) | step (ms) | first epoch incl. compile (s) | loss after |")
    print("| --- | --- | --- | --- | --- |")
    results = []
    for name in args.only or FRAMEWORKS:
        try:
            result = measure(name, FRAMEWORKS[name], images, labels, args.repeat)
        except ImportError as exc:
            print(f"| {name} | not importable ({exc.name}) | | | |")
            continue
        results.append(result)
        steps = (len(labels) + BATCH - 1) // BATCH
        print(f"| {name} | {result['epoch_s']:.3f} | {result['epoch_s'] / steps * 1e3:.1f} | "
              f"{result['compile_s']:.2f} | {result['loss']:.4f} |", flush=True)
    base = next((r for r in results if r["name"] == "graphc"), None)
    if base:
        for r in results:
            if r is not base:
                print(f"\ngraphc epoch / {r['name']} epoch: {base['epoch_s'] / r['epoch_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
