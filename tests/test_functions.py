"""The tables of nnlab.functions: every derivative against central differences of the one below it."""

import numpy as np
import pytest

from nnlab.functions import (
    ACTIVATIONS,
    DERIVATIVES,
    LOSS_CURVATURES,
    LOSS_DERIVATIVES,
    LOSSES,
    SECOND_DERIVATIVES,
    output_delta,
    output_delta_r,
)

H = 1e-6


def _z(rng, shape=(5, 3)):
    z = rng.normal(size=shape)
    return np.where(np.abs(z) < 1e-3, 0.5, z)  # away from relu's kink


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives_from_the_output(name, rng):
    z = _z(rng)
    act = ACTIVATIONS[name]
    first = (act(z + H) - act(z - H)) / (2 * H)
    np.testing.assert_allclose(DERIVATIVES[name](act(z)), first, rtol=1e-7, atol=1e-9)
    second = (DERIVATIVES[name](act(z + H)) - DERIVATIVES[name](act(z - H))) / (2 * H)
    np.testing.assert_allclose(SECOND_DERIVATIVES[name](act(z)), second, rtol=1e-6, atol=1e-8)


def test_every_table_names_the_same_functions():
    assert set(ACTIVATIONS) == set(DERIVATIVES) == set(SECOND_DERIVATIVES)
    assert set(LOSSES) == set(LOSS_DERIVATIVES) == set(LOSS_CURVATURES)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_loss_derivatives(loss, rng):
    f, y, v = rng.normal(size=(3, 4, 2))
    grad = np.empty_like(f)
    for k in range(f.shape[-1]):
        e = np.zeros_like(f)
        e[:, k] = H
        grad[:, k] = (LOSSES[loss](f + e, y) - LOSSES[loss](f - e, y)) / (2 * H)
    np.testing.assert_allclose(LOSS_DERIVATIVES[loss](f, y), grad, rtol=1e-7, atol=1e-9)
    hv = (LOSS_DERIVATIVES[loss](f + H * v, y) - LOSS_DERIVATIVES[loss](f - H * v, y)) / (2 * H)
    np.testing.assert_allclose(LOSS_CURVATURES[loss](f, y, v), hv, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("output", sorted(ACTIVATIONS))
def test_output_delta_and_its_directional_derivative(output, loss, rng):
    z, y, rz = _z(rng, (3, 6, 2))
    act = ACTIVATIONS[output]

    def delta(z):
        return output_delta(output, loss, act(z), y)

    per_unit = np.empty_like(z)  # dLoss/dz, unit by unit
    for k in range(z.shape[-1]):
        e = np.zeros_like(z)
        e[:, k] = H
        per_unit[:, k] = (LOSSES[loss](act(z + e), y) - LOSSES[loss](act(z - e), y)) / (2 * H)
    np.testing.assert_allclose(delta(z), per_unit, rtol=1e-6, atol=1e-8)
    directional = (delta(z + H * rz) - delta(z - H * rz)) / (2 * H)
    np.testing.assert_allclose(output_delta_r(output, loss, act(z), y, rz), directional, rtol=1e-6, atol=1e-8)
