"""Issue 8: negative binomial (NB2) with α estimated jointly by ML, against glmmTMB."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from reference import CASES, load_data
from statsmodels_glmm import BoundaryWarning, glmer, glmer_nb

REF = CASES["negbin"]["glmmTMB"]


@pytest.fixture(scope="module")
def data():
    return load_data("negbin")


@pytest.fixture(scope="module")
def fit(data):
    return glmer_nb("y ~ x + (1 | g)", data)


def test_matches_glmmtmb_nbinom2(fit):
    assert abs(fit.neg2llf - REF["neg2ll"]) < 1e-3
    assert fit.neg2llf < REF["neg2ll"] + 1e-4
    np.testing.assert_allclose(fit.params, list(REF["fixef"].values()),
                               atol=0.02 * np.min(REF["se"]))
    np.testing.assert_allclose(fit.bse, REF["se"], rtol=0.03)
    np.testing.assert_allclose(fit.varcorr()["sdcor"], REF["sd"], rtol=0.02)
    assert fit.nb_theta == pytest.approx(REF["theta"], rel=0.01)


def test_theta_standard_error(fit):
    # glmmTMB reports the SE of log θ
    assert fit.nb_theta_se / fit.nb_theta == pytest.approx(REF["log_theta_se"], rel=0.03)
    assert "Negative binomial shape theta" in str(fit.summary())
    assert list(fit.varcorr()["grp"]) == ["g"]
    assert fit.sigma == 1.0


def test_fixed_alpha_family(data, fit):
    alpha = 1 / fit.nb_theta
    fixed = glmer("y ~ x + (1 | g)", data, family=sm.families.NegativeBinomial(alpha=alpha))
    assert fixed.llf == pytest.approx(fit.llf, abs=1e-4)
    assert fixed.df_modelwc == fit.df_modelwc - 1
    np.testing.assert_allclose(fixed.params, fit.params, atol=1e-4)


def test_poisson_limit(data):
    """A huge θ (α → 0) approaches the Poisson log-likelihood."""
    pois = glmer("y ~ x + (1 | g)", data, family=sm.families.Poisson())
    nb = glmer("y ~ x + (1 | g)", data, family=sm.families.NegativeBinomial(alpha=1e-8))
    assert nb.llf == pytest.approx(pois.llf, abs=1e-3)


def test_profile_interval_for_theta(fit):
    prof = fit.profile(which=[".nbtheta"])
    ci = prof.confint()
    lo, hi = ci.iloc[0]
    assert lo < fit.nb_theta < hi
    wald_lo = fit.nb_theta * np.exp(-1.96 * fit.nb_theta_se / fit.nb_theta)
    wald_hi = fit.nb_theta * np.exp(1.96 * fit.nb_theta_se / fit.nb_theta)
    assert lo == pytest.approx(wald_lo, rel=0.15) and hi == pytest.approx(wald_hi, rel=0.15)


def test_simulate_counts(fit):
    sims = fit.simulate(3, seed=1)
    assert np.all(sims.to_numpy() >= 0)
    np.testing.assert_allclose(sims.to_numpy(), np.round(sims.to_numpy()))


def _equidispersed(seed):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(40), 10)
    x = rng.normal(size=g.size)
    y = rng.poisson(np.exp(0.5 + 0.3 * x + rng.normal(0, 0.4, 40)[g]))
    return pd.DataFrame({"y": y, "x": x, "g": g})


@pytest.mark.parametrize("seed", [2, 5])
def test_no_overdispersion_is_the_poisson_boundary(seed):
    """θ → ∞: reported as the Poisson limit with a warning and no SE, not θ ≈ 5e4."""
    data = _equidispersed(seed)
    with pytest.warns(BoundaryWarning, match="theta = inf"):
        res = glmer_nb("y ~ x + (1 | g)", data)
    pois = glmer("y ~ x + (1 | g)", data, family=sm.families.Poisson())
    assert np.isinf(res.nb_theta) and np.isnan(res.nb_theta_se)
    assert res.neg2llf == pytest.approx(pois.neg2llf, abs=1e-8)
    np.testing.assert_allclose(res.bse, pois.bse, rtol=1e-5)  # two separate optima
    assert "theta = 1/alpha (ML): inf (boundary" in str(res.summary())
    assert np.all(np.isfinite(res.confint("profile").iloc[:, :2]))
    assert len(res.bootstrap(2, seed=1).t) == 2


def test_overdispersed_counts_keep_a_finite_theta():
    data = _equidispersed(1)  # this draw is overdispersed: θ ≈ 17
    with warnings.catch_warnings():
        warnings.simplefilter("error", BoundaryWarning)
        res = glmer_nb("y ~ x + (1 | g)", data)
    assert 5 < res.nb_theta < 50 and np.isfinite(res.nb_theta_se)
