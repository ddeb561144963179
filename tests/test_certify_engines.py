"""Reproducible certificates: the same networks trained by the compiled engine and by the numpy
reference (equal to rounding, not bit for bit) get the same kinds and the same optima; a perturbation
at the rounding level changes no kind unless the certificate says the point is borderline, and a
point built to sit on a decision's tolerance is borderline."""

import numpy as np
import pytest

from nnlab.landscape import Options, certify, distinct_optima
from nnlab.network import flat_params, init_network, network_from_arrays, network_from_flat
from nnlab.sgd import train
from nnlab.tasks import make_task

OPTIONS = Options(lbfgs_iters=300, newton_iters=10)
X_T, Y_T = make_task("teacher", {"n": 32, "dim": 3, "teacher_width": 4})


def _optima(c) -> int:
    minima = np.flatnonzero(c.kind == "minimum")
    if not len(minima):
        return 0
    return int(distinct_optima(c.network.replica(list(minima)), X_T, loss=c.polished_loss[minima]).max()) + 1


@pytest.fixture(scope="module")
def trained():
    """Twelve 3-2-1 students of a 4-unit teacher, by each engine."""
    net = init_network([3, 2, 1], seeds=range(12))
    engines = ("auto", "numpy")
    return {e: train(net, X_T, Y_T, lr=0.1, epochs=200, batch_size=1, engine=e).network for e in engines}


def test_compiled_and_numpy_runs_certify_alike(trained):
    certs = {e: certify(net, X_T, Y_T, threshold=1e-4, options=OPTIONS) for e, net in trained.items()}
    params = [flat_params(net) for net in trained.values()]
    assert np.abs(params[0] - params[1]).max() < 1e-10  # the premise: equal runs, to rounding
    assert list(certs["auto"].kind) == list(certs["numpy"].kind)
    assert _optima(certs["auto"]) == _optima(certs["numpy"])
    assert "minimum" in certs["auto"].kind  # not vacuous: there are minima to group


def test_rounding_noise_changes_no_kind_unless_borderline(trained):
    """Each end point times (1 + 1e-13 z), z standard normal per parameter (two draws): a kind may
    change only where both certificates flag the point borderline; the optima do not change."""
    net = trained["auto"]
    theta = flat_params(net)
    base = certify(net, X_T, Y_T, threshold=1e-4, options=OPTIONS)
    rng = np.random.default_rng(13)
    for _ in range(2):
        noisy = theta * (1 + 1e-13 * rng.standard_normal(theta.shape))
        moved = network_from_flat(noisy, net.sizes, bias=True, hidden=net.hidden, output=net.output)
        c = certify(moved, X_T, Y_T, threshold=1e-4, options=OPTIONS)
        changed = c.kind != base.kind
        assert np.all(~changed | (c.borderline & base.borderline)), (list(base.kind), list(c.kind))
        np.testing.assert_array_equal(c.saddle_order, base.saddle_order)
        assert _optima(c) == _optima(base)


def _least_squares(ratio: float):
    """f = x . w (one identity layer, no bias) on X whose X^T X / n has the eigenvalues 1 and
    ``ratio``: the loss is quadratic with that constant Hessian, its minimum the least-squares w."""
    n = 8
    U, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((n, 2)))
    V = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    X = np.sqrt(n) * U @ np.diag(np.sqrt([1.0, ratio])) @ V.T
    z = np.random.default_rng(1).standard_normal((n, 1))
    residual = 0.2 * (z - U @ (U.T @ z))  # orthogonal to X's columns: what no w can fit
    return X, X @ np.array([[0.4], [-0.7]]) + residual


@pytest.mark.parametrize("ratio, borderline", [(1e-10, True), (1e-6, False)])
def test_an_eigenvalue_on_the_flat_tolerance_is_borderline(ratio, borderline):
    """lambda_min / lambda_max = flat (1e-10) exactly: whether it counts as flat (degenerate) or
    positive (minimum) is rounding's call, so every certificate, from several starts at the rounding
    level apart, says borderline. At 1e-6 the minimum is clear: the same kind, never borderline."""
    X, Y = _least_squares(ratio)
    start = np.array([[0.1], [0.2]])
    kinds = set()
    rng = np.random.default_rng(5)
    for k in range(3):
        noise = 1 + (1e-13 * rng.standard_normal(start.shape) if k else 0.0)
        net = network_from_arrays([start * noise], None, output="identity")
        c = certify(net, X, Y, threshold=1e-6, options=Options(lbfgs_iters=200, newton_iters=10))
        assert c.lambda_min[0] / c.lambda_max[0] == pytest.approx(ratio, rel=1e-4)
        assert bool(c.borderline[0]) is borderline, c.reason[0]
        kinds.add(str(c.kind[0]))
    assert kinds <= {"minimum", "degenerate"} if borderline else kinds == {"minimum"}
