import numpy as np
import pytest
from scipy import stats
import statsmodels.api as sm

from statsmodels_glmm.response import Response

MU = np.array([0.2, 0.5, 0.7])


def test_binomial_forms_agree():
    counts = np.array([[2, 3], [1, 1], [0, 4]])
    two_col = Response(sm.families.Binomial(), counts)
    trials = counts.sum(1)
    prop = Response(sm.families.Binomial(), counts[:, 0] / trials, prior_weights=trials)
    exact = -2 * stats.binom.logpmf(counts[:, 0], counts.sum(1), MU).sum()
    assert two_col.neg2loglik_obs(MU).sum() == pytest.approx(exact)
    assert prop.neg2loglik_obs(MU).sum() == pytest.approx(exact)


@pytest.mark.parametrize("family, logpdf", [
    (sm.families.Poisson(), lambda y, mu, phi: stats.poisson.logpmf(y, mu)),
    (sm.families.Gamma(sm.families.links.Log()),
     lambda y, mu, phi: stats.gamma.logpdf(y, a=1 / phi, scale=mu * phi)),
    (sm.families.InverseGaussian(),
     lambda y, mu, phi: stats.invgauss.logpdf(y, mu * phi, scale=1 / phi)),
    (sm.families.Gaussian(sm.families.links.Log()),
     lambda y, mu, phi: stats.norm.logpdf(y, mu, np.sqrt(phi))),
])
def test_loglik_has_every_constant(family, logpdf):
    y = np.array([1.0, 2.0, 3.0])
    resp = Response(family, y)
    assert resp.neg2loglik_obs(MU, 0.5).sum() == pytest.approx(-2 * logpdf(y, MU, 0.5).sum())


def test_observed_equals_expected_for_canonical_links():
    eta = np.array([-1.0, 0.3, 2.0])
    for family, y in [(sm.families.Binomial(), np.array([0, 1, 1.0])),
                      (sm.families.Poisson(), np.array([0, 3, 9.0]))]:
        resp = Response(family, y)
        mu = resp.mu(eta)
        np.testing.assert_allclose(resp.observed_weights(eta, mu), resp.working_weights(eta, mu))


def test_observed_weights_are_second_derivatives():
    resp = Response(sm.families.Binomial(link=sm.families.links.Probit()), np.array([0, 1, 1.0]))
    eta = np.array([-0.4, 0.2, 1.1])
    h = 1e-4
    f = lambda e: 0.5 * resp.neg2loglik_obs(resp.mu(e))  # noqa: E731
    numeric = (f(eta + h) - 2 * f(eta) + f(eta - h)) / h**2
    np.testing.assert_allclose(resp.observed_weights(eta, resp.mu(eta)), numeric, rtol=1e-5)


def test_family_not_mutated():
    fam = sm.families.Binomial()
    before = vars(fam).copy()
    Response(fam, np.array([[1, 2], [3, 4]]))
    assert vars(fam).keys() == before.keys()
    assert all(vars(fam)[k] is before[k] for k in before)


@pytest.mark.parametrize("family, y, message", [
    (sm.families.Binomial(), [0, 2.0], r"\[0, 1\]"),
    (sm.families.Poisson(), [-1.0, 2], "negative"),
    (sm.families.Gamma(), [0.0, 2], "positive"),
])
def test_support_errors(family, y, message):
    with pytest.raises(ValueError, match=message):
        Response(family, np.asarray(y))


def test_weight_errors():
    with pytest.raises(ValueError, match="length"):
        Response(sm.families.Poisson(), np.ones(3), prior_weights=np.ones(2))
    with pytest.raises(ValueError, match="non-negative"):
        Response(sm.families.Poisson(), np.ones(2), prior_weights=[1, -1])


def test_mean_function_never_modifies_eta():
    resp = Response(sm.families.Binomial(link=sm.families.links.Identity()), np.array([0, 1.0]))
    eta = np.array([-0.5, 1.5])
    mu = resp.mu(eta)
    np.testing.assert_array_equal(eta, [-0.5, 1.5])
    assert 0 < mu[0] < 1e-10 and 1 - 1e-10 < mu[1] < 1
