"""Tests of nnlab.sgd: SGD by hand, the loss curve, replica independence, orders, minibatches,
divergence, the compiled engine against the numpy reference, argument errors, the kernels' tanh/exp.

Notation as in nnlab: R replicas, n samples, W_i (R, n_in, n_out). The first test that uses
engine="numba" compiles the kernels (cached on disk afterwards). The compiled engine has two layouts
(`nnlab.sgd.layout` chooses one from the shapes); the `engine` fixture runs a test with the numpy
reference and with each layout forced, whatever the shapes.
"""

import itertools
import math

import numpy as np
import pytest

from nnlab import backprop, init_network, loss_of, network_from_arrays, train
from nnlab import sgd as sgd_module
from nnlab._kernels import LANES, sigmoid_array, sqrt_array, tanh_array
from nnlab.sgd import layout as layout_of
from nnlab.sgd import shuffle_keys, shuffled_orders, train_memory

ACTS = ["identity", "relu", "sigmoid", "tanh"]
# Architectures: small, deep, wide (more units than a vector's 16 lanes, and not a multiple of 16),
# wide and deep.
ARCHS = {
    "small": [3, 5, 2],
    "deep": [2, 6, 5, 4, 1],
    "wide": [70, 60],
    "wide-deep": [2, 64, 37, 1],
}
LAYOUTS = ["lanes", "replica"]


def force_layout(monkeypatch, layout):
    """Make `train`'s compiled engine use ``layout`` for every shape."""
    monkeypatch.setattr(sgd_module, "layout", lambda sizes, batch_size: layout)


@pytest.fixture(params=["numpy", *LAYOUTS])
def engine(request, monkeypatch):
    """The engine to pass to `train`: the numpy reference, or the compiled one in a forced layout."""
    if request.param == "numpy":
        return "numpy"
    force_layout(monkeypatch, request.param)
    return "numba"


@pytest.fixture(params=LAYOUTS)
def layout(request, monkeypatch):
    """The compiled engine's layout, forced."""
    force_layout(monkeypatch, request.param)
    return request.param


def make_data(rng, n, d, out, lead=()):
    """Inputs with |x| about 1 whatever d (so plain SGD with lr ~ 0.05 is stable) and targets in
    (-0.5, 0.5)."""
    X = rng.uniform(-1.0, 1.0, size=(*lead, n, d)) * np.sqrt(3.0 / d)
    Y = rng.uniform(-0.5, 0.5, size=(*lead, n, out))
    return X, Y


def params(net):
    """Weights then biases, as one list of arrays."""
    return list(net.weights) + (list(net.biases) if net.biases is not None else [])


def assert_same_result(a, b):
    """Bitwise equality of two TrainResults (NaN equal to NaN)."""
    assert len(params(a.network)) == len(params(b.network))
    for pa, pb in zip(params(a.network), params(b.network), strict=True):
        np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(a.loss_curve, b.loss_curve)
    np.testing.assert_array_equal(a.grad_norm, b.grad_norm)
    np.testing.assert_array_equal(a.diverged, b.diverged)


def assert_params_close(net_a, net_b, rel=1e-12):
    """max |A - B| / max |A| <= rel for every layer's weights and biases."""
    for i, (pa, pb) in enumerate(zip(params(net_a), params(net_b), strict=True)):
        assert pa.shape == pb.shape
        scale = np.abs(pa).max()
        err = np.abs(pa - pb).max()
        assert err <= rel * scale or err == 0.0, f"parameter array {i}: {err} vs scale {scale}"


def manual_sgd(net, X, Y, order, *, lr, batch_size, loss="half_squared"):
    """Plain SGD written out with `backprop`, one replica at a time: the definition `train` follows.

    order (epochs, n) or (R, epochs, n). Returns the final network and the loss curve
    (R, epochs + 1).
    Every batch, including a partial last one, steps along the gradient of its own mean loss.
    """
    R = net.n_replicas
    X3 = np.broadcast_to(X, (R, *X.shape[-2:]))
    Y3 = np.broadcast_to(Y, (R, *Y.shape[-2:]))
    order3 = np.broadcast_to(order, (R, *order.shape[-2:]))
    epochs, n = order3.shape[1:]
    weights, biases, curves = [], [], []
    for r in range(R):
        W = [w[r] for w in net.weights]
        b = None if net.biases is None else [v[r] for v in net.biases]

        def current(W=W, b=b):
            return network_from_arrays(W, b, hidden=net.hidden, output=net.output)

        curve = [loss_of(current(), X3[r], Y3[r], loss=loss)[0]]
        for e in range(epochs):
            for start in range(0, n, batch_size):
                idx = order3[r, e, start : start + batch_size]
                g = backprop(current(), X3[r][idx], Y3[r][idx], loss=loss)
                W[:] = [w - lr * gw[0] for w, gw in zip(W, g.weights, strict=True)]
                if b is not None:
                    b[:] = [v - lr * gb[0] for v, gb in zip(b, g.biases, strict=True)]
            curve.append(loss_of(current(), X3[r], Y3[r], loss=loss)[0])
        weights.append(W)
        biases.append(b)
        curves.append(curve)
    stacked = network_from_arrays(
        [np.stack(ws) for ws in zip(*weights, strict=True)],
        None if net.biases is None else [np.stack(bs) for bs in zip(*biases, strict=True)],
        hidden=net.hidden,
        output=net.output,
    )
    return stacked, np.array(curves)


# ------------------------------------------------------------------------------------------------
# SGD by hand


def test_one_sgd_step_by_hand(engine):
    """sizes [1, 1, 1], tanh, one sample, half_squared loss, lr 0.1, one step."""
    x, y, lr = 0.8, 0.5, 0.1
    w1, b1, w2, b2 = 0.5, 0.1, -0.3, 0.2
    # Forward pass.
    z1 = x * w1 + b1  # 0.5
    f1 = math.tanh(z1)  # 0.46211715726000974
    z2 = f1 * w2 + b2  # 0.06136485282199711
    f2 = math.tanh(z2)  # 0.06128794257954718
    loss_before = 0.5 * (y - f2) ** 2  # 0.09623413466304336
    # Output delta dLoss/dz2 = (f2 - y) * tanh'(z2), with tanh' = 1 - f2^2.
    d2 = (f2 - y) * (1.0 - f2**2)  # -0.437064161967225
    # Hidden delta: back through w2, then tanh'(z1) = 1 - f1^2.
    d1 = (1.0 - f1**2) * d2 * w2  # 0.1031184358019331
    # Gradients of a one-sample batch: dW_i = f_{i-1} * d_i, db_i = d_i.
    new_w1 = w1 - lr * x * d1  # 0.49175052513584533
    new_b1 = b1 - lr * d1  # 0.0896881564198067
    new_w2 = w2 - lr * f1 * d2  # -0.27980251519314775
    new_b2 = b2 - lr * d2  # 0.2437064161967225
    # The loss after the step, by hand again.
    f2_new = math.tanh(math.tanh(x * new_w1 + new_b1) * new_w2 + new_b2)
    loss_after = 0.5 * (y - f2_new) ** 2

    net = network_from_arrays([[[w1]], [[w2]]], [[b1], [b2]])
    X, Y = np.array([[x]]), np.array([[y]])
    np.testing.assert_allclose([d[0, 0, 0] for d in backprop(net, X, Y).deltas], [d1, d2], rtol=0, atol=1e-15)

    result = train(net, X, Y, lr=lr, epochs=1, order=[[0]], engine=engine)
    got = [p.ravel()[0] for p in params(result.network)]
    np.testing.assert_allclose(got, [new_w1, new_w2, new_b1, new_b2], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.loss_curve, [[loss_before, loss_after]], rtol=1e-12)
    assert not result.diverged[0]


# ------------------------------------------------------------------------------------------------
# The loss curve and the gradient norm


@pytest.mark.parametrize("bias", [True, False])
def test_loss_curve_and_grad_norm(rng, engine, bias):
    sizes, n, epochs = [2, 5, 3, 1], 12, 3
    net = init_network(sizes, seeds=[1, 2, 3], bias=bias)
    kept = [p.copy() for p in params(net)]
    X, Y = make_data(rng, n, sizes[0], sizes[-1])
    result = train(net, X, Y, lr=0.1, epochs=epochs, batch_size=2, engine=engine)

    assert result.loss_curve.shape == (3, epochs + 1)
    assert result.grad_norm.shape == (3,) and result.diverged.shape == (3,)
    assert result.diverged.dtype == bool and not result.diverged.any()
    np.testing.assert_allclose(result.loss_curve[:, 0], loss_of(net, X, Y), rtol=1e-12)
    np.testing.assert_allclose(result.loss_curve[:, -1], loss_of(result.network, X, Y), rtol=1e-12)
    g = backprop(result.network, X, Y)
    squares = sum((gp**2).sum(axis=tuple(range(1, gp.ndim))) for gp in params(g))
    np.testing.assert_allclose(result.grad_norm, np.sqrt(squares), rtol=1e-11)
    assert (result.loss_curve[:, -1] < result.loss_curve[:, 0]).all()  # SGD did something
    # train does not modify its input network, and keeps its seeds and activations.
    for p, k in zip(params(net), kept, strict=True):
        np.testing.assert_array_equal(p, k)
    assert result.network.seeds == (1, 2, 3)
    assert (result.network.hidden, result.network.output) == (net.hidden, net.output)


# ------------------------------------------------------------------------------------------------
# A replica's trajectory depends only on its seed


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("sizes", [ARCHS["small"], ARCHS["wide-deep"]], ids=["small", "wide-deep"])
def test_replica_trained_among_others_equals_alone(rng, engine, sizes, batch_size):
    X, Y = make_data(rng, 16, sizes[0], sizes[-1])
    kwargs = dict(lr=0.05, epochs=2, batch_size=batch_size, engine=engine)
    # 7 in the middle of three replicas, and 7 as the 18th replica (second chunk of 16 lanes).
    for seeds, r in (([3, 7, 11], 1), ([*range(20, 37), 7], 17)):
        together = train(init_network(sizes, seeds=seeds), X, Y, **kwargs)
        alone = train(init_network(sizes, seeds=7), X, Y, **kwargs)
        for pt, pa in zip(params(together.network), params(alone.network), strict=True):
            np.testing.assert_array_equal(pt[r], pa[0])
        np.testing.assert_array_equal(together.loss_curve[r], alone.loss_curve[0])
        np.testing.assert_array_equal(together.grad_norm[r], alone.grad_norm[0])


@pytest.mark.parametrize("data", ["shared", "per_replica"])
def test_a_run_depends_only_on_its_seed_not_on_chunks_or_threads(rng, layout, data):
    """Seeds split into jobs of other sizes, in another order, on one thread or two: bit for bit the
    same runs (a sweep's numbers cannot depend on how it was chunked or parallelized)."""
    sizes, R = [5, 40, 3], 20
    lead = () if data == "shared" else (R,)
    X, Y = make_data(rng, 23, sizes[0], sizes[-1], lead)
    seeds = list(range(100, 100 + R))
    kwargs = dict(lr=0.05, epochs=2, batch_size=5)
    whole = train(init_network(sizes, seeds=seeds), X, Y, **kwargs)
    for part, threads in (([13, 2, 7], 1), (list(range(R))[::-1], 2), ([19], None)):
        Xp, Yp = (X, Y) if data == "shared" else (X[part], Y[part])
        some = train(init_network(sizes, seeds=[seeds[i] for i in part]), Xp, Yp, threads=threads, **kwargs)
        for pw, ps in zip(params(whole.network), params(some.network), strict=True):
            np.testing.assert_array_equal(pw[part], ps)
        np.testing.assert_array_equal(whole.loss_curve[part], some.loss_curve)
        np.testing.assert_array_equal(whole.grad_norm[part], some.grad_norm)


def test_memory_of_a_wide_job_is_bounded():
    """32 seeds of a 1024-unit digits network, 150 epochs: well under a hundred MB of the engine's
    own (the weights alone are 32 x 76,810 numbers, 20 MB per copy)."""
    parts = train_memory([64, 1024, 10], replicas=32, n=1797, epochs=150, batch_size=16)
    assert set(parts) == {"parameters", "orders", "curves", "buffers", "data"}
    assert 2 * 32 * 76_810 * 8 <= parts["parameters"] < 1.01 * 2 * 32 * 76_810 * 8
    assert parts["orders"] <= 8 * sgd_module.ORDER_BUDGET + 8 * 32 * 1797
    assert sum(parts.values()) < 100e6
    # The lanes: 4096 XOR seeds over 2000 epochs keep their curve (65 MB), not much else.
    small = train_memory([2, 2, 1], replicas=4096, n=4, epochs=2000)
    assert small["curves"] < 80e6 and small["parameters"] < 1e6


def test_a_batch_larger_than_the_data_is_one_full_batch(rng, engine):
    """batch_size 10**6 on 9 samples: one step per epoch on the mean over all 9 (and no buffer of a
    million rows)."""
    X, Y = make_data(rng, 9, 3, 2)
    net = init_network([3, 64, 64, 2], seeds=[1, 2])
    huge = train(net, X, Y, lr=0.05, epochs=2, batch_size=10**6, engine=engine)
    whole = train(net, X, Y, lr=0.05, epochs=2, batch_size=9, engine=engine)
    assert_same_result(huge, whole)
    assert train_memory([3, 64, 64, 2], replicas=2, n=9, epochs=2, batch_size=10**6)["buffers"] < 10e6


def test_the_layout_depends_on_the_shapes_only():
    """Small networks take the lanes; a wide layer with a minibatch, or a large network, the replica
    layout. (`layout` takes no replica count: it cannot depend on it.)"""
    assert layout_of([2, 2, 1], 1) == "lanes"
    assert layout_of([2, 16, 16, 16, 16, 16, 16, 16, 16, 1], 1) == "lanes"
    assert layout_of([2, 128, 1], 32) == "lanes"
    assert layout_of([64, 64, 10], 1) == "lanes"
    assert layout_of([2, 32, 32, 1], 4) == "lanes"
    assert layout_of([64, 32, 10], 2) == "replica"
    assert layout_of([64, 1024, 10], 16) == "replica"
    assert layout_of([64, 256, 256, 10], 64) == "replica"
    assert layout_of([2, 128, 128, 128, 1], 1) == "replica"


def test_auto_engine_and_threads_are_the_compiled_engine(rng, layout):
    sizes = ARCHS["small"]
    X, Y = make_data(rng, 16, sizes[0], sizes[-1])
    net = init_network(sizes, seeds=range(10))
    compiled = train(net, X, Y, lr=0.05, epochs=2, engine="numba")
    assert_same_result(train(net, X, Y, lr=0.05, epochs=2), compiled)
    assert_same_result(train(net, X, Y, lr=0.05, epochs=2, engine="numba", threads=1), compiled)


# ------------------------------------------------------------------------------------------------
# Sample orders


def test_shuffled_orders_are_permutations_that_depend_on_the_seed_only():
    seeds, epochs, n = [0, 4, 17], 5, 11
    orders = shuffled_orders(seeds, epochs, n)
    assert orders.shape == (3, epochs, n) and orders.dtype == np.int64
    # Every row is a permutation of range(n), and the epochs differ.
    np.testing.assert_array_equal(np.sort(orders, axis=2), np.broadcast_to(np.arange(n), orders.shape))
    assert len({tuple(row) for row in orders.reshape(-1, n)}) == orders.shape[0] * epochs
    # A replica's order depends on its seed only, not on the other seeds or their position.
    np.testing.assert_array_equal(shuffled_orders([17], epochs, n)[0], orders[2])
    np.testing.assert_array_equal(shuffled_orders(seeds, epochs, n), orders)
    # Any slice of epochs can be drawn alone.
    sliced = np.concatenate(
        [shuffled_orders(seeds, 2, n), shuffled_orders(seeds, 3, n, first_epoch=2)], axis=1
    )
    np.testing.assert_array_equal(sliced, orders)
    # The keys come from the seed's SeedSequence with spawn_key (1,), not the initialization's (0,).
    keys = shuffle_keys([4])
    assert keys.dtype == np.uint64
    assert keys[0] == np.random.SeedSequence(4, spawn_key=(1,)).generate_state(1, np.uint64)[0]
    assert keys[0] != np.random.SeedSequence(4, spawn_key=(0,)).generate_state(1, np.uint64)[0]


def test_shuffled_orders_are_uniform_enough():
    """Each sample lands in each position about equally often over many epochs (chi-square-like
    bound: a broken shuffle, e.g. an off-by-one in Fisher-Yates, fails this)."""
    n, epochs = 6, 6000
    counts = np.zeros((n, n))
    order = shuffled_orders([123], epochs, n)[0]
    for pos in range(n):
        counts[pos] = np.bincount(order[:, pos], minlength=n)
    expected = epochs / n
    assert np.abs(counts - expected).max() < 6 * np.sqrt(expected)


def test_default_shuffling_is_shuffled_orders_of_the_seeds(rng, engine):
    sizes, n, epochs = [2, 4, 1], 10, 3
    seeds = [3, 7, 11]
    X, Y = make_data(rng, n, sizes[0], sizes[-1])
    net = init_network(sizes, seeds=seeds)
    order = shuffled_orders(seeds, epochs, n)
    kwargs = dict(lr=0.1, epochs=epochs, engine=engine)
    default = train(net, X, Y, **kwargs)
    assert_same_result(train(net, X, Y, order=order, **kwargs), default)
    # Explicit seeds override the network's own.
    swapped = train(net, X, Y, seeds=[11, 7, 3], **kwargs)
    order_swapped = shuffled_orders([11, 7, 3], epochs, n)
    assert_same_result(train(net, X, Y, order=order_swapped, **kwargs), swapped)
    # Without seeds on the network, replica r shuffles with seed r.
    bare = network_from_arrays(net.weights, net.biases)
    order_range = shuffled_orders(range(3), epochs, n)
    assert_same_result(train(bare, X, Y, **kwargs), train(bare, X, Y, order=order_range, **kwargs))


def test_order_generated_in_slices_of_epochs(rng, engine, monkeypatch):
    """A tiny order budget makes train draw the shuffles one epoch at a time: same trajectories."""
    sizes, n = [2, 4, 1], 10
    X, Y = make_data(rng, n, sizes[0], sizes[-1])
    net = init_network(sizes, seeds=[3, 7, 11])
    whole = train(net, X, Y, lr=0.1, epochs=3, engine=engine)
    monkeypatch.setattr(sgd_module, "ORDER_BUDGET", 1)
    assert_same_result(train(net, X, Y, lr=0.1, epochs=3, engine=engine), whole)


@pytest.mark.parametrize("shape", ["shared", "per_replica"])
def test_explicit_order_is_followed(rng, engine, shape):
    sizes, n, epochs, R = [2, 4, 1], 8, 2, 3
    X, Y = make_data(rng, n, sizes[0], sizes[-1])
    net = init_network(sizes, seeds=[1, 2, 3])
    lead = (epochs,) if shape == "shared" else (R, epochs)
    # Not permutations: repeats and omissions are allowed, and must be followed as given.
    order = rng.integers(0, n, size=(*lead, n))
    result = train(net, X, Y, lr=0.1, epochs=epochs, order=order, engine=engine)
    expected, curve = manual_sgd(net, X, Y, order, lr=0.1, batch_size=1)
    assert_params_close(result.network, expected, rel=1e-12)
    np.testing.assert_allclose(result.loss_curve, curve, rtol=1e-12)
    if shape == "per_replica":
        # Each replica followed its own row: replica 0 alone with order[0] gives the same.
        alone = train(net.replica(0), X, Y, lr=0.1, epochs=epochs, order=order[0], engine=engine)
        for pa, pr in zip(params(alone.network), params(result.network), strict=True):
            np.testing.assert_array_equal(pa[0], pr[0])


