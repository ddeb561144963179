"""Tests of nnlab.landscape: second-order back-propagation against finite differences and closed
forms, the certification of constructed critical points (a strict minimum, saddles, a degenerate
point, a valley), symmetries, distinct optima, barriers, and argument errors.

Notation as in nnlab.landscape.curvature: R replicas, n samples, P parameters per replica flattened
like `flat_params` (W_1, b_1, W_2, b_2, ...), V (R, P) or (R, K, P) directions, H the Hessian of the
mean loss. kappa is the loss's curvature in f: 1 for half_squared, 2 for squared.
"""

import dataclasses

import numpy as np
import pytest

from nnlab import LOSSES, forward, init_network, loss_of, network_from_arrays, tasks
from nnlab.functions import ACTIVATIONS, SECOND_DERIVATIVES, output_delta
from nnlab.landscape import (
    KINDS,
    Options,
    align,
    barrier,
    canonical,
    certify,
    classify,
    curvature,
    distinct_optima,
    extreme_eigenvalues,
    function_distance,
    gradient,
    hessian,
    hvp,
    parameter_distance,
    symmetry_directions,
)
from nnlab.landscape.polish import Objective
from nnlab.network import flat_params, network_from_flat
from tests.test_network import kink_distance, random_network

ACTS = ["identity", "relu", "sigmoid", "tanh"]
LOSS_NAMES = list(LOSSES)
KAPPA = {"half_squared": 1.0, "squared": 2.0}
REGRESSION = [loss for loss in LOSS_NAMES if loss in KAPPA]  # the squared losses: closed forms below
# Number of weight layers -> sizes [d, h_1, ..., out].
SIZES = {1: [3, 2], 2: [3, 4, 2], 3: [3, 4, 5, 2]}
R = 3


def paired(loss, output):
    """The output activation a loss takes (nnlab.functions.PAIRINGS): cross_entropy softmax, hinge
    ``output`` when identity or tanh (else tanh), the squared losses any."""
    if loss == "cross_entropy":
        return "softmax"
    if loss == "hinge":
        return output if output in ("identity", "tanh") else "tanh"
    return output


def draw(rng, sizes, *, hidden, output, bias, n=6, R=R, lead=(), loss="half_squared"):
    """A random network (weights ~ N(0, 1/n_in), biases ~ N(0, 0.3^2)) and data uniform in [-1, 1],
    the targets as ``loss`` takes them (one-hot rows for cross_entropy, +-1 for hinge), and the
    output activation it pairs with (`paired`).

    relu has no second derivative at z = 0: redraw until every pre-activation is 1e-3 from the kink,
    far compared with what a 1e-5 finite-difference step moves it, and until a relu output is alive
    on some sample in every replica (a dead replica has H = 0: nothing to test). The hinge has a kink
    at y f = 1: redraw until every margin is 1e-3 from it.
    """
    output = paired(loss, output)
    for _ in range(50):
        net = dataclasses.replace(random_network(rng, sizes, act=hidden, bias=bias, R=R), output=output)
        X = rng.uniform(-1.0, 1.0, size=(*lead, n, sizes[0]))
        if loss == "cross_entropy":
            Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=(*lead, n))]
        elif loss == "hinge":
            Y = rng.choice([-1.0, 1.0], size=(*lead, n, sizes[-1]))
        else:
            Y = rng.uniform(-1.0, 1.0, size=(*lead, n, sizes[-1]))
        f_L = forward(net, X)[-1]
        alive = np.all(np.any(f_L != 0.0, axis=(1, 2)))
        relu_ok = "relu" not in (hidden, output) or (kink_distance(net, X) > 1e-3 and alive)
        hinge_ok = loss != "hinge" or np.abs(1.0 - Y * f_L).min() > 1e-3
        if relu_ok and hinge_ok:
            return net, X, Y
    pytest.fail("no draw kept the relu pre-activations and the hinge margins away from their kinks")


def moved(net, theta):
    """``net``'s architecture with the flat parameters theta (R, P)."""
    return network_from_flat(
        theta, net.sizes, bias=net.biases is not None, hidden=net.hidden, output=net.output
    )


def central_products(net, X, Y, V, loss, eps=1e-5):
    """(grad(theta + eps v) - grad(theta - eps v)) / (step taken), backprop's gradients, for each of
    the K directions v of V (R, K, P): H v to O(eps^2) (third derivatives ~1 give ~1e-11 here, and
    rounding ~1e-16 / eps ~1e-11)."""
    theta = flat_params(net)
    out = np.empty_like(V)
    for k in range(V.shape[1]):
        plus, minus = theta + eps * V[:, k], theta - eps * V[:, k]
        step = np.linalg.norm(plus - minus, axis=1) / np.linalg.norm(V[:, k], axis=1)
        diff = (
            gradient(moved(net, plus), X, Y, loss=loss)[1] - gradient(moved(net, minus), X, Y, loss=loss)[1]
        )
        out[:, k] = diff / step[:, None]
    return out


def relative_error(a, b):
    """|a - b| / |b| per replica (Frobenius over everything but the replica axis); 0 where both are
    exactly 0 (a hinge on a linear network has no curvature at all)."""
    axes = tuple(range(1, a.ndim))
    num, den = np.sum((a - b) ** 2, axis=axes), np.sum(b**2, axis=axes)
    return np.sqrt(np.divide(num, den, out=np.where(num == 0, 0.0, np.inf), where=den > 0))


# ------------------------------------------------------------------------------------------------
# Hessian-vector products and the Hessian against finite differences of backprop


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("output", ["same", "next"])
@pytest.mark.parametrize("act", ACTS)
def test_hvp_and_hessian_match_central_differences(rng, act, output, loss, bias, depth):
    """Every activation as hidden and as output layer (``next``: the output is the next activation in
    ACTS, so that a recursion mixing up hidden and output derivatives fails), every loss, with and
    without biases, 1 to 3 weight layers, R = 3 replicas and K = 3 directions at once."""
    out = act if output == "same" else ACTS[(ACTS.index(act) + 1) % len(ACTS)]
    net, X, Y = draw(rng, SIZES[depth], hidden=act, output=out, bias=bias, loss=loss)
    P, K = net.n_params, 3

    V = rng.normal(size=(R, K, P))
    HV = hvp(net, X, Y, V, loss=loss)
    assert HV.shape == (R, K, P)
    assert relative_error(HV, central_products(net, X, Y, V, loss)).max() <= 1e-6
    # One direction (R, P) is the same product as the first of K.
    one = hvp(net, X, Y, V[:, 0], loss=loss)
    assert one.shape == (R, P)
    np.testing.assert_allclose(one, HV[:, 0], rtol=1e-12, atol=1e-14 * np.abs(HV).max())

    H = hessian(net, X, Y, loss=loss)
    assert H.shape == (R, P, P)
    # Mirrored and averaged blocks: symmetric to the last bit.
    np.testing.assert_array_equal(H, H.transpose(0, 2, 1))
    eye = np.broadcast_to(np.eye(P), (R, P, P))
    assert relative_error(H, central_products(net, X, Y, eye, loss)).max() <= 1e-6
    # Row k of H is H e_k by the full R-passes (hessian takes layer-restricted ones and mirrors).
    assert relative_error(hvp(net, X, Y, eye, loss=loss), H).max() <= 1e-12
    assert relative_error(np.einsum("rpq,rkq->rkp", H, V), HV).max() <= 1e-12


