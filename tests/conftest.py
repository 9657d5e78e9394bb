"""Shared fixtures: small simulated data sets used across the test modules."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from statsmodels_glmm import datasets, glmer

CBPP_FORMULA = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


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


def simulate_crossed(seed=5, n=2000):
    """Poisson counts with crossed factors a (60 levels), b (15) and a slope
    factor c (4): for ``y ~ x + (1 | a) + (1 | b)`` and variants."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.integers(0, 60, n), rng.integers(0, 15, n), rng.integers(0, 4, n)
    x = rng.normal(size=n)
    eta = (0.2 + 0.4 * x + rng.normal(0, .5, 60)[a] + rng.normal(0, .4, 15)[b]
           + rng.normal(0, .3, 4)[c] * x)
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "a": a, "b": b, "c": c})


@pytest.fixture(scope="session")
def binary_data():
    return simulate_binary()


@pytest.fixture(scope="session")
def binary_fit(binary_data):
    return glmer("y ~ x + (1 | g)", binary_data)


@pytest.fixture(scope="session")
def count_data():
    return simulate_counts()


@pytest.fixture(scope="session")
def positive_data():
    """Gamma-distributed responses with a random intercept (25 groups of 8)."""
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(25), 8)
    x = rng.uniform(size=g.size)
    mu = np.exp(0.5 + 0.4 * x + rng.normal(0, 0.3, 25)[g])
    return pd.DataFrame({"y": rng.gamma(4, mu / 4), "c": rng.poisson(mu), "x": x, "g": g})


@pytest.fixture(scope="session")
def positive_fit(positive_data):
    return glmer("y ~ x + (1 | g)", positive_data,
                 family=sm.families.Gamma(sm.families.links.Log()))


@pytest.fixture
def cbpp():
    """lme4's cbpp data, with the proportion ``prop`` (a fresh copy per test)."""
    data = datasets.load_cbpp()
    data["prop"] = data["incidence"] / data["size"]
    return data


@pytest.fixture(scope="session")
def cbpp_fit():
    """lme4's first example: cbpp, binomial, Laplace."""
    return glmer(CBPP_FORMULA, datasets.load_cbpp(), family=sm.families.Binomial())
