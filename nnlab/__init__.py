"""nnlab: an experiment harness for optimization studies of feedforward networks trained with SGD."""

from nnlab import landscape  # the second-order room (nnlab.landscape.certify, ...)
from nnlab.network import (
    ACTIVATIONS,
    DERIVATIVES,
    LOSS_DERIVATIVES,
    LOSSES,
    Gradients,
    Network,
    backprop,
    forward,
    init_network,
    loss_of,
    network_from_arrays,
)
from nnlab.sgd import TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "DERIVATIVES",
    "LOSSES",
    "LOSS_DERIVATIVES",
    "Gradients",
    "Network",
    "TrainResult",
    "__version__",
    "backprop",
    "forward",
    "init_network",
    "landscape",
    "loss_of",
    "network_from_arrays",
    "train",
]
