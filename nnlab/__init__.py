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

# The front door (nnlab.front) reads tables and draws: pandas and matplotlib are imported when one of
# these is first used, not by `import nnlab` (worker processes only train).
_FRONT = ("Comparison", "ResultsFolder", "compare", "load", "run")


def __getattr__(name: str):
    if name in _FRONT:
        from nnlab import front

        return getattr(front, name)
    raise AttributeError(f"module 'nnlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FRONT})


__all__ = [
    "ACTIVATIONS",
    "DERIVATIVES",
    "LOSSES",
    "LOSS_DERIVATIVES",
    "Comparison",
    "Gradients",
    "Network",
    "ResultsFolder",
    "TrainResult",
    "__version__",
    "backprop",
    "compare",
    "forward",
    "init_network",
    "landscape",
    "load",
    "loss_of",
    "network_from_arrays",
    "run",
    "train",
]
