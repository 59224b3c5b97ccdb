"""Softmax (multinomial logistic) regression on scikit-learn's bundled 8x8 digits.

Builds the model symbolically, differentiates the cost with ``graphc.grad``, compiles a
training step whose SGD updates write to ``graphc.shared`` weights, and reports the test
accuracy. Runs in a few seconds; no download (the digits ship with scikit-learn).

    python examples/logistic_regression.py --epochs 20 --min-accuracy 0.93
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import graphc as gc
import graphc.tensor as gt


def load_digits_split(test_fraction: float, seed: int):
    """Digits scaled to [0, 1], shuffled and split into (train, test) pairs of (images, labels)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.data / 16.0).astype("float32")
    labels = digits.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(test_fraction * len(labels)))
    test, train = order[:n_test], order[n_test:]
    return (images[train], labels[train]), (images[test], labels[test])


def build_model(n_features: int, n_classes: int, learning_rate: float):
    """The compiled training step ``train(x, y) -> cost`` and ``predict(x) -> labels``."""
    x = gt.matrix("x", dtype="float32")
    y = gt.ivector("y")
    W = gc.shared(np.zeros((n_features, n_classes), "float32"), name="W")
    b = gc.shared(np.zeros(n_classes, "float32"), name="b")
    p = gt.nnet.softmax(gt.dot(x, W) + b)
    cost = gt.mean(gt.nnet.categorical_crossentropy(p, y))
    gW, gb = gc.grad(cost, [W, b])
    lr = np.float32(learning_rate)
    train = gc.function([x, y], cost, updates=[(W, W - lr * gW), (b, b - lr * gb)])
    predict = gc.function([x], gt.argmax(p, axis=1))
    return train, predict


def run_epoch(train, images, labels, batch_size: int, rng) -> float:
    """One pass of minibatch SGD over shuffled data; returns the mean training cost."""
    order = rng.permutation(len(labels))
    costs = []
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        costs.append(float(train(images[batch], labels[batch])) * len(batch))
    return sum(costs) / len(labels)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.5)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-accuracy", type=float, default=0.93,
                        help="exit with status 1 when the test accuracy is below this")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    (x_train, y_train), (x_test, y_test) = load_digits_split(args.test_fraction, args.seed)
    train, predict = build_model(x_train.shape[1], 10, args.learning_rate)
    rng = np.random.default_rng(args.seed)
    print(f"digits: {len(y_train)} training and {len(y_test)} test images, "
          f"{x_train.shape[1]} pixels each")
    for epoch in range(1, args.epochs + 1):
        loss = run_epoch(train, x_train, y_train, args.batch_size, rng)
        print(f"epoch {epoch:3d}  loss {loss:.4f}")
    accuracy = float(np.mean(predict(x_test) == y_test))
    print(f"test accuracy: {accuracy:.4f}")
    if accuracy < args.min_accuracy:
        print(f"test accuracy {accuracy:.4f} is below --min-accuracy {args.min_accuracy}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
