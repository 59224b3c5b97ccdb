"""GPU benchmarks of graphc's CUDA backend (needs an NVIDIA GPU and pycuda).

    python benchmarks/gpu.py [--repeat N]

- fused elementwise chain at 2^24 and 2^26 float32 elements, in GB/s (bytes read + written),
  against a device-to-device copy of the same bytes and against CuPy / PyTorch when importable;
- row softmax of an 8192 x 8192 float32 matrix;
- one MLP training step (784-1024-10, batch 512) against PyTorch when importable.

Inputs stay on the device (``return_device_arrays=True``), so the timings are the GPU's.
Without a GPU it prints one line saying what is missing and exits with status 1.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def timed(fn, repeat: int, sync) -> float:
    """The best time of ``repeat`` runs of ``fn`` (seconds), synchronising the device."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def chain(gt, x):
    return gt.tanh(x * 1.5 + 0.25) * gt.exp(-x * x) + gt.sigmoid(x)


def bench_chain(gc, gt, gpu, repeat, peers):
    for log2 in (24, 26):
        n = 1 << log2
        x = gt.vector("x", dtype="float32")
        f = gc.function([x], chain(gt, x), device="cuda", return_device_arrays=True)
        data = gpu.to_device(np.random.default_rng(0).random(n, dtype=np.float32))
        moved = 2 * n * 4
        seconds = timed(lambda f=f, data=data: f(data), repeat, gpu.synchronize)
        copy = timed(lambda data=data: gpu.copy(data), repeat, gpu.synchronize)
        line = (f"fused chain 2^{log2}: graphc {moved / seconds / 1e9:7.1f} GB/s   "
                f"d2d copy {moved / copy / 1e9:7.1f} GB/s")
        for name, run, sync in peers(n):
            line += f"   {name} {moved / timed(run, repeat, sync) / 1e9:7.1f} GB/s"
        print(line)


def chain_peers(n):
    found = []
    try:
        import cupy as cp

        a = cp.random.random(n, dtype=cp.float32)
        found.append(("cupy", lambda: cp.tanh(a * 1.5 + 0.25) * cp.exp(-a * a)
                      + 1 / (1 + cp.exp(-a)), cp.cuda.Device().synchronize))
    except Exception:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            t = torch.rand(n, device="cuda")
            found.append(("torch", lambda: torch.tanh(t * 1.5 + 0.25) * torch.exp(-t * t)
                          + torch.sigmoid(t), torch.cuda.synchronize))
    except Exception:
        pass
    return found


def bench_softmax(gc, gt, gpu, repeat):
    x = gt.matrix("x", dtype="float32")
    f = gc.function([x], gt.nnet.softmax(x), device="cuda", return_device_arrays=True)
    data = gpu.to_device(np.random.default_rng(1).random((8192, 8192), dtype=np.float32))
    seconds = timed(lambda: f(data), repeat, gpu.synchronize)
    print(f"row softmax 8192x8192: graphc {seconds * 1e3:8.2f} ms "
          f"({2 * data.nbytes / seconds / 1e9:6.1f} GB/s of input + output)")


def bench_mlp(gc, gt, gpu, repeat):
    rng = np.random.default_rng(2)
    W1 = gc.shared((rng.normal(size=(784, 1024)) * 0.03).astype("float32"))
    W2 = gc.shared((rng.normal(size=(1024, 10)) * 0.03).astype("float32"))
    x, y = gt.matrix("x", dtype="float32"), gt.lvector("y")
    p = gt.nnet.softmax(gt.dot(gt.tanh(gt.dot(x, W1)), W2))
    cost = -gt.mean(gt.log(p)[gt.arange(y.shape[0]), y])
    g1, g2 = gc.grad(cost, [W1, W2])
    step = gc.function([x, y], cost, updates=[(W1, W1 - 0.1 * g1), (W2, W2 - 0.1 * g2)],
                       device="cuda", return_device_arrays=True)
    data = gpu.to_device(rng.random((512, 784), dtype=np.float32))
    labels = gpu.to_device(rng.integers(0, 10, 512))
    seconds = timed(lambda: step(data, labels), repeat, gpu.synchronize)
    line = f"MLP step 784-1024-10 batch 512: graphc {seconds * 1e3:7.2f} ms"
    try:
        import torch

        if torch.cuda.is_available():
            model = torch.nn.Sequential(torch.nn.Linear(784, 1024, bias=False), torch.nn.Tanh(),
                                        torch.nn.Linear(1024, 10, bias=False)).cuda()
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            tx = torch.rand(512, 784, device="cuda")
            ty = torch.randint(0, 10, (512,), device="cuda")

            def torch_step():
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(tx), ty).backward()
                opt.step()

            line += f"   torch {timed(torch_step, repeat, torch.cuda.synchronize) * 1e3:7.2f} ms"
    except Exception:
        pass
    print(line)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    import graphc as gc
    import graphc.tensor as gt
    from graphc.runtime.device import cuda_status

    reason = cuda_status()
    if reason is not None:
        print(f"benchmarks/gpu.py: cannot run: {reason}", file=sys.stderr)
        return 1
    from graphc.cuda.driver import gpu as the_gpu

    gpu = the_gpu()
    print(f"device: {gpu.device.name()} (compute capability {gpu.capability}), "
          f"PTX for {gpu.arch}")
    bench_chain(gc, gt, gpu, args.repeat, chain_peers)
    bench_softmax(gc, gt, gpu, args.repeat)
    bench_mlp(gc, gt, gpu, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