def test_replicas_are_independent(rng):
    """Replica r's products depend only on its own weights and data: the same alone as with others,
    and unchanged when the other replicas change. Per-replica data (R, n, d)."""
    net, X, Y = draw(rng, [2, 3, 3, 2], hidden="tanh", output="sigmoid", bias=True, n=5, lead=(R,))
    P = net.n_params
    V = rng.normal(size=(R, 4, P))
    HV = hvp(net, X, Y, V, loss="squared")
    H = hessian(net, X, Y, loss="squared")
    for r in range(R):
        alone = net.replica(r)
        np.testing.assert_allclose(hvp(alone, X[r], Y[r], V[r : r + 1], loss="squared")[0], HV[r], rtol=1e-13)
        np.testing.assert_allclose(hessian(alone, X[r], Y[r], loss="squared")[0], H[r], rtol=1e-13)

    others = flat_params(net)
    others[1:] = rng.normal(size=others[1:].shape)
    changed = moved(net, others)
    np.testing.assert_allclose(hvp(changed, X, Y, V, loss="squared")[0], HV[0], rtol=1e-13)
    np.testing.assert_allclose(hessian(changed, X, Y, loss="squared")[0], H[0], rtol=1e-13)
    assert not np.allclose(hvp(changed, X, Y, V, loss="squared")[1], HV[1])


def test_hessian_blocks_give_the_same_matrix(rng, monkeypatch):
    """hessian splits directions and replicas into blocks of ~BLOCK_FLOATS floats; with a tiny block
    (one direction of one replica at a time) the matrix is the same."""
    net, X, Y = draw(rng, [3, 4, 3, 2], hidden="sigmoid", output="tanh", bias=True, n=5, lead=(R,))
    whole = hessian(net, X, Y)
    monkeypatch.setattr(curvature, "BLOCK_FLOATS", 1)
    np.testing.assert_allclose(hessian(net, X, Y), whole, rtol=1e-13, atol=1e-15 * np.abs(whole).max())


# ------------------------------------------------------------------------------------------------
# Closed forms


def test_two_unit_chain_hessian_closed_form():
    """The seed's chain f = tanh(tanh(x w1) w2), no biases, L = mean 1/2 (y - f)^2. With
    f1 = tanh(x w1), f2 = tanh(f1 w2), e = f2 - y, s1 = 1 - f1^2, s2 = 1 - f2^2 and ds_i = -2 f_i df_i:

        df2/dw1 = s2 w2 s1 x,    df2/dw2 = s2 f1
        H = mean(grad f2 grad f2^T + e hess f2)            (Gauss-Newton part + residual part)
        d2f2/dw2^2   = d(s2 f1)/dw2       = -2 f2 s2 f1^2
        d2f2/dw1dw2  = d(s2 w2 s1 x)/dw2  = s1 s2 x (1 - 2 w2 f1 f2)
        d2f2/dw1^2   = d(s2 w2 s1 x)/dw1  = w2 x (s2 (-2 f1 s1 x) + s1 (-2 f2 s2 w2 s1 x))
                                          = -2 w2 x^2 s1 s2 (f1 + w2 f2 s1)
    so
        H11 = mean((w2 s1 s2 x)^2 - 2 e w2 x^2 s1 s2 (f1 + w2 f2 s1))
        H12 = mean(w2 s1 s2^2 x f1 + e s1 s2 x (1 - 2 w2 f1 f2))
        H22 = mean(s2^2 f1^2 - 2 e f1^2 f2 s2)
    """
    X, Y = tasks.chain(n=16)
    points = np.array([[0.7, -1.3], [1.5, 0.4], [-2.0, 1.1], [0.05, 3.0]])  # (w1, w2), one per replica
    net = network_from_arrays([points[:, :1, None], points[:, 1:, None]])
    H = hessian(net, X, Y)

    x, y = X[:, 0], Y[:, 0]
    for (w1, w2), Hr in zip(points, H, strict=True):
        f1 = np.tanh(x * w1)
        f2 = np.tanh(f1 * w2)
        e, s1, s2 = f2 - y, 1 - f1**2, 1 - f2**2
        H11 = np.mean((w2 * s1 * s2 * x) ** 2 - 2 * e * w2 * x**2 * s1 * s2 * (f1 + w2 * f2 * s1))
        H12 = np.mean(w2 * s1 * s2**2 * x * f1 + e * s1 * s2 * x * (1 - 2 * w2 * f1 * f2))
        H22 = np.mean(s2**2 * f1**2 - 2 * e * f1**2 * f2 * s2)
        expected = np.array([[H11, H12], [H12, H22]])
        np.testing.assert_allclose(Hr, expected, rtol=1e-12, atol=1e-15 * np.abs(expected).max())


def test_zero_xor_network_is_a_fourth_order_saddle():
    """The all-zero 2-2-1 tanh network with biases on the XOR corners, targets y = +-0.9 (P = 9).

    Every f_1 = tanh(0) = 0 and f_2 = 0, so delta_2 = -y, whose mean is 0 (two +0.9, two -0.9):
    grad b_2 = 0, grad W_2 = f_1^T delta_2 / n = 0, and delta_1 = (1 - f_1^2) delta_2 W_2^T = 0.
    Second order: tanh(z) = z + O(z^3), so z_2 = b_2 + (x W_1 + b_1) W_2 + O(3) and

        L = 1/2 mean y^2 - mean(y z_2) + 1/2 mean z_2^2 + O(3)
          = 1/2 mean y^2 - (mean(y x) W_1 + mean(y) b_1) W_2 + 1/2 b_2^2 + O(3).

    On the corners mean(y) = 0 and mean(y x_1) = mean(y x_2) = 0 (each coordinate takes +-1 twice
    with each label): the only second-order term is 1/2 b_2^2. H = e_b2 e_b2^T: eigenvalue 1 once
    (kappa for the squared loss), 0 eight times: flat to second order in eight directions.

    Beyond second order it is a saddle (it used to be certified ``degenerate``): move one hidden unit
    along t (w, b, v), a = x . w + b. Then z_2 = t v tanh(t a) = v a t^2 - v a^3 t^4 / 3 + O(t^6) and,
    since mean(y a) = 0 on the corners for every (w, b),

        L - L_0 = -mean(y z_2) + 1/2 mean z_2^2 = (v mean(y a^3) / 3 + v^2 mean(a^2) / 2) t^4 + O(t^6),

    which for w = (1, 1), b = 1, v = 0.6 is (0.2 mean(y a^3) + 0.18 mean(a^2)) t^4 = -0.54 t^4: the loss
    falls at fourth order. certify finds such a direction among combinations of the flat
    eigenvectors (saddle_order 4)."""
    X, Y = tasks.xor()
    net = network_from_arrays([np.zeros((2, 2)), np.zeros((2, 1))], [np.zeros(2), np.zeros(1)])
    assert net.n_params == 9
    expected = np.zeros((9, 9))
    expected[8, 8] = 1.0  # b_2 is the last parameter
    np.testing.assert_allclose(hessian(net, X, Y)[0], expected, atol=1e-15)
    np.testing.assert_allclose(hessian(net, X, Y, loss="squared")[0], 2 * expected, atol=1e-15)

    a, y = X.sum(axis=1) + 1, Y[:, 0]
    c4 = 0.2 * np.mean(y * a**3) + 0.18 * np.mean(a**2)
    assert c4 == pytest.approx(-0.54, rel=1e-12)
    for t in (0.05, 0.025):
        along = network_from_arrays([[[t, 0.0], [t, 0.0]], [[0.6 * t], [0.0]]], [[t, 0.0], [0.0]])
        assert (loss_of(along, X, Y)[0] - 0.405) / t**4 == pytest.approx(c4, rel=2e-2)

    c = certify(net, X, Y, threshold=1e-3)
    assert c.kind.tolist() == ["saddle"] and c.saddle_order.tolist() == [4]
    assert c.n_flat.tolist() == [8] and c.n_negative.tolist() == [0] and c.n_symmetry.tolist() == [0]
    assert c.grad_norm[0] == 0.0 and c.displacement[0] == 0.0 and not c.borderline[0]
    np.testing.assert_allclose(c.polished_loss, 0.5 * 0.81, rtol=1e-15)
    np.testing.assert_allclose(c.spectrum[0], [0.0] * 8 + [1.0], atol=1e-15)
    assert c.lambda_min[0] == pytest.approx(0.0, abs=1e-15) and c.lambda_max[0] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------
