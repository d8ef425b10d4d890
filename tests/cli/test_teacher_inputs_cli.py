"""--teacher-inputs {own,clean} on every command that runs teachers over probe images: the default (own) and clean
give different colorization features and the same depth features, outputs record the choice, and a bad value is one
line with exit 2 before any teacher runs (in-process and through a subprocess). The shipped mini teachers on the
small stand-in of the default probe set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rsa_toolkit.cli.main import main

TASKS = ["colorization", "depth", "normal"]


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("rsa-toolkit: error: ") and "Traceback" not in err, err
    return err


def test_features_own_by_default_and_clean_on_request(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      small_default_probe: None) -> None:
    cache = tmp_path / "cache"
    common = ["features", "--tasks", *TASKS, "--cache-dir", cache, "--quiet"]
    assert _run(capsys, *common, "--out", tmp_path / "own")[0] == 0
    assert _run(capsys, *common, "--out", tmp_path / "clean", "--teacher-inputs", "clean")[0] == 0
    assert _run(capsys, *common, "--out", tmp_path / "own2", "--teacher-inputs", "own")[0] == 0
    own, clean, own2 = ({p.stem: np.load(p) for p in (tmp_path / d).glob("*.npy")} for d in ("own", "clean", "own2"))
    assert sorted(own) == ["colorization", "depth_zbuffer", "normal"]
    assert not np.allclose(own["colorization"], clean["colorization"])
    for name in own:
        np.testing.assert_array_equal(own[name], own2[name])  # the default is own
        if name != "colorization":
            np.testing.assert_array_equal(own[name], clean[name])
    assert len(list((cache / "features").glob("*/*.npy"))) == 4  # colorization twice, depth and normal once
    record = json.loads((tmp_path / "clean" / "provenance.json").read_text())["layers"]["default"]
    assert record["teacher_inputs"] == "clean"


def test_matrix_records_the_choice(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                   small_default_probe: None) -> None:
    for choice in ("own", "clean"):
        out = tmp_path / choice / "sim.png"
        out.parent.mkdir()
        extra = [] if choice == "own" else ["--teacher-inputs", "clean"]
        code, _, err = _run(capsys, "matrix", "--tasks", *TASKS, "--out", out, "--cache-dir", tmp_path / "cache",
                            "--quiet", *extra)
        assert code == 0, err
        record = json.loads(out.with_suffix(".json").read_text())
        assert record["teacher_inputs"] == choice
        expected = {"colorization": "grey" if choice == "own" else "clean", "depth_zbuffer": "clean",
                    "normal": "clean"}
        assert {n: t["input"] for n, t in record["teachers"].items()} == expected


@pytest.mark.parametrize("command", [["matrix", "--out", "{d}/sim.png"], ["features", "--out", "{d}/feats"],
                                     ["pick-aux", "--targets", "depth"], ["evaluate", "--truth", "mini-transfer"],
                                     ["matrix", "--zoo", "mini", "--out", "{d}/sim.png"]])
@pytest.mark.parametrize(("value", "hint"), [("Clean", " Did you mean 'clean'?"), ("grey", "")])
def test_a_bad_value_is_one_line_before_any_teacher_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, command: list[str],
                                                         value: str, hint: str) -> None:
    from rsa_toolkit.zoo.mini import embedded

    monkeypatch.setattr(embedded, "mini_probe", lambda *a, **k: pytest.fail("rendered the probe set"))
    argv = [a.replace("{d}", str(tmp_path)) for a in command]
    code, out, err = _run(capsys, *argv, "--teacher-inputs", value, "--cache-dir", tmp_path / "cache")
    line = _one_line_error(code, err)
    assert out == "" and list(tmp_path.iterdir()) == []
    assert line.startswith(f"rsa-toolkit: error: --teacher-inputs '{value}' is not a choice.{hint} Choose: own (")
    assert "own (each teacher sees its own input kind" in line and "or clean (every teacher" in line


def test_teacher_inputs_with_a_features_directory_is_refused(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    feats = tmp_path / "f"
    feats.mkdir()
    for i, name in enumerate(["a", "b", "c"]):
        np.save(feats / f"{name}.npy", np.random.default_rng(i).normal(size=(5, 4)))
    code, _, err = _run(capsys, "matrix", "--features", feats, "--out", tmp_path / "sim.png", "--teacher-inputs",
                        "clean")
    assert "--features DIR holds features extracted already" in _one_line_error(code, err)
    assert not (tmp_path / "sim.png").exists()


def test_help_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("matrix", "features", "pick-aux", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--teacher-inputs {own,clean}" in capsys.readouterr().out


def test_subprocess_bad_value(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rsa_toolkit", "matrix", "--teacher-inputs", "clen"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    line = _one_line_error(proc.returncode, proc.stderr)
    assert "--teacher-inputs 'clen' is not a choice. Did you mean 'clean'?" in line
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []
