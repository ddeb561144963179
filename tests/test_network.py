"""Tests of nnlab.network: back-propagation against finite differences and closed forms,
initialization, and argument errors.

Notation as in the module: R replicas, n samples, W_i (R, n_in, n_out), b_i (R, n_out).
"""

import numpy as np
import pytest

from nnlab import (
    LOSSES,
    backprop,
    forward,
    init_network,
    loss_of,
    network_from_arrays,
)
from nnlab.functions import CLASSIFICATION, PAIRINGS
from nnlab.network import accuracy

ACTS = ["identity", "relu", "sigmoid", "tanh"]
LOSS_NAMES = ["half_squared", "squared"]
# Number of weight layers -> sizes [d, h_1, ..., out].
SIZES = {1: [3, 2], 2: [3, 4, 2], 3: [3, 4, 5, 2], 4: [3, 4, 5, 3, 2]}
R = 3


def random_network(rng, sizes, *, act, bias, R=R):
    """Weights ~ N(0, 1/n_in) and nonzero biases, so every bias term matters in the forward pass."""
    weights = [rng.normal(size=(R, a, b)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    biases = [0.3 * rng.normal(size=(R, b)) for b in sizes[1:]] if bias else None
    return network_from_arrays(weights, biases, hidden=act, output=act)


def kink_distance(net, X):
    """min |z_i| over the pre-activations z_i = f_{i-1} W_i + b_i that a small perturbation moves.

    Without biases, a sample whose f_{i-1} is all zeros (every relu unit off) has z_i = 0 exactly,
    and it stays 0 under any perturbation small enough to keep those units off: skipped.
    """
    fs = forward(net, X)
    distance = np.inf
    for i, W in enumerate(net.weights):
        z = fs[i] @ W
        if net.biases is not None:
            z = z + net.biases[i][:, None, :]
        live = np.broadcast_to(np.any(fs[i] != 0.0, axis=-1, keepdims=True), z.shape)
        if live.any():
            distance = min(distance, np.abs(z[live]).min())
    return distance


def numerical_gradients(net, X, Y, loss, eps=1e-6):
    """Central differences of loss_of, one parameter entry at a time.

    The replicas are independent, so perturbing entry [:, j, k] of every replica at once gives each
    replica's own partial derivative in one pair of evaluations.
    """

    def loss_at(weights, biases):
        rebuilt = network_from_arrays(weights, biases, hidden=net.hidden, output=net.output)
        return loss_of(rebuilt, X, Y, loss=loss)

    def central(params, i):
        grad = np.empty_like(params[i])
        for idx in np.ndindex(params[i].shape[1:]):
            plus, minus = list(params), list(params)
            plus[i], minus[i] = params[i].copy(), params[i].copy()
            plus[i][(slice(None), *idx)] += eps
            minus[i][(slice(None), *idx)] -= eps
            # Divide by the step actually taken, not by the nominal 2 eps.
            step = plus[i][(slice(None), *idx)] - minus[i][(slice(None), *idx)]
            if params is weights:
                diff = loss_at(plus, biases) - loss_at(minus, biases)
            else:
                diff = loss_at(weights, plus) - loss_at(weights, minus)
            grad[(slice(None), *idx)] = diff / step
        return grad

    weights = list(net.weights)
    biases = None if net.biases is None else list(net.biases)
    grad_w = [central(weights, i) for i in range(len(weights))]
    grad_b = None if biases is None else [central(biases, i) for i in range(len(biases))]
    return grad_w, grad_b


@pytest.mark.parametrize("data", ["shared", "per_replica"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("act", ACTS)
def test_backprop_matches_finite_differences(rng, act, loss, bias, depth, data):
    sizes = SIZES[depth]
    n = 6
    lead = () if data == "shared" else (R,)
    # relu is not differentiable at z = 0: redraw until every pre-activation is far (1e-3) from the
    # kink compared with what a 1e-6 perturbation can move it.
    for _ in range(20):
        net = random_network(rng, sizes, act=act, bias=bias)
        X = rng.uniform(-1.0, 1.0, size=(*lead, n, sizes[0]))
        Y = rng.uniform(-1.0, 1.0, size=(*lead, n, sizes[-1]))
        if act != "relu" or kink_distance(net, X) > 1e-3:
            break
    else:
        pytest.fail("no draw kept the relu pre-activations away from 0")

    g = backprop(net, X, Y, loss=loss)
    num_w, num_b = numerical_gradients(net, X, Y, loss)

    np.testing.assert_allclose(g.loss, loss_of(net, X, Y, loss=loss), rtol=1e-15)
    for i in range(depth):
        assert g.weights[i].shape == net.weights[i].shape
        np.testing.assert_allclose(g.weights[i], num_w[i], rtol=1e-6, atol=1e-8, err_msg=f"W{i + 1}")
    if bias:
        for i in range(depth):
            assert g.biases[i].shape == net.biases[i].shape
            np.testing.assert_allclose(g.biases[i], num_b[i], rtol=1e-6, atol=1e-8, err_msg=f"b_{i + 1}")
    else:
        assert g.biases is None


def classification_targets(rng, loss, shape):
    """Targets ``loss`` accepts: one-hot rows (cross_entropy, out >= 2), 0/1 (one output), or +-1."""
    if loss == "hinge":
        return rng.choice([-1.0, 1.0], size=shape)
    if shape[-1] == 1:
        return rng.integers(0, 2, size=shape).astype(np.float64)
    return np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[:-1])]


CLASSIFIERS = [(o, loss) for loss in sorted(CLASSIFICATION) for o in PAIRINGS[loss]]


@pytest.mark.parametrize("out", [1, 3])
@pytest.mark.parametrize("hidden", ["tanh", "sigmoid"])
@pytest.mark.parametrize(("output", "loss"), CLASSIFIERS)
def test_classification_backprop_matches_finite_differences(rng, output, loss, hidden, out):
    if output == "sigmoid" and out > 1:
        pytest.skip("cross_entropy with a sigmoid output is the logistic form, one unit")
    sizes = [3, 4, 5, out]
    X = rng.uniform(-1.0, 1.0, size=(6, 3))
    Y = classification_targets(rng, loss, (6, out))
    net = random_network(rng, sizes, act=hidden, bias=True)
    net = network_from_arrays(net.weights, net.biases, hidden=hidden, output=output)
    if loss == "hinge":
        # The hinge has a kink at margin 1: keep every margin away from it.
        margin = Y * forward(net, X)[-1]
        assert np.abs(margin - 1.0).min() > 1e-4
    g = backprop(net, X, Y, loss=loss)
    num_w, num_b = numerical_gradients(net, X, Y, loss)
    np.testing.assert_allclose(g.loss, loss_of(net, X, Y, loss=loss), rtol=1e-15)
    for i in range(3):
        np.testing.assert_allclose(g.weights[i], num_w[i], rtol=1e-6, atol=1e-8, err_msg=f"W{i + 1}")
        np.testing.assert_allclose(g.biases[i], num_b[i], rtol=1e-6, atol=1e-8, err_msg=f"b_{i + 1}")


def test_class_labels_are_one_hot_targets(rng):
    net = random_network(rng, [3, 4, 5], act="tanh", bias=True)
    net = network_from_arrays(net.weights, net.biases, output="softmax")
    X = rng.uniform(-1.0, 1.0, size=(7, 3))
    labels = rng.integers(0, 5, size=7)
    onehot = np.eye(5)[labels]
    g = backprop(net, X, onehot, loss="cross_entropy")
    for Y in (labels, labels[:, None], labels.astype(float)):
        h = backprop(net, X, Y, loss="cross_entropy")
        np.testing.assert_array_equal(h.loss, g.loss)
        np.testing.assert_array_equal(h.weights[0], g.weights[0])
    # delta_L = softmax(z_L) - y, sample by sample.
    np.testing.assert_allclose(g.deltas[-1], forward(net, X)[-1] - onehot, rtol=1e-15)
    f = forward(net, X)[-1]
    np.testing.assert_array_equal(
        accuracy(net, X, labels, loss="cross_entropy"), (f.argmax(axis=-1) == labels).mean(axis=1)
    )


@pytest.mark.parametrize("data", ["shared", "per_replica"])
@pytest.mark.parametrize("bias", [True, False])
def test_deltas_shapes_and_gradient_formula(rng, bias, data):
    sizes = [3, 4, 5, 2]
    n = 7
    lead = () if data == "shared" else (R,)
    net = random_network(rng, sizes, act="tanh", bias=bias)
    X = rng.uniform(-1.0, 1.0, size=(*lead, n, sizes[0]))
    Y = rng.uniform(-1.0, 1.0, size=(*lead, n, sizes[-1]))
    g = backprop(net, X, Y)
    fs = forward(net, X)

    assert g.loss.shape == (R,)
    assert [d.shape for d in g.deltas] == [(R, n, h) for h in sizes[1:]]
    for i, delta in enumerate(g.deltas):
        f_prev = np.broadcast_to(fs[i], (R, n, sizes[i]))
        # dLoss/dW_i = f_{i-1}^T delta_i / n, and dLoss/db_i = the mean of delta_i.
        np.testing.assert_allclose(
            g.weights[i], np.einsum("rni,rno->rio", f_prev, delta) / n, rtol=1e-13, atol=1e-16
        )
        if bias:
            np.testing.assert_allclose(g.biases[i], delta.mean(axis=1), rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("act", ACTS)
def test_deltas_are_per_sample_dloss_dz(rng, act, loss):
    """delta_i[r, s, k] = dLoss_s/dz_i[k] of sample s alone, checked by moving b_i[k] (dz = db)."""
    sizes = [2, 4, 3, 2]
    n, eps = 5, 1e-6
    net = random_network(rng, sizes, act=act, bias=True)
    X = rng.uniform(-1.0, 1.0, size=(n, sizes[0]))
    Y = rng.uniform(-1.0, 1.0, size=(n, sizes[-1]))
    deltas = backprop(net, X, Y, loss=loss).deltas

    def per_sample_loss(biases):
        moved = network_from_arrays(net.weights, biases, hidden=act, output=act)
        return LOSSES[loss](forward(moved, X)[-1], Y)  # (R, n)

    for i, h in enumerate(sizes[1:]):
        for k in range(h):
            plus, minus = list(net.biases), list(net.biases)
            plus[i], minus[i] = net.biases[i].copy(), net.biases[i].copy()
            plus[i][:, k] += eps
            minus[i][:, k] -= eps
            numeric = (per_sample_loss(plus) - per_sample_loss(minus)) / (plus[i][:, k] - minus[i][:, k])[
                :, None
            ]
            np.testing.assert_allclose(deltas[i][:, :, k], numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("L", [1, 2, 3, 4, 5])
def test_scalar_tanh_chain_closed_form(rng, L):
    """Width-1 chain without biases, tanh, loss (y - f_L)^2: the textbook's product formula

    dLoss/dw_k = f_{k-1} (1 - f_k^2) ... (1 - f_L^2) w_{k+1} ... w_L 2 (f_L - y),

    averaged over the samples, for every k (k = 1 is x (1 - f_1^2) ... w_2 ... w_L 2 (f_L - y)).
    """
    R_, n = 4, 3
    w = rng.uniform(-1.5, 1.5, size=(L, R_))  # w[k - 1, r] is replica r's w_k
    x = rng.uniform(-1.0, 1.0, size=(R_, n))
    y = rng.uniform(-0.8, 0.8, size=(R_, n))
    net = network_from_arrays([w[k][:, None, None] for k in range(L)], None)
    assert net.hidden == net.output == "tanh"

    # The chain by hand: f_0 = x, f_k = tanh(f_{k-1} w_k).
    f = [x]
    for k in range(L):
        f.append(np.tanh(f[-1] * w[k][:, None]))
    expected = []
    for k in range(1, L + 1):
        product = f[k - 1] * 2.0 * (f[L] - y)
        for j in range(k, L + 1):
            product = product * (1.0 - f[j] ** 2)
        for j in range(k + 1, L + 1):
            product = product * w[j - 1][:, None]
        expected.append(product.mean(axis=1))  # (R,)

    g = backprop(net, x[:, :, None], y[:, :, None], loss="squared")
    assert g.biases is None
    for k in range(L):
        np.testing.assert_allclose(g.weights[k][:, 0, 0], expected[k], rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(g.loss, ((y - f[L]) ** 2).mean(axis=1), rtol=1e-14)


# ------------------------------------------------------------------------------------------------
# init_network and network_from_arrays


def test_init_network_shapes_and_zero_biases():
    sizes = [3, 5, 4, 2]
    net = init_network(sizes, seeds=[1, 2])
    assert [W.shape for W in net.weights] == [(2, 3, 5), (2, 5, 4), (2, 4, 2)]
    assert [b.shape for b in net.biases] == [(2, 5), (2, 4), (2, 2)]
    assert all(W.dtype == np.float64 for W in net.weights)
    for b in net.biases:
        np.testing.assert_array_equal(b, 0.0)
    assert (net.hidden, net.output) == ("tanh", "tanh")
    assert net.seeds == (1, 2)
    assert net.n_replicas == 2 and tuple(net.sizes) == tuple(sizes)
    assert init_network(sizes, seeds=3).n_replicas == 1


def test_init_network_bias_false_gives_none():
    net = init_network([2, 3, 1], seeds=[0, 1], bias=False)
    assert net.biases is None
    assert net.n_params == 2 * 3 + 3 * 1


@pytest.mark.parametrize(
    ("hidden", "output", "rules"),
    [
        ("tanh", "tanh", ["glorot", "glorot", "glorot"]),
        ("sigmoid", "identity", ["glorot", "glorot", "glorot"]),
        ("relu", "identity", ["he", "he", "glorot"]),
        ("tanh", "relu", ["glorot", "glorot", "he"]),
    ],
)
def test_init_network_bounds(hidden, output, rules):
    """Glorot a = sqrt(6 / (n_in + n_out)), He a = sqrt(6 / n_in) (relu layers): |W| <= a, and the
    draws fill the range (max |W| close to a), so a too-small rule would fail too."""
    sizes = [40, 30, 20, 10]
    net = init_network(sizes, seeds=[0, 1], hidden=hidden, output=output)
    for W, n_in, n_out, rule in zip(net.weights, sizes[:-1], sizes[1:], rules, strict=True):
        a = np.sqrt(6.0 / (n_in + n_out)) if rule == "glorot" else np.sqrt(6.0 / n_in)
        assert np.abs(W).max() <= a
        assert np.abs(W).max() > 0.98 * a
        assert abs(W.mean()) < 0.1 * a  # centred


def test_init_network_scale():
    base = init_network([4, 6, 3], seeds=[2, 5])
    half = init_network([4, 6, 3], seeds=[2, 5], scale=0.5)
    zero = init_network([4, 6, 3], seeds=[2, 5], scale=0.0)
    for W, Wh, W0 in zip(base.weights, half.weights, zero.weights, strict=True):
        np.testing.assert_allclose(Wh, 0.5 * W, rtol=1e-15)
        np.testing.assert_array_equal(W0, 0.0)


def test_init_network_replica_depends_only_on_its_seed():
    sizes = [3, 5, 2]
    together = init_network(sizes, seeds=[5, 9, 2])
    for r, seed in enumerate([5, 9, 2]):
        alone = init_network(sizes, seeds=seed)
        for W, Wa in zip(together.weights, alone.weights, strict=True):
            np.testing.assert_array_equal(W[r], Wa[0])
    other = init_network(sizes, seeds=[9, 5])
    np.testing.assert_array_equal(other.weights[0][0], together.weights[0][1])
    # Different seeds give different weights.
    assert not np.array_equal(together.weights[0][0], together.weights[0][1])


def test_network_from_arrays_two_d_is_one_replica():
    W1, W2 = np.arange(6).reshape(2, 3), np.ones((3, 1))
    b1, b2 = np.array([0.1, 0.2, 0.3]), np.array([0.5])
    net = network_from_arrays([W1, W2], [b1, b2], hidden="relu", output="identity")
    assert [W.shape for W in net.weights] == [(1, 2, 3), (1, 3, 1)]
    assert [b.shape for b in net.biases] == [(1, 3), (1, 1)]
    assert net.weights[0].dtype == np.float64  # int input is converted
    np.testing.assert_array_equal(net.weights[0][0], W1)
    np.testing.assert_array_equal(net.biases[0][0], b1)
    assert (net.hidden, net.output) == ("relu", "identity")
    # The arrays are copied: changing the input afterwards does not change the network.
    b1[0] = 99.0
    assert net.biases[0][0, 0] == 0.1


def test_network_from_arrays_three_d_is_r_replicas(rng):
    Ws = [rng.normal(size=(4, 2, 3)), rng.normal(size=(4, 3, 1))]
    bs = [rng.normal(size=(4, 3)), rng.normal(size=(4, 1))]
    net = network_from_arrays(Ws, bs)
    assert net.n_replicas == 4
    assert net.biases is not None
    for W, Wn in zip(Ws, net.weights, strict=True):
        np.testing.assert_array_equal(W, Wn)
    assert network_from_arrays(Ws).biases is None


# ------------------------------------------------------------------------------------------------
# Bad arguments: a ValueError whose message names the argument.


def test_unknown_activation_names_the_choices():
    expected = r"activation 'tahn'.*tanh.*identity, relu, sigmoid, (softmax, )?tanh"
    with pytest.raises(ValueError, match=expected):
        init_network([2, 3, 1], hidden="tahn")
    with pytest.raises(ValueError, match=expected):
        init_network([2, 3, 1], output="tahn")
    with pytest.raises(ValueError, match=expected):
        network_from_arrays([np.ones((2, 1))], hidden="tahn")
    with pytest.raises(ValueError, match=r"hidden: 'softmax' is an output activation only"):
        init_network([2, 3, 1], hidden="softmax")


@pytest.mark.parametrize("call", [backprop, loss_of])
def test_unknown_loss(call):
    net = init_network([2, 1])
    with pytest.raises(ValueError, match=r"loss 'squard'.*cross_entropy, half_squared, hinge, squared"):
        call(net, np.ones((3, 2)), np.ones((3, 1)), loss="squard")


@pytest.mark.parametrize("call", [backprop, loss_of])
def test_loss_and_output_must_pair(call):
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"output 'softmax' needs loss 'cross_entropy'"):
        call(init_network([2, 3], output="softmax"), X, np.eye(3), loss="half_squared")
    with pytest.raises(ValueError, match=r"loss 'cross_entropy' needs output 'softmax' or 'sigmoid'"):
        call(init_network([2, 3]), X, np.eye(3), loss="cross_entropy")
    with pytest.raises(ValueError, match=r"Y: loss 'cross_entropy' needs one-hot rows"):
        call(init_network([2, 3], output="softmax"), X, 0.9 * np.eye(3), loss="cross_entropy")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sizes": [2, 0, 1]}, "sizes"),
        ({"sizes": [3]}, "sizes"),
        ({"sizes": [2, 3.5, 1]}, "sizes"),
        ({"seeds": -1}, "seeds"),
        ({"seeds": [1, -2]}, "seeds"),
        ({"seeds": []}, "seeds"),
        ({"init": "lecun"}, "init"),
        ({"scale": -1.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
    ],
)
def test_init_network_bad_arguments(kwargs, match):
    args = {"sizes": [2, 3, 1], **kwargs}
    with pytest.raises(ValueError, match=match):
        init_network(args.pop("sizes"), **args)


def test_backprop_refuses_nan_data_and_names_shapes_as_given():
    net = init_network([2, 3, 1], seeds=[0, 1])
    X = np.zeros((4, 2))
    X[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"^X: expected finite numbers, got nan at index \(1, 0\)$"):
        backprop(net, X, np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"^X: expected shape \(n, 2\) or \(R=2, n, 2\), got \(4, 3\)$"):
        backprop(net, np.zeros((4, 3)), np.zeros((4, 1)))


def test_mismatched_weight_shapes():
    with pytest.raises(ValueError, match=r"weights\[1\]"):
        network_from_arrays([np.ones((2, 3)), np.ones((4, 1))])
    with pytest.raises(ValueError, match="weights"):
        network_from_arrays([np.ones((2, 3)), np.ones((1, 3, 1))])  # 2-D mixed with 3-D
    with pytest.raises(ValueError, match=r"weights\[1\]"):
        network_from_arrays([np.ones((2, 2, 3)), np.ones((3, 3, 1))])  # R differs
    with pytest.raises(ValueError, match=r"biases\[0\]"):
        network_from_arrays([np.ones((2, 2, 3))], [np.ones((2, 4))])
    with pytest.raises(ValueError, match="biases"):
        network_from_arrays([np.ones((2, 3)), np.ones((3, 1))], [np.ones(3)])


@pytest.mark.parametrize(
    ("X", "Y", "match"),
    [
        (np.ones((5, 3)), np.ones((5, 1)), "X"),  # d = 3, the network takes 2
        (np.ones((2, 5, 2)), np.ones((5, 1)), "X"),  # R = 2, the network has 3 replicas
        (np.ones(5), np.ones((5, 1)), "X"),
        (np.ones((5, 2)), np.ones((5, 2)), "Y"),
        (np.ones((5, 2)), np.ones((4, 1)), "Y"),  # sample counts differ
    ],
)
def test_backprop_wrong_data_shape(X, Y, match):
    net = init_network([2, 4, 1], seeds=[0, 1, 2])
    with pytest.raises(ValueError, match=match):
        backprop(net, X, Y)


def test_a_network_says_how_many_replicas_and_which_seeds():
    """``seeds=5`` is one replica of seed 5 (an experiment file's ``seeds = 5`` counts 0..4): the
    repr shows it, and never the arrays."""
    one = init_network([2, 3, 1], seeds=5)
    assert one.n_replicas == 1 and one.seeds == (5,)
    assert (
        repr(one)
        == "Network(sizes=(2, 3, 1), replicas=1, seeds=(5,), hidden='tanh', output='tanh', bias=True)"
    )
    many = init_network([2, 3, 1], seeds=range(100), bias=False)
    assert "replicas=100, seeds=(0..99)" in repr(many) and "bias=False" in repr(many)
    assert "seeds=(3, 9, 4)" in repr(init_network([2, 1], seeds=[3, 9, 4]))
