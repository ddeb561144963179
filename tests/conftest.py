"""Shared fixtures."""

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so every test draws the same data on every run."""
    return np.random.default_rng(0)
