"""Plots render headless (Agg) and show the right content."""

import numpy as np
import pytest
from scipy import stats

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from reference import load_data  # noqa: E402
from statsmodels_glmm import glmer, plots  # noqa: E402


@pytest.fixture(scope="module")
def gm1():
    return glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load_data("cbpp"))


def offsets(fig):
    return fig.axes[0].collections[0].get_offsets()


def test_residual_plots(gm1):
    pts = offsets(plots.plot_residuals(gm1))
    assert pts.shape == (56, 2)
    np.testing.assert_allclose(np.sort(pts[:, 1]), np.sort(gm1.resid_pearson))
    pts = offsets(plots.plot_scale_location(gm1))
    assert np.all(pts[:, 1] >= 0)
    pts = offsets(plots.plot_qq(gm1))
    np.testing.assert_allclose(pts[:, 1], np.sort(gm1.resid_deviance))


def test_caterpillar_sorted_with_condvar_intervals(gm1):
    fig = plots.plot_caterpillar(gm1)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    modes = gm1.ranef()["herd"]["(Intercept)"]
    assert labels == list(modes.sort_values().index)
    segments = ax.collections[0].get_segments()
    widths = np.array([s[1][0] - s[0][0] for s in segments])
    sd = gm1.ranef(condVar=True)["herd"]["condsd((Intercept))"].loc[labels]
    np.testing.assert_allclose(widths, 2 * stats.norm.ppf(0.975) * sd.to_numpy(), rtol=1e-10)


def test_ranef_qq(gm1):
    pts = offsets(plots.plot_ranef_qq(gm1))
    assert pts.shape == (15, 2)


def test_profile_plot(gm1):
    prof = gm1.profile(which=[".sig01", "Intercept"])
    fig = plots.plot_profile(prof)
    assert len(fig.axes) == 2
    x, y = fig.axes[1].lines[0].get_data()
    assert np.all(np.diff(y) > 0) and y.min() < -2 and y.max() > 2


def test_laplace_diagnostics(gm1):
    z, t, density = plots.laplace_integrands(gm1)
    assert t.shape == density.shape == (15, z.size)
    mid = z.size // 2
    np.testing.assert_allclose(t[:, mid], 0.0, atol=1e-12)
    # near the mode the integrand is Gaussian: t(z) ≈ z with the observed curvature
    np.testing.assert_allclose(t[:, mid + 1], z[mid + 1], rtol=0.05)
    fig = plots.plot_laplace_t(gm1)
    assert len(fig.axes[0].lines) == 16
    fig = plots.plot_laplace_integrands(gm1)
    np.testing.assert_allclose(fig.axes[0].lines[-1].get_data()[1].max(), stats.norm.pdf(0.0),
                               rtol=1e-12)


def test_laplace_diagnostics_need_scalar_term():
    data = load_data("Contraception")
    res = glmer("use ~ age + (urban | district)", data)
    with pytest.raises(ValueError, match="single scalar"):
        plots.laplace_integrands(res)
