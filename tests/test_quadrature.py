import numpy as np
import pytest

from statsmodels_glmm.quadrature import gauss_hermite_normal


@pytest.mark.parametrize("k", [1, 2, 3, 9, 25, 100])
def test_rule_integrates_normal_moments(k):
    z, w = gauss_hermite_normal(k)
    assert w.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(z, -z[::-1])
    if k >= 2:
        assert np.sum(w * z**2) == pytest.approx(1.0)
    if k >= 3:
        assert np.sum(w * z**4) == pytest.approx(3.0)


def test_odd_rule_has_exact_zero():
    z, _ = gauss_hermite_normal(5)
    assert z[2] == 0.0


def test_invalid():
    with pytest.raises(ValueError):
        gauss_hermite_normal(0)


# -- vector-valued random effects (issue 8) --------------------------------------------------
def _vector_re_data(seed=3, groups=8, per=6):
    import pandas as pd

    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=g.size)
    b0, b1 = rng.normal(0, 0.8, groups), rng.normal(0, 0.6, groups)
    eta = -0.2 + 0.7 * x + b0[g] + b1[g] * x
    y = (rng.uniform(size=g.size) < 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{v}" for v in g]})


def _brute_force(model, theta, beta):
    """Exact −2 log-likelihood by 2-D numerical integration over each level's u."""
    from scipy import integrate, special, stats

    re = model.random_effects
    term = re.terms[0]
    T = term.factor(theta)
    eta0 = model.offset + model.exog @ beta
    total = 0.0
    for j in range(term.n_levels):
        rows = term.refs == j
        z, y, e0 = term.z[rows], model.response.y[rows], eta0[rows]

        def integrand(u1, u0, z=z, y=y, e0=e0):
            b = T @ np.array([u0, u1])
            p = special.expit(e0 + z @ b)
            lik = np.prod(np.where(y == 1, p, 1 - p))
            return lik * stats.norm.pdf(u0) * stats.norm.pdf(u1)

        val, _ = integrate.dblquad(integrand, -8, 8, -8, 8, epsabs=1e-13, epsrel=1e-10)
        total -= 2 * np.log(val)
    return total


def test_vector_agq_converges_to_brute_force_integral():
    from statsmodels_glmm import glmer

    data = _vector_re_data(groups=5)
    res = glmer("y ~ x + (1 + x | g)", data, nAGQ=1)
    model = res.model
    theta, beta = res.theta.to_numpy(), np.asarray(res.params)
    exact = _brute_force(model, theta, beta)
    errors = [abs(model.deviance(theta, beta, nAGQ=k) - exact) for k in (1, 3, 7, 15)]
    assert errors[-1] < 1e-5
    assert errors[-1] < errors[1] < errors[0]
    assert errors[2] < 1e-3


def test_vector_agq_fit():
    from statsmodels_glmm import glmer

    data = _vector_re_data(seed=5, groups=12)
    lap = glmer("y ~ x + (1 + x | g)", data, nAGQ=1)
    agq = glmer("y ~ x + (1 + x | g)", data, nAGQ=7)
    assert agq.converged and agq.nAGQ == 7
    assert "nAGQ = 7" in str(agq.summary())
    assert abs(agq.llf - lap.llf) < 2.0  # same scale for Laplace and AGQ
