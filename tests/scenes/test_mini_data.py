"""Mini-Taskonomy shards, the Dataset, the task objectives and the teacher network (no trained weights needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.lab.dataset import MiniTaskonomy
from rsa_toolkit.zoo.mini.net import REPRESENTATION_SHAPE, build_teacher_net, output_channels
from rsa_toolkit.zoo.mini.objectives import OBJECTIVES, SEGMENT_MARGIN, objective
from rsa_toolkit.scenes.shards import (RGB_TASKS, STORAGE, SPLIT_SEEDS, load_shard, shard_is_current, split_seeds,
                                       write_shard)
from rsa_toolkit.scenes import ALL_TASKS, LABEL_SPECS, inpainting_mask, render, sample_scene


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    return write_shard(tmp_path_factory.mktemp("shard") / "test", "test", 6, size=32)


def test_splits_are_disjoint_seed_ranges():
    starts = sorted(SPLIT_SEEDS.values())
    assert starts[0] == 0 and all(b - a >= 1_000_000 for a, b in zip(starts, starts[1:]))
    assert split_seeds("val", 3, start=2).tolist() == [1_000_002, 1_000_003, 1_000_004]
    with pytest.raises(UserInputError, match="did you mean 'train'"):
        split_seeds("trian", 3)


def test_shard_holds_every_label_in_its_storage_dtype(shard):
    meta, arrays = load_shard(shard)
    assert meta["count"] == 6 and meta["split"] == "test" and meta["first_seed"] == 2_000_000
    assert set(arrays) == {"rgb", *ALL_TASKS}
    assert arrays["rgb"].dtype == np.uint8 and arrays["rgb"].shape == (6, 32, 32, 3)
    frame = render(sample_scene(2_000_003), 32)
    for task in RGB_TASKS:
        assert arrays[task] is arrays["rgb"]
    assert not any((shard / f"{task}.npy").exists() for task in RGB_TASKS)
    for task in STORAGE:
        assert arrays[task].dtype == STORAGE[task]
        tol = 1e-3 * max(1.0, float(np.abs(frame[task]).max())) if STORAGE[task] == np.float16 else 0
        np.testing.assert_allclose(arrays[task][3].astype(np.float64), frame[task], atol=tol, err_msg=task)
    np.testing.assert_array_equal(arrays["rgb"][3], np.round(frame["rgb"] * 255).astype(np.uint8))


def test_shard_errors(tmp_path, shard):
    with pytest.raises(UserInputError, match="not a mini-Taskonomy shard"):
        load_shard(tmp_path)
    bad = tmp_path / "old"
    bad.mkdir()
    (bad / "meta.json").write_text(json.dumps({"version": -1}))
    with pytest.raises(UserInputError, match="render it again"):
        load_shard(bad)
    assert shard_is_current(shard) and not shard_is_current(bad) and not shard_is_current(tmp_path / "missing")


def test_mini_commands_re_render_a_stale_cached_shard(tmp_path):
    """A shard cached by another renderer version is rendered again, not an error (the label of room_layout
    changed in version 3)."""
    from argparse import Namespace

    from rsa_toolkit.cli.mini import _shards

    args = Namespace(shards=str(tmp_path), quiet=True, jobs=1)
    paths = _shards(args, train=3, test=2)
    meta = json.loads((paths["test"] / "meta.json").read_text())
    (paths["test"] / "meta.json").write_text(json.dumps({**meta, "version": meta["version"] - 1}))
    assert not shard_is_current(paths["test"])
    _shards(args, train=3, test=2)
    assert shard_is_current(paths["test"]) and load_shard(paths["test"])[0]["count"] == 2


def test_dataset_from_shard_equals_rendering_on_the_fly(shard):
    for task in ("depth", "denoising", "segment_semantic", "room_layout"):
        x1, y1 = MiniTaskonomy(task, shard=shard).batch([1, 4])
        x2, y2 = MiniTaskonomy(task, "test", count=6, size=32).batch([1, 4])
        torch.testing.assert_close(x1, x2)
        torch.testing.assert_close(y1, y2, atol=2e-3, rtol=1e-3)  # fp16 storage of some labels


def test_dataset_input_transforms(shard):
    clean, _ = MiniTaskonomy("autoencoding", shard=shard).batch([2])
    gray, target = MiniTaskonomy("colorization", shard=shard).batch([2])
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    torch.testing.assert_close((clean + 1) / 2, target)
    holed, _ = MiniTaskonomy("inpainting", shard=shard).batch([2])
    hole = torch.from_numpy(inpainting_mask(32, seed=2_000_002)[..., 0]).bool()
    assert torch.all(holed[0][:, hole] == -1) and torch.equal(holed[0][:, ~hole], clean[0][:, ~hole])
    noisy1, _ = MiniTaskonomy("denoising", shard=shard).batch([2])
    noisy2, _ = MiniTaskonomy("denoising", shard=shard)[2]
    assert torch.equal(noisy1[0], noisy2) and not torch.equal(noisy1, clean)


def test_dataset_works_with_a_dataloader(shard):
    loader = torch.utils.data.DataLoader(MiniTaskonomy("normal", shard=shard), batch_size=4)
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 32, 32) and y.shape == (4, 3, 32, 32)
    with pytest.raises(UserInputError, match="shard directory or a frame count"):
        MiniTaskonomy("normal")


@pytest.mark.parametrize("task", ALL_TASKS)
def test_network_shapes(task):
    net = build_teacher_net(task).eval()
    x = torch.zeros(2, 3, 64, 64)
    assert net.encoder(x).shape == (2, *REPRESENTATION_SHAPE)
    out = net(x)
    spec = LABEL_SPECS[task]
    assert out.shape == ((2, output_channels(task), 64, 64) if spec.per_pixel else (2, spec.channels))


def test_every_task_has_an_objective():
    assert set(OBJECTIVES) == set(ALL_TASKS)


def test_l1_constant_is_the_median_and_beats_nearby_constants():
    goal = objective("reshading")
    y = torch.rand(5, 1, 8, 8) ** 3
    best = goal.constant(y)
    assert best.shape == (1, 1, 1, 1)
    for delta in (-0.05, 0.05):
        assert goal.loss(best.expand_as(y), y) <= goal.loss((best + delta).expand_as(y), y)


def test_cross_entropy_constant_is_the_log_prior():
    goal = objective("segment_semantic")
    y = torch.tensor([[[1, 1], [2, 7]]])
    prior = goal.constant(y).exp().flatten()
    torch.testing.assert_close(prior[[1, 2, 7]], torch.tensor([0.5, 0.25, 0.25]), atol=1e-5, rtol=0)
    entropy = -(0.5 * np.log(0.5) + 0.5 * np.log(0.25))
    assert float(goal.loss(goal.constant(y).expand(1, 8, 2, 2), y)) == pytest.approx(entropy, abs=1e-4)


def test_metric_loss_on_perfect_and_constant_embeddings():
    goal = objective("segment_unsup25d")
    ids = torch.arange(16).repeat_interleave(16).view(1, 16, 16) % 5
    perfect = torch.nn.functional.one_hot(ids, 8).permute(0, 3, 1, 2).float() * 2.0  # distinct ids: 2.8 apart
    constant = goal.constant(None).expand(1, 8, 16, 16)
    assert float(goal.loss(perfect, ids)) == 0.0
    assert float(goal.loss(constant, ids)) == pytest.approx(SEGMENT_MARGIN ** 2)
    assert float(goal.accuracy(perfect, ids)) == 1.0 and float(goal.accuracy(constant, ids)) == 0.5


def test_log_depth_targets():
    ds = MiniTaskonomy("depth_euclidean", "test", count=1, size=16)
    frame = render(sample_scene(2_000_000), 16, tasks=["depth_euclidean"])
    torch.testing.assert_close(ds[0][1][0], torch.log(torch.from_numpy(frame["depth_euclidean"][..., 0])))


def test_frame_size_must_suit_the_encoder(tmp_path):
    with pytest.raises(UserInputError, match="not divisible by the encoder's stride 4"):
        write_shard(tmp_path / "s", "test", 2, size=30)
    with pytest.raises(UserInputError, match="not divisible"):
        MiniTaskonomy("depth", "test", count=2, size=66)
    from rsa_toolkit.lab.train import train_teacher

    shard = write_shard(tmp_path / "s32", "train", 3, size=32)
    with pytest.raises(UserInputError, match="take 64 x 64 frames"):
        train_teacher("depth", shard)


def test_probe_needs_three_frames():
    from rsa_toolkit.zoo.mini.embedded import mini_probe

    with pytest.raises(UserInputError, match="at least 3 frames"):
        mini_probe(2)


def test_vector_scales_match_the_label_spread():
    from rsa_toolkit.zoo.mini.objectives import VECTOR_SCALES

    for task, scale in VECTOR_SCALES.items():
        labels = MiniTaskonomy(task, "val", count=300).targets().numpy()
        np.testing.assert_allclose(labels.std(axis=0), scale, rtol=0.3, err_msg=task)
