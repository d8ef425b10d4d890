"""benchmarks/gpu_benchmark.py's smoke mode on the CPU: every part runs and writes finite numbers, in the format
benchmarks/bench_cost_curves.py reads, without the packages the GPU machine lacks (plotly, rsatoolbox, tqdm)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("rsa_check", "rsa_20k", "extract", "amalgamate_check", "amalgamate_taskonomy", "amalgamate_mini", "rsa_50k")
RSA_KEYS = {"mode", "n", "teachers", "features", "seconds", "peak_gb", "gpu_peak_gb", "jobs"}


def numbers(value: object) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


@pytest.mark.slow
def test_smoke_run_writes_every_part(tmp_path):
    blocked = tmp_path / "blocked"  # stand-ins that fail to import, as on the GPU machine
    for name in ("plotly", "rsatoolbox", "tqdm"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed on the GPU machine')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(ROOT)])}
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_benchmark.py"), "--device", "cpu",
                           "--smoke", "--out", str(out)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert list(results["parts"]) == list(PARTS)
    for name, part in results["parts"].items():
        assert part["status"] == "ok", (name, part)
        assert all(math.isfinite(x) for x in numbers(part)), (name, part)
    assert [r["n"] for r in results["rsa"]] == [300, 400] and results["gpu"] == "cpu (no GPU)"
    for entry in results["rsa"]:
        assert set(entry) == RSA_KEYS and all(math.isfinite(x) for x in numbers(entry))
        assert entry["mode"] in ("in memory", "out of core") and entry["teachers"] >= 2
    assert results["parts"]["rsa_check"]["max_abs_diff"] < 1e-9
    assert results["parts"]["amalgamate_check"]["max_abs_diff"] == 0  # cpu against cpu: the same run
    amalgamate = results["parts"]["amalgamate_taskonomy"]
    assert amalgamate["cached_s_step"] > 0 and amalgamate["live_s_step"] > 0
    table = proc.stdout.strip().splitlines()
    assert table[-8].startswith("part") and "RSA N=300" in proc.stdout and "amalgamate taskonomy" in proc.stdout
    assert "| RSA mode |" in (out / "gpu_benchmark.md").read_text()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench_cost_curves import gpu_rows
    except ImportError:  # bench_cost_curves is not in this checkout
        return
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert [r["device"] for r in gpu_rows(out / "results.json")] == ["cpu (no GPU)"] * 2
