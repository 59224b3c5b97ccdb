"""The graphc.nn examples run briefly (--quick / --steps) and print what they promise."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(tmp_path, name, *args, timeout=240):
    pytest.importorskip("sklearn")
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                            text=True, timeout=timeout, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def epoch_lines(stdout):
    """The final line of each epoch (text mode turns the progress bar's \\r into newlines)."""
    return re.findall(r"^epoch \d+/\d+  loss .*$", stdout, re.M)


def test_mlp_digits_quick(tmp_path):
    out = run_example(tmp_path, "mlp_digits.py", "--quick")
    lines = epoch_lines(out)
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"], out
    assert all("val_accuracy" in line for line in lines)
    assert float(re.search(r"test accuracy: (\d\.\d+)", out).group(1)) > 0.8
    assert "saved and reloaded: predictions identical" in out


def test_cnn_digits_quick(tmp_path):
    out = run_example(tmp_path, "cnn_digits.py", "--quick")
    assert len(epoch_lines(out)) == 2, out
    assert float(re.search(r"test accuracy: (\d\.\d+)", out).group(1)) > 0.8, out


def test_char_lstm_a_few_steps(tmp_path):
    out = run_example(tmp_path, "char_lstm.py", "--steps", "4", "--sample-every", "2",
                      "--sample-length", "30", "--seq-len", "16", "--hidden", "32")
    assert re.search(r"corpus: [\d,]+ characters of docstrings", out), out
    samples = re.findall(r"--- step (\d+), loss (\d+\.\d+)", out)
    assert [int(step) for step, _ in samples] == [2, 4], out
    assert all(0 < float(loss) < 6 for _, loss in samples)


def test_custom_op_gradient_and_training(tmp_path):
    out = run_example(tmp_path, "custom_op.py", "--steps", "30")
    assert "match finite differences" in out and "matches NumPy" in out
    assert float(re.search(r"training accuracy with mish: (\d\.\d+)", out).group(1)) > 0.5
