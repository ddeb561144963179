"""The tables of nnlab.functions: every derivative against central differences of the one below it,
the classification losses against values worked by hand, targets and pairings."""

import math

import numpy as np
import pytest

from nnlab.functions import (
    ACTIVATIONS,
    DERIVATIVES,
    ELEMENTWISE,
    LOSS_CURVATURES,
    LOSS_DERIVATIVES,
    LOSSES,
    PAIRINGS,
    SECOND_DERIVATIVES,
    check_pairing,
    correct,
    output_delta,
    output_delta_r,
    output_loss,
    softmax,
    targets,
)

H = 1e-6
PAIRS = [(output, loss) for loss, outputs in sorted(PAIRINGS.items()) for output in outputs]


def _z(rng, shape=(5, 3)):
    z = rng.normal(size=shape)
    return np.where(np.abs(z) < 1e-3, 0.5, z)  # away from relu's kink


def _targets(loss, rng, shape):
    """Targets a loss accepts, shaped (..., out)."""
    if loss == "hinge":
        return rng.choice([-1.0, 1.0], size=shape)
    if loss == "cross_entropy":
        if shape[-1] == 1:
            return rng.uniform(0.0, 1.0, size=shape)
        return np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[:-1])]
    return rng.normal(size=shape)


def _outputs(loss, rng, shape):
    """Output values f inside the loss's domain, away from the hinge's kink."""
    if loss == "cross_entropy":
        return rng.uniform(0.1, 0.9, size=shape)
    f = rng.normal(size=shape)
    return np.where(np.abs(np.abs(f) - 1.0) < 1e-3, 0.5, f)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_activation_derivatives_from_the_output(name, rng):
    z = _z(rng)
    act = ACTIVATIONS[name]
    first = (act(z + H) - act(z - H)) / (2 * H)
    np.testing.assert_allclose(DERIVATIVES[name](act(z)), first, rtol=1e-7, atol=1e-9)
    second = (DERIVATIVES[name](act(z + H)) - DERIVATIVES[name](act(z - H))) / (2 * H)
    np.testing.assert_allclose(SECOND_DERIVATIVES[name](act(z)), second, rtol=1e-6, atol=1e-8)


def test_every_table_names_the_same_functions():
    assert set(DERIVATIVES) == set(SECOND_DERIVATIVES) == set(ELEMENTWISE)
    assert set(ACTIVATIONS) == set(ELEMENTWISE) | {"softmax"}
    assert set(LOSSES) == set(LOSS_DERIVATIVES) == set(LOSS_CURVATURES) == set(PAIRINGS)


def test_softmax_by_hand():
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(softmax(z)[0], e / e.sum(), rtol=1e-15)
    np.testing.assert_array_equal(softmax(z)[1], [1.0, 0.0, 0.0])  # no overflow
    # One output unit: the logistic function.
    np.testing.assert_allclose(
        softmax(np.array([[0.0], [2.0]])), [[0.5], [1 / (1 + math.exp(-2))]], rtol=1e-15
    )


