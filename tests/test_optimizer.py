"""The BOBYQA wrapper."""

import numpy as np
import pytest

from statsmodels_glmm.optimizer import bobyqa


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def test_minimum_of_a_smooth_function():
    opt = bobyqa(rosenbrock, [-1.2, 1.0], [-np.inf, -np.inf], [0.5, 0.5])
    assert opt.converged
    np.testing.assert_allclose(opt.x, [1.0, 1.0], atol=1e-5)
    assert opt.fun < 1e-10 and opt.nfev > 10


def test_bounds_are_respected_and_start_is_clipped():
    opt = bobyqa(rosenbrock, [-5.0, 1.0], [0.0, 2.0], [0.5, 0.5], upper=[0.5, 3.0])
    assert np.all(opt.x >= [0.0, 2.0]) and np.all(opt.x <= [0.5, 3.0])
    assert opt.x[0] == pytest.approx(0.5, abs=1e-6)


def test_failed_evaluations_are_counted_not_raised():
    def sometimes(x):
        if x[0] > 2.0:
            raise ArithmeticError("outside the domain")
        if x[0] < -2.0:
            return np.inf
        return (x[0] - 1.0) ** 2

    opt = bobyqa(sometimes, [0.0], [-np.inf], [3.0])
    assert opt.x[0] == pytest.approx(1.0, abs=1e-5)
    assert opt.failed_evaluations >= 1


def test_no_parameters():
    opt = bobyqa(lambda x: 3.0, np.empty(0), np.empty(0), np.empty(0))
    assert opt.converged and opt.fun == 3.0


def test_maxeval_stops_without_convergence():
    opt = bobyqa(rosenbrock, [-1.2, 1.0], [-np.inf, -np.inf], [0.5, 0.5], maxeval=8)
    assert not opt.converged and "maximum" in opt.message
