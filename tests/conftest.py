"""Shared fixtures: small simulated data sets used across the test modules."""

import numpy as np
import pandas as pd
import pytest


def simulate_binary(seed=0, n_groups=30, per=10, sd=0.8):
    """Bernoulli data y ~ x + (1 | g) with integer group codes."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    eta = -0.5 + x + rng.normal(0, sd, n_groups)[g]
    y = (rng.uniform(size=g.size) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def simulate_counts(seed=0, n_groups=20, per=10, intercept=0.5, sd=0.4):
    """Poisson counts y ~ x + (1 | g)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    y = rng.poisson(np.exp(intercept + 0.3 * x + rng.normal(0, sd, n_groups)[g]))
    return pd.DataFrame({"y": y, "x": x, "g": g})


@pytest.fixture(scope="session")
def binary_data():
    return simulate_binary()


@pytest.fixture(scope="session")
def binary_fit(binary_data):
    from statsmodels_glmm import glmer

    return glmer("y ~ x + (1 | g)", binary_data)


@pytest.fixture(scope="session")
def count_data():
    return simulate_counts()
