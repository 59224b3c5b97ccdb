"""How long the FAST_RUN rewrites take on big graphs (markdown table on stdout).

    python benchmarks/rewrite_speed.py [--nodes 2000] [--repeat 3]

Graphs: a chain of elementwise ops of mixed kinds (the rewrites' worst case: every node is
a candidate for several rules), the same chain with its gradient, and an MLP training
step. Times are the best of ``--repeat`` runs of the whole pipeline, per phase.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import graphc as gc
import graphc.tensor as gt
from graphc.ir.graph import FunctionGraph
from graphc.ir.node import toposort
from graphc.rewrite import rewrite_graph

STEPS = (
    lambda v: v * 1.0001 + 0.5,
    lambda v: gt.tanh(v),
    lambda v: gt.log(1 + v * v),
    lambda v: v - gt.exp(-v) * 0.1,
    lambda v: gt.sigmoid(v) * 2,
    lambda v: -(-v),
)


def chain(n_nodes: int):
    x = gt.fvector("x")
    out = x
    while len(toposort([out])) < n_nodes:
        out = STEPS[len(toposort([out])) % len(STEPS)](out)
    return [x], [out.sum()]


def chain_with_grad(n_nodes: int):
    inputs, (cost,) = chain(n_nodes // 3)
    return inputs, [cost, gc.grad(cost, inputs[0])]


def mlp_step(n_nodes: int):
    rng = np.random.default_rng(0)
    x, y = gt.fmatrix("x"), gt.ivector("y")
    sizes = (784, 1024, 1024, 10)
    params = [gc.shared(rng.standard_normal((a, b)).astype("float32") * 0.01, f"W{i}")
              for i, (a, b) in enumerate(zip(sizes, sizes[1:]))]
    biases = [gc.shared(np.zeros(b, "float32"), f"b{i}") for i, b in enumerate(sizes[1:])]
    h = x
    for i, (w, b) in enumerate(zip(params, biases)):
        h = gt.dot(h, w) + b
        if i < len(params) - 1:
            h = gt.nnet.relu(h)
    cost = gt.nnet.categorical_crossentropy(gt.nnet.softmax(h), y).mean()
    grads = gc.grad(cost, params + biases)
    updates = [p - np.float32(0.1) * g for p, g in zip(params + biases, grads)]
    return [x, y], [cost] + updates


def measure(build, n_nodes: int, repeat: int):
    best, phases, size = None, None, None
    for _ in range(repeat):
        inputs, outputs = build(n_nodes)
        fgraph = FunctionGraph(inputs, outputs)
        size = len(fgraph.nodes)
        start = time.perf_counter()
        rewrite_graph(fgraph, "FAST_RUN")
        total = time.perf_counter() - start
        if best is None or total < best:
            best, phases, after = total, dict(fgraph.phase_times), len(fgraph.nodes)
    return size, after, best, phases


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    cases = [("elementwise chain", chain), ("chain + gradient", chain_with_grad), ("MLP training step", mlp_step)]
    print("| graph | nodes before | nodes after | rewrite time (s) | slowest phases |")
    print("| --- | ---: | ---: | ---: | --- |")
    for label, build in cases:
        before, after, total, phases = measure(build, args.nodes, args.repeat)
        slowest = ", ".join(f"{k} {v:.3f}" for k, v in sorted(phases.items(), key=lambda kv: -kv[1])[:3])
        print(f"| {label} | {before} | {after} | {total:.3f} | {slowest} |")


if __name__ == "__main__":
    main()
