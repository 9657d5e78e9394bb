"""Every script in examples/ runs (smoke) and prints lme4-comparable output."""

from pathlib import Path
import subprocess
import sys

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script):
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip()
    assert "Traceback" not in out.stderr


def test_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"cbpp_analysis.py", "contraception_models.py", "seed_question_nagq.py"} <= names