@pytest.mark.parametrize("data", ["shared", "per_replica"])
def test_minibatches_with_a_partial_last_batch(rng, engine, data):
    """n = 10, batch_size = 4: batches of 4, 4 and 2, each stepping along its own mean gradient."""
    sizes, n, epochs, R = [3, 4, 2], 10, 2, 3
    lead = () if data == "shared" else (R,)
    X, Y = make_data(rng, n, sizes[0], sizes[-1], lead)
    net = init_network(sizes, seeds=[4, 5, 6])
    order = shuffled_orders(net.seeds, epochs, n)
    result = train(net, X, Y, lr=0.2, epochs=epochs, batch_size=4, engine=engine)
    expected, curve = manual_sgd(net, X, Y, order, lr=0.2, batch_size=4)
    assert_params_close(result.network, expected, rel=1e-12)
    np.testing.assert_allclose(result.loss_curve, curve, rtol=1e-12)
    # A last batch averaged over 4 instead of its 2 samples would be a different trajectory.
    assert [len(order[0, 0, s : s + 4]) for s in range(0, n, 4)] == [4, 4, 2]


# ------------------------------------------------------------------------------------------------
# Divergence


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("sizes", [ARCHS["deep"], ARCHS["wide-deep"]], ids=["deep", "wide-deep"])
def test_diverged_from_the_start_is_frozen(rng, engine, sizes, batch_size):
    """Replica 1 starts with weights so large that its output overflows (identity activations):
    it is flagged, its weights never change, and the other replicas train as if alone."""
    seeds = [3, 7, 11]
    X, Y = make_data(rng, 12, sizes[0], sizes[-1])
    start = init_network(sizes, seeds=seeds, hidden="identity", output="identity")
    huge = [W.copy() for W in start.weights]
    for W in huge:
        W[1] *= 1e200  # f_2 ~ 1e400 = inf
    net = network_from_arrays(huge, start.biases, hidden="identity", output="identity")
    kwargs = dict(lr=0.05, epochs=2, batch_size=batch_size, engine=engine)
    result = train(net, X, Y, seeds=seeds, **kwargs)

    np.testing.assert_array_equal(result.diverged, [False, True, False])
    assert not np.isfinite(result.loss_curve[1]).any()
    for W, Wr in zip(net.weights, result.network.weights, strict=True):
        np.testing.assert_array_equal(Wr[1], W[1], err_msg="the diverged replica's weights moved")
    for b in result.network.biases:
        np.testing.assert_array_equal(b[1], 0.0, err_msg="the diverged replica's biases moved")
    for r in (0, 2):
        alone = train(net.replica(r), X, Y, seeds=[seeds[r]], **kwargs)
        for pa, pr in zip(params(alone.network), params(result.network), strict=True):
            np.testing.assert_array_equal(pr[r], pa[0])
        np.testing.assert_array_equal(result.loss_curve[r], alone.loss_curve[0])
        assert np.isfinite(result.loss_curve[r]).all()


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("sizes", [ARCHS["deep"], ARCHS["wide-deep"]], ids=["deep", "wide-deep"])
def test_diverging_during_training_stops_updating(rng, engine, sizes, batch_size):
    """Replica 1 trains on inputs 1e3 times larger: SGD blows up within the first epoch. Once it is
    flagged it stops updating (two more epochs leave it as it was), and the others are untouched."""
    R, n = 3, 12
    X, Y = make_data(rng, n, sizes[0], sizes[-1], (R,))
    X[1] *= 1e3
    net = init_network(sizes, seeds=[3, 7, 11], hidden="identity", output="identity")
    kwargs = dict(lr=0.05, batch_size=batch_size, engine=engine)
    short = train(net, X, Y, epochs=2, **kwargs)
    longer = train(net, X, Y, epochs=4, **kwargs)

    np.testing.assert_array_equal(short.diverged, [False, True, False])
    np.testing.assert_array_equal(longer.diverged, [False, True, False])
    assert np.isfinite(short.loss_curve[1, 0]) and not np.isfinite(short.loss_curve[1, -1])
    for ps, pl in zip(params(short.network), params(longer.network), strict=True):
        np.testing.assert_array_equal(pl[1], ps[1], err_msg="the diverged replica kept updating")
    for r in (0, 2):
        alone = train(net.replica(r), X[r], Y[r], epochs=4, **kwargs)
        for pa, pr in zip(params(alone.network), params(longer.network), strict=True):
            np.testing.assert_array_equal(pr[r], pa[0])
        assert np.isfinite(longer.loss_curve[r]).all()


