"""Fixtures shared by the mini-Taskonomy tests: tiny shards and a tiny zoo trained in seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from rsa_toolkit.scenes.shards import write_shard
from rsa_toolkit.lab.train import TrainConfig, train_zoo

TINY_TASKS = ["depth_zbuffer", "normal", "class_scene"]
TINY_CONFIG = TrainConfig(steps=3, batch_size=4, seed=1)


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
