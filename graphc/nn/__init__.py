"""``graphc.nn``: a small neural-network library on top of graphc.

Layers own shared parameters and build symbolic outputs (``layer(x, training=...)``);
initialisers, losses and optimisers (which return ``updates`` lists) are plain functions;
``fit`` runs a minibatch training loop; ``save_params``/``load_params`` store parameters.

>>> import graphc.nn as nn
>>> model = nn.Sequential(nn.Dense(64, 32, "relu", rng=0), nn.Dense(32, 10, rng=1))
"""

from . import init
from .conv import AvgPool2D, BatchNorm, Conv2D, MaxPool2D
from .init import glorot_normal, glorot_uniform, he_normal, he_uniform, orthogonal, zeros
from .io import load_params, save_params
from .layers import Activation, Dense, Dropout, Embedding, Flatten, Layer, Sequential
from .losses import binary_crossentropy, categorical_crossentropy, mse
from .optimizers import adam, clip_gradients, momentum, nesterov, rmsprop, sgd
from .recurrent import GRU, LSTM
from .training import Model, compile_model, fit

__all__ = [
    "init", "Layer", "Dense", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Activation",
    "Dropout", "BatchNorm", "Embedding", "LSTM", "GRU", "Sequential",
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "orthogonal", "zeros",
    "categorical_crossentropy", "binary_crossentropy", "mse",
    "sgd", "momentum", "nesterov", "adam", "rmsprop", "clip_gradients",
    "Model", "compile_model", "fit", "save_params", "load_params",
]
