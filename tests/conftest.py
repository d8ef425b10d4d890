"""Fixtures shared across test files: tiny shards and a tiny zoo trained in seconds, the embedded default matrix
(computed once per session), and a small stand-in for the 500-frame default probe set.

Expensive results are session-scoped here so that no two test files compute the same thing; a test that needs
*a* matrix from the default route, not the shipped 500-frame numbers, asks for ``small_default_probe``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from rsa_toolkit.scenes.shards import write_shard
from rsa_toolkit.lab.train import TrainConfig, train_zoo

TINY_TASKS = ["depth_zbuffer", "normal", "class_scene"]
TINY_CONFIG = TrainConfig(steps=3, batch_size=4, seed=1)


@pytest.fixture(autouse=True)
def fresh_progress_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts a new burst of work for rsa_toolkit.progress: its log-mode silence is counted per process, and
    tests share one process (a line due to an earlier test's work would land in this test's stderr)."""
    from rsa_toolkit import progress

    monkeypatch.setattr(progress, "_silent_since", None)
    monkeypatch.setattr(progress, "_last_activity", None)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny trainings run faster, and exactly repeatably, on one thread; the previous count is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    return write_shard(root / "train", "train", 12), write_shard(root / "test", "test", 6)


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory, tiny_shards):
    out = tmp_path_factory.mktemp("zoo")
    train_zoo(out, train_shard=tiny_shards[0], test_shard=tiny_shards[1], tasks=["depth", "normals", "scene_class"],
              config=TINY_CONFIG)
    return out


@pytest.fixture(scope="session")
def default_matrix(tmp_path_factory) -> tuple[Path, np.ndarray, list[str]]:
    """The embedded default command (``rsa-toolkit matrix``: the shipped mini zoo on the 500-frame probe set), run
    once per session: (output folder, similarity matrix from sim.csv, teacher names). Its feature cache is
    ``out / "cache"``, for commands that reuse the same features (pick-aux)."""
    from rsa_toolkit.cli.main import main

    out = tmp_path_factory.mktemp("default")
    code = main(["matrix", "--out", str(out / "sim.png"), "--cache-dir", str(out / "cache"), "--quiet"])
    assert code == 0
    # never the small stand-in of ``small_default_probe``, whichever test asks first
    assert "builtin:mini (500 frames" in (out / "sim.json").read_text()
    with open(out / "sim.csv") as fh:
        rows = list(csv.reader(fh))
    names = rows[0][1:]
    return out, np.array([[float(v) for v in row[1:]] for row in rows[1:]]), names


SMALL_PROBE_FRAMES = 24


@pytest.fixture
def small_default_probe(monkeypatch) -> Iterator[None]:
    """The built-in ``mini`` probe set (the default of every command without --images) renders
    ``SMALL_PROBE_FRAMES`` frames instead of 500: for tests of the default route that need *a* matrix, not the
    shipped numbers. The frames are the first of the real probe split, rendered by the real renderer."""
    from rsa_toolkit.zoo.mini import embedded

    render, calls = embedded.mini_probe, []

    def small(count: int = SMALL_PROBE_FRAMES, **options):
        calls.append(count)
        return render(count, **options)

    monkeypatch.setattr(embedded, "mini_probe", small)
    yield
    assert calls, "small_default_probe was never used: the default probe set no longer comes from embedded.mini_probe"
