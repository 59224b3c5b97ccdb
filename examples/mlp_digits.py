"""A multilayer perceptron on scikit-learn's 8x8 digits, built with ``graphc.nn``.

Dense - batch norm - ReLU - dropout - dense, trained with Nesterov momentum and gradient-norm
clipping by ``graphc.nn.fit``; then the parameters are saved, loaded into a freshly built
model, and both are checked to predict the same. Prints the test accuracy (about 98%).

    python examples/mlp_digits.py
    python examples/mlp_digits.py --quick         # two epochs, no accuracy check
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import graphc as gc
import graphc.nn as nn
import graphc.tensor as gt


def load_digits_split(test_fraction: float, seed: int):
    """Images as (N, 64) float32 in [0, 1] and int32 labels, split into train and test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.data / 16.0).astype("float32")
    labels = digits.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(test_fraction * len(labels)))
    test, train = order[:n_test], order[n_test:]
    return (images[train], labels[train]), (images[test], labels[test])


def build_mlp(hidden: int, seed: int) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Dense(64, hidden, init="he_normal", rng=rng, dtype="float32"),
        nn.BatchNorm(hidden, dtype="float32"),
        nn.Activation("relu"),
        nn.Dropout(0.2, seed=seed),
        nn.Dense(hidden, 10, rng=rng, dtype="float32"),
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-accuracy", type=float, default=0.95,
                        help="exit with status 1 when the test accuracy is below this")
    parser.add_argument("--quick", action="store_true",
                        help="two epochs and no accuracy check (a smoke test)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    epochs, min_accuracy = (2, 0.0) if args.quick else (args.epochs, args.min_accuracy)
    (x_train, y_train), (x_test, y_test) = load_digits_split(0.2, args.seed)
    model = build_mlp(args.hidden, args.seed)
    print(f"model: {model.n_params()} parameters")

    def optimizer(cost, params):
        return nn.nesterov(cost, params, learning_rate=args.learning_rate, momentum=0.9,
                           clip_norm=5.0)

    compiled = nn.compile_model(model, x_train, y_train, optimizer=optimizer)
    nn.fit(compiled, (x_train, y_train), epochs=epochs, batch_size=args.batch_size,
           validation_data=(x_test, y_test), rng=args.seed)
    predictions = np.argmax(compiled.predict(x_test), axis=1)
    accuracy = float(np.mean(predictions == y_test))
    print(f"test accuracy: {accuracy:.4f}")

    with tempfile.TemporaryDirectory() as tmp:
        path = nn.save_params(Path(tmp) / "mlp", model)
        restored = build_mlp(args.hidden, seed=args.seed + 1)
        nn.load_params(path, restored)
    x = gt.matrix("x", dtype="float32")
    same = np.array_equal(np.argmax(gc.function([x], restored(x))(x_test), axis=1), predictions)
    print(f"saved and reloaded: predictions {'identical' if same else 'DIFFER'}")
    if not same:
        return 1
    if accuracy < min_accuracy:
        print(f"test accuracy {accuracy:.4f} is below --min-accuracy {min_accuracy}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