# Certified kinds of constructed points


@pytest.mark.parametrize("loss", REGRESSION)
def test_least_squares_is_a_minimum(rng, loss):
    """One identity layer with bias is least squares: f = A theta per output with A = [X, 1], and
    L = kappa/2 mean |y - f|^2 has the constant Hessian kappa A^T A / n for each output unit. In the
    flat layout W[a, k] sits at a * out + k and b[k] at d * out + k, so H = kron(kappa A^T A / n, I_out):
    positive definite, a strict minimum at the least-squares solution."""
    n, d, out = 12, 3, 2
    X = rng.normal(size=(n, d))
    Y = X @ rng.normal(size=(d, out)) + 0.5 + 0.1 * rng.normal(size=(n, out))
    net = network_from_arrays([rng.normal(size=(d, out))], [rng.normal(size=out)], output="identity")
    A = np.hstack([X, np.ones((n, 1))])
    expected_H = np.kron(KAPPA[loss] * A.T @ A / n, np.eye(out))
    np.testing.assert_allclose(hessian(net, X, Y, loss=loss)[0], expected_H, rtol=1e-13)

    c = certify(net, X, Y, threshold=1e-6, loss=loss, options=Options(lbfgs_iters=100, newton_iters=5))
    assert c.kind.tolist() == ["minimum"]
    assert c.n_flat[0] == 0 and c.n_negative[0] == 0
    beta = np.linalg.lstsq(A, Y, rcond=None)[0]  # (d + 1, out): rows of W, then b
    np.testing.assert_allclose(flat_params(c.network)[0], beta.ravel(), rtol=1e-9)
    np.testing.assert_allclose(c.spectrum[0], np.linalg.eigvalsh(expected_H), rtol=1e-10)
    assert c.lambda_min[0] > 0
    assert c.grad_norm[0] <= 1e-8 * c.lambda_max[0]


# A width-1 tanh regression of a width-2 teacher on 9 points: it cannot fit, so its minimum has a
# nonzero residual, which the embedding below needs (Fukumizu & Amari's saddles come from it).
X_REG = np.linspace(-1.0, 1.0, 9)[:, None]
Y_REG = 0.7 * np.tanh(3 * X_REG - 1) - 0.4 * np.tanh(2 * X_REG + 1)


@pytest.fixture(scope="module")
def width1_minimum():
    """The 1-1-1 tanh network with biases polished from (w, b, v, c) = (1, 0, 0.5, 0)."""
    net = network_from_arrays([[[1.0]], [[0.5]]], [[0.0], [0.0]])
    return certify(net, X_REG, Y_REG, threshold=1e-6, options=Options(lbfgs_iters=300, newton_iters=20))


def test_tanh_regression_minimum_is_strict(width1_minimum):
    c = width1_minimum
    assert c.kind.tolist() == ["minimum"]
    assert c.n_flat[0] == 0 and c.n_negative[0] == 0 and c.n_symmetry[0] == 0
    # Clearly positive: the smallest eigenvalue is ~3.5e-4 of the largest, over 100 times the flat
    # tolerance (1e-6 of it).
    assert c.lambda_min[0] > 1e-4 * c.lambda_max[0] > 0
    assert c.grad_norm[0] <= 1e-10
    # Independently of certify: the Hessian at the polished point is positive definite, and small
    # steps in random directions all raise the loss.
    p = c.network
    assert np.linalg.eigvalsh(hessian(p, X_REG, Y_REG)[0]).min() > 0
    theta = flat_params(p)
    steps = 1e-3 * np.random.default_rng(1).normal(size=(20, 4))
    assert np.all(loss_of(moved(p, theta + steps), X_REG, Y_REG) > c.polished_loss[0])


@pytest.mark.parametrize("loss", REGRESSION)
def test_chain_origin_is_a_saddle(loss):
    """The 1-1-1 chain f = tanh(w2 tanh(w1 x)) at the origin, data y = 0.5 x. There f = w1 w2 x + O(|w|^3),
    so L = kappa/2 mean (y - f)^2 = kappa/2 mean y^2 - kappa w1 w2 mean(x y) + O(|w|^4): the gradient is
    0 and H = [[0, -c], [-c, 0]] with c = kappa mean(x y) = kappa mean(x^2) / 2. Eigenvalues -c along
    (1, 1) / sqrt 2 and +c along (1, -1) / sqrt 2; a step t along the first gives w1 w2 = t^2 / 2 and
    lowers the loss by c t^2 / 2 = -1/2 lambda t^2, the quadratic model's drop: a saddle."""
    X, Y = tasks.chain(n=16)
    c_expected = KAPPA[loss] * 0.5 * np.mean(X**2)
    net = network_from_arrays([np.zeros((1, 1)), np.zeros((1, 1))])
    np.testing.assert_allclose(
        hessian(net, X, Y, loss=loss)[0], [[0.0, -c_expected], [-c_expected, 0.0]], rtol=1e-14
    )
    c = certify(net, X, Y, threshold=1e-6, loss=loss, options=Options(lbfgs_iters=10, newton_iters=3))
    assert c.kind.tolist() == ["saddle"]
    assert c.n_negative[0] == 1 and c.n_flat[0] == 0
    assert c.grad_norm[0] == 0.0 and c.displacement[0] == 0.0
    np.testing.assert_allclose(c.spectrum[0], [-c_expected, c_expected], rtol=1e-14)


def split(p, lam):
    """Fukumizu & Amari's embedding of the width-1 network p into width 2: the hidden unit (w, b)
    copied, its outgoing weight v shared as lam v and (1 - lam) v; the function is unchanged."""
    (w,), (b,), (v,), (c,) = (a[0].ravel() for a in (p.weights[0], p.biases[0], p.weights[1], p.biases[1]))
    return network_from_arrays([[[w, w]], [[lam * v], [(1 - lam) * v]]], [[b, b], [c]])


