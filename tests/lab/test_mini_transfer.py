"""The transfer measurement on a tiny zoo: shapes, the gain and win-rate arithmetic, determinism, the files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsa_toolkit.lab.transfer import PIXELS, TransferConfig, transfer_matrix, write_transfer
from rsa_toolkit.viz.outputs import read_matrix_csv

CONFIG = TransferConfig(train_frames=12, test_frames=6, steps=4, batch_size=4)


@pytest.fixture(scope="module")
def result(tiny_zoo, tiny_shards, monkeypatch_module):
    monkeypatch_module.setenv("RSA_TOOLKIT_MINI_ZOO", str(tiny_zoo))
    return transfer_matrix(*tiny_shards, tasks=["depth", "normal", "scene_class"], config=CONFIG)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_shapes_and_arithmetic(result):
    assert result["sources"] == result["targets"] == ["depth_zbuffer", "normal", "class_scene"]
    loss, gain, win = result["loss"], result["gain"], result["winrate"]
    assert loss.shape == (4, 3) and gain.shape == win.shape == (3, 3)
    np.testing.assert_allclose(gain, 1 - loss[:3] / loss[3])
    assert np.all((win >= 0) & (win <= 1)) and np.all(np.isin(win * 6, np.arange(7)))  # shares of 6 frames


def test_deterministic(result, tiny_shards):
    again = transfer_matrix(*tiny_shards, tasks=["depth", "normal", "scene_class"], config=CONFIG)
    np.testing.assert_array_equal(again["loss"], result["loss"])


def test_files(result, tmp_path, tiny_shards):
    write_transfer(result, tmp_path, CONFIG, train_shard=str(tiny_shards[0]), test_shard=str(tiny_shards[1]), jobs=1)
    gain, names = read_matrix_csv(tmp_path / "transfer.csv")
    assert names == result["sources"]
    np.testing.assert_array_equal(gain, result["gain"])
    rows = (tmp_path / "loss.csv").read_text().splitlines()
    assert rows[-1].startswith(f"{PIXELS},") and len(rows) == 5
    recipe = json.loads((tmp_path / "recipe.json").read_text())
    assert recipe["config"]["steps"] == 4 and len(recipe["zoo_manifest_sha256"]) == 64
