"""``amalgamate train --auto-aux`` as typed: the Table 1 targets, a fresh runs/<method>-<targets>-<stamp> directory
named first, the next command last; a second run in the same second gets its own directory. The tiny zoo stands in
for the mini zoo (its targets: depth and normal), with a tiny step count."""

from __future__ import annotations

import re
import time

import pytest

import amalgamate.cli as cli
from amalgamate.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def headline(monkeypatch, tiny_zoo, tiny_shards, tmp_path, tmp_path_factory):
    monkeypatch.setenv("RSA_TOOLKIT_MINI_ZOO", str(tiny_zoo))
    monkeypatch.setenv("RSA_TOOLKIT_CACHE", str(tmp_path_factory.getbasetemp() / "headline-cache"))
    monkeypatch.setattr(cli, "HEADLINE_TARGETS", ("depth", "normal"))  # the tiny zoo has no edge2d teacher
    monkeypatch.chdir(tmp_path)
    fixed = time.localtime(1767225600.0)  # both runs start in the same second
    monkeypatch.setattr(time, "localtime", lambda *_: fixed)
    return ["train", "--auto-aux", "--steps", "2", "--batch-size", "4", "--train-shard", str(tiny_shards[0]),
            "--probe-frames", "6", "--bootstrap", "2", "--threads", "1"]


def test_auto_aux_alone_trains_the_table1_student_into_a_fresh_run_dir(headline, tmp_path, capsys):
    assert main(headline) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    first = re.fullmatch(r"run directory: (runs/soka-depth-normal-\d{8}-\d{6})", out[0])
    assert first, out[0]
    run = first.group(1)
    assert (tmp_path / run / "student.pt").is_file()
    assert out[-1].endswith(f"next: amalgamate eval {run} && amalgamate report {run}")
    # the 6-frame probe set of the ranking is small: one warning line naming --bootstrap
    warnings = [line for line in captured.err.splitlines() if line.startswith("amalgamate: warning: ")]
    assert len(warnings) == 1 and "has 6 images (fewer than 50)" in warnings[0] and "--bootstrap" in warnings[0]

    assert main(headline) == 0  # same second: another directory, the first untouched
    second = capsys.readouterr().out.splitlines()[0]
    assert second == f"run directory: {run}-2"
    assert (tmp_path / f"{run}-2" / "student.pt").is_file() and (tmp_path / run / "student.pt").is_file()


def test_targets_and_out_still_win(headline, tmp_path, capsys):
    assert main([*headline, "--targets", "normal", "depth", "--out", "mine", "-q"]) == 0
    assert (tmp_path / "mine" / "student.pt").is_file() and not (tmp_path / "runs").exists()


def test_new_run_dir_names(tmp_path):
    first = cli.new_run_dir("kd", ["depth", "edge2d"], root=str(tmp_path / "runs"), now=0.0)
    assert re.fullmatch(r".*/runs/kd-depth-edge2d-\d{8}-\d{6}", first)
    (tmp_path / "runs" / first.rsplit("/", 1)[1]).mkdir()
    assert cli.new_run_dir("kd", ["depth", "edge2d"], root=str(tmp_path / "runs"), now=0.0) == f"{first}-2"


def test_targets_are_still_needed_without_auto_aux(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--targets is required" in err and "--auto-aux alone" in err and len(err.strip().splitlines()) == 1
