"""Training runs on the tiny zoo (tests/conftest.py: depth_zbuffer, normal, class_scene trained for 3 steps) at a few
steps of batch 4: resume equality, the knowledge cache, the auxiliary's record, self-coordination, the baselines,
training on a folder of images, configuration files, and every bad input of the issue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import amalgamate.training.losses
from amalgamate.config import load_config_file, merge_config
from amalgamate.training.images import shard_frames
from amalgamate.training.knowledge import build_knowledge
from amalgamate.zoo import mini_source, taskonomy_source
from amalgamate.training.run import TrainingDiverged, train
from rsa_toolkit.errors import UserInputError


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _tiny_zoo_env(monkeypatch, tiny_zoo, tmp_path_factory):
    monkeypatch.setenv("RSA_TOOLKIT_MINI_ZOO", str(tiny_zoo))
    monkeypatch.setenv("RSA_TOOLKIT_CACHE", str(tmp_path_factory.getbasetemp() / "amalgamate-cache"))


@pytest.fixture
def settings(tiny_shards):
    def make(**changes):
        base = {"targets": ["depth", "normal"], "aux": "class_scene", "steps": 4, "batch_size": 4,
                "train_shard": str(tiny_shards[0]), "eval_shard": str(tiny_shards[1]), "eval_frames": 6,
                "checkpoint_every": 2, "probe_frames": 6, "aux_bootstrap": 4, "kd_warmup": 0}
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    return make


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


# --- runs you can trust ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("weighting", ["gradnorm", "dwa"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, settings, weighting):
    s = settings(steps=6, weighting=weighting, weighting_options={"dwa": {"window": 2}, "gradnorm": {"warmup": 2}},
                 kd_warmup=1, balance_window=1, balance_threshold=10.0, stop_competition_when_balanced=False)
    whole = train(tmp_path / "whole", s)
    assert whole.finished and whole.step == 6
    part = train(tmp_path / "part", s, stop_after=3)  # "killed" after step 3 (checkpointed at 2 and 3)
    assert not part.finished and part.step == 3 and not (tmp_path / "part" / "student.pt").exists()
    with open(tmp_path / "part" / "log.jsonl", "a") as fh:  # a step logged after the last checkpoint, then killed
        fh.write(json.dumps({"step": 4, "losses": {}, "weights": {}}) + "\n")
    resumed = train(tmp_path / "part", None, resume=True)
    assert resumed.finished and resumed.step == 6
    a, b = _state(tmp_path / "whole" / "student.pt"), _state(tmp_path / "part" / "student.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _log(tmp_path / "whole") == _log(tmp_path / "part")  # steps 1..6 once each, same losses and weights


def test_second_run_computes_no_teacher_outputs(tmp_path, settings):
    cache = tmp_path / "cache"
    first = train(tmp_path / "a", settings(steps=1, cache_dir=str(cache)))
    assert first.computed_teachers == ["depth_zbuffer", "normal", "class_scene"]
    second = train(tmp_path / "b", settings(steps=1, cache_dir=str(cache), seed=5))
    assert second.computed_teachers == []
    knowledge = json.loads((tmp_path / "b" / "knowledge.json").read_text())
    assert [t["computed_now"] for t in knowledge["teachers"]] == [False, False, False]
    assert [t["role"] for t in knowledge["teachers"]] == ["target", "target", "auxiliary"]
    assert json.loads((tmp_path / "b" / "run.json").read_text())["computed_teachers"] == []


def test_cached_and_live_knowledge_agree(tmp_path, tiny_zoo, tiny_shards):
    zoo = mini_source(tiny_zoo)
    targets, aux = [zoo.target("depth"), zoo.target("normal")], zoo.auxiliary("scene_class")
    images = shard_frames(tiny_shards[0])
    cached = build_knowledge(targets, aux, images, cache_dir=tmp_path)
    live = build_knowledge(targets, aux, images, live=True)
    a, b = cached.batch([1, 4, 7]), live.batch([1, 4, 7])
    assert a.outputs.keys() == b.outputs.keys() == {"depth_zbuffer", "normal"}
    for t in a.outputs:
        assert a.outputs[t].shape == b.outputs[t].shape and torch.allclose(a.outputs[t], b.outputs[t], atol=1e-5)
    guides_a = [*a.representations.values(), a.auxiliary]
    guides_b = [*b.representations.values(), b.auxiliary]
    assert a.representations.keys() == b.representations.keys() == {"depth_zbuffer", "normal"}
    assert len(guides_a) == 3 and all(r.shape == (3, 8, 16, 16) for r in guides_a)
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(guides_a, guides_b))
    assert np.allclose([*cached.stats.targets.values(), cached.stats.auxiliary],
                       [*live.stats.targets.values(), live.stats.auxiliary], rtol=1e-4)
    assert isinstance(guides_a[0], torch.Tensor) and not guides_a[0].is_inference()
    assert not b.outputs["normal"].is_inference()  # usable as a loss target under autograd


def test_live_teachers_train(tmp_path, settings):
    result = train(tmp_path / "run", settings(steps=2, live_teachers=True))
    assert result.finished and result.computed_teachers == []
    assert json.loads((tmp_path / "run" / "knowledge.json").read_text())["mode"] == "live"


def test_auto_aux_records_the_ranking(tmp_path, settings):
    result = train(tmp_path / "run", settings(aux=None, auto_aux=True, steps=1))
    record = json.loads((tmp_path / "run" / "aux.json").read_text())
    assert result.aux.name == record["chosen"] == "class_scene"  # the only teacher that is not a target
    assert record["how"] == "auto-aux" and "highest mean RSA similarity" in record["why"]
    assert [c["name"] for c in record["ranking"]] == ["class_scene"]
    assert set(record["ranking"][0]["per_target"]) == {"depth_zbuffer", "normal"}
    assert record["probe"]["n_images"] == 6 and record["similarity"]["comparison"] == "spearman"


# --- self-coordination ----------------------------------------------------------------------------------------------

def test_soka_step_uses_first_order_gradient_norms_and_never_toggles_requires_grad(tmp_path, settings,
                                                                                      monkeypatch):
    calls = []
    original = torch.autograd.grad

    def spy(*args, **kwargs):
        calls.append(kwargs.get("create_graph", False))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", spy)
    toggled = []
    monkeypatch.setattr(torch.nn.Parameter, "requires_grad_", lambda self, *a, **k: toggled.append(a))
    result = train(tmp_path / "run", settings(steps=2))
    assert calls == [False] * 4  # 2 tasks x 2 steps, no graph of the gradient: no double backward
    assert not toggled
    entry = result.last
    assert set(entry["grad_norms"]) == {"depth_zbuffer", "normal"} and "guide" in entry
    assert sum(entry["weights"].values()) == pytest.approx(2.0)


def _captured_steps(monkeypatch) -> list[list[torch.Tensor]]:
    """The gradients every AdamW step sees (per step: the shared optimiser's, then the heads')."""
    captured: list[list[torch.Tensor]] = []
    original = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        captured.append([p.grad.clone() for g in self.param_groups for p in g["params"] if p.grad is not None])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    return captured


def test_fused_competition_equals_a_separate_backward_of_the_heads_loss(tmp_path, settings, monkeypatch):
    """One backward per task (GradNorm's norms and the head gradients together) gives the heads the gradients of a
    separate backward of sum_i L_i (the path of a weighting without gradient norms)."""
    captured = _captured_steps(monkeypatch)
    train(tmp_path / "fused", settings(steps=1))
    fused = captured[1]  # the head optimiser of step 1 (the shared one steps first)
    captured.clear()
    train(tmp_path / "separate", settings(steps=1, weighting="equal"))
    assert len(fused) == len(captured[1]) > 0
    for a, b in zip(fused, captured[1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))


def test_a_weight_scales_the_encoders_gradient_and_not_the_heads(tmp_path, settings, monkeypatch):
    """The weights act on the encoder path only: doubling w_1 leaves the heads' gradients (so their AdamW update)
    unchanged, and changes the encoder's (its collaboration loss is sum_i w_i L_i + lambda L_guide). The heads'
    gradients are taken on the encoder after its step, so a negligible learning rate keeps that encoder the same."""
    import amalgamate.training.trainer as trainer_module

    captured = _captured_steps(monkeypatch)
    train(tmp_path / "equal", settings(steps=1, weighting="equal", guide_weight=0.0, lr=1e-12))
    shared_1, heads_1 = captured[0], captured[1]
    captured.clear()
    original = trainer_module.build_weighting

    def doubled(*args, **kwargs):
        weighting = original(*args, **kwargs)
        weighting.weights[0] = 2.0
        return weighting

    monkeypatch.setattr(trainer_module, "build_weighting", doubled)
    train(tmp_path / "doubled", settings(steps=1, weighting="equal", guide_weight=0.0, lr=1e-12))
    shared_2, heads_2 = captured[0], captured[1]
    assert len(heads_1) == len(heads_2) > 0
    for a, b in zip(heads_1, heads_2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)
    differences = [float((a - b).abs().max() / b.abs().max()) for a, b in zip(shared_1, shared_2)]
    assert max(differences) > 0.1


def test_heads_start_at_the_teachers_mean_output(tmp_path, settings, monkeypatch):
    """The first step's loss (before any update) is lower with the output biases at the teachers' means."""
    import amalgamate.training.trainer

    started = _log_of(train(tmp_path / "init", settings(steps=1)))[0]["losses"]
    monkeypatch.setattr(amalgamate.training.trainer, "init_output_biases", lambda model, means: [])
    plain = _log_of(train(tmp_path / "plain", settings(steps=1)))[0]["losses"]
    assert started["depth_zbuffer"] < plain["depth_zbuffer"]


def _log_of(result):
    return _log(result.run_dir)


def test_balance_criterion_can_end_the_competition(tmp_path, settings):
    """GradNorm's warm-up is step 1 (no observation); steps 2 and 3 are observed with drift below 1.0: balanced at
    step 3, then the weights are frozen and collaboration continues."""
    result = train(tmp_path / "run", settings(steps=5, balance_window=2, balance_threshold=1.0,
                                              weighting_options={"gradnorm": {"warmup": 1}}))
    assert result.balanced_at == 3
    log = _log(tmp_path / "run")
    assert [e["balanced"] for e in log] == [False, False, True, True, True]
    assert log[2]["balance"]["step"] == 3 and "stayed below 1 for 2 steps" in log[2]["balance"]["why"]
    assert log[2]["weights"] == log[3]["weights"] == log[4]["weights"]  # frozen after balance
    assert "grad_norms" not in log[3] and "guide" in log[4]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["balanced_at"] == 3


def test_other_balancers_keep_competing_after_balance(tmp_path, settings):
    """The balance criterion is logged for every balancer, but only GradNorm's competition ends there (SOKA's
    alternation); FAMO, as published, moves its weights to the end."""
    result = train(tmp_path / "run", settings(steps=5, balance_window=1, balance_threshold=10.0, weighting="famo"))
    log = _log(tmp_path / "run")
    assert result.balanced_at is not None and "competition continues" in log[result.balanced_at - 1]["balance"]["then"]
    assert log[-2]["weights"] != log[-1]["weights"]


def test_kd_warmup_distils_only(tmp_path, settings):
    train(tmp_path / "run", settings(steps=3, kd_warmup=2))
    log = _log(tmp_path / "run")
    assert [e.get("phase") for e in log] == ["kd-warmup", "kd-warmup", None]
    assert "guide" not in log[0] and "grad_norms" not in log[1]
    assert "guide" in log[2] and "grad_norms" in log[2]


@pytest.mark.parametrize("weighting", ["famo", "imtl-l"])
def test_every_state_tensor_is_on_the_models_device(tmp_path, settings, monkeypatch, weighting):
    """float64 runs on "cpu" and "cpu:0" (another spelling, through the same device-generic code) end with the same
    student, and every tensor a checkpoint holds (model, adapters, weighting, optimisers) is on the model's device,
    floating-point ones in its dtype."""
    import amalgamate.training.trainer as trainer_module

    trainers = []
    original = trainer_module.Trainer.checkpoint

    def spy(self):
        trainers.append(self)
        return original(self)

    monkeypatch.setattr(trainer_module.Trainer, "checkpoint", spy)
    train(tmp_path / "a", settings(steps=2, precision="float64", device="cpu", weighting=weighting))
    train(tmp_path / "b", settings(steps=2, precision="float64", device="cpu:0", weighting=weighting))
    a, b = _state(tmp_path / "a" / "student.pt"), _state(tmp_path / "b" / "student.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    trainer = trainers[-1]
    state = trainer.state()
    tensors = []

    def walk(value):
        if isinstance(value, torch.Tensor):
            tensors.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk({k: state[k] for k in ("model", "adapters", "weighting", "optimizers")})
    device = next(trainer.model.parameters()).device
    assert tensors and all(t.device == device for t in tensors)
    assert all(t.dtype == torch.float64 for t in tensors if t.is_floating_point() and t.dim() > 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the CPU run is the reference)")
@pytest.mark.parametrize("weighting", ["gradnorm", "dwa", "famo"])
def test_a_cuda_run_is_the_cpu_run_up_to_rounding(tmp_path, settings, weighting):
    """The GPU training path (student, knowledge cache, adapters, balancer on cuda) against the CPU reference: a tiny
    float64 run ends with the same student and the same weights up to rounding (reductions run in another order)."""
    train(tmp_path / "cpu", settings(steps=3, precision="float64", device="cpu", weighting=weighting))
    train(tmp_path / "cuda", settings(steps=3, precision="float64", device="cuda", weighting=weighting))
    a, b = _state(tmp_path / "cpu" / "student.pt"), _state(tmp_path / "cuda" / "student.pt")
    assert all(b[k].device.type == "cpu" for k in b)  # saved portable
    assert all(torch.allclose(a[k], b[k], rtol=1e-7, atol=1e-10) for k in a)
    cpu, cuda = _log(tmp_path / "cpu"), _log(tmp_path / "cuda")
    assert len(cpu) == len(cuda) and all(c["weights"][t] == pytest.approx(g["weights"][t], rel=1e-7)
                                         for c, g in zip(cpu, cuda) for t in c["weights"])


def test_baselines_run_through_the_same_command(tmp_path, settings):
    kd = train(tmp_path / "kd", settings(method="kd", aux=None, steps=2))
    assert kd.last["weights"] == {"depth_zbuffer": 1.0, "normal": 1.0} and "guide" not in kd.last
    nn_run = train(tmp_path / "kdn", settings(method="kd-n-to-n", aux=None, steps=2))
    joint = json.loads((tmp_path / "kd" / "run.json").read_text())["student_parameters"]
    separate = json.loads((tmp_path / "kdn" / "run.json").read_text())["student_parameters"]
    assert nn_run.finished and separate == pytest.approx(joint, rel=0.05)
    spec = torch.load(tmp_path / "kdn" / "student.pt", weights_only=True)["spec"]
    assert spec["method"] == "kd-n-to-n" and len(spec["widths"]) == 4
    from amalgamate.evaluation.evaluate import evaluate_run

    metrics = evaluate_run(tmp_path / "kdn")
    assert set(metrics.parameters.per_student) == {"depth_zbuffer", "normal"}
    assert sum(metrics.parameters.per_student.values()) == metrics.parameters.student == separate
    assert metrics.inference_ms_per_image.student > 0 and metrics.eval_set.images == 6


def test_gan_term_and_uncertainty_weighting(tmp_path, settings):
    result = train(tmp_path / "run", settings(steps=3, gan_start=1, gan_width=8, weighting="uncertainty"))
    log = _log(tmp_path / "run")
    assert "gan" not in log[0] and set(log[1]["gan"]) == {"depth_zbuffer", "normal"}
    assert result.finished and all(np.isfinite(list(e["losses"].values())).all() for e in log)
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert "log_vars" in ckpt["weighting"] and set(ckpt["discriminators"]) and ckpt["d_optimizer"]


def test_three_targets_with_an_image_level_task(tmp_path, settings):
    result = train(tmp_path / "run", settings(targets=["depth", "normal", "scene_class"], aux=None, steps=2))
    assert set(result.last["losses"]) == {"depth_zbuffer", "normal", "class_scene"}
    assert sum(result.last["weights"].values()) == pytest.approx(3.0)


def test_training_on_a_folder_of_images_uses_only_the_teachers(tmp_path, settings):
    """The path of real teachers (--images DIR, no labels), with the mini teachers standing in."""
    from PIL import Image

    from amalgamate.evaluation.evaluate import evaluate_run

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray((rng.random((80, 96, 3)) * 255).astype(np.uint8)).save(folder / f"p{i}.png")
    result = train(tmp_path / "run", settings(train_shard=None, images=str(folder), eval_images=str(folder),
                                              steps=2))
    assert result.finished
    metrics = evaluate_run(tmp_path / "run")
    assert metrics.eval_set.ground_truth is False and metrics.eval_set.images == 5
    assert metrics.student["depth_zbuffer"].vs_truth is None and metrics.teachers == {}
    examples = np.load(tmp_path / "run" / "examples.npz")
    assert "depth_zbuffer/teacher" in examples.files and "depth_zbuffer/truth" not in examples.files


def test_taskonomy_teachers_are_found_and_hashed_without_loading(tmp_path):
    for task in ("depth_zbuffer", "normal"):
        for part in ("encoder", "decoder"):
            (tmp_path / f"{task}_{part}.pth").write_bytes(f"{task} {part}".encode())
    (tmp_path / "room_layout_encoder.pth").write_bytes(b"layout")
    zoo = taskonomy_source(tmp_path)
    assert zoo.default_architecture == "taskonomy" and zoo.student_preprocessing.size == 256
    assert not zoo.student_preprocessing.low_saturation
    target = zoo.target("depth")
    assert target.layers == ["encoder", "decoder"] and target.space.name == "taskonomy_depth"
    assert target.teacher.preprocessing.low_saturation and len(target.teacher.weights_sha256) == 64
    assert zoo.auxiliary("room_layout").layers == ["encoder_output"]
    with pytest.raises(UserInputError, match="'room_layout' has no Taskonomy decoder"):
        zoo.target("layout")
    with pytest.raises(UserInputError, match="edge_texture"):
        zoo.target("edge2d")


# --- configuration --------------------------------------------------------------------------------------------------

def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('targets = ["depth", "normal"]\nauto-aux = true\nsteps = 7\n[gradnorm]\nalpha = 0.5\n')
    from_file = load_config_file(path)
    assert from_file == {"targets": ["depth", "normal"], "auto_aux": True, "steps": 7,
                         "weighting_options": {"gradnorm": {"alpha": 0.5}}}
    config = merge_config(from_file, {"steps": 9, "lr": None})
    assert config.steps == 9 and config.targets == ("depth", "normal") and config.lr == 1e-3
    table = tmp_path / "table.toml"
    table.write_text('[amalgamate]\ntargets = ["depth", "normal"]\nbatch_size = 8\n')
    assert load_config_file(table)["batch_size"] == 8
    bad = tmp_path / "bad.toml"
    bad.write_text("stpes = 3\n")
    with pytest.raises(UserInputError, match="unknown setting 'stpes'. Did you mean 'steps'"):
        load_config_file(bad)
    (tmp_path / "x.ini").write_text("")
    with pytest.raises(UserInputError, match="expected a .toml, .yaml or .yml file, got '.ini'"):
        load_config_file(tmp_path / "x.ini")


def test_yaml_config_needs_pyyaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("targets: [depth, normal]\nsteps: 3\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        with pytest.raises(UserInputError, match="reading YAML needs PyYAML"):
            load_config_file(path)
    else:
        assert load_config_file(path) == {"targets": ["depth", "normal"], "steps": 3}


# --- bad input ------------------------------------------------------------------------------------------------------

def test_fewer_than_two_targets(tmp_path, settings):
    with pytest.raises(UserInputError, match="at least two target tasks, got 1 \\(depth\\)"):
        train(tmp_path / "run", settings(targets=["depth"]))
    with pytest.raises(UserInputError, match="'depth_zbuffer' names task depth_zbuffer again"):
        train(tmp_path / "run", settings(targets=["depth", "depth_zbuffer"]))
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_target_without_a_teacher(tmp_path, settings):
    with pytest.raises(UserInputError, match="target 'edge_texture' has no teacher: .*has no teacher for "
                                             "'edge_texture'; it has depth_zbuffer, normal, class_scene"):
        train(tmp_path / "run", settings(targets=["depth", "edge2d"]))
    with pytest.raises(UserInputError, match="Unknown task 'dpeth'. Did you mean 'depth_zbuffer'"):
        train(tmp_path / "run2", settings(targets=["dpeth", "normal"]))


def test_aux_equal_to_a_target(tmp_path, settings):
    with pytest.raises(UserInputError, match="aux='depth' is one of the targets \\(depth_zbuffer\\)"):
        train(tmp_path / "run", settings(aux="depth"))
    with pytest.raises(UserInputError, match="auxiliary 'reshading': .*has no teacher for 'reshading'"):
        train(tmp_path / "run", settings(aux="reshade"))
    assert not (tmp_path / "run").exists()


def test_auto_aux_with_no_candidate_left(tmp_path, settings):
    with pytest.raises(UserInputError, match="auto_aux: no candidate auxiliary is left .* are all targets"):
        train(tmp_path / "run", settings(targets=["depth", "normal", "class_scene"], aux=None, auto_aux=True))


def test_run_dir_holding_another_run(tmp_path, settings):
    train(tmp_path / "run", settings(steps=1))
    with pytest.raises(UserInputError, match="holds another run \\(targets depth_zbuffer, normal, method soka\\); "
                                             "continue it with resume=, replace it with overwrite="):
        train(tmp_path / "run", settings(steps=1))
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(UserInputError, match="is not empty and holds no amalgamate run \\(notes.txt\\)"):
        train(tmp_path / "run", settings(steps=1), overwrite=True)  # other files are never deleted
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"
    (tmp_path / "run" / "notes.txt").unlink()
    assert train(tmp_path / "run", settings(steps=1, seed=3), overwrite=True).finished
    other = tmp_path / "other"
    other.mkdir()
    (other / "x").write_text("")
    with pytest.raises(UserInputError, match="is not empty and holds no amalgamate run"):
        train(other, settings(steps=1))


def test_resume_with_another_target_set(tmp_path, settings):
    train(tmp_path / "dn", settings(steps=2), stop_after=1)
    with pytest.raises(UserInputError, match="was trained for targets depth_zbuffer, normal, not depth_zbuffer, "
                                             "class_scene"):
        train(tmp_path / "dn", {"targets": ["depth", "class_scene"]}, resume=True)
    with pytest.raises(UserInputError, match="has lr = 0.001, got 0.01; a resumed run keeps its settings"):
        train(tmp_path / "dn", {"lr": 0.01}, resume=True)
    with pytest.raises(UserInputError, match="holds no run \\(no config.json\\)"):
        train(tmp_path / "nothing", None, resume=True)
    # a checkpoint copied in from a run with other targets
    train(tmp_path / "dc", settings(targets=["depth", "class_scene"], aux="normal", steps=2), stop_after=1)
    (tmp_path / "dn" / "checkpoint.pt").write_bytes((tmp_path / "dc" / "checkpoint.pt").read_bytes())
    with pytest.raises(UserInputError, match="is a checkpoint of a soka student for targets depth_zbuffer, "
                                             "class_scene, .* comes from another run"):
        train(tmp_path / "dn", None, resume=True)


def test_nan_loss_names_the_step_and_the_last_good_checkpoint(tmp_path, settings, monkeypatch):
    original = amalgamate.training.losses.distillation_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = original(*args, **kwargs)
        return loss * float("nan") if calls["n"] > 3 * 4 else loss  # 2 tasks x 2 passes per step: NaN at step 4

    monkeypatch.setattr(amalgamate.training.losses, "distillation_loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=f"the depth_zbuffer loss is nan at step 4. The last good checkpoint "
                                               f"is '{run / 'checkpoint.pt'}' \\(step 2\\)"):
        train(run, settings(steps=6))
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2
    calls["n"] = 10 ** 9  # NaN from the first step on
    with pytest.raises(TrainingDiverged, match="loss is nan at step 1. No checkpoint was written yet"):
        train(tmp_path / "early", settings(steps=2))


def test_bad_settings(tmp_path, settings):
    with pytest.raises(UserInputError, match="Unknown method 'soka-net'. Did you mean 'soka'\\? Available: soka, kd, "
                                             "kd-n-to-n"):
        train(tmp_path / "r", settings(method="soka-net"))
    with pytest.raises(UserInputError, match="method=kd uses no auxiliary teacher"):
        train(tmp_path / "r", settings(method="kd"))
    with pytest.raises(UserInputError, match="method=kd is KD with equal fixed weights"):
        train(tmp_path / "r", settings(method="kd", aux=None, weighting="gradnorm"))
    with pytest.raises(UserInputError, match="batch-size must be an integer >= 1, got 0"):
        train(tmp_path / "r", settings(batch_size=0))
    with pytest.raises(UserInputError, match="batch_size=32 is larger than the 12 training images"):
        train(tmp_path / "r2", settings(batch_size=32))


def test_a_zoo_file_adds_auxiliary_candidates(tmp_path, settings):
    """--zoo FILE: its teachers are ranked with the zoo's and can guide, when their representation fits."""
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "my_aux.py").write_text(
        "from torch import nn\n\n"
        "class Patches(nn.Module):\n"
        "    def __init__(self, channels=8):\n"
        "        super().__init__()\n"
        "        self.patches = nn.Conv2d(3, channels, 14, stride=14)  # 224 px ImageNet input -> 16 x 16\n\n"
        "    def forward(self, x):\n"
        "        return self.patches(x)\n")
    (tmp_path / "zoo" / "zoo.toml").write_text(
        '[[teacher]]\nname = "patches"\nmodel = "my_aux:Patches"\nlayers = ["patches"]\n\n'
        '[[teacher]]\nname = "wide"\nmodel = "my_aux:Patches"\nkwargs = { channels = 4 }\nlayers = ["patches"]\n')
    zoo = str(tmp_path / "zoo" / "zoo.toml")
    # the zoo file's teachers are randomly initialised from torch's global generator: fix it, so that the ranking
    # (on 6 probe frames) does not depend on what earlier tests drew
    torch.manual_seed(0)
    result = train(tmp_path / "auto", settings(aux=None, auto_aux=True, zoo_file=zoo, steps=1))
    record = json.loads((tmp_path / "auto" / "aux.json").read_text())
    assert {c["name"] for c in record["ranking"]} == {"class_scene", "patches", "wide"}
    assert record["zoo"]["zoo_file"] == zoo and result.aux.name == record["chosen"]
    assert train(tmp_path / "named", settings(aux="patches", zoo_file=zoo, steps=1)).aux.name == "patches"
    with pytest.raises(UserInputError, match="teacher 'wide' has a \\(4, 16, 16\\) representation, the student "
                                             "\\(8, 16, 16\\)"):
        train(tmp_path / "wide", settings(aux="wide", zoo_file=zoo, steps=1))
    assert not (tmp_path / "wide").exists()  # found before the run directory was made
