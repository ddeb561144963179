"""Converged certificates (issue 19): a slow finite minimum is a minimum, a valley needs its
mechanism, the exact and the Hessian-vector-product paths agree, and certificates carry their
conditioning and reasons. The constructed cases of the older procedure are in test_landscape.py."""

import numpy as np
import pytest

from nnlab import init_network, network_from_arrays, tasks
from nnlab.landscape import Options, certify, hessian, lanczos, symmetry_directions
from nnlab.landscape.polish import Objective, higher_order, mechanism
from nnlab.network import flat_params

# A 1-1-1 tanh regression whose best fit has a steep unit (slope ~9): from (w, b, v, c) = (1, 0, 0.5, 0)
# the norm grows ~9x on the way, which the former rule ("the norm grew by > 50% and still grows at the
# end of the budget") called a valley whenever the budget ended on the way.
X_STEEP = np.linspace(-1, 1, 15)[:, None]
Y_STEEP = 0.8 * np.tanh(12 * X_STEEP - 1) + 0.1 * X_STEEP**2


def test_slow_finite_minimum_is_a_minimum_with_its_conditioning():
    """With a budget of 20 L-BFGS iterations the polish is still on its way out when the budget ends
    (the former procedure: ``valley``); Newton steps then reach the finite minimum, the continuation
    test cannot lower it, every eigenvalue is positive: a ``minimum``, the same one a generous budget
    reaches, with its conditioning lambda_min / lambda_max reported."""
    net = network_from_arrays([[[1.0]], [[0.5]]], [[0.0], [0.0]])
    short = certify(net, X_STEEP, Y_STEEP, threshold=1e-6, options=Options(lbfgs_iters=20))
    long = certify(net, X_STEEP, Y_STEEP, threshold=1e-6)
    assert short.kind.tolist() == long.kind.tolist() == ["minimum"]
    assert short.norm_end[0] > 5 * short.norm_start[0]
    np.testing.assert_allclose(flat_params(short.network), flat_params(long.network), rtol=1e-8)
    H = hessian(long.network, X_STEEP, Y_STEEP)[0]
    lam = np.linalg.eigvalsh(H)
    assert lam[0] > 0
    np.testing.assert_allclose(long.condition[0], lam[0] / lam[-1], rtol=1e-6)
    assert long.grad_norm[0] <= 1e-12 and long.saddle_order[0] == 0 and long.mechanism[0] == ""
    assert "positive" in long.reason[0] and not long.borderline[0]


def test_budget_ends_in_unconverged_never_another_kind():
    """A budget too small for the polish to decide (5 iterations, and one Hessian for Newton) ends
    in ``unconverged`` with the budget as its reason."""
    net = network_from_arrays([[[1.0]], [[0.5]]], [[0.0], [0.0]])
    c = certify(net, X_STEEP, Y_STEEP, threshold=1e-6, options=Options(lbfgs_iters=5, newton_iters=1))
    assert c.kind.tolist() == ["unconverged"] and c.reason[0].startswith("budget")


def test_mechanism_names_a_diverging_pair_and_a_saturating_unit():
    """mechanism reads the motion d: the outgoing weights of two units with nearly equal incoming
    weights moving apart (v_1 up, v_2 down) is a diverging pair; a unit's incoming weights growing
    while its pre-activations leave tanh's range on every sample they move is a saturating unit; a
    motion of the output bias alone is neither."""
    X = np.linspace(-1, 1, 7)[:, None]
    Y = np.exp(-4 * X**2)
    objective = Objective((1, 2, 1), True, "tanh", "tanh", "half_squared", X, Y)
    # Layout: w_1, w_2 | b_1, b_2 | v_1, v_2 | c.
    pair = np.array([2.0, 2.01, 0.3, 0.3, 40.0, -40.0, 0.1])
    assert mechanism(objective, pair, np.array([0, 0, 0, 0, 1.0, -1.0, 0])) == "diverging pair 0,1 of layer 1"
    step = np.array([60.0, 1.0, 30.0, 0.0, 0.5, 0.2, 0.1])  # unit 0: z = 60 x + 30, a step at x = -1/2
    assert mechanism(objective, step, np.array([2.0, 0, 1.0, 0, 0, 0, 0])) == "saturating unit 0 of layer 1"
    assert mechanism(objective, step, np.array([0, 0, 0, 0, 0, 0, 1.0])) == ""


