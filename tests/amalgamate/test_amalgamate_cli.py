"""The ``amalgamate`` command: train -> eval -> report on the tiny zoo, in-process and through a subprocess, and the
error conventions (one line, exit code 2, nothing half-written)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from amalgamate.cli import main


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _tiny_zoo_env(monkeypatch, tiny_zoo, tmp_path_factory):
    monkeypatch.setenv("RSA_TOOLKIT_MINI_ZOO", str(tiny_zoo))
    monkeypatch.setenv("RSA_TOOLKIT_CACHE", str(tmp_path_factory.getbasetemp() / "amalgamate-cli-cache"))


def _tiny(tiny_shards) -> list[str]:
    return ["--steps", "3", "--batch-size", "4", "--train-shard", str(tiny_shards[0]), "--checkpoint-every", "2",
            "--probe-frames", "6", "--bootstrap", "4", "--eval-frames", "4", "--threads", "1"]


@pytest.mark.slow
def test_round_trip_train_eval_report(tmp_path, tiny_shards, capsys):
    run = tmp_path / "dn"
    assert main(["train", "--targets", "depth", "normals", "--auto-aux", "--out", str(run), *_tiny(tiny_shards)]) == 0
    out = capsys.readouterr().out
    assert "auxiliary: class_scene (class_scene has the highest mean RSA similarity" in out
    assert "ranking: class_scene" in out and f"next: amalgamate eval {run}" in out
    for name in ("config.json", "aux.json", "knowledge.json", "log.jsonl", "checkpoint.pt", "student.pt", "run.json"):
        assert (run / name).is_file(), name

    assert main(["eval", str(run)]) == 0
    table = capsys.readouterr().out
    assert "student  depth_zbuffer  truth" in table and "parameters: student" in table
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["eval_set"]["images"] == 4 and metrics["eval_set"]["ground_truth"]
    assert set(metrics["student"]["normal"]["vs_truth"]) == {"rmse", "angle", "angle_11"}
    assert metrics["parameters"]["student"] < metrics["parameters"]["teachers_total"]
    with open(run / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["reference"] for r in rows} == {"truth", "teacher"}

    assert main(["eval", str(run), "--json", "--eval-frames", "3", "--device", "cpu"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["eval_set"]["images"] == 3 and evaluated["device"] == "cpu"
    for command in (["eval", str(run)], ["report", str(run), "--out", str(tmp_path / "gpu-report")]):
        if not __import__("torch").cuda.is_available():  # a GPU-less machine: one line, exit 2, nothing written
            assert main([*command, "--device", "cuda"]) == 2
            err = capsys.readouterr().err.strip()
            assert "no CUDA device is available here" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "gpu-report").exists()

    kd = tmp_path / "kd"
    assert main(["train", "--targets", "depth", "normal", "--method", "kd", "--out", str(kd), "-q",
                 *_tiny(tiny_shards)]) == 0
    report = tmp_path / "report"
    assert main(["report", str(run), str(kd), "--out", str(report)]) == 0  # kd is evaluated on the way
    names = {p.name for p in report.iterdir()}
    assert {"table1_truth.md", "table1_truth.csv", "table2_teachers.md", "table2_teachers.csv", "table3_speed.md",
            "table3_speed.csv", "curves.html", "report.md"} <= names
    assert len([n for n in names if n.startswith("predictions-") and n.endswith(".png")]) == 2
    table1 = (report / "table1_truth.md").read_text()
    assert "| teachers (2) |" in table1 and "SOKA (gradnorm, aux class_scene)" in table1 and "KD n-to-1" in table1
    assert "δ<1.25" in table1 and "normal angle°" in table1
    assert "plotly" in (report / "curves.html").read_text()[:5000].lower()
    with open(report / "table3_speed.csv") as fh:  # timed together: each ratio is its own time over the teachers'
        speed = list(csv.DictReader(fh))
    assert [r["time vs teachers"] for r in speed][0] == "1" and len(speed) == 3
    teachers_ms = float(speed[0]["ms / image"])
    for row in speed[1:]:
        assert float(row["time vs teachers"]) == pytest.approx(float(row["ms / image"]) / teachers_ms, rel=2e-3)


def test_resume_and_stop_after(tmp_path, tiny_shards, capsys):
    run = tmp_path / "run"
    args = ["train", "--targets", "depth", "normal", "--aux", "scene_class", "--out", str(run), *_tiny(tiny_shards)]
    assert main([*args, "--stop-after", "1"]) == 0
    assert f"continue with: amalgamate train --out {run} --resume" in capsys.readouterr().out
    assert main(["train", "--out", str(run), "--resume", "-q"]) == 0
    assert json.loads((run / "run.json").read_text())["finished"]


@pytest.mark.slow
def test_default_report_lives_in_the_run_and_overwrite_clears_it(tmp_path, tiny_shards, capsys):
    run = tmp_path / "run"
    args = ["train", "--targets", "depth", "normal", "--out", str(run), "-q", *_tiny(tiny_shards)]
    assert main([*args, "--steps", "1"]) == 0
    assert main(["report", str(run), "-q"]) == 0
    assert (run / "report" / "report.md").is_file() and (run / "metrics.json").is_file()
    assert main([*args, "--steps", "1"]) == 2 and "holds another run" in capsys.readouterr().err
    assert main([*args, "--steps", "1", "--overwrite"]) == 0
    assert not (run / "report").exists() and not (run / "metrics.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["train", "--targets", "depth", "--out", "{tmp}/r"], "at least two target tasks, got 1"),
    (["train", "--out", "{tmp}/r"], "--targets is required"),
    (["train", "--targets", "depth", "normal", "--aux", "normal", "--out", "{tmp}/r"], "--aux 'normal' is one of"),
    (["train", "--targets", "depth", "edge2d", "--out", "{tmp}/r"], "target 'edge_texture' has no teacher"),
    (["train", "--targets", "depth", "normal", "--weighting", "gradnrom", "--out", "{tmp}/r"],
     "Unknown weighting 'gradnrom'. Did you mean 'gradnorm'"),
    (["eval", "{tmp}"], "is not an amalgamate run directory"),
    (["train", "--targets", "depth", "normal", "--config", "{tmp}/none.toml", "--out", "{tmp}/r"], "does not exist"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("amalgamate: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_subprocess_help_and_errors(tmp_path, tiny_zoo):
    env = {**os.environ, "RSA_TOOLKIT_MINI_ZOO": str(tiny_zoo), "RSA_TOOLKIT_CACHE": str(tmp_path / "cache")}
    shown = subprocess.run([sys.executable, "-m", "amalgamate"], capture_output=True, text=True, env=env)
    assert shown.returncode == 0 and "train" in shown.stdout and "report" in shown.stdout
    usage = subprocess.run([sys.executable, "-m", "amalgamate", "train", "--steps", "x", "--out", "r"],
                           capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and "invalid int value" in usage.stderr
    bad = subprocess.run([sys.executable, "-m", "amalgamate", "train", "--targets", "depth", "--out",
                          str(tmp_path / "r")], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().startswith("amalgamate: error: --targets: a multi-talent student needs at least two")
