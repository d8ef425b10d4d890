"""Progress in a log (stderr not a terminal, as under capsys): one line per stage, a timed line at least every interval
with the current losses, an end line; ``--quiet`` prints none. A fake clock makes every step look 11 s long."""

from __future__ import annotations

import numpy as np
import pytest

from rsa_toolkit import progress as progress_module
from rsa_toolkit.rsa.similarity import similarity_matrix

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class SlowClock:
    """time.monotonic that moves 11 s at every reading: each progress update is past the 10 s interval."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 11.0
        return self.now


@pytest.fixture()
def env(monkeypatch, tiny_zoo, tmp_path_factory):
    monkeypatch.setenv("RSA_TOOLKIT_MINI_ZOO", str(tiny_zoo))
    monkeypatch.setenv("RSA_TOOLKIT_CACHE", str(tmp_path_factory.getbasetemp() / "progress-cli-cache"))


def _train(tmp_path, tiny_shards, *extra: str) -> int:
    from amalgamate.cli import main

    return main(["train", "--targets", "depth", "normal", "--aux", "class_scene", "--out", str(tmp_path / "run"),
                 "--steps", "3", "--batch-size", "4", "--train-shard", str(tiny_shards[0]), "--threads", "1",
                 *extra])


def test_train_in_a_log_prints_stages_timed_lines_and_an_end(env, tmp_path, tiny_shards, capsys, monkeypatch):
    monkeypatch.setattr(progress_module.time, "monotonic", SlowClock())
    assert _train(tmp_path, tiny_shards) == 0
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("building knowledge: the teachers' outputs on 12 training images") for line in err)
    i = err.index("training 3 steps")
    assert err[i + 1] == "training: started (3 step)"
    timed = [line for line in err if line.startswith("training: 1/3 step") or line.startswith("training: 2/3 step")]
    assert len(timed) == 2, err
    assert "step/s, ETA " in timed[0] and "/w" in timed[0]  # rate, ETA, the current losses and weights
    assert err[-1].startswith("training: done, 3 step in ")
    assert "\r" not in "".join(err)  # no bar fragments in a log


def test_train_quiet_prints_no_progress(env, tmp_path, tiny_shards, capsys, monkeypatch):
    monkeypatch.setattr(progress_module.time, "monotonic", SlowClock())
    assert _train(tmp_path, tiny_shards, "--quiet") == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_similarity_and_bootstrap_progress_lines(capsys, monkeypatch):
    monkeypatch.setattr(progress_module.time, "monotonic", SlowClock())  # long work: lines in a log
    rng = np.random.default_rng(0)
    features = {name: rng.normal(size=(8, 5)) for name in ("a", "b", "c")}
    similarity_matrix(features, n_bootstrap=3, progress=True, n_jobs=1)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "RDMs: started (3 teacher)" and err[-1].startswith("bootstrap: done, 3 resample in ")
    assert any(line.startswith("RDMs: done, 3 teacher in ") for line in err)
    assert "bootstrap: started (3 resample)" in err
    similarity_matrix(features, n_bootstrap=3, progress=False, n_jobs=1)
    assert capsys.readouterr().err == ""
