import json
import subprocess
import sys

import pytest

from statsmodels_glmm import datasets
from statsmodels_glmm.cli import main

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def test_fit_bundled_dataset_prints_summary(capsys):
    assert main(["fit", CBPP, "--data", "cbpp"]) == 0
    out = capsys.readouterr().out
    assert "Laplace Approximation" in out and "Random effects" in out


def test_fit_csv_json(tmp_path, capsys):
    path = tmp_path / "toy.csv"
    datasets.load_toy().to_csv(path, index=False)
    assert main(["fit", "y ~ x1 + (1 | subject)", "--data", str(path), "--nAGQ", "25",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["nAGQ"] == 25 and out["converged"]
    assert set(out["params"]) == {"Intercept", "x1"}


def test_family_link_weights_offset(capsys):
    assert main(["fit", "incidence ~ period + (1 | herd)", "--data", "cbpp",
                 "--family", "poisson", "--offset", "size", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nobs"] == 56
    assert main(["fit", CBPP, "--data", "cbpp", "--link", "probit"]) == 0
    assert "binomial (probit)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["fit", CBPP, "--data", "nosuch"], "unknown dataset"),
    (["fit", CBPP, "--data", "missing.csv"], "not found"),
    (["fit", "incidence ~ x + (1|herd)", "--data", "cbpp"], "'x' in formula"),
    (["fit", CBPP, "--data", "cbpp", "--nAGQ", "5", "--family", "poisson"], "error"),
])
def test_clear_errors(args, message):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert message in str(exc.value)


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "statsmodels_glmm", "datasets"],
                         capture_output=True, text=True, check=True).stdout
    assert "cbpp" in out.split()
