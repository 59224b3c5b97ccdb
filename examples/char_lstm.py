"""A character-level LSTM language model trained on the docstrings of Python's standard library.

Embedding -> LSTM (on ``graphc.scan``) -> dense logits over the characters, trained with Adam
and gradient-norm clipping on random windows of the text. Samples drawn one character at a time
(with ``LSTM.step``) are printed as training goes on: they turn from noise into words,
punctuation and docstring-like phrases.

    python examples/char_lstm.py                  # 600 steps, a few minutes on two cores
    python examples/char_lstm.py --steps 5        # a smoke test
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import time

import numpy as np

import graphc as gc
import graphc.nn as nn
import graphc.tensor as gt

MODULES = ["argparse", "collections", "contextlib", "csv", "dataclasses", "datetime", "decimal",
           "difflib", "email.message", "fractions", "functools", "gzip", "heapq", "http.client",
           "inspect", "itertools", "json", "logging", "pathlib", "pickle", "random", "re",
           "shutil", "statistics", "string", "subprocess", "tarfile", "textwrap", "threading",
           "typing", "unittest", "urllib.parse", "zipfile"]


def docstring_corpus() -> str:
    """The docstrings of the modules above and of their public classes, functions and methods,
    in printable ASCII (anything else becomes a space)."""
    docs = []
    for name in MODULES:
        module = importlib.import_module(name)
        objects = [module] + [obj for attr, obj in vars(module).items() if not attr.startswith("_")
                              and (inspect.isclass(obj) or inspect.isfunction(obj))]
        for obj in objects:
            members = vars(obj).values() if inspect.isclass(obj) else ()
            for item in (obj, *members):
                doc = inspect.getdoc(item) if callable(item) or item is obj else None
                if doc and doc not in docs:
                    docs.append(doc)
    text = "\n\n".join(docs)
    return "".join(ch if 32 <= ord(ch) < 127 or ch == "\n" else " " for ch in text)


class CharModel:
    """Embedding -> LSTM -> Dense logits; ``sampler()`` compiles one step of generation."""

    def __init__(self, n_chars: int, embed: int, hidden: int, seed: int):
        rng = np.random.default_rng(seed)
        self.embedding = nn.Embedding(n_chars, embed, rng=rng, dtype="float32")
        self.lstm = nn.LSTM(embed, hidden, rng=rng, dtype="float32")
        self.output = nn.Dense(hidden, n_chars, rng=rng, dtype="float32")
        self.layers = [self.embedding, self.lstm, self.output]

    @property
    def params(self):
        return [p for layer in self.layers for p in layer.params]

    def __call__(self, indices):
        return self.output(self.lstm(self.embedding(indices)))

    def sampler(self):
        """``step(char_indices, h, c) -> [probabilities, h, c]`` for a batch of one-char inputs."""
        chars = gt.ivector("chars")
        h, c = gt.matrix("h", dtype="float32"), gt.matrix("c", dtype="float32")
        h_new, c_new = self.lstm.step(self.embedding(chars), h, c)
        probs = gt.nnet.softmax(self.output(h_new))
        return gc.function([chars, h, c], [probs, h_new, c_new])


def sample(step, hidden: int, start: int, length: int, rng, temperature: float = 0.7):
    """``length`` character indices drawn one at a time from the model, after ``start``."""
    h = c = np.zeros((1, hidden), "float32")
    current, out = np.array([start], "int32"), []
    for _ in range(length):
        probs, h, c = step(current, h, c)
        logits = np.log(np.maximum(probs[0].astype("float64"), 1e-12)) / temperature
        p = np.exp(logits - logits.max())
        current = np.array([rng.choice(len(p), p=p / p.sum())], "int32")
        out.append(int(current[0]))
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--sample-every", type=int, default=150)
    parser.add_argument("--sample-length", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    text = docstring_corpus()
    chars = sorted(set(text))
    index = {ch: i for i, ch in enumerate(chars)}
    data = np.array([index[ch] for ch in text], "int32")
    print(f"corpus: {len(text):,} characters of docstrings from {len(MODULES)} modules, "
          f"{len(chars)} distinct")
    model = CharModel(len(chars), 32, args.hidden, args.seed)
    x = gt.imatrix("x")
    y = gt.imatrix("y")
    cost = nn.categorical_crossentropy(model(x), y, from_logits=True)
    updates = nn.adam(cost, model.params, learning_rate=0.005, clip_norm=5.0)
    train = gc.function([x, y], cost, updates=updates)
    step = model.sampler()
    rng = np.random.default_rng(args.seed)
    start, seconds = index["\n"], 0.0
    for i in range(1, args.steps + 1):
        offsets = rng.integers(0, len(data) - args.seq_len - 1, args.batch_size)
        windows = data[offsets[:, None] + np.arange(args.seq_len + 1)]
        tic = time.perf_counter()
        loss = float(train(windows[:, :-1], windows[:, 1:]))
        seconds += time.perf_counter() - tic
        if i % args.sample_every == 0 or i == args.steps:
            drawn = sample(step, args.hidden, start, args.sample_length, rng)
            print(f"\n--- step {i}, loss {loss:.3f} (nats per character), "
                  f"{seconds / i * 1e3:.0f} ms per step ---")
            print("".join(chars[k] for k in drawn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
