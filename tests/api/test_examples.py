"""The runnable examples run to completion and learn what they claim to learn."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name, *args):
    pytest.importorskip("sklearn")
    command = [sys.executable, str(EXAMPLES / name), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_logistic_regression_learns_digits():
    result = run_example("logistic_regression.py", "--epochs", "3", "--min-accuracy", "0.9")
    assert result.returncode == 0, result.stdout + result.stderr
    losses = [float(v) for v in re.findall(r"epoch\s+\d+\s+loss (\d+\.\d+)", result.stdout)]
    assert len(losses) == 3 and losses[-1] < losses[0], result.stdout
    match = re.search(r"test accuracy: (\d\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) > 0.9


def test_logistic_regression_fails_below_the_accuracy_threshold():
    result = run_example("logistic_regression.py", "--epochs", "1", "--min-accuracy", "0.999")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "below --min-accuracy" in result.stderr


def test_readme_usage_example_runs(capsys):
    readme = (EXAMPLES.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "README.md has no python example"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["W"].get_value().any(), "the training step did not update the weights"
    assert "softmax" in capsys.readouterr().out
