"""Optimized barriers (Bezier curves), unit splitting, and the SGD escape test (issue 19)."""

import numpy as np
import pytest

from nnlab import forward, init_network, loss_of, network_from_arrays, tasks
from nnlab.landscape import certify
from nnlab.landscape.escape import escape, escape_seeds
from nnlab.landscape.paths import bezier
from nnlab.landscape.splitting import split_and_certify, split_unit
from nnlab.network import flat_params
from tests.test_landscape import GRID, X_REG, Y_GRID, Y_REG, swapped


def test_bezier_barrier_is_below_the_straight_one():
    """The 2-2-1 minimum p on the swap-symmetric grid and its mirror image swapped(p) (a minimum of
    the same loss, a different function: see test_landscape.test_equal_loss_different_function_are_two_
    optima): the straight line between them rises; the trained Bezier curve rises less (the straight
    line is an upper bound), both measured from the same ends, and the curve's ends are the minima."""
    p = certify(init_network([2, 2, 1], seeds=0), GRID, Y_GRID, threshold=1e-6).network
    q = certify(swapped(p), GRID, Y_GRID, threshold=1e-6).network
    path = bezier(p, q, GRID, Y_GRID, iters=300)
    np.testing.assert_allclose(path.loss[[0, -1]], loss_of(p, GRID, Y_GRID)[0], rtol=1e-9)
    np.testing.assert_allclose(path.straight[[0, -1]], path.loss[[0, -1]], rtol=1e-12)
    assert path.straight_bound > 0.01
    assert 0 <= path.height < 0.5 * path.straight_bound
    assert 0 < path.t_max < 1
    assert loss_of(path.peak, GRID, Y_GRID)[0] == pytest.approx(path.loss.max(), rel=1e-12)
    # The control point lowered the mean loss along the curve below the straight line's.
    assert path.loss.mean() < path.straight.mean()


def test_bezier_between_a_network_and_itself_is_flat():
    p = init_network([2, 3, 1], seeds=1)
    X, Y = tasks.xor()
    path = bezier(p, p, X, Y, iters=20, points=9)
    assert path.height == pytest.approx(0.0, abs=1e-12)
    assert path.straight_bound == pytest.approx(0.0, abs=1e-15)


def test_split_unit_keeps_the_function():
    net = init_network([3, 4, 5, 2], seeds=[0, 1])
    X = np.random.default_rng(0).normal(size=(6, 3))
    for layer, unit, a in ((1, 2, 0.3), (2, 0, 1.7)):
        wide = split_unit(net, layer=layer, unit=unit, a=a)
        assert wide.sizes[layer] == net.sizes[layer] + 1
        np.testing.assert_allclose(forward(wide, X)[-1], forward(net, X)[-1], rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="layer: expected a hidden layer in 1..2"):
        split_unit(net, layer=3)
    with pytest.raises(ValueError, match="unit: expected an int in 0..3"):
        split_unit(net, unit=4)


@pytest.mark.parametrize("a", [0.5, 1.5])
def test_splitting_a_width1_minimum_gives_a_saddle(a):
    """Fukumizu & Amari's answer for this minimum (worked out in test_landscape.test_duplicated_unit_
    of_a_minimum_is_a_saddle): the split point is critical with the same loss, and since
    B = mean(delta_L tanh''(z_1) [x, 1] [x, 1]^T) is indefinite there, the direction that moves the
    two copies' incoming weights apart has curvature a (1 - a) v xi^T B xi of both signs: a saddle of
    order 2 for every a outside {0, 1}; width 2 opens a way down from the width-1 minimum."""
    one = certify(network_from_arrays([[[1.0]], [[0.5]]], [[0.0], [0.0]]), X_REG, Y_REG, threshold=1e-6)
    assert one.kind.tolist() == ["minimum"]
    c = split_and_certify(one.network, X_REG, Y_REG, threshold=1e-6, a=a)
    assert c.kind.tolist() == ["saddle"] and c.saddle_order.tolist() == [2]
    assert c.displacement[0] <= 1e-8
    np.testing.assert_allclose(c.polished_loss, one.polished_loss, rtol=1e-12)


def test_escape_from_a_trap_and_from_a_plain_start():
    """The all-zero XOR network: per-sample SGD moves only the output bias there (f_1 = 0 and W_2 = 0
    make every other per-sample gradient 0), so no stream ever leaves: 0 of K, Wilson (0, hi). A
    random width-3 start is no trap: streams reach the threshold, each at its first epoch below it."""
    X, Y = tasks.xor()
    zero = network_from_arrays([np.zeros((2, 2)), np.zeros((2, 1))], [np.zeros(2), np.zeros(1)])
    e = escape(zero, X, Y, threshold=0.05, lr=0.2, budget=50, K=4, M=2, engine="numpy")
    assert e.escaped.tolist() == [False] * 4 and np.all(np.isnan(e.epochs))
    assert e.probability == 0 and e.lo == 0 and 0.4 < e.hi < 0.6
    assert e.loss_curve.shape == (4, 101)
    np.testing.assert_array_equal(e.seeds, escape_seeds(0, 4))

    start = init_network([2, 3, 1], seeds=3)
    e = escape(start, X, Y, threshold=0.05, lr=0.2, budget=300, K=4, engine="numpy")
    assert e.escaped.any()
    for k in np.flatnonzero(e.escaped):
        epoch = int(e.epochs[k])
        assert e.loss_curve[k, epoch] < 0.05 <= e.loss_curve[k, 1:epoch].min(initial=np.inf)
    again = escape(start, X, Y, threshold=0.05, lr=0.2, budget=300, K=4, engine="numpy")
    np.testing.assert_array_equal(again.loss_curve, e.loss_curve)
    assert flat_params(start).shape == (1, 13)