def test_valley_of_the_width1_xor_network_from_two_seeds():
    """The 2-1-1 XOR network (see test_landscape.test_width1_xor_runs_off_into_a_valley) runs off
    from every seed tried, each a saturating unit; the polish stops when the ray test decides, long
    before the budget. The spectrum there is flat in the saturating directions."""
    X, Y = tasks.xor()
    c = certify(init_network([2, 1, 1], seeds=[0, 5]), X, Y, threshold=1e-3)
    assert c.kind.tolist() == ["valley", "valley"]
    assert c.mechanism.tolist() == ["saturating unit 0 of layer 1"] * 2
    assert np.all(c.iterations < 2000) and np.all(np.abs(c.lambda_min) <= 1e-10 * c.lambda_max)


@pytest.mark.parametrize("case", ["minimum", "saddle", "symmetry"])
def test_hvp_path_agrees_with_the_exact_path(case):
    """The same end points certified with the exact Hessian and with Hessian-vector products only
    (max_full = 1: MINRES-Newton and Lanczos): the same kind, the same polished loss, and the
    extreme eigenvalues within the Lanczos tolerance (2 lanczos_rtol s)."""
    if case == "minimum":  # the steep 1-1-1 minimum above
        net, X, Y = network_from_arrays([[[1.0]], [[0.5]]], [[0.0], [0.0]]), X_STEEP, Y_STEEP
    elif case == "saddle":  # the 1-1-1 chain at the origin: eigenvalues -c, c
        X, Y = tasks.chain(n=16)
        net = network_from_arrays([np.zeros((1, 1)), np.zeros((1, 1))])
    else:  # a deep linear least-squares minimum: 7 symmetry directions out of 9
        rng = np.random.default_rng(0)
        X = rng.normal(size=(12, 2))
        Y = np.sin(X[:, :1]) + 0.3 * X[:, 1:]
        net = init_network([2, 3, 1], seeds=0, hidden="identity", output="identity", bias=False)
    exact = certify(net, X, Y, threshold=1e-6)
    hvp_only = certify(net, X, Y, threshold=1e-6, options=Options(max_full=1))
    assert exact.kind.tolist() == hvp_only.kind.tolist() == [{"symmetry": "minimum"}.get(case, case)]
    np.testing.assert_allclose(hvp_only.polished_loss, exact.polished_loss, rtol=1e-9)
    assert hvp_only.n_symmetry.tolist() == exact.n_symmetry.tolist()
    if case == "symmetry":
        return  # minima along an orbit: the two polishes end at different points of it, other spectra
    s = np.abs(exact.spectrum[0]).max()
    tol = 2 * Options().lanczos_rtol * s + 1e-9 * s  # Lanczos, and two polished points' difference
    assert abs(hvp_only.lambda_min[0] - exact.lambda_min[0]) <= tol
    assert abs(hvp_only.lambda_max[0] - exact.lambda_max[0]) <= tol


def test_lanczos_matches_eigh_with_and_without_symmetries(rng):
    """curvature.lanczos (shifted, projected) against eigh of the full Hessian on the complement
    of the symmetry tangents, for a relu network (rescalings) and a tanh one (none)."""
    for hidden in ("relu", "tanh"):
        net = init_network([3, 6, 2], seeds=1, hidden=hidden, output="identity")
        X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
        T = symmetry_directions(net)[0]
        H = hessian(net, X, Y)[0]
        if T.shape[1]:
            U, sv, _ = np.linalg.svd(T, full_matrices=True)
            Q = U[:, np.count_nonzero(sv > 1e-10 * sv.max()) :]
            H = Q.T @ H @ Q
        full = np.linalg.eigvalsh(H)
        ext = lanczos(net, X, Y, k=4, rtol=1e-10, symmetry=T)
        assert ext.converged
        np.testing.assert_allclose(ext.smallest, full[:4], atol=ext.tol + 1e-12)
        assert ext.largest == pytest.approx(full[-1], rel=1e-9)


def test_higher_order_finds_no_descent_at_a_minimum():
    """higher_order at a least-squares minimum (convex: nothing goes downhill), handed one of its
    directions as if it were flat: no step or perturbation followed by descent lowers the loss, and
    the verdict says so and names what was tried."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2))
    Y = X @ np.array([[0.5], [-0.2]]) + 0.1 + 0.1 * rng.normal(size=(12, 1))
    net = network_from_arrays([rng.normal(size=(2, 1))], [rng.normal(size=1)], output="identity")
    c = certify(net, X, Y, threshold=1e-9)
    assert c.kind.tolist() == ["minimum"]
    objective = Objective((2, 1), True, "identity", "identity", "half_squared", X, Y)
    theta = flat_params(c.network)[0]
    found = higher_order(objective, theta, np.eye(3)[:, :1], np.zeros((3, 0)), 1e-9, Options(probes=4))
    assert found.order == 0 and found.drop <= 1e-12 and "4 perturbations" in found.tried