@pytest.mark.parametrize("out", [1, 3])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_loss_derivatives(loss, out, rng):
    f = _outputs(loss, rng, (4, out))
    y = _targets(loss, rng, (4, out))
    v = rng.normal(size=(4, out))
    grad = np.empty_like(f)
    for k in range(f.shape[-1]):
        e = np.zeros_like(f)
        e[:, k] = H
        grad[:, k] = (LOSSES[loss](f + e, y) - LOSSES[loss](f - e, y)) / (2 * H)
    np.testing.assert_allclose(LOSS_DERIVATIVES[loss](f, y), grad, rtol=1e-7, atol=1e-8)
    hv = (LOSS_DERIVATIVES[loss](f + H * v, y) - LOSS_DERIVATIVES[loss](f - H * v, y)) / (2 * H)
    np.testing.assert_allclose(LOSS_CURVATURES[loss](f, y, v), hv, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("out", [1, 3])
@pytest.mark.parametrize(("output", "loss"), PAIRS)
def test_output_delta_and_its_directional_derivative(output, loss, out, rng):
    if output == "sigmoid" and loss == "cross_entropy" and out > 1:
        pytest.skip("the logistic form has one output unit")
    z, rz = _z(rng, (2, 6, out))
    y = _targets(loss, rng, (6, out))
    if loss == "hinge":
        # Keep every margin y f away from the kink at 1, where the loss has no derivative.
        z = np.where(np.abs(y * ACTIVATIONS[output](z) - 1.0) < 1e-2, z + 0.1, z)
    act = ACTIVATIONS[output]

    def delta(z):
        return output_delta(output, loss, act(z), y)

    per_unit = np.empty_like(z)  # dLoss/dz, unit by unit, from the per-sample loss in z
    for k in range(z.shape[-1]):
        e = np.zeros_like(z)
        e[:, k] = H
        per_unit[:, k] = (output_loss(output, loss, z + e, y) - output_loss(output, loss, z - e, y)) / (2 * H)
    np.testing.assert_allclose(delta(z), per_unit, rtol=1e-6, atol=1e-8)
    directional = (delta(z + H * rz) - delta(z - H * rz)) / (2 * H)
    np.testing.assert_allclose(output_delta_r(output, loss, act(z), y, rz), directional, rtol=1e-6, atol=1e-8)
    # The per-sample loss from z is the table's loss of the output.
    np.testing.assert_allclose(
        output_loss(output, loss, z, y), LOSSES[loss](act(z), y), rtol=1e-12, atol=1e-15
    )


def test_output_delta_r_broadcasts_over_directions(rng):
    """The second-order pass hands f and y with a directions axis of length 1 and R{z} with K."""
    z = rng.normal(size=(2, 5, 1, 4))
    rz = rng.normal(size=(2, 5, 3, 4))
    f = softmax(z)
    y = np.eye(4)[rng.integers(0, 4, size=(2, 5, 1))]
    each = np.stack(
        [output_delta_r("softmax", "cross_entropy", f[:, :, 0], y[:, :, 0], rz[:, :, k]) for k in range(3)],
        axis=2,
    )
    np.testing.assert_allclose(output_delta_r("softmax", "cross_entropy", f, y, rz), each, rtol=1e-15)


def test_cross_entropy_by_hand():
    # z = (1, 2, 3), class 0: loss = log(e + e^2 + e^3) - 1; delta = softmax(z) - y.
    z = np.array([[1.0, 2.0, 3.0]])
    y = np.array([[1.0, 0.0, 0.0]])
    expected = math.log(math.e + math.e**2 + math.e**3) - 1.0  # 2.4076059644443806
    assert output_loss("softmax", "cross_entropy", z, y)[0] == pytest.approx(expected, rel=1e-15)
    p = np.exp(z[0]) / np.exp(z[0]).sum()  # 0.09003057, 0.24472847, 0.66524096
    np.testing.assert_allclose(
        output_delta("softmax", "cross_entropy", softmax(z), y)[0], p - y[0], rtol=1e-15
    )
    # Far outside the softmax's range the loss stays finite and exact: 2000 for the wrong class,
    # log1p(exp(-1000)) = 0 for the right one.
    extreme = np.array([[1000.0, 0.0, -1000.0]])
    np.testing.assert_array_equal(
        output_loss("softmax", "cross_entropy", extreme, np.array([[0.0, 0.0, 1.0]])), [2000.0]
    )
    np.testing.assert_array_equal(output_loss("softmax", "cross_entropy", extreme, y), [0.0])
    # A confident right answer: the loss exp(-40) itself, not 0 (1 - f rounds, log1p does not).
    assert output_loss("softmax", "cross_entropy", np.array([[40.0, 0.0]]), np.array([[1.0, 0.0]]))[
        0
    ] == pytest.approx(math.exp(-40.0), rel=1e-14)


def test_logistic_by_hand():
    # One output unit: loss = softplus(z) - y z. At z = 0: log 2 whatever y; delta = 1/2 - y.
    z = np.array([[0.0], [0.0], [3.0], [-800.0]])
    y = np.array([[1.0], [0.0], [1.0], [1.0]])
    expected = [math.log(2.0), math.log(2.0), math.log1p(math.exp(-3.0)), 800.0]
    for output in ("softmax", "sigmoid"):
        np.testing.assert_allclose(output_loss(output, "cross_entropy", z, y), expected, rtol=1e-15)
        f = ACTIVATIONS[output](z)
        np.testing.assert_allclose(
            output_delta(output, "cross_entropy", f, y)[:2, 0], [-0.5, 0.5], rtol=1e-15
        )


def test_hinge_by_hand_and_its_subgradient_at_the_kink():
    f = np.array([[0.3], [1.5], [1.0], [-0.2], [0.2]])
    y = np.array([[1.0], [1.0], [1.0], [-1.0], [-1.0]])
    np.testing.assert_array_equal(LOSSES["hinge"](f, y), [0.7, 0.0, 0.0, 0.8, 1.2])
    # dLoss/df = -y inside the margin, 0 outside it and (by convention) at y f = 1.
    np.testing.assert_array_equal(LOSS_DERIVATIVES["hinge"](f, y)[:, 0], [-1.0, 0.0, 0.0, 1.0, 1.0])
    # Through an identity output, delta_L is that subgradient; through tanh, times 1 - f^2.
    np.testing.assert_array_equal(output_delta("identity", "hinge", f, y), LOSS_DERIVATIVES["hinge"](f, y))
    np.testing.assert_allclose(
        output_delta("tanh", "hinge", f, y), LOSS_DERIVATIVES["hinge"](f, y) * (1 - f * f)
    )


def test_targets_turns_labels_into_one_hot_rows_and_checks_values():
    np.testing.assert_array_equal(targets("cross_entropy", np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(targets("cross_entropy", np.array([[1.0], [0.0]]), 2), [[0, 1], [1, 0]])
    per_replica = targets("cross_entropy", np.zeros((4, 5, 1), dtype=int), 3)
    assert per_replica.shape == (4, 5, 3)
    soft = np.array([[0.2, 0.8], [0.5, 0.5]])
    np.testing.assert_array_equal(targets("cross_entropy", soft, 2), soft)  # class probabilities
    np.testing.assert_array_equal(targets("hinge", np.array([[1.0, -1.0]]), 2), [[1.0, -1.0]])
    np.testing.assert_array_equal(targets("half_squared", np.array([[0.3, 7.0]]), 2), [[0.3, 7.0]])
    with pytest.raises(ValueError, match=r"Y: class labels must be integers 0..2 for 3 outputs, got 3"):
        targets("cross_entropy", np.array([0, 3]), 3)
    with pytest.raises(ValueError, match=r"class labels must be integers.*got 1.5"):
        targets("cross_entropy", np.array([1.5]), 3)
    with pytest.raises(ValueError, match=r"one-hot rows .* got values in \[-0.9, 0.9\]"):
        targets("cross_entropy", np.array([[0.9, -0.9]]), 2)
    with pytest.raises(ValueError, match=r"one-hot rows .* got a row summing to 2"):
        targets("cross_entropy", np.array([[1.0, 1.0]]), 2)
    with pytest.raises(ValueError, match=r"one output needs targets in \[0, 1\], got values in \[-1, 1\]"):
        targets("cross_entropy", np.array([[1.0], [-1.0]]), 1)
    with pytest.raises(ValueError, match=r"'hinge' needs targets -1 or \+1, got values in \[0, 1\]"):
        targets("hinge", np.array([[0.0], [1.0]]), 1)


def test_check_pairing():
    for output, loss in PAIRS:
        check_pairing(output, loss, 1)
    check_pairing("softmax", "cross_entropy", 10)
    with pytest.raises(
        ValueError, match=r"^output 'softmax' needs loss 'cross_entropy', got loss 'half_squared'$"
    ):
        check_pairing("softmax", "half_squared")
    with pytest.raises(
        ValueError, match=r"^loss 'cross_entropy' needs output 'softmax' or 'sigmoid', got output 'tanh'$"
    ):
        check_pairing("tanh", "cross_entropy")
    with pytest.raises(
        ValueError, match=r"loss 'hinge' needs output 'identity' or 'tanh', got output 'relu'"
    ):
        check_pairing("relu", "hinge")
    with pytest.raises(ValueError, match=r"logistic form for one output unit, got 3 units.*'softmax'"):
        check_pairing("sigmoid", "cross_entropy", 3)


def test_correct():
    f = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    y = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(correct("cross_entropy", f, y), [True, False])
    # One output: the decision boundary 0.5 (cross_entropy) or 0 (hinge).
    np.testing.assert_array_equal(
        correct("cross_entropy", np.array([[0.6], [0.4]]), np.array([[1.0], [1.0]])), [True, False]
    )
    np.testing.assert_array_equal(
        correct("hinge", np.array([[0.1], [0.1]]), np.array([[1.0], [-1.0]])), [True, False]
    )
