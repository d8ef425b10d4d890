"""The Taskonomy-style transfer measurement on a tiny zoo: every output file, resuming, early stopping, the output
bias, the constant-prediction flag, and the AHP / reliability tables against rsa_toolkit.analysis.affinity."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from rsa_toolkit.analysis.affinity import ahp_affinities, reliability, split_half
from rsa_toolkit.analysis.ground_truth import read_ground_truth_csv
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.lab import transfer as transfer_module
from rsa_toolkit.lab.dataset import MiniTaskonomy
from rsa_toolkit.lab.readout import TransferReadout, fit_readout
from rsa_toolkit.lab.transfer import CONSTANT, PIXELS, REFERENCES, SCRATCH, TransferConfig, part_path
from rsa_toolkit.lab.transfer_tables import run_transfer, summarise, write_outputs
from rsa_toolkit.scenes.shards import write_shard
from rsa_toolkit.zoo.mini.objectives import objective

TASKS = ["depth_zbuffer", "normal", "class_scene"]
CONFIG = TransferConfig(train_frames=4, val_frames=3, test_frames=6, seeds=2, splits=2, max_steps=3, eval_every=1,
                        patience=2, warmup_steps=1, batch_size=4, width=4, decoder_widths=(4, 4, 4), head_hidden=8)
N_PARTS = (len(TASKS) + len(REFERENCES)) * len(TASKS) * CONFIG.seeds * CONFIG.splits


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def shards(tiny_shards, tmp_path_factory):
    val = write_shard(tmp_path_factory.mktemp("val") / "val", "val", 3)
    return {"train": tiny_shards[0], "val": val, "test": tiny_shards[1]}


@pytest.fixture(scope="module")
def run(tiny_zoo, shards, monkeypatch_module, one_torch_thread, tmp_path_factory):
    monkeypatch_module.setenv("RSA_TOOLKIT_MINI_ZOO", str(tiny_zoo))
    out = tmp_path_factory.mktemp("transfer")
    result = run_transfer(out, shards, tasks=["depth", "normals", "scene_class"], config=CONFIG)
    return out, result


def _losses(out):
    with np.load(out / "losses.npz") as data:
        return {k: data[k] for k in data.files}


def test_writes_every_file(run):
    out, result = run
    for name in ("losses.npz", "transfer.csv", "ahp.csv", "loss.csv", "winrate.csv", "reliability.csv",
                 "recipe.json"):
        assert (out / name).is_file(), name
    assert result["trained"] == N_PARTS and len(list((out / "parts").glob("*.npz"))) == N_PARTS
    losses = _losses(out)
    for source in [*TASKS, PIXELS, SCRATCH]:
        for target in TASKS:
            block = losses[f"{source}/{target}"]
            assert block.shape == (CONFIG.seeds, CONFIG.splits, CONFIG.test_frames) and np.isfinite(block).all()
    assert losses[f"{CONSTANT}/depth_zbuffer"].shape == (CONFIG.splits, CONFIG.test_frames)
    np.testing.assert_array_equal(losses["test_seeds"], 2_000_000 + np.arange(CONFIG.test_frames))
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["config"]["seeds"] == 2 and recipe["seeds"] == [0, 1] and len(recipe["splits"]) == 2
    assert recipe["splits"][1]["train_frames"] == [4, 8]  # disjoint train-seed ranges
    assert len(recipe["zoo_manifest_sha256"]) == 64 and recipe["torch"] == torch.__version__
    assert recipe["readouts"] == N_PARTS and "flagged_targets" in recipe and recipe["machine"]


def test_transfer_csv_is_the_gain_over_pixels(run):
    out, result = run
    losses = _losses(out)
    truth = read_ground_truth_csv(out / "transfer.csv")  # as `evaluate --truth` reads it
    assert truth.sources == truth.targets == TASKS
    flagged = set(result["flagged"])
    for j, target in enumerate(TASKS):
        pixels = losses[f"{PIXELS}/{target}"].mean()
        expected = [1 - losses[f"{s}/{target}"].mean() / pixels for s in TASKS]
        if target in flagged:
            assert np.isnan(truth.values[:, j]).all()
        else:
            np.testing.assert_allclose(truth.values[:, j], expected, rtol=1e-12)
    loss = read_ground_truth_csv(out / "loss.csv")
    assert loss.sources == [*TASKS, PIXELS, SCRATCH, CONSTANT]
    win = read_ground_truth_csv(out / "winrate.csv").values
    assert np.all(np.isin(win * 6, np.arange(7)))  # shares of the 6 test frames
    for j, target in enumerate(TASKS):
        pixels = losses[f"{PIXELS}/{target}"].mean(axis=(0, 1))
        np.testing.assert_array_equal(win[:, j], [np.mean(losses[f"{s}/{target}"].mean(axis=(0, 1)) < pixels)
                                                  for s in TASKS])


def test_ahp_and_reliability_match_the_affinity_module(run):
    out, result = run
    losses = _losses(out)
    ahp = read_ground_truth_csv(out / "ahp.csv")
    rows = {r["target"]: r for r in _read_reliability(out)}
    for j, target in enumerate(TASKS):
        blocks = np.stack([losses[f"{s}/{target}"] for s in TASKS])  # (S, seeds, splits, M)
        per_image = blocks.mean(axis=(1, 2))
        if target not in result["flagged"]:
            np.testing.assert_allclose(ahp.values[:, j], ahp_affinities(per_image), rtol=1e-12)
            assert ahp.values[:, j].sum() == pytest.approx(1.0)
        seed_cols = [ahp_affinities(blocks[:, i].mean(axis=1)) for i in range(CONFIG.seeds)]
        split_cols = [ahp_affinities(blocks[:, :, k].mean(axis=1)) for k in range(CONFIG.splits)]
        _assert_same(rows[target]["seed_rho_ahp"], _rho(seed_cols))
        _assert_same(rows[target]["split_rho_ahp"], _rho(split_cols))
        _assert_same(rows[target]["split_half_ahp"], split_half(per_image, seed=CONFIG.seed))
        best = min([*TASKS, PIXELS, SCRATCH], key=lambda s: losses[f"{s}/{target}"].mean())
        assert rows[target]["best_readout"] == best
        constant = losses[f"{CONSTANT}/{target}"].mean()
        assert float(rows[target]["constant_loss"]) == pytest.approx(constant, rel=1e-12)
        assert rows[target]["beats_constant"] == str(losses[f"{best}/{target}"].mean() < constant)


def _rho(columns):
    columns = np.array(columns)
    return np.nan if np.ptp(columns, axis=1).min() == 0 else reliability(columns)


def _assert_same(text, value):
    if np.isnan(value):
        assert text == ""
    else:
        assert float(text) == pytest.approx(value, rel=1e-12)


def _read_reliability(out):
    import csv
    return list(csv.DictReader((out / "reliability.csv").read_text().splitlines()))


def test_resume_trains_only_missing_parts_with_the_constant_as_output_bias(run, shards, tmp_path, monkeypatch):
    out, _ = run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    removed = [part_path(copy, "normal", "class_scene", 1, 0), part_path(copy, PIXELS, "depth_zbuffer", 0, 1)]
    for path in removed:
        path.unlink()
    calls = []

    def counting_fit(model, loss, z_train, y_train, *args, **kwargs):
        target = model.task
        np.testing.assert_allclose(model.output_layer.bias.detach().numpy(),
                                   objective(target).constant(y_train).reshape(-1).numpy(), rtol=1e-6)
        calls.append(target)
        return fit_readout(model, loss, z_train, y_train, *args, **kwargs)

    monkeypatch.setattr(transfer_module, "fit_readout", counting_fit)
    again = run_transfer(copy, shards, tasks=TASKS, config=CONFIG)
    assert sorted(calls) == ["class_scene", "depth_zbuffer"] and again["trained"] == 2
    before, after = _losses(out), _losses(copy)
    for key in before:  # the retrained parts are the same readouts (seeded, one thread)
        np.testing.assert_allclose(after[key], before[key], rtol=1e-6, err_msg=key)
    calls.clear()
    assert run_transfer(copy, shards, tasks=TASKS, config=CONFIG)["trained"] == 0 and not calls
    # more seeds reuse every finished part: only the new seed's readouts are trained
    more = run_transfer(copy, shards, tasks=TASKS, config=replace(CONFIG, seeds=3))
    assert more["trained"] == N_PARTS // 2 and len(calls) == N_PARTS // 2


def test_another_recipe_in_the_same_directory_is_refused(run, shards):
    out, _ = run
    with pytest.raises(UserInputError, match=r"holds readouts of another recipe.*delete '.*parts' to start over"):
        run_transfer(out, shards, tasks=TASKS, config=replace(CONFIG, max_steps=4))


def test_early_stopping_keeps_the_best_val_state():
    # Training pulls w towards 2; the val loss (w - 1)^2 falls, then rises once w passes 1.
    torch.manual_seed(0)
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    x = torch.linspace(-1, 1, 16)[:, None]
    loss = nn.functional.mse_loss
    fit = fit_readout(model, loss, x, 2 * x, x, x, max_steps=500, eval_every=2, patience=3, batch_size=8, lr=0.05,
                      weight_decay=0.0, seed=0)
    steps, values = zip(*fit.val_curve)
    best = int(np.argmin(values))
    assert fit.stopped_early and fit.steps_run == steps[best] + 3 * 2 and fit.steps_run < 500
    assert fit.best_step == steps[best] and fit.best_val_loss == values[best] == min(values)
    with torch.no_grad():
        assert float(loss(model(x), x)) == pytest.approx(fit.best_val_loss, rel=1e-6)  # the best state, restored
    assert abs(float(model.weight.detach()) - 1) < 0.1 and not model.training
    capped = fit_readout(nn.Linear(1, 1), loss, x, 2 * x, x, 2 * x, max_steps=7, eval_every=3, patience=100,
                         batch_size=8, lr=0.01, seed=0)
    assert capped.steps_run == 7 and [s for s, _ in capped.val_curve] == [0, 3, 6, 7] and not capped.stopped_early


@pytest.mark.parametrize("task", ["room_layout", "curvature"])
def test_output_bias_starts_at_the_target_mean(task, tiny_shards):
    # Both L2 targets: the best constant is the mean (per component, or per channel over all pixels).
    _, y = MiniTaskonomy(task, shard=tiny_shards[0]).batch(np.arange(12))
    model = TransferReadout(8, task, width=4, decoder_widths=(4, 4, 4), head_hidden=8)
    model.init_output_bias(objective(task).constant(y))
    mean = y.double().mean(dim=0) if y.ndim == 2 else y.double().mean(dim=(0, 2, 3))
    np.testing.assert_allclose(model.output_layer.bias.detach().numpy(), mean.numpy(), rtol=1e-5, atol=1e-7)
    out = model(torch.randn(2, 8, 16, 16))
    assert out.shape == ((2, y.shape[1]) if y.ndim == 2 else (2, y.shape[1], 64, 64))


def test_a_target_no_readout_beats_the_constant_is_flagged_and_not_scored(tiny_zoo, monkeypatch, tmp_path):
    monkeypatch.setenv("RSA_TOOLKIT_MINI_ZOO", str(tiny_zoo))
    rng = np.random.default_rng(0)
    config = replace(CONFIG, seeds=2, splits=2, test_frames=5)
    sources = [*TASKS, PIXELS, SCRATCH]
    losses = {s: {t: rng.uniform(1.0, 2.0, (2, 2, 5)) for t in TASKS} for s in sources}
    constant = {t: np.full((2, 5), 0.5 if t == "normal" else 3.0) for t in TASKS}  # normal: the constant wins
    collected = {"tasks": TASKS, "sources": sources, "losses": losses, "constant": constant,
                 "test_seeds": np.arange(5), "records": [{"seconds": 1.0, "cpu_seconds": 1.0, "best_step": 1,
                                                          "steps_run": 2, "stopped_early": False}]}
    tables = summarise(collected, config)
    assert list(tables["flagged"]) == ["normal"] and "does not beat the constant" in tables["flagged"]["normal"]
    write_outputs(collected, tmp_path, config, shards={}, run={})
    gain, ahp = read_ground_truth_csv(tmp_path / "transfer.csv"), read_ground_truth_csv(tmp_path / "ahp.csv")
    j = TASKS.index("normal")
    assert np.isnan(gain.values[:, j]).all() and np.isnan(ahp.values[:, j]).all()
    assert np.isfinite(np.delete(gain.values, j, axis=1)).all()
    rows = {r["target"]: r for r in _read_reliability(tmp_path)}
    assert rows["normal"]["beats_constant"] == "False" and "constant prediction" in rows["normal"]["reason"]
    assert rows["depth_zbuffer"]["beats_constant"] == "True" and rows["depth_zbuffer"]["reason"] == ""
    assert "normal" in json.loads((tmp_path / "recipe.json").read_text())["flagged_targets"]


def test_config_checks_its_values():
    with pytest.raises(UserInputError, match=r"seeds must be an integer >= 1, got 0"):
        TransferConfig(seeds=0)
    with pytest.raises(UserInputError, match=r"lr must be a finite number > 0"):
        TransferConfig(lr=0.0)


def test_too_small_a_train_shard_is_refused(run, shards, tmp_path):
    with pytest.raises(UserInputError, match=r"train shard .* has 12 frames, the config needs 14 \(2 splits x 7\)"):
        run_transfer(tmp_path, shards, tasks=TASKS, config=replace(CONFIG, train_frames=7))


def test_cli_runs_a_budget_with_overrides_on_two_processes(run, shards, tmp_path, monkeypatch, capsys):
    from rsa_toolkit.cli import mini
    from rsa_toolkit.cli.main import main
    from rsa_toolkit.lab.transfer import BUDGETS

    monkeypatch.setattr(mini, "_shards", lambda args, **counts: shards)
    flags = ["--tasks", "depth", "normal", "--seeds", "1", "--splits", "2", "--train-frames", "4", "--val-frames",
             "3", "--test-frames", "6", "--steps", "2", "--eval-every", "1", "--patience", "1", "--seed", "3"]
    assert main(["mini", "transfer", str(tmp_path / "cli"), "--budget", "2h", "--jobs", "2", *flags]) == 0
    out = capsys.readouterr().out
    assert "2 x 2 transfer tables" in out and "16 readouts trained now" in out and "rsa-toolkit evaluate" in out
    recipe = json.loads((tmp_path / "cli" / "recipe.json").read_text())
    expected = replace(BUDGETS["2h"], seeds=1, splits=2, train_frames=4, val_frames=3, test_frames=6, max_steps=2,
                       eval_every=1, patience=1, seed=3)
    assert recipe["budget"] == "2h" and recipe["jobs"] == 2 and recipe["device"] == "cpu"
    assert recipe["config"] == {**expected.__dict__, "decoder_widths": list(expected.decoder_widths)}
    # two processes give the same readouts as one
    run_transfer(tmp_path / "lib", shards, tasks=["depth", "normal"], config=expected, jobs=1)
    np.testing.assert_array_equal(_losses(tmp_path / "cli")["normal/depth_zbuffer"],
                                  _losses(tmp_path / "lib")["normal/depth_zbuffer"])
    rows = _read_reliability(tmp_path / "cli")
    assert rows[0]["seed_rho_ahp"] == "" and rows[0]["split_half_ahp"] == ""  # one seed; two sources: undefined


def test_cli_usage_errors(tmp_path, capsys):
    from rsa_toolkit.cli.main import main

    assert main(["mini", "transfer", str(tmp_path / "x"), "--budget", "huge"]) == 2
    assert "Unknown budget 'huge'. Available: full, 2h." in capsys.readouterr().err
    assert main(["mini", "transfer", str(tmp_path / "x"), "--device", "cuda:7"]) == 2 or torch.cuda.device_count() > 7
    import subprocess
    import sys
    help_text = subprocess.run([sys.executable, "-m", "rsa_toolkit.cli.main", "mini", "transfer", "--help"],
                               capture_output=True, text=True, check=True).stdout
    for flag in ("--budget", "--seeds", "--splits", "--jobs", "--device", "--max-steps", "--patience"):
        assert flag in help_text
