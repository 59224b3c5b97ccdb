"""conv2d forward + gradients: graphc against NumPy (im2col and direct) and PyTensor/jax.jit.

    python benchmarks/conv_speed.py [--quick]
    .bench-venv/bin/python benchmarks/conv_speed.py   # with PyTensor and JAX (scripts/bench_env.sh)

Each row times one call computing a convolution layer's output and its gradients with respect
to the input and the filters (float32, cross-correlation, 'half' padding) for the shapes of a
small CNN on the 8x8 digits: batch 64, 1 -> 32 channels, then 32 -> 64 channels after pooling.

The NumPy columns are the two ways to write the reference: ``im2col`` gathers every window
into one column matrix and makes one BLAS matmul per pass; ``direct`` accumulates one matmul
per kernel tap over shifted views of the input (no column matrix). graphc's references use
im2col: with 3x3 kernels it is faster than direct here (each tap of ``direct`` is a
small-inner-dimension matmul plus a full pass over the output, nine times per pass), and its
column matrix stays small for CNN-sized layers. Times are the best of several runs.

One run on the 2-core development machine (shared with other jobs; one BLAS thread), in ms:

| layer | numpy im2col | numpy direct | graphc | pytensor | jax |
| --- | --- | --- | --- | --- | --- |
| conv1 64x1x8x8 * 32x1x3x3 | 0.52 | 2.35 | 0.99 | 492 | 0.53 |
| conv2 64x32x4x4 * 64x32x3x3 | 3.02 | 10.39 | 6.32 | 27679 | 1.33 |

graphc computes the columns twice (forward and filter gradient are separate ops) and runs
the gradient seed through the graph; PyTensor 3 has no CNN convolution any more and runs
one scipy-style 2-d convolution per (image, filter, channel) in object mode.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LAYERS = {"conv1 64x1x8x8 * 32x1x3x3": ((64, 1, 8, 8), (32, 1, 3, 3)),
          "conv2 64x32x4x4 * 64x32x3x3": ((64, 32, 4, 4), (64, 32, 3, 3))}


def best_time(fn, repeat: int) -> float:
    start = time.perf_counter()
    fn()
    if time.perf_counter() - start > 1.0:  # a slow peer: one more run is enough
        repeat = 1
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# --- NumPy: im2col -------------------------------------------------------------------------------

def numpy_im2col(x, w, gy):
    """Output, input gradient and filter gradient of a 'half' cross-correlation (stride 1)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ph, pw = kh // 2, kw // 2
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), x.dtype)
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))  # (n, c, h, wd, kh, kw)
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * wd, c * kh * kw)
    wmat = w.reshape(o, c * kh * kw)
    y = (cols @ wmat.T).reshape(n, h, wd, o).transpose(0, 3, 1, 2)
    gmat = gy.transpose(0, 2, 3, 1).reshape(n * h * wd, o)
    gw = (gmat.T @ cols).reshape(w.shape)
    gcols = (gmat @ wmat).reshape(n, h, wd, c, kh, kw)
    gxp = np.zeros_like(xp)
    for u in range(kh):
        for v in range(kw):
            gxp[:, :, u:u + h, v:v + wd] += gcols[..., u, v].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(y), gxp[:, :, ph:ph + h, pw:pw + wd], gw


# --- NumPy: direct, one matmul per kernel tap ------------------------------------------------------

def numpy_direct(x, w, gy):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ph, pw = kh // 2, kw // 2
    xp = np.zeros((n, h + 2 * ph, wd + 2 * pw, c), x.dtype)  # channels last: taps are matmuls
    xp[:, ph:ph + h, pw:pw + wd] = x.transpose(0, 2, 3, 1)
    g = np.ascontiguousarray(gy.transpose(0, 2, 3, 1))  # (n, h, wd, o)
    y = np.zeros((n, h, wd, o), x.dtype)
    gw = np.zeros((o, c, kh, kw), x.dtype)
    gxp = np.zeros_like(xp)
    for u in range(kh):
        for v in range(kw):
            tap = w[:, :, u, v]  # (o, c)
            shifted = xp[:, u:u + h, v:v + wd]
            y += shifted @ tap.T
            gw[:, :, u, v] = g.reshape(-1, o).T @ shifted.reshape(-1, c)
            gxp[:, u:u + h, v:v + wd] += g @ tap
    return (y.transpose(0, 3, 1, 2), gxp[:, ph:ph + h, pw:pw + wd].transpose(0, 3, 1, 2), gw)


# --- graphc, PyTensor, JAX -----------------------------------------------------------------------

def graphc_fn():
    import graphc as gc
    import graphc.tensor as gt

    x, w, gy = gt.tensor4("x", "float32"), gt.tensor4("w", "float32"), gt.tensor4("gy", "float32")
    y = gt.nnet.conv2d(x, w, border_mode="half", filter_flip=False)
    gx, gw = gc.grad((y * gy).sum(), [x, w])
    return gc.function([x, w, gy], [y, gx, gw])


def pytensor_fn():
    """PyTensor 3 has no CNN conv2d (Theano's abstract_conv is gone): its batched 2-d
    ``convolve2d`` over (batch, out, in) with a sum over the input channels."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.tensor.signal import convolve2d

    x, w, gy = (pt.tensor4(name, dtype="float32") for name in ("x", "w", "gy"))
    n, o = x.shape[0], w.shape[0]
    images = pt.broadcast_to(x[:, None], (n, o, *x.shape[1:]))
    kernels = pt.broadcast_to(w[None, :, :, ::-1, ::-1], (n, *w.shape))  # unflip: correlate
    y = convolve2d(images, kernels, mode="same").sum(axis=2)
    gx, gw = pytensor.grad((y * gy).sum(), [x, w])
    return pytensor.function([x, w, gy], [y, gx, gw])


def jax_fn():
    import jax

    jax.config.update("jax_platforms", "cpu")

    def conv(x, w):
        pads = [(w.shape[2] // 2,) * 2, (w.shape[3] // 2,) * 2]
        return jax.lax.conv_general_dilated(x, w, (1, 1), pads)

    @jax.jit
    def step(x, w, gy):
        y, pullback = jax.vjp(conv, x, w)
        return (y, *pullback(gy))

    return lambda *a: [np.asarray(v) for v in jax.block_until_ready(step(*a))]


PEERS = {"graphc": graphc_fn, "pytensor": pytensor_fn, "jax": jax_fn}


def main(argv) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 20
    functions = {"numpy im2col": numpy_im2col, "numpy direct": numpy_direct}
    for name, make in PEERS.items():
        try:
            functions[name] = make()
        except ImportError as exc:
            print(f"({name} not measured: {exc})", file=sys.stderr)
    print("| layer (forward + both gradients, float32, ms) | " + " | ".join(functions) + " |")
    print("| --- |" + " --- |" * len(functions))
    rng = np.random.default_rng(0)
    for label, (x_shape, w_shape) in LAYERS.items():
        x, w = (rng.standard_normal(s).astype("float32") for s in (x_shape, w_shape))
        gy = rng.standard_normal(x_shape[:1] + w_shape[:1] + x_shape[2:]).astype("float32")
        expected = numpy_im2col(x, w, gy)
        cells = []
        for name, fn in functions.items():
            for got, want in zip(fn(x, w, gy), expected):
                np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3, err_msg=name)
            run = functools.partial(fn, x, w, gy)
            cells.append(f"{best_time(run, repeat) * 1e3:.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
