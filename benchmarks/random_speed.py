"""Random draws: graphc's compiled Philox kernels against NumPy's generator and jax.random.

    python benchmarks/random_speed.py [--size 1000000]

Each row draws ``size`` values per call from a compiled function whose stream advances
(graphc: ``RandomStream`` with its updates; NumPy: ``default_rng`` (PCG64, ziggurat normals);
jax: ``jax.random`` with a split key per call, jitted). Run it with ``.bench-venv/bin/python``
(``scripts/bench_env.sh``) to include jax. Prints a markdown table like ``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run import best_time, peers, row, table_header  # noqa: E402

KINDS = ("uniform", "normal", "integers")


def graphc_draw(kind: str, dtype: str, size: int, mode: str = "FAST_RUN"):
    import graphc as gc

    stream = gc.random.RandomStream(0)
    if kind == "uniform":
        out = stream.uniform(size=(size,), dtype=dtype)
    elif kind == "normal":
        out = stream.normal(size=(size,), dtype=dtype)
    else:
        out = stream.integers(0, 1000, size=(size,))
    return gc.function([], out, updates=stream.updates(), mode=mode)


def numpy_draw(kind: str, dtype: str, size: int):
    rng = np.random.default_rng(0)
    if kind == "uniform":
        return lambda: rng.random(size, dtype=dtype)
    if kind == "normal":
        return lambda: rng.standard_normal(size, dtype=dtype)
    return lambda: rng.integers(0, 1000, size)


def jax_draw(kind: str, dtype: str, size: int, jax, jnp):
    def draw(key):
        key, sub = jax.random.split(key)
        if kind == "uniform":
            return key, jax.random.uniform(sub, (size,), dtype=dtype)
        if kind == "normal":
            return key, jax.random.normal(sub, (size,), dtype=dtype)
        return key, jax.random.randint(sub, (size,), 0, 1000)

    step = jax.jit(draw)
    state = {"key": jax.random.PRNGKey(0)}

    def call():
        state["key"], out = step(state["key"])
        return out.block_until_ready()

    return call


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    found = {k: v for k, v in peers().items() if k == "jax"}
    lines = [*table_header("random benchmark", found)]
    for kind in KINDS:
        for dtype in (("float32", "float64") if kind != "integers" else ("int64",)):
            times = {"graphc": best_time(graphc_draw(kind, dtype, args.size), args.repeat),
                     "numpy": best_time(numpy_draw(kind, dtype, args.size), args.repeat)}
            if "jax" in found and dtype != "float64":  # jax defaults to 32-bit values
                times["jax"] = best_time(jax_draw(kind, dtype, args.size, *found["jax"]), args.repeat)
            lines.append(row(f"{kind} {dtype}, {args.size:,} values", times))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