@pytest.mark.parametrize("lam", [0.3, 0.5, 1.5])
def test_duplicated_unit_of_a_minimum_is_a_saddle(width1_minimum, lam):
    """Fukumizu & Amari (2000): splitting a hidden unit of a critical point of the width-1 network gives
    a critical point of the width-2 network, on a line of them (lam free: the direction
    (dv_1, dv_2) = (v, -v) keeps the function, so H is 0 along it). Moving the two units' incoming
    parameters a = (w, b) apart, da_1 = (1 - lam) xi, da_2 = -lam xi, keeps the function to first order
    (lam v (1 - lam) - (1 - lam) v lam = 0) and changes z_L at second order by
    1/2 v lam (1 - lam) tanh''(z_1) (xi . [x, 1])^2, so along it

        d^T H d = lam (1 - lam) v xi^T B xi,    B = mean(delta_L tanh''(z_1) [x, 1] [x, 1]^T)   (2 x 2).

    Here B is indefinite, so for every lam outside {0, 1} one xi gives negative curvature: a saddle
    (with a flat direction, the lam line), inside (0, 1) and outside it."""
    p = width1_minimum.network
    q = split(p, lam)
    np.testing.assert_allclose(forward(q, X_REG)[-1], forward(p, X_REG)[-1], rtol=1e-14, atol=1e-16)
    assert np.linalg.norm(gradient(q, X_REG, Y_REG)[1]) <= 1e-10

    H = hessian(q, X_REG, Y_REG)[0]
    scale = np.abs(np.linalg.eigvalsh(H)).max()
    (v,) = p.weights[1][0, 0]
    # Layout of the 1-2-1 network: w_1, w_2 | b_1, b_2 | v_1, v_2 | c.
    along_lam = np.array([0, 0, 0, 0, v, -v, 0])
    assert np.linalg.norm(H @ along_lam) <= 1e-9 * scale * np.linalg.norm(along_lam)

    f = forward(p, X_REG)
    x1 = np.hstack([X_REG, np.ones_like(X_REG)])
    weight = (
        output_delta("tanh", "half_squared", f[2], Y_REG)[0, :, 0] * SECOND_DERIVATIVES["tanh"](f[1])[0, :, 0]
    )
    B = (x1.T * weight) @ x1 / len(X_REG)
    mu, xis = np.linalg.eigh(B)
    assert mu[0] < 0 < mu[1]  # indefinite
    for xi in xis.T:
        d = np.array([(1 - lam) * xi[0], -lam * xi[0], (1 - lam) * xi[1], -lam * xi[1], 0, 0, 0])
        np.testing.assert_allclose(d @ H @ d, lam * (1 - lam) * v * xi @ B @ xi, rtol=1e-8)

    c = certify(q, X_REG, Y_REG, threshold=1e-6, options=Options(lbfgs_iters=5, newton_iters=5))
    assert c.kind.tolist() == ["saddle"]
    assert c.n_negative[0] >= 1 and c.n_flat[0] >= 1 and c.lambda_min[0] < 0
    assert c.displacement[0] <= 1e-8
    np.testing.assert_allclose(c.polished_loss, width1_minimum.polished_loss, rtol=1e-12)


def test_width1_xor_runs_off_into_a_valley():
    """A 2-1-1 tanh network cannot solve XOR. Its output is a monotone function of one projection
    w . x, and the best monotone fit to the labels in any order of the corners pools three of them
    (two alike, one not: mean +-0.3) and fits the fourth: loss 1/8 (0.6^2 + 0.6^2 + 1.2^2) = 0.27.
    Pooling needs three equal outputs, which a finite tanh unit cannot give: the infimum 0.27 is
    approached only as the hidden unit saturates into a step, weights to infinity."""
    X, Y = tasks.xor()
    net = init_network([2, 1, 1], seeds=0)
    c = certify(net, X, Y, threshold=1e-3, options=Options(lbfgs_iters=200, newton_iters=5))
    assert c.kind.tolist() == ["valley"] and c.mechanism.tolist() == ["saturating unit 0 of layer 1"]
    assert c.norm_end[0] > 1.5 * c.norm_start[0] and c.norm_end[0] > 10
    assert c.start_loss[0] > c.polished_loss[0] > 0.27 - 1e-12
    assert c.polished_loss[0] < 0.27 + 1e-6
    # Three corners pooled: the hidden unit saturated (f_1 = +-1 to 3 decimals, one sign) and the
    # output at the pooled mean +-0.3 there; the fourth corner at its own target.
    f1, f2 = (f[0, :, 0] for f in forward(c.network, X)[1:])
    pooled = np.argsort(np.abs(f1))[1:]
    assert np.all(np.abs(f1[pooled]) > 0.999) and len(set(np.sign(f1[pooled]))) == 1
    np.testing.assert_allclose(np.abs(f2[pooled]), 0.3, atol=1e-3)
    np.testing.assert_allclose(np.abs(f2[np.argmin(np.abs(f1))]), 0.9, atol=1e-3)
    np.testing.assert_allclose(np.sort(np.abs(Y[pooled, 0] - f2[pooled])), [0.6, 0.6, 1.2], atol=1e-3)


def test_valley_verdict_does_not_depend_on_an_unused_budget():
    """Seed 5 of the same 2-1-1 XOR network: L-BFGS stops after ~120 iterations whatever the budget,
    at the same point, so its kind cannot depend on a budget of 300 or 1000 (or the default 2000)."""
    X, Y = tasks.xor()
    net = init_network([2, 1, 1], seeds=5)
    small = certify(net, X, Y, threshold=1e-3, options=Options(lbfgs_iters=300, newton_iters=5))
    large = certify(net, X, Y, threshold=1e-3, options=Options(lbfgs_iters=1000, newton_iters=5))
    np.testing.assert_array_equal(flat_params(small.network), flat_params(large.network))
    assert small.kind.tolist() == large.kind.tolist() == ["valley"]


def test_solved_end_points():
    """XOR with width 3 from a few seeds: every end point polished below the threshold is solved,
    whatever its spectrum (13 parameters, 4 equations f(x_s) = y_s: the solutions form a 9-dimensional
    set, never strict minima)."""
    X, Y = tasks.xor()
    net = init_network([2, 3, 1], seeds=[0, 1, 2])
    c = certify(net, X, Y, threshold=1e-3, options=Options(lbfgs_iters=300, newton_iters=5))
    assert "solved" in c.kind
    np.testing.assert_array_equal(c.kind == "solved", c.polished_loss < 1e-3)


def test_saddle_above_max_full_is_a_saddle():
    X, Y = tasks.chain(n=16)
    net = network_from_arrays([np.zeros((1, 1)), np.zeros((1, 1))])
    c = certify(net, X, Y, threshold=1e-6, options=Options(max_full=1, lbfgs_iters=10, newton_iters=3))
    assert c.spectrum[0][0] < 0 and c.n_negative[0] == 1
    assert c.kind.tolist() == ["saddle"]


# ------------------------------------------------------------------------------------------------
# classify on hand-made spectra


