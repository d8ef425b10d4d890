"""Training, saving and loading mini teachers, the rendered probe set, and the embedded default in the CLI, on a
tiny zoo trained here in seconds (the shipped zoo is checked in test_mini_shipped.py)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from conftest import TINY_CONFIG, TINY_TASKS  # tests/ is on sys.path under pytest
from rsa_toolkit.cli.main import main
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.files import file_sha256
from rsa_toolkit.lab.train import TrainConfig, train_zoo
from rsa_toolkit.zoo.mini.embedded import mini_probe, mini_teacher, mini_zoo, read_manifest

TASKS = TINY_TASKS
CONFIG = TINY_CONFIG


def test_manifest_records_each_teacher(tiny_zoo):
    manifest = read_manifest(tiny_zoo)
    assert list(manifest["teachers"]) == TASKS and manifest["runs"][-1]["config"]["steps"] == 3
    for task, entry in manifest["teachers"].items():
        path = tiny_zoo / entry["file"]
        assert entry["sha256"] == file_sha256(path)
        state = torch.load(path, weights_only=True)
        assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
        assert entry["parameters"] == entry["encoder_parameters"] + entry["decoder_parameters"]
        assert entry["test_frames"] == 6 and entry["train_frames"] == 12
        assert entry["loss_ratio"] == pytest.approx(entry["loss"] / entry["baseline_loss"])
    assert "accuracy" in manifest["teachers"]["class_scene"]


def test_training_is_deterministic(tmp_path, tiny_shards, tiny_zoo):
    train_zoo(tmp_path, train_shard=tiny_shards[0], test_shard=tiny_shards[1], tasks=["depth_zbuffer"], config=CONFIG)
    assert file_sha256(tmp_path / "depth_zbuffer.pt") == file_sha256(tiny_zoo / "depth_zbuffer.pt")


def test_retraining_one_task_keeps_the_others(tmp_path, tiny_shards, tiny_zoo):
    for f in tiny_zoo.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    train_zoo(tmp_path, train_shard=tiny_shards[0], test_shard=tiny_shards[1], tasks=["normal"],
              config=TrainConfig(steps=2, batch_size=4, seed=2))
    manifest = read_manifest(tmp_path)
    assert list(manifest["teachers"]) == TASKS and manifest["teachers"]["normal"]["steps"] == 2


def test_teacher_taps_the_representation(tiny_zoo):
    teacher = mini_teacher("depth", tiny_zoo)
    assert teacher.default_layer == "encoder" and "decoder.block1" in teacher.layers
    x = torch.stack([teacher.preprocessing(np.random.default_rng(0).random((64, 64, 3)).astype(np.float32))])
    out = teacher.extract(x, ["encoder", "encoder.block1"])
    assert out["encoder"].shape == (1, 8, 16, 16) and out["encoder.block1"].shape == (1, 32, 32, 32)
    assert [t.name for t in mini_zoo(zoo_dir=tiny_zoo)] == TASKS


def test_teacher_errors(tmp_path, tiny_zoo):
    with pytest.raises(UserInputError, match="has no teacher for 'edge_texture'"):
        mini_teacher("edge2d", tiny_zoo)
    with pytest.raises(UserInputError, match="manifest.json missing"):
        read_manifest(tmp_path)
    for f in tiny_zoo.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "normal.pt").write_bytes(b"not the weights")
    with pytest.raises(UserInputError, match="does not match the sha256"):
        mini_teacher("normal", tmp_path).build()


def test_probe_is_deterministic_and_hashed():
    a, b = mini_probe(3), mini_probe(3)
    assert a.ids == ["seed-3000000", "seed-3000001", "seed-3000002"] and a.content_hash == b.content_hash
    assert a.content_hash != mini_probe(4).content_hash
    image = a.load(1)
    assert image.shape == (64, 64, 3) and image.dtype == np.float32 and 0 <= image.min() <= image.max() <= 1


@pytest.mark.slow
def test_cli_default_is_the_mini_zoo(tmp_path, monkeypatch, tiny_zoo, small_default_probe):
    monkeypatch.setenv("RSA_TOOLKIT_MINI_ZOO", str(tiny_zoo))
    monkeypatch.delenv("RSA_TOOLKIT_WEIGHTS", raising=False)
    monkeypatch.chdir(tmp_path)
    cache = str(tmp_path / "cache")
    assert main(["matrix", "--out", "sim.png", "--cache-dir", cache, "--quiet", "--bootstrap", "0"]) == 0
    with open("sim.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][1:] == TASKS
    provenance = json.loads((tmp_path / "sim.json").read_text())
    assert "builtin:mini" in json.dumps(provenance)
    assert main(["pick-aux", "--targets", "depth", "--json", "--cache-dir", cache, "--quiet"]) == 0


def test_cli_mini_show(capsys, tiny_zoo):
    assert main(["mini", "show", str(tiny_zoo)]) == 0
    out = capsys.readouterr().out
    assert all(task in out for task in TASKS)
    assert main(["mini", "show", str(tiny_zoo / "missing")]) == 2


def test_model_selection_keeps_the_lowest_val_loss_and_never_sees_test(tmp_path, tiny_shards, one_torch_thread,
                                                                       monkeypatch):
    from rsa_toolkit.lab import train as train_module
    from rsa_toolkit.scenes.shards import write_shard

    val = write_shard(tmp_path / "val", "val", 6)
    config = TrainConfig(steps=6, batch_size=4, seed=1, eval_every=2)
    net, record = train_module.train_teacher("depth", tiny_shards[0], config, val_shard=val)
    assert [s for s, _ in record["val_curve"]] == [2, 4, 6] and record["val_frames"] == 6
    best_step, best = min(record["val_curve"], key=lambda sv: sv[1])
    assert record["best_step"] == best_step and record["val_loss"] == pytest.approx(best, abs=1e-6)
    assert train_module._val_check("depth_zbuffer", val)(net) == pytest.approx(record["val_loss"], rel=1e-5)

    # A scripted val curve whose minimum is in the middle: the state of that step comes back, not the last one.
    snapshots, scripted = [], iter([3.0, 1.0, 2.0])

    def fake_check(task, shard):  # noqa: ANN001, ANN202
        def check(net):  # noqa: ANN001, ANN202
            snapshots.append({k: v.clone() for k, v in net.state_dict().items()})
            return next(scripted)
        check.frames = 6
        return check

    monkeypatch.setattr(train_module, "_val_check", fake_check)
    net, record = train_module.train_teacher("depth", tiny_shards[0], config, val_shard=val)
    assert record["best_step"] == 4 and record["val_loss"] == 1.0
    state = net.state_dict()
    assert all(torch.equal(state[k], snapshots[1][k]) for k in state)
    assert not all(torch.equal(state[k], snapshots[2][k]) for k in state)
    monkeypatch.undo()
    with pytest.raises(UserInputError, match="never test"):
        train_module.train_teacher("depth", tiny_shards[0], config, val_shard=tiny_shards[1])