# ------------------------------------------------------------------------------------------------
# The compiled engine computes the reference trajectories


def assert_compiled_matches_reference(net, X, Y, **kwargs):
    """The compiled engine's TrainResult against the numpy reference's, to rounding."""
    fast = train(net, X, Y, engine="numba", **kwargs)
    reference = train(net, X, Y, engine="numpy", **kwargs)
    np.testing.assert_array_equal(fast.diverged, reference.diverged)
    assert_params_close(reference.network, fast.network, rel=1e-12)
    np.testing.assert_allclose(fast.loss_curve, reference.loss_curve, rtol=1e-12)
    np.testing.assert_allclose(fast.grad_norm, reference.grad_norm, rtol=1e-10, atol=1e-15)


def pairwise_cases(axes):
    """A covering design of strength 2 for up to five axes of at most 4 values each, plus 2-valued
    axes folded two to a column: 16 cases in which every pair of values of any two axes occurs.

    The rows (a, b) of GF(4)^2 with columns a, b, a + b, a + 2b, a + 3b (arithmetic in GF(4)) form
    an orthogonal array OA(16, 5, 4, 2): any two columns take each of the 16 pairs of values once.
    Axes are a list of lists; axes after the first two are 2-valued and paired into the remaining
    columns (a column's value 0..3 encodes two bits, one per axis)."""
    mul = [[0, 0, 0, 0], [0, 1, 2, 3], [0, 2, 3, 1], [0, 3, 1, 2]]  # GF(4), x^2 = x + 1
    rows = [(a, b, a ^ b, a ^ mul[2][b], a ^ mul[3][b]) for a in range(4) for b in range(4)]
    cases = []
    for row in rows:
        values = [axes[0][row[0] % len(axes[0])], axes[1][row[1] % len(axes[1])]]
        for i, axis in enumerate(axes[2:]):
            column, bit = row[2 + i // 2], i % 2
            values.append(axis[(column >> bit) & 1])
        cases.append(tuple(values))
    return cases


ENGINE_AXES = [
    ACTS,  # hidden
    ACTS,  # output
    [ARCHS["deep"], ARCHS["wide"]],
    ["half_squared", "squared"],
    [True, False],  # bias
    [1, 3],  # batch_size
    LAYOUTS,
]
ENGINE_CASES = pairwise_cases(ENGINE_AXES)


def test_the_engine_cases_cover_every_pair_of_values():
    """Every value of every axis, and every pair of values of two axes, occurs in ENGINE_CASES
    (16 cases instead of the 512 of the full product)."""
    assert len(ENGINE_CASES) == 16
    for i, j in itertools.combinations(range(len(ENGINE_AXES)), 2):
        seen = {(str(case[i]), str(case[j])) for case in ENGINE_CASES}
        assert seen == {(str(a), str(b)) for a in ENGINE_AXES[i] for b in ENGINE_AXES[j]}, (i, j)


@pytest.mark.parametrize(
    ("hidden", "output", "sizes", "loss", "bias", "batch_size", "layout_name"), ENGINE_CASES
)
def test_compiled_engine_matches_numpy_reference(
    rng, monkeypatch, sizes, hidden, output, loss, bias, batch_size, layout_name
):
    force_layout(monkeypatch, layout_name)
    n, epochs = 16, 2
    X, Y = make_data(rng, n, sizes[0], sizes[-1])
    net = init_network(sizes, seeds=[0, 1, 2], hidden=hidden, output=output, bias=bias)
    # lr small enough for SGD to be stable on every architecture (width-64 relu layers need 0.01):
    # on an unstable trajectory rounding differences (the kernels' own tanh/exp, FMA, summation
    # order) grow exponentially and no fixed bound like 1e-12 means anything.
    lr = 0.05 if max(sizes) < 64 else 0.01
    assert_compiled_matches_reference(net, X, Y, lr=lr, epochs=epochs, batch_size=batch_size, loss=loss)


def classification_data(rng, n, d, out, loss):
    """Inputs as `make_data`; targets one-hot (cross_entropy), 0/1 (one output) or +-1 (hinge)."""
    X, _ = make_data(rng, n, d, out)
    if loss == "hinge":
        return X, rng.choice([-1.0, 1.0], size=(n, out))
    if out == 1:
        return X, rng.integers(0, 2, size=(n, 1)).astype(np.float64)
    return X, np.eye(out)[rng.integers(0, out, size=n)]


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize(
    ("output", "loss", "out"),
    [
        ("softmax", "cross_entropy", 3),
        ("softmax", "cross_entropy", 1),
        ("sigmoid", "cross_entropy", 1),
        ("identity", "hinge", 2),
        ("tanh", "hinge", 1),
    ],
)
@pytest.mark.parametrize("arch", ["deep", "wide-deep"])
def test_classification_losses_match_numpy_reference(rng, layout, arch, output, loss, out, batch_size):
    sizes = [*ARCHS[arch][:-1], out]
    X, Y = classification_data(rng, 21, sizes[0], out, loss)
    net = init_network(sizes, seeds=[0, 1, 2], hidden="tanh", output=output)
    lr = 0.05 if max(sizes) < 64 else 0.02
    assert_compiled_matches_reference(net, X, Y, lr=lr, epochs=3, batch_size=batch_size, loss=loss)


def test_class_labels_train_like_one_hot_rows(rng, layout):
    X, Y = classification_data(rng, 12, 3, 4, "cross_entropy")
    net = init_network([3, 5, 4], seeds=[1, 2], output="softmax")
    kwargs = dict(lr=0.1, epochs=2, batch_size=3, loss="cross_entropy")
    assert_same_result(train(net, X, Y.argmax(axis=1), **kwargs), train(net, X, Y, **kwargs))


def test_a_confident_wrong_softmax_is_a_finite_loss_not_a_divergence(layout):
    """Logits 800 apart: softmax rounds the right class to 0 and -log f to inf; the loss computed
    from z is 800 and SGD goes on (delta_L = f - y stays bounded)."""
    net = network_from_arrays([np.array([[[400.0, -400.0]]])], [np.zeros((1, 2))], output="softmax")
    X, Y = np.ones((1, 1)), np.array([[0.0, 1.0]])
    result = train(net, X, Y, lr=0.1, epochs=2, order=[[0], [0]], loss="cross_entropy", engine="numba")
    assert not result.diverged[0]
    assert result.loss_curve[0, 0] == pytest.approx(800.0, rel=1e-15)
    reference = train(net, X, Y, lr=0.1, epochs=2, order=[[0], [0]], loss="cross_entropy", engine="numpy")
    np.testing.assert_allclose(result.loss_curve, reference.loss_curve, rtol=1e-14)


# ------------------------------------------------------------------------------------------------
# Bad arguments: a ValueError whose message names the argument.


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"lr": "0.1"}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -2}, "batch_size"),
        ({"loss": "squard"}, r"loss 'squard'.*cross_entropy, half_squared, hinge, squared"),
        ({"engine": "torch"}, r"engine 'torch'.*auto, numba, numpy"),
        ({"threads": 0}, "threads"),
        ({"order": np.zeros((2, 5), dtype=int)}, "order"),  # epochs is 3
        ({"order": np.zeros((3, 4), dtype=int)}, "order"),  # n is 5
        ({"order": np.zeros((2, 3, 5), dtype=int)}, "order"),  # R is 3
        ({"order": np.full((3, 5), 5)}, "order"),  # index n is out of range
        ({"order": np.full((3, 5), -1)}, "order"),
        ({"order": np.zeros((3, 5))}, "order"),  # float dtype
        ({"seeds": [1, 2]}, "seeds"),
        ({"seeds": [1, 2, -3]}, "seeds"),
        ({"seeds": 4}, "seeds"),  # one seed for three replicas
        ({"X": np.zeros((4, 2))}, "Y"),  # 4 samples in X, 5 in Y
        # Shapes are named as the caller gave them, never as the internal (1, n, d) view.
        ({"Y": np.zeros((5, 2))}, r"^Y: expected shape \(n, 1\) or \(R=3, n, 1\), got \(5, 2\)$"),
        ({"X": np.zeros((5, 3))}, r"^X: expected shape \(n, 2\) or \(R=3, n, 2\), got \(5, 3\)$"),
        ({"X": np.zeros(5)}, r"got \(5,\)$"),
        # NaN or inf in the data would make every loss NaN, read as a diverged run.
        ({"X": np.where(np.arange(10).reshape(5, 2) == 7, np.nan, 0.0)}, r"^X: .*got nan at index \(3, 1\)$"),
        ({"Y": np.full((5, 1), np.inf)}, r"^Y: expected finite numbers, got inf at index \(0, 0\)$"),
        ({"X": np.zeros((2, 5, 2))}, "X"),  # two data replicas for three network replicas
        ({"X": np.zeros((0, 2)), "Y": np.zeros((0, 1))}, "X"),
        ({"net": "not a network"}, "net"),
    ],
)
def test_train_bad_arguments(kwargs, match):
    args = {
        "net": init_network([2, 3, 1], seeds=[0, 1, 2]),
        "X": np.zeros((5, 2)),
        "Y": np.zeros((5, 1)),
        "lr": 0.1,
        "epochs": 3,
        "engine": "numpy",
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        train(args.pop("net"), args.pop("X"), args.pop("Y"), **args)


# ------------------------------------------------------------------------------------------------
# The kernels' own tanh and exp


SPECIAL = [0.0, 0.625, -0.625, np.nextafter(0.625, 0.0), -np.nextafter(0.625, 0.0), 1e-300, 1e-12]


def test_kernel_tanh_matches_numpy():
    x = np.concatenate(
        [
            SPECIAL,
            np.linspace(-30.0, 30.0, 4001),
            np.geomspace(1e-8, 1.0, 200),
            [0.17334533345, 19.0, 22.0, 700.0],
        ]
    )
    x = np.concatenate([x, -x])
    np.testing.assert_allclose(tanh_array(x), np.tanh(x), rtol=1e-15, atol=0)
    # Saturation, infinities and NaN; an odd function down to the sign of zero.
    saturated = tanh_array(np.array([40.0, -40.0, np.inf, -np.inf]))
    np.testing.assert_array_equal(saturated, [1.0, -1.0, 1.0, -1.0])
    assert np.isnan(tanh_array(np.array([np.nan]))).all()
    assert np.signbit(tanh_array(np.array([-0.0])))[0]


def test_kernel_sqrt_is_ieee_sqrt():
    """Adam's square root by Newton's iteration equals the correctly rounded one, bit for bit, over
    the whole range (log-uniform from the smallest subnormal to the largest float), and at 0, inf
    and NaN."""
    rng = np.random.default_rng(7)
    x = np.concatenate(
        [
            2.0 ** rng.uniform(-1074.0, 1024.0, 100_000),
            rng.uniform(0.0, 4.0, 20_000),
            [0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, np.inf, np.nan, 1.0, 2.0],
        ]
    )
    np.testing.assert_array_equal(sqrt_array(x), np.sqrt(x))


def test_kernel_sigmoid_matches_numpy():
    x = np.concatenate([SPECIAL, np.linspace(-50.0, 50.0, 4001), np.linspace(-709.0, 709.0, 2001)])
    x = np.concatenate([x, -x])
    reference = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(sigmoid_array(x), reference, rtol=1e-15, atol=0)
    # exp(-x) overflows for x < -709.78: sigmoid 0, as in numpy; NaN propagates.
    extremes = sigmoid_array(np.array([-710.0, -1e4, -np.inf, np.inf, 800.0]))
    np.testing.assert_array_equal(extremes, [0.0, 0.0, 0.0, 1.0, 1.0])
    assert np.isnan(sigmoid_array(np.array([np.nan]))).all()


@pytest.mark.parametrize(
    ("act", "reference"),
    [("tanh", np.tanh), ("sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x)))],
)
def test_training_kernel_activations_match_numpy(act, reference):
    """The training kernel's activations, read through the initial loss. One replica per x, network
    [1, 1] with w = 1, b = 0, a single sample with target y = reference(x): the loss is
    1/2 (f - y)^2, so sqrt(2 loss) is the error |f - y| of the kernel's activation."""
    x = np.concatenate([SPECIAL, np.linspace(-40.0, 40.0, 2001), [-700.0, 700.0]])
    x = np.concatenate([x, -x])
    R = x.size
    assert R > LANES
    net = network_from_arrays([np.ones((R, 1, 1))], [np.zeros((R, 1))], output=act)
    y = reference(x)
    result = train(net, x[:, None, None], y[:, None, None], lr=1e-3, epochs=1, order=[[0]])
    error = np.sqrt(2.0 * result.loss_curve[:, 0])
    assert (error <= 1e-15 * np.abs(y)).all(), x[error > 1e-15 * np.abs(y)]


@pytest.mark.parametrize("n", [7, 16, 33])
@pytest.mark.parametrize(
    ("sizes", "hidden", "output", "bias"),
    [
        ([2, 4, 1], "tanh", "tanh", True),
        ([3, 7, 5, 2], "sigmoid", "identity", False),
        ([2, 9, 6, 3], "relu", "sigmoid", True),
    ],
)
def test_blocked_loss_pass_equals_single_sample_pass(rng, sizes, hidden, output, bias, n):
    """The end-of-epoch loss runs four samples at a time (`_lanes_forward4`); the gradient pass runs
    them one by one (`_lanes_forward`). Both must give the same numbers, bit for bit."""
    from nnlab import _kernels as K
    from nnlab.sgd import _pack, _plan, _to_lanes

    X, Y = make_data(rng, n, sizes[0], sizes[-1])
    net = init_network(sizes, seeds=range(20), hidden=hidden, output=output, bias=bias)
    packed, lay, foff = _plan(net)
    params = _to_lanes(_pack(net, packed), K.LANES)
    codes = (K.ACTIVATION_CODES[hidden], K.ACTIVATION_CODES[output], K.LOSS_CODES["half_squared"])
    blocked, single, norm = np.empty(20), np.empty(20), np.empty(20)
    K.lanes_evaluate(params, lay, foff, X[None], Y[None], *codes, False, blocked, norm)
    K.lanes_evaluate(params, lay, foff, X[None], Y[None], *codes, True, single, norm)
    np.testing.assert_array_equal(blocked, single)
    np.testing.assert_allclose(blocked, loss_of(net, X, Y), rtol=1e-14)
