"""PIRLS, and the seed question: why hand-rolled IRLS matches glmer only with nAGQ=0."""

import numpy as np
import pytest

from statsmodels_glmm import datasets, glmer


@pytest.fixture(scope="module")
def toy():
    return datasets.load_toy()


def irls_with_fixed_random_effects(res, start=(-3.0, 1.5), iterations=25):
    """The question's Gauss-Newton loop: β by IRLS with Z b held fixed as an offset."""
    data = res.model.data.frame
    X = np.column_stack([np.ones(len(data)), data["x1"]])
    b = res.ranef()["subject"]["(Intercept)"]
    zb = b.loc[data["subject"].astype(str)].to_numpy()
    beta = np.array(start)
    y = data["y"].to_numpy()
    for _ in range(iterations):
        mu = 1 / (1 + np.exp(-(X @ beta + zb)))
        v = mu * (1 - mu)
        beta = beta + np.linalg.solve(X.T @ (v[:, None] * X), X.T @ (y - mu))
    return beta


def test_hand_rolled_irls_matches_nagq0(toy):
    res = glmer("y ~ x1 + (1 | subject)", toy, nAGQ=0)
    np.testing.assert_allclose(irls_with_fixed_random_effects(res), res.params, atol=1e-8)


def test_hand_rolled_irls_does_not_match_laplace(toy):
    res = glmer("y ~ x1 + (1 | subject)", toy, nAGQ=1)
    gap = np.abs(irls_with_fixed_random_effects(res) - res.params.to_numpy())
    assert gap.max() > 1e-3  # Laplace optimises β on the integrated likelihood


def test_modes_minimise_penalized_deviance(toy):
    res = glmer("y ~ x1 + (1 | subject)", toy)
    model = res.model
    theta, beta = res.theta.to_numpy(), res.params.to_numpy()
    modes = model.pirls(theta, beta)
    base = modes.penalized_deviance
    for j in range(modes.u.size):
        for h in (-1e-3, 1e-3):
            u = modes.u.copy()
            u[j] += h
            eta = model.offset + model.exog @ beta + model.random_effects.linear_predictor(
                model.random_effects.scaled_covariates(theta), u)
            pdev = model.response.neg2loglik_obs(model.response.mu(eta)).sum() + u @ u
            assert pdev > base


def test_fixed_beta_pirls_forms_x_beta_once():
    """With β fixed, PIRLS never touches X: X β is formed once per evaluation."""
    cbpp = datasets.load_cbpp()
    res = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    model = res.model

    class CountingX(np.ndarray):
        calls = 0

        def __matmul__(self, other):
            CountingX.calls += 1
            return np.asarray(self) @ other

    model.exog = np.asarray(model.exog).view(CountingX)
    modes = model.pirls(res.theta.to_numpy(), res.params.to_numpy())
    assert CountingX.calls == 1
    assert modes.iterations >= 1


def test_deviance_function_reproduces_fit(toy):
    res = glmer("y ~ x1 + (1 | subject)", toy, nAGQ=25)
    value = res.model.deviance(res.theta.to_numpy(), res.params.to_numpy(), nAGQ=25)
    assert value == pytest.approx(res.neg2llf, abs=1e-8)
    laplace = res.model.deviance(res.theta.to_numpy(), res.params.to_numpy(), nAGQ=1)
    assert abs(laplace - value) < 0.5


def test_agq_with_many_points_equals_brute_force_integral(toy):
    from scipy import integrate, special, stats

    res = glmer("y ~ x1 + (1 | subject)", toy, nAGQ=1)
    theta, beta = res.theta.iloc[0], res.params.to_numpy()
    data = res.model.data.frame
    total = 0.0
    for _level, rows in data.groupby("subject", observed=True):
        eta0 = beta[0] + beta[1] * rows["x1"].to_numpy()
        y = rows["y"].to_numpy()

        def integrand(b, eta0=eta0, y=y):
            p = special.expit(eta0 + b)
            return np.prod(np.where(y == 1, p, 1 - p)) * stats.norm.pdf(b, 0, theta)

        total -= 2 * np.log(integrate.quad(integrand, -np.inf, np.inf, epsabs=0,
                                           epsrel=1e-12)[0])
    agq = res.model.deviance(res.theta.to_numpy(), beta, nAGQ=50)
    assert agq == pytest.approx(total, abs=1e-7)


def test_pirls_failure_is_an_error_not_a_wrong_answer():
    from statsmodels_glmm.pirls import PirlsError

    cbpp = datasets.load_cbpp()
    model = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp).model
    with pytest.raises(PirlsError):
        model.pirls(np.array([1.0]), np.array([1e4, 0, 0, 0]), u0=np.full(15, np.nan))
