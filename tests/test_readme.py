"""The README's Python snippet runs as written on the embedded default (in a subprocess, as a user would paste it),
and the README's first lines are the two commands CI runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_starts_with_the_two_commands_ci_runs() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -c constraints.txt -e ".[dev]" && pytest -q' in commands[1] and commands[1].split("&& ", 2)[2] in ci
    assert commands[0].endswith("rsa-toolkit matrix --out sim.png")
    assert ".venv-run" in commands[0] and ".venv-run" not in commands[1]  # each in its own fresh venv


@pytest.mark.slow
def test_the_readme_python_snippet_runs_as_written(tmp_path: Path) -> None:
    snippet = re.search(r"```python\n(.*?)```", README, flags=re.S).group(1)
    env = {**os.environ, "RSA_TOOLKIT_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr
    name, score, probability = done.stdout.split()
    assert name and -1.0 <= float(score) <= 1.0 and 0.0 <= float(probability) <= 1.0
