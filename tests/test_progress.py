"""Issue 16: feedback on long work — the fit's observer (verbose, callback, progress)
and the progress bars of profiles, the bootstrap and influence."""

import numpy as np
import pytest
import statsmodels.api as sm

from reference import load_data
from statsmodels_glmm import glmer, progress
from statsmodels_glmm.progress import FitMonitor, progress_bar, run_tasks

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def test_observer_leaves_the_fit_unchanged(cbpp_fit):
    calls = []
    res = glmer(CBPP, load_data("cbpp"), callback=lambda *args: calls.append(args))
    np.testing.assert_array_equal(res.params, cbpp_fit.params)
    np.testing.assert_array_equal(res.bse, cbpp_fit.bse)
    assert res.neg2llf == cbpp_fit.neg2llf
    stages = [c[0] for c in calls]
    assert stages[0] == "stage1" and set(stages) == {"stage1", "stage2", "derivatives"}
    # the final stage's evaluations are the optimizer's
    assert stages.count("stage2") == res.mle_retvals["stage2_nfev"]
    stage, nfev, params, value = calls[-1]
    assert isinstance(params, np.ndarray) and params.shape == (5,) and np.isfinite(value)
    first2 = next(c for c in calls if c[0] == "stage2")
    assert first2[1] == 1 and first2[2].shape == (5,)  # θ and β
    assert calls[0][2].shape == (1,)  # the nAGQ=0 stage: θ only


def test_verbose_prints_every_kth_evaluation(capsys):
    res = glmer(CBPP, load_data("cbpp"), verbose=10)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("stage1") and "-2logL =" in lines[0] and "params = [" in lines[0]
    stage2 = [line for line in lines if line.startswith("stage2")]
    assert len(stage2) == 1 + res.mle_retvals["stage2_nfev"] // 10
    assert stage2[1].split()[1] == "10"


def test_lmm_stage_and_progress_counter(monkeypatch, capsys):
    monkeypatch.setattr(progress, "FIT_DELAY", 0.0)
    seen = []
    glmer("Reaction ~ Days + (Days | Subject)", load_data("sleepstudy"),
          family=sm.families.Gaussian(), reml=True, progress=True,
          callback=lambda stage, nfev, params, value: seen.append((stage, params.size)))
    assert seen and all(s == ("lmm", 3) for s in seen)
    err = capsys.readouterr().err
    assert "fit" in err and "eval" in err and "lmm -2logL=" in err


def test_fit_feedback_arguments_checked():
    data = load_data("cbpp")
    with pytest.raises(ValueError, match="verbose"):
        glmer(CBPP, data, verbose=-1)
    with pytest.raises(TypeError, match="callback"):
        glmer(CBPP, data, callback=3)
    with pytest.raises(ValueError, match="progress"):
        glmer(CBPP, data, progress="yes")


def test_monitor_closes_its_bar(monkeypatch):
    monkeypatch.setattr(progress, "FIT_DELAY", 0.0)
    with FitMonitor(progress=True) as monitor:
        monitor.notify("stage1", 1, np.zeros(2), 1.0)
        assert monitor.bar is not None and monitor.nfev == 1
    assert monitor.bar is None


def _square(shared, task):
    return shared * task * task


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_run_tasks_keeps_order_and_counts(n_jobs):
    bar = progress_bar(5, True, desc="tasks")
    assert run_tasks(_square, 2, range(5), n_jobs, bar) == [0, 2, 8, 18, 32]
    assert bar.n == 5
    bar.close()
    with pytest.raises(ValueError, match="n_jobs"):
        progress.check_n_jobs(1.5)
    assert progress.check_n_jobs(-1) >= 1


def test_profile_and_bootstrap_bars(cbpp_fit, capsys):
    prof = cbpp_fit.profile(which=["period[T.4]"], progress=True)
    assert "profile" in capsys.readouterr().err
    assert prof.confint().shape == (1, 2)
    boot = cbpp_fit.bootstrap(nsim=2, seed=1, progress=True)
    assert "bootstrap" in capsys.readouterr().err and len(boot.t) == 2


def test_verbose_together_with_a_progress_bar(cbpp, capsys):
    """verbose lines are written through the bar when progress=True (tqdm's bar has no
    truth value before it knows its total)."""
    res = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                progress=True, verbose=20)
    assert res.converged
    captured = capsys.readouterr()
    assert "stage1" in captured.out + captured.err
