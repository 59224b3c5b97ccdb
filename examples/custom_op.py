"""A research prototype: a new activation defined as a graphc op with its own gradient.

``mish(x) = x * tanh(softplus(x))`` (Misra, 2019) is defined once with ``graphc.ir.op.defop``:
its type rule, its NumPy reference (what runs, also inside compiled functions) and its
gradient rule, a symbolic expression of graphc ops (so it can be differentiated again). The
gradient is checked against finite differences with ``verify_grad``, then the op serves as the
activation of a small ``graphc.nn`` classifier on the digits.

    python examples/custom_op.py
    python examples/custom_op.py --steps 20       # a short training run
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import graphc as gc
import graphc.nn as nn
import graphc.tensor as gt
from graphc.autodiff import verify_grad
from graphc.ir.node import make
from graphc.ir.op import ELEMWISE, defop
from graphc.ir.types import is_float


def _mish_type(in_types, arg):
    """The output type: the input's (float inputs only)."""
    (x,) = in_types
    if not is_float(x.dtype):
        raise TypeError(f"needs a float input, got {x.dtype}")
    return x


def _mish_reference(arg, x):
    """NumPy: x * tanh(log(1 + exp(x))), with a softplus that does not overflow."""
    softplus = np.logaddexp(0, x)
    return (x * np.tanh(softplus)).astype(x.dtype, copy=False)


def _mish_gradient(node, g):
    """d mish / dx = tanh(sp) + x * sigmoid(x) * (1 - tanh(sp)**2), with sp = softplus(x)."""
    (x,) = node.src
    t = gt.tanh(gt.softplus(x))
    return (g * (t + x * gt.sigmoid(x) * (1 - t * t)),)


MISH = defop("mish", ELEMWISE, _mish_type, ref=_mish_reference,
             shape=lambda node, in_shapes: in_shapes[0], grad=_mish_gradient)


def mish(x):
    """Mish activation ``x * tanh(softplus(x))``, elementwise."""
    return make(MISH, (gt.as_tensor_variable(x),))


def check_gradient() -> None:
    rng = np.random.default_rng(0)
    for shape in [(5,), (3, 4), (2, 1, 3)]:
        verify_grad(mish, [rng.uniform(-4, 4, shape)])
        verify_grad(lambda x: gc.grad(mish(x).sum(), x), [rng.uniform(-4, 4, shape)])
    print("verify_grad: the gradient and second derivative of mish match finite differences")


def check_against_numpy() -> None:
    x = gt.dvector("x")
    values = np.linspace(-30, 30, 13)
    for mode in ("reference", "FAST_RUN"):
        got = gc.function([x], mish(x), mode=mode)(values)
        np.testing.assert_allclose(got, values * np.tanh(np.log1p(np.exp(values))), rtol=1e-12)
    print("mish matches NumPy in the reference interpreter and in compiled code")


def train_classifier(steps: int, seed: int) -> float:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = (digits.data / 16.0).astype("float32"), digits.target.astype("int32")
    model = nn.Sequential(nn.Dense(64, 64, activation=mish, rng=seed, dtype="float32"),
                          nn.Dense(64, 10, rng=seed + 1, dtype="float32"))
    compiled = nn.compile_model(model, images, labels,
                                optimizer=lambda c, p: nn.adam(c, p, learning_rate=0.01))
    rng = np.random.default_rng(seed)
    for step in range(1, steps + 1):
        batch = rng.choice(len(labels), 64, replace=False)
        loss, _ = compiled.train(images[batch], labels[batch])
        if step % max(steps // 5, 1) == 0 or step == steps:
            print(f"step {step:4d}  loss {float(loss):.4f}")
    accuracy = float(np.mean(np.argmax(compiled.predict(images), axis=1) == labels))
    print(f"training accuracy with mish: {accuracy:.4f}")
    return accuracy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    check_gradient()
    check_against_numpy()
    train_classifier(args.steps, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
