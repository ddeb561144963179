"""Reproducible certificates: the same networks trained by the compiled engine and by the numpy
reference (equal to rounding, not bit for bit) get the same kinds and the same optima."""

import numpy as np

from nnlab.landscape import Options, certify, distinct_optima
from nnlab.network import flat_params, init_network
from nnlab.sgd import train
from nnlab.tasks import make_task


def test_compiled_and_numpy_runs_certify_alike():
    X, Y = make_task("teacher", {"n": 32, "dim": 3, "teacher_width": 4})
    net = init_network([3, 2, 1], seeds=range(12))
    kinds, optima, params = [], [], []
    for engine in ("auto", "numpy"):
        trained = train(net, X, Y, lr=0.1, epochs=200, batch_size=1, engine=engine).network
        params.append(flat_params(trained))
        c = certify(trained, X, Y, threshold=1e-4, options=Options(lbfgs_iters=300, newton_iters=10))
        kinds.append(list(c.kind))
        minima = np.flatnonzero(c.kind == "minimum")
        if len(minima):
            labels = distinct_optima(c.network.replica(list(minima)), X, loss=c.polished_loss[minima])
            optima.append(int(labels.max()) + 1)
        else:
            optima.append(0)
    assert np.abs(params[0] - params[1]).max() < 1e-10  # the premise: equal runs, to rounding
    assert kinds[0] == kinds[1]
    assert optima[0] == optima[1] and "minimum" in kinds[0]  # not vacuous: there are minima to group
