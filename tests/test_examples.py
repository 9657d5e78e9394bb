"""Every script in examples/ runs and prints lme4-comparable output.

The scripts are the documentation's example gallery (sphinx-gallery executes them
when the docs are built). Here each one runs as ``__main__`` in this process, with
matplotlib's non-interactive Agg backend, so the package is imported once for all of
them. The large-panel example (a 200 000-row fit, ~10-20 s) is marked ``slow`` and
runs only with ``GLMM_RUN_SLOW_EXAMPLES=1``: the docs build in CI executes it anyway.
"""

import ast
import os
from pathlib import Path
import runpy
import warnings

import pytest

EXAMPLES_DIR = Path(__file__).parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))
SLOW = {"large_panel_timing.py"}
RUN_SLOW = os.environ.get("GLMM_RUN_SLOW_EXAMPLES", "") not in ("", "0")

GALLERY = {
    "cbpp_analysis.py", "laplace_diagnostics.py", "random_effects_and_profiles.py",
    "contraception_models.py", "seed_question_nagq.py", "grouseticks_counts.py",
    "tweedie_example.py", "user_family.py", "large_panel_timing.py",
}


def _maybe_slow(path):
    if path.name not in SLOW:
        return path
    return pytest.param(path, id=path.name, marks=[
        pytest.mark.slow,
        pytest.mark.skipif(not RUN_SLOW, reason="slow example: set GLMM_RUN_SLOW_EXAMPLES=1 "
                                                "(the docs build runs it)")])


@pytest.mark.parametrize("script", [_maybe_slow(p) for p in EXAMPLES],
                         ids=[p.name for p in EXAMPLES])
def test_example_runs(script, capsys, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(EXAMPLES_DIR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-interactive.*cannot be shown")
        try:
            runpy.run_path(str(script), run_name="__main__")
        finally:
            plt.close("all")
    out = capsys.readouterr().out
    assert out.strip()
    assert "Traceback" not in out


def test_examples_exist():
    assert GALLERY <= {p.name for p in EXAMPLES}
    assert (EXAMPLES_DIR / "GALLERY_HEADER.rst").exists()


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_in_gallery_format(script):
    """sphinx-gallery needs a module docstring that opens with an underlined title."""
    docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    assert docstring, f"{script.name} has no module docstring"
    lines = docstring.strip().splitlines()
    assert len(lines) >= 2 and set(lines[1]) == {"="} and len(lines[1]) >= len(lines[0]), \
        f"{script.name}: the docstring must open with a title underlined by '='"