@pytest.mark.parametrize(
    ("loss", "grad", "lam", "flags", "kind", "n_flat", "n_negative"),
    [
        (1e-5, 1.0, [-1.0, 2.0], {}, "solved", 0, 1),  # below the threshold: nothing else matters
        (0.1, 1e-12, [0.01, 1.0, 2.0], {}, "minimum", 0, 0),
        (0.1, 1e-12, [2e-9, 1.0], {}, "minimum", 0, 0),  # 2e-9 s is above flat = 1e-10 s: near-flat
        (0.1, 1e-12, [0.0, 1e-11, 1.0], {}, "degenerate", 2, 0),
        (0.1, 1e-12, [-1e-11, 0.0, 1.0], {}, "degenerate", 2, 0),  # -1e-11 s is flat, not negative
        (0.1, 1e-12, [-1e-9, 1.0], {}, "unconverged", 0, 1),  # negative, but the loss does not follow
        (0.1, 1e-12, [-0.5, 1.0], {"descent_confirmed": True}, "saddle", 0, 1),
        (0.1, 1e-12, [-0.5, 0.0, 1.0], {"descent_confirmed": True}, "saddle", 1, 1),
        (0.1, 1e-12, [-0.5, 1.0], {}, "unconverged", 0, 1),  # the loss does not follow the model
        (0.1, 1e-12, [0.0, 1.0], {"higher_order": 4}, "saddle", 1, 0),  # falls like -t^4
        (0.1, 1e-12, [0.0, 1.0], {"higher_order": -1}, "saddle", 1, 0),  # a perturbation and descent
        (0.1, 1e-3, [1e-5, 1.0], {"valley": True}, "valley", 0, 0),
        (0.1, 1e-12, [0.0, 1.0], {"valley": True}, "valley", 1, 0),
        (0.1, 1e-3, [0.01, 1.0], {}, "unconverged", 0, 0),
        (0.1, 3e-8, [0.01, 2.0], {}, "unconverged", 0, 0),  # |grad| 1.5e-8 s: above gtol s
        (np.nan, 1e-12, [0.0, 1.0], {}, "unconverged", 1, 0),
    ],
)
@pytest.mark.parametrize("scale", [1.0, 1e6, 1e-6])
def test_classify_hand_made_spectra(loss, grad, lam, flags, kind, n_flat, n_negative, scale):
    """Each kind from its rule, and the tolerances are relative to the spectrum's scale
    s = max |lambda|: multiplying the spectrum and the gradient by 1e6 or 1e-6 changes nothing."""
    got = classify(loss, grad * scale, np.array(lam) * scale, 1e-3, **flags)
    assert got == (kind, n_flat, n_negative)


def test_classify_covers_every_kind_and_honours_options():
    assert set(KINDS) == {"solved", "minimum", "degenerate", "saddle", "valley", "unconverged"}
    lam = np.array([1e-11, 1.0])
    assert classify(0.1, 0.0, lam, 1e-3)[0] == "degenerate"
    assert classify(0.1, 0.0, lam, 1e-3, options=Options(flat=1e-12))[0] == "minimum"
    assert classify(0.1, 1e-6, lam, 1e-3)[0] == "unconverged"
    assert classify(0.1, 1e-6, lam, 1e-3, options=Options(gtol=1e-5, flat=1e-12))[0] == "minimum"
    lam = np.array([-1e-4, 1.0])
    assert classify(0.1, 0.0, lam, 1e-3, descent_confirmed=True)[:2] == ("saddle", 0)
    assert classify(0.1, 0.0, lam, 1e-3, options=Options(negative=1e-3, flat=1e-3))[:2] == ("degenerate", 1)
    # Tolerances are at least margin (10) times the spectrum's accuracy: 1e-9 s is flat when the
    # eigenvalues are known to 1e-9 s only (Lanczos), positive when known to rounding.
    assert classify(0.1, 0.0, np.array([1e-9, 1.0]), 1e-3)[0] == "minimum"
    assert classify(0.1, 0.0, np.array([1e-9, 1.0]), 1e-3, accuracy=1e-9)[:2] == ("degenerate", 1)


# ------------------------------------------------------------------------------------------------
# Symmetries: copies, canonical form, alignment, distinct optima


def symmetric_copy(net, rng, *, flips):
    """``net`` (one replica) with the units of every hidden layer permuted at random and, with
    ``flips``, random units' signs flipped (incoming weights, bias and outgoing weights negated)."""
    W = [w[0].copy() for w in net.weights]
    b = None if net.biases is None else [v[0].copy() for v in net.biases]
    for i in range(1, len(W)):
        h = W[i - 1].shape[1]
        perm = rng.permutation(h)
        while np.array_equal(perm, np.arange(h)):
            perm = rng.permutation(h)
        sign = rng.choice([-1.0, 1.0], size=h) if flips else np.ones(h)
        W[i - 1] = W[i - 1][:, perm] * sign
        W[i] = W[i][perm] * sign[:, None]
        if b is not None:
            b[i - 1] = b[i - 1][perm] * sign
    return network_from_arrays(W, b, hidden=net.hidden, output=net.output)


def stack(nets):
    """One network whose replicas are the given one-replica networks."""
    first = nets[0]
    weights = [np.concatenate([n.weights[i] for n in nets]) for i in range(len(first.weights))]
    biases = (
        None
        if first.biases is None
        else [np.concatenate([n.biases[i] for n in nets]) for i in range(len(first.weights))]
    )
    return network_from_arrays(weights, biases, hidden=first.hidden, output=first.output)


@pytest.mark.parametrize("act", ["tanh", "identity", "sigmoid", "relu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("hidden_layers", [1, 2, 3])
def test_symmetric_copies_share_one_optimum(rng, act, bias, hidden_layers):
    """Permuted copies (and sign-flipped ones for the odd activations tanh and identity) compute the
    same function; align maps each back onto the original exactly, canonical gives them one form,
    and distinct_optima puts them into one optimum."""
    sizes = [3, 4, 5, 3, 2][: hidden_layers + 1] + [2]
    original = random_network(rng, sizes, act=act, bias=bias, R=1)
    odd = act in ("tanh", "identity")
    copies = [symmetric_copy(original, rng, flips=odd) for _ in range(4)]
    everyone = stack([original, *copies])
    X = rng.uniform(-1.0, 1.0, size=(10, sizes[0]))

    assert np.all(function_distance(original, everyone, X) <= 1e-14)
    assert np.abs(flat_params(everyone) - flat_params(original)).max() > 0.1  # the copies do differ
    # Permutations and sign flips are exact in floating point: so is their undoing.
    np.testing.assert_array_equal(
        flat_params(align(original, everyone)), np.repeat(flat_params(original), 5, 0)
    )
    assert np.all(parameter_distance(original, everyone) <= 1e-14)

    forms = flat_params(canonical(everyone))
    np.testing.assert_allclose(forms, np.repeat(forms[:1], 5, axis=0), rtol=1e-14, atol=1e-15)
    assert np.all(function_distance(canonical(everyone), everyone, X) <= 1e-14)

    assert distinct_optima(everyone, X).tolist() == [0] * 5


def test_distinct_networks_are_distinct_optima(rng):
    """Copies of two different networks, interleaved: two optima, numbered in order of loss."""
    sizes = [2, 3, 1]
    a, b = (random_network(rng, sizes, act="tanh", bias=True, R=1) for _ in range(2))
    X = rng.uniform(-1.0, 1.0, size=(8, 2))
    everyone = stack([a, symmetric_copy(b, rng, flips=True), symmetric_copy(a, rng, flips=True), b])
    assert distinct_optima(everyone, X).tolist() == [0, 1, 0, 1]
    assert distinct_optima(everyone, X, loss=np.array([2.0, 1.0, 2.0, 1.0])).tolist() == [1, 0, 1, 0]


# Inputs on a 4 x 4 grid, symmetric under swapping the two coordinates, and a target that is too
# (y(x1, x2) = y(x2, x1)): swapping the rows of W_1 maps a network to one of exactly the same loss.
GRID = np.array([[a, b] for a in np.linspace(-1, 1, 4) for b in np.linspace(-1, 1, 4)])
Y_GRID = 0.8 * np.tanh(2 * GRID.max(axis=1, keepdims=True))


def swapped(net):
    return network_from_arrays([net.weights[0][:, ::-1], *net.weights[1:]], net.biases)


def test_equal_loss_different_function_are_two_optima():
    """A polished 2-2-1 minimum p that is not swap-symmetric, and its mirror image swapped(p): exactly
    the same loss and spectrum (the swap permutes parameters and data alike), a different function,
    so two optima; a barrier separates them, and the unaligned path is symmetric, L(t) = L(1 - t)
    (the swap S maps (1 - t) p + t S p to (1 - t) S p + t p)."""
    net = init_network([2, 2, 1], seeds=0)
    opts = Options(lbfgs_iters=300, newton_iters=20)
    p = certify(net, GRID, Y_GRID, threshold=1e-6, options=opts)
    assert p.kind.tolist() == ["minimum"]
    q = certify(
        swapped(p.network), GRID, Y_GRID, threshold=1e-6, options=Options(lbfgs_iters=5, newton_iters=5)
    )
    assert q.kind.tolist() == ["minimum"]
    np.testing.assert_allclose(q.polished_loss, p.polished_loss, rtol=1e-12)
    np.testing.assert_allclose(q.spectrum[0], p.spectrum[0], rtol=1e-8, atol=1e-12)

    both = stack([p.network, q.network])
    assert function_distance(p.network, q.network, GRID)[0] > 1e-2
    assert parameter_distance(p.network, q.network)[0] > 1e-2
    assert distinct_optima(both, GRID).tolist() == [0, 1]

    height, path = barrier(p.network, q.network, GRID, Y_GRID)
    assert height[0] > 0.01
    np.testing.assert_allclose(path[0, [0, -1]], [p.polished_loss[0], q.polished_loss[0]], rtol=1e-12)
    np.testing.assert_allclose(height[0], path.max() - path[0, [0, -1]].max(), rtol=1e-15)
    _, straight = barrier(p.network, swapped(p.network), GRID, Y_GRID, aligned=False)
    np.testing.assert_allclose(straight[0], straight[0, ::-1], rtol=1e-12)


def test_barrier_of_a_network_with_itself_and_its_flip():
    """Barrier of a network with itself: 0, the path constant. With its sign-flipped copy (1-1-1 chain,
    (w1, w2) and (-w1, -w2), one function): aligned, the same; unaligned, the straight path crosses
    the origin at t = 1/2, where f = 0 and the loss is 1/2 mean y^2, a barrier of that minus L."""
    X, Y = tasks.chain(n=16)
    p = network_from_arrays([[[0.0698]], [[7.6165]]], None)  # near the chain's best fit
    L = loss_of(p, X, Y)[0]
    height, path = barrier(p, p, X, Y)
    assert height.tolist() == [0.0]
    np.testing.assert_allclose(path[0], L, rtol=1e-15)

    flip = network_from_arrays([-p.weights[0], -p.weights[1]], None)
    height, path = barrier(p, flip, X, Y)
    assert height[0] == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(path[0], L, rtol=1e-14)

    height, path = barrier(p, flip, X, Y, aligned=False, points=33)
    assert path[0, 16] == pytest.approx(0.5 * np.mean(Y**2), rel=1e-15)
    assert height[0] == pytest.approx(0.5 * np.mean(Y**2) - L, rel=1e-12)
    assert height[0] > 0


def test_barrier_one_reference_against_many_replicas(rng):
    """A one-replica reference against R networks: R paths, each starting at the reference's loss."""
    X, Y = rng.uniform(-1, 1, size=(6, 2)), rng.uniform(-1, 1, size=(6, 1))
    a = random_network(rng, [2, 3, 1], act="tanh", bias=True, R=1)
    b = random_network(rng, [2, 3, 1], act="tanh", bias=True, R=4)
    height, path = barrier(a, b, X, Y, points=9)
    assert height.shape == (4,) and path.shape == (4, 9)
    np.testing.assert_allclose(path[:, 0], loss_of(a, X, Y)[0], rtol=1e-15)
    np.testing.assert_allclose(path[:, -1], loss_of(b, X, Y), rtol=1e-12)
    assert np.all(height >= 0)


# ------------------------------------------------------------------------------------------------
# Continuous symmetries: relu rescaling and identity mixing


def orbit(net, s):
    """Each continuous symmetry of ``net`` (one replica) applied with parameter s, in the order of
    symmetry_directions: relu unit j of hidden layer i rescaled by a = 1 + s (incoming and bias times
    a, outgoing over a); identity units mixed by A = I + s e_a e_c^T (W_i A, b_i A, A^{-1} W_{i+1})."""
    out = []
    for i in range(1, len(net.weights)):
        h = net.weights[i - 1].shape[2]
        pairs = (
            [(j, j) for j in range(h)]
            if net.hidden == "relu"
            else [(a, c) for a in range(h) for c in range(h)]
        )
        for a, c in pairs:
            A = np.eye(h)
            A[a, c] += s
            W = [w[0].copy() for w in net.weights]
            b = None if net.biases is None else [v[0].copy() for v in net.biases]
            W[i - 1] = W[i - 1] @ A
            W[i] = np.linalg.solve(A, W[i])
            if b is not None:
                b[i - 1] = b[i - 1] @ A
            out.append(flat_params(network_from_arrays(W, b, hidden=net.hidden, output=net.output))[0])
    return np.array(out)  # (m, P)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("act", ["relu", "identity"])
def test_symmetry_directions_are_tangents_of_loss_invariant_orbits(rng, act, bias):
    """For relu and identity hidden layers the loss is constant along each orbit; the tangent t is
    the orbit's derivative at s = 0; so grad . t = 0 and moving along t changes the loss at second
    order only: L(theta + eps t) - L(theta) = eps^2 / 2 t^T H t + O(eps^3).

    The tangents are linear in theta, t = J theta, and L(theta) = L(orbit) for all theta gives, once
    differentiated, grad^T J theta = 0 for all theta, and again, H J theta + J^T grad = 0:
    H t = -J^T grad everywhere, and H t = 0 at a critical point."""
    net, X, Y = draw(rng, [3, 4, 3, 2], hidden=act, output="tanh", bias=bias, n=8, R=1)
    T = symmetry_directions(net)[0]  # (P, m)
    P = net.n_params
    m = 4 + 3 if act == "relu" else 4 * 4 + 3 * 3
    assert T.shape == (P, m)

    L0, g = gradient(net, X, Y)
    for s in (0.3, -0.2):
        np.testing.assert_allclose(loss_of(moved(net, orbit(net, s)), X, Y), L0[0], rtol=1e-12)
    eps = 1e-6
    np.testing.assert_allclose((orbit(net, eps) - orbit(net, -eps)).T / (2 * eps), T, atol=1e-8)

    np.testing.assert_allclose(g[0] @ T, 0.0, atol=1e-14 * np.linalg.norm(g) * np.abs(T).max())
    HT = hvp(net, X, Y, T.T[None])[0]  # (m, P)
    eps = 1e-4
    steps = flat_params(net) + eps * T.T  # (m, P): one step along each tangent
    change = loss_of(moved(net, steps), X, Y) - L0[0]
    np.testing.assert_allclose(change, 0.5 * eps**2 * np.einsum("mp,pm->m", HT, T), atol=1e-3 * eps**2)

    # J column by column, J e_k = t(e_k): the tangents of the P unit vectors, P replicas at once.
    J = symmetry_directions(moved(net, np.eye(P)))  # (P = k, P, m)
    np.testing.assert_allclose(np.einsum("kpm,k->mp", J, flat_params(net)[0]), T.T, atol=1e-15)
    np.testing.assert_allclose(HT, -np.einsum("kpm,p->mk", J, g[0]), atol=1e-12)


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
def test_no_continuous_symmetry_for_tanh_and_sigmoid(rng, act):
    net = random_network(rng, [3, 4, 2], act=act, bias=True, R=2)
    assert symmetry_directions(net).shape == (2, net.n_params, 0)
    one_layer = network_from_arrays([np.ones((2, 3, 2))], hidden="relu")
    assert symmetry_directions(one_layer).shape == (2, 6, 0)  # no hidden layer, no symmetry


def test_deep_linear_minimum_modulo_symmetry():
    """A 2-3-1 identity network without biases (P = 9) at least squares: its minima form the fiber
    {W_1 W_2 = beta}, of dimension 9 - 2 = 7, and that fiber is exactly the orbit of GL(3): the
    stabilizer of (W_1, W_2) is {A = I + k r^T: W_1 k = 0, r . W_2 = 0}, 1 x 2 = 2 dimensions, so the
    orbit has 9 - 2 = 7. H t = 0 for the 9 tangents; taken out (n_symmetry = 7), the Hessian on the
    remaining 2 directions is positive definite: a strict minimum modulo symmetry."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2))
    Y = np.sin(X[:, :1]) + 0.3 * X[:, 1:]
    net = init_network([2, 3, 1], seeds=0, hidden="identity", output="identity", bias=False)
    c = certify(net, X, Y, threshold=1e-6, options=Options(lbfgs_iters=300, newton_iters=20))
    assert c.kind.tolist() == ["minimum"]
    assert c.n_symmetry.tolist() == [7] and len(c.spectrum[0]) == 2
    beta = np.linalg.lstsq(X, Y, rcond=None)[0]
    W1, W2 = c.network.weights[0][0], c.network.weights[1][0]
    np.testing.assert_allclose(W1 @ W2, beta, rtol=1e-9)
    H = hessian(c.network, X, Y)[0]
    T = symmetry_directions(c.network)[0]
    assert np.abs(H @ T).max() <= 1e-9 * np.abs(H).max() * np.abs(T).max()
    assert np.linalg.matrix_rank(T, tol=1e-10 * np.abs(T).max()) == 7


def test_deep_linear_minimum_above_max_full():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2))
    Y = np.sin(X[:, :1]) + 0.3 * X[:, 1:]
    net = init_network([2, 3, 1], seeds=0, hidden="identity", output="identity", bias=False)
    c = certify(net, X, Y, threshold=1e-6, options=Options(lbfgs_iters=300, newton_iters=20, max_full=1))
    assert c.n_flat[0] == 0
    assert c.kind.tolist() == ["minimum"]


def test_relu_critical_point_flat_beyond_its_symmetries():
    """A 2-3-1 relu network (identity output, biases) whose hidden units stay active on every sample
    is locally linear: f = x W_1 W_2 + b_1 W_2 + b_2, 3 effective parameters of P = 13, so its minima
    near here form a 10-dimensional set, of which the 3 rescalings are only 3 dimensions. At the
    polished point H t = 0 for the 3 tangents (taken out), and 10 - 3 = 7 flat directions remain:
    degenerate, not a minimum (relu has no mixing symmetry; the flatness is local)."""
    rng = np.random.default_rng(1)
    X = rng.uniform(0.5, 1.5, size=(10, 2))
    Y = X @ np.array([[0.4], [-0.3]]) + 0.05 * rng.normal(size=(10, 1))
    net = network_from_arrays(
        [rng.uniform(0.5, 1.0, (2, 3)), rng.normal(size=(3, 1))],
        [np.ones(3), np.zeros(1)],
        hidden="relu",
        output="identity",
    )
    c = certify(net, X, Y, threshold=1e-9, options=Options(lbfgs_iters=200, newton_iters=20))
    p = c.network
    assert np.all(forward(p, X)[1] > 1e-2)  # every unit active on every sample, away from the kink
    assert c.kind.tolist() == ["degenerate"]
    assert c.n_symmetry.tolist() == [3] and c.n_flat.tolist() == [7] and c.n_negative.tolist() == [0]
    H = hessian(p, X, Y)[0]
    T = symmetry_directions(p)[0]
    assert np.abs(H @ T).max() <= 1e-9 * np.abs(H).max() * np.abs(T).max()
    # The polished loss is the linear least-squares optimum with intercept.
    A = np.hstack([X, np.ones((10, 1))])
    best = 0.5 * np.mean((Y - A @ np.linalg.lstsq(A, Y, rcond=None)[0]) ** 2)
    np.testing.assert_allclose(c.polished_loss, best, rtol=1e-9)


# ------------------------------------------------------------------------------------------------
# The lean objective, the Lanczos extremes


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("act", ACTS)
def test_objective_equals_backprop(rng, act, loss, bias, depth):
    """Objective, the replica-free loss and gradient L-BFGS calls, is backprop's recursion."""
    out = ACTS[(ACTS.index(act) + 1) % len(ACTS)]
    net, X, Y = draw(rng, SIZES[depth], hidden=act, output=out, bias=bias, R=2, loss=loss)
    objective = Objective(net.sizes, bias, act, net.output, loss, X, Y)
    values, grads = gradient(net, X, Y, loss=loss)
    for r, theta in enumerate(flat_params(net)):
        value, g = objective(theta)
        assert value == pytest.approx(values[r], rel=1e-14)
        np.testing.assert_allclose(g, grads[r], rtol=1e-12, atol=1e-15)
        assert value == pytest.approx(float(LOSSES[loss](forward(net, X)[-1][r], Y).mean()), rel=1e-12)
    # Objective.many, the Bezier nodes' batched form: each point's, and a combination of the gradients
    # with the first layer's products given (as a curve gives them).
    many_values, many_grads = objective.many(flat_params(net))
    np.testing.assert_allclose(many_values, values, rtol=1e-13)
    np.testing.assert_allclose(many_grads, grads, rtol=1e-12, atol=1e-15)
    w = np.array([0.3, -1.2])
    _, combined = objective.many(flat_params(net), weights=w, first=X @ net.weights[0])
    np.testing.assert_allclose(combined, w @ grads, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_extreme_eigenvalues_match_the_full_spectrum(rng, act):
    net, X, Y = draw(rng, [3, 4, 2], hidden=act, output="tanh", bias=True, n=8, R=2)
    smallest, largest = extreme_eigenvalues(net, X, Y, k=3)
    assert smallest.shape == (2, 3) and largest.shape == (2,)
    full = np.linalg.eigvalsh(hessian(net, X, Y))
    scale = np.abs(full).max()
    np.testing.assert_allclose(smallest, full[:, :3], atol=1e-9 * scale)
    np.testing.assert_allclose(largest, full[:, -1], atol=1e-9 * scale)


def test_gradient_is_backprop_flattened(rng):
    """gradient's flat layout is flat_params': a step along -grad lowers the loss at first order."""
    net, X, Y = draw(rng, [3, 4, 2], hidden="tanh", output="tanh", bias=True)
    value, g = gradient(net, X, Y)
    np.testing.assert_allclose(value, loss_of(net, X, Y), rtol=1e-15)
    eps = 1e-6
    change = loss_of(moved(net, flat_params(net) - eps * g), X, Y) - value
    np.testing.assert_allclose(change, -eps * np.sum(g * g, axis=1), rtol=1e-4)


# ------------------------------------------------------------------------------------------------
# Bad input: a ValueError naming the field


@pytest.mark.parametrize("shape", [(R, 11), (R + 1, 12), (12,), (R, 2, 11), (R, 2, 2, 12)])
def test_hvp_wrong_shape(shape):
    net = init_network([2, 2, 2], seeds=list(range(R)))  # P = 2 * 2 + 2 + 2 * 2 + 2 = 12
    X, Y = np.ones((4, 2)), np.ones((4, 2))
    with pytest.raises(ValueError, match=r"V: expected shape \(R=3, P=12\)"):
        hvp(net, X, Y, np.ones(shape))


@pytest.mark.parametrize("threshold", [0, 0.0, -1e-3, float("nan"), "0.1", None])
def test_certify_bad_threshold(threshold):
    X, Y = tasks.xor()
    with pytest.raises(ValueError, match="threshold: expected a number > 0"):
        certify(init_network([2, 2, 1]), X, Y, threshold=threshold)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lbfgs_iters", 0),
        ("lbfgs_iters", 1.5),
        ("newton_iters", True),
        ("max_full", -3),
        ("gtol", 0.0),
        ("flat", -1e-6),
        ("negative", float("inf")),
        ("valley", float("nan")),
        ("gtol", "1e-8"),
        ("margin", 0.5),
        ("probes", 0),
    ],
)
def test_options_bad_value(field, value):
    with pytest.raises(ValueError, match=f"^{field}: expected"):
        Options(**{field: value})


def test_other_bad_input():
    X, Y = tasks.xor()
    net = init_network([2, 2, 1], seeds=[0, 1])
    with pytest.raises(ValueError, match="loss 'squard'"):
        hessian(net, X, Y, loss="squard")
    with pytest.raises(ValueError, match="loss 'squard'"):
        certify(net, X, Y, threshold=1e-3, loss="squard")
    with pytest.raises(ValueError, match="X, Y: certify takes one data set"):
        certify(net, np.stack([X, X]), Y, threshold=1e-3)
    with pytest.raises(ValueError, match="Y: expected 4 samples"):
        hvp(net, X, Y[:3], np.ones((2, net.n_params)))
    with pytest.raises(ValueError, match="k: expected an int in 1..8"):
        extreme_eigenvalues(net, X, Y, k=9)
    with pytest.raises(ValueError, match="points: expected an int >= 2"):
        barrier(net, net, X, Y, points=1)
    with pytest.raises(ValueError, match="align: networks of different architectures"):
        align(net, init_network([2, 3, 1]))
    with pytest.raises(ValueError, match="align: expected a reference of 1 or 2 replicas"):
        align(init_network([2, 2, 1], seeds=[0, 1, 2]), net)


def test_activation_table_is_the_one_tested():
    """The parametrizations above cover every activation and loss the engine has."""
    assert sorted(a for a in ACTIVATIONS if a != "softmax") == sorted(ACTS)  # softmax: by `paired`
    assert sorted(LOSSES) == sorted(LOSS_NAMES)


def _soft_valley():
    """Least squares f = x . w on two nearly collinear inputs: a strict minimum w* whose Hessian
    X^T X / n has a soft direction v (eigenvalue lam ~ 1e-8 of the other). Points w* + t v are the
    near-flat valley floor: gradient lam t, loss lam t^2 / 2 above the minimum."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(8)
    X = np.stack([x, x + 1e-4 * rng.standard_normal(8)], axis=1)
    Q, _ = np.linalg.qr(X)
    z = rng.standard_normal(8)
    Y = (X @ [0.3, 0.5] + 0.1 * (z - Q @ (Q.T @ z)))[:, None]  # a residual no w fits: w* = (0.3, 0.5)
    lam, V = np.linalg.eigh(X.T @ X / len(X))
    return X, Y, np.array([0.3, 0.5]), lam, V[:, 0]


def test_points_on_a_near_flat_valley_floor_are_one_flat_family():
    """Three points of the soft valley, each certified only to its gradient lam |t|: their losses
    agree within their margins and the straight path between them never rises, so they are one
    optimum, whatever distinct_optima's parameter tolerance says; its extent is the farthest point's
    distance. The same points claimed polished to |g| = 1e-16 have losses the margins tell apart:
    three optima, though a straight descent joins them."""
    from nnlab.landscape import flat_families, loss_margin

    X, Y, w, lam, v = _soft_valley()
    assert lam[0] < 1e-7 * lam[1]
    t = np.array([0.0, 0.5, -0.8])
    points = network_from_arrays([(w + np.outer(t, v))[:, :, None]], None, output="identity")
    values = loss_of(points, X, Y)
    labels = distinct_optima(points, X, loss=values)
    assert labels.tolist() == [0, 1, 2]  # apart by more than PTOL: three optima by that rule
    grad = lam[0] * np.abs(t)
    margin = loss_margin(values, grad, np.full(3, lam[0]))
    family, extent = flat_families(points, X, Y, labels, values, margin)
    assert family.tolist() == [0, 0, 0]
    np.testing.assert_allclose(extent, [0.8], rtol=1e-9)
    # Claimed polished to rounding, the gaps lam t^2 / 2 (0.125 lam, 0.32 lam) exceed the margins.
    sharp = loss_margin(values, np.full(3, 1e-16), np.full(3, lam[0]))
    family, extent = flat_families(points, X, Y, labels, values, sharp)
    assert family.tolist() == [0, 1, 2] and extent.tolist() == [0.0, 0.0, 0.0]


def test_equal_losses_behind_a_barrier_stay_two_families():
    """The swap-symmetric pair of 2-2-1 minima (p and its mirror image): the same loss to rounding,
    but a barrier between them, along the straight line and the trained curve: two optima."""
    from nnlab.landscape import flat_families, loss_margin

    p = certify(
        init_network([2, 2, 1], seeds=0),
        GRID,
        Y_GRID,
        threshold=1e-6,
        options=Options(lbfgs_iters=300, newton_iters=20),
    )
    both = stack([p.network, swapped(p.network)])
    values = loss_of(both, GRID, Y_GRID)
    margin = loss_margin(values, np.repeat(p.grad_norm, 2), np.repeat(p.lambda_min, 2))
    assert abs(values[0] - values[1]) <= margin.sum()  # equal losses, as far as the margins tell
    family, extent = flat_families(
        both, GRID, Y_GRID, distinct_optima(both, GRID, loss=values), values, margin
    )
    assert family.tolist() in ([0, 1], [1, 0]) and extent.tolist() == [0.0, 0.0]
