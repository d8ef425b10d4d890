"""Train the mini-Taskonomy teachers: one network per task on a rendered training shard, the state kept by the
lowest loss on val-split frames (model selection never sees test), scored on held-out test-split frames against the
task's trivial baseline, saved in half precision with a manifest.

    >>> from rsa_toolkit.lab.train import TrainConfig, train_zoo
    >>> train_zoo("data/mini_zoo", train_shard="shards/train", val_shard="shards/val", test_shard="shards/test",
    ...           config=TrainConfig())

The command ``rsa-toolkit mini train`` wraps :func:`train_zoo`; docs/mini_taskonomy.md gives the recipe and the
run time. Every random choice (initialisation, batch order, noise, holes) follows from ``config.seed`` and the task.
"""

from __future__ import annotations

import io
import json
import os
import platform
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.files import atomic_path, file_sha256
from rsa_toolkit.validation import check_int
from rsa_toolkit.scenes import ALL_TASKS
from rsa_toolkit.tasks import resolve_task
from rsa_toolkit.zoo.mini.net import MiniTeacherNet, build_teacher_net, check_frame_size
from rsa_toolkit.lab.dataset import MiniTaskonomy
from rsa_toolkit.zoo.mini.embedded import MANIFEST
from rsa_toolkit.zoo.mini.objectives import objective
from rsa_toolkit.scenes.shards import load_shard

__all__ = ["TrainConfig", "train_teacher", "evaluate_teacher", "train_zoo"]

_BASELINE_FRAMES = 2000  # training frames the constant baseline is fitted on
_VAL_FRAMES = 500  # val frames behind each model-selection check (~5 training steps of compute)
_INPUT_BASELINE_TASKS = ("denoising", "colorization", "inpainting")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 500
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1  # torch threads per training process
    eval_every: int = 250  # steps between val checks (and one at the end); the lowest val loss's state is kept


# Tasks that learn slowly get this many times the steps. Image-level geometry and the sparse 3D keypoint maps stayed
# within 5-13% of their trivial baseline with the common budget (first zoo run), and at 4x they still ended at
# 0.62-0.75x of it, like occlusion edges and object classes at 1x (second run, docs/mini_taskonomy.md); issue 15
# asks every teacher to reach <= 0.6x. Longer one-cycle schedules cost nothing in selection: each teacher is kept at
# its lowest val loss. The two image-level geometry tasks also need more frames: on 8,000 they overfit (val minimum
# at step ~3,000 of 5,000, held-out 0.74x and 0.83x), so they train on 32,000 (docs/mini_taskonomy.md gives the
# command); room_layout still underfits there at 10x (train and val loss both ~0.67x at the end), hence 20x.
SLOW_TASKS: dict[str, int] = {"keypoints3d": 6, "room_layout": 20, "vanishing_point": 10, "edge_occlusion": 4,
                              "class_object": 4}


def steps_for(task: str, config: TrainConfig) -> int:
    return config.steps * SLOW_TASKS.get(task, 1)


def _task_seed(seed: int, task: str) -> int:
    return seed * 1000 + ALL_TASKS.index(task)


def one_cycle_adamw(parameters, *, lr: float, steps: int, weight_decay: float = 1e-4):  # noqa: ANN001, ANN201
    """AdamW under a one-cycle schedule (10% warm-up to ``lr``, then annealing): the recipe of every mini network."""
    opt = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)


def train_teacher(task: str, train_shard: str | os.PathLike[str], config: TrainConfig = TrainConfig(), *,
                  val_shard: str | os.PathLike[str] | None = None, log_every: int = 0) -> tuple[MiniTeacherNet, dict]:
    """Train ``task``'s teacher from scratch; returns the network (eval mode) and a record of the run.

    With ``val_shard``, the val loss is measured every ``config.eval_every`` steps and after the last one, and the
    network is returned in the state with the lowest val loss (the record's ``best_step``, ``val_loss`` and
    ``val_curve``); without it, in its final state."""
    task = resolve_task(task)
    torch.manual_seed(_task_seed(config.seed, task))
    rng = np.random.default_rng([config.seed, ALL_TASKS.index(task)])
    data = MiniTaskonomy(task, shard=train_shard)
    check_frame_size(data.size, teacher_input=True)
    net = build_teacher_net(task)
    goal = objective(task)
    steps = steps_for(task, config)
    opt, sched = one_cycle_adamw(net.parameters(), lr=config.lr, steps=steps, weight_decay=config.weight_decay)
    order, cursor, losses = rng.permutation(len(data)), 0, []
    check = _val_check(task, val_shard) if val_shard is not None else None
    curve: list[tuple[int, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    net.train()
    t0 = time.perf_counter()
    for step in range(steps):
        if cursor + config.batch_size > len(order):  # a new epoch: reshuffle
            order, cursor = rng.permutation(len(data)), 0
        x, y = data.batch(np.sort(order[cursor:cursor + config.batch_size]))
        cursor += config.batch_size
        loss = goal.loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"{task}: step {step + 1}/{steps} loss {np.mean(losses[-log_every:]):.4f}", flush=True)
        if check is not None and ((step + 1) % config.eval_every == 0 or step + 1 == steps):
            curve.append((step + 1, check(net)))
            if best is None or curve[-1][1] < best[0]:
                best = (curve[-1][1], step + 1, {k: v.detach().clone() for k, v in net.state_dict().items()})
            net.train()
    seconds = time.perf_counter() - t0
    record = {"task": task, "steps": steps, "batch_size": config.batch_size, "lr": config.lr, "seed": config.seed,
              "train_frames": len(data), "train_seconds": seconds, "images_per_second": steps * config.batch_size / seconds,
              "final_train_loss": float(np.mean(losses[-max(1, steps // 20):]))}
    if best is not None:
        net.load_state_dict(best[2])
        record.update(val_loss=best[0], best_step=best[1], val_frames=check.frames,
                      val_curve=[[s, round(v, 6)] for s, v in curve])
    return net.eval(), record


def _val_check(task: str, val_shard: str | os.PathLike[str]):  # noqa: ANN202
    """A function net -> mean loss on the first :data:`_VAL_FRAMES` frames of the val shard (eval mode)."""
    data = MiniTaskonomy(task, shard=val_shard)
    if data.split != "val":
        raise UserInputError(f"val_shard: {val_shard} holds {data.split} frames; model selection needs val-split "
                             "frames (rsa-toolkit mini render --split val), never test.", parameter="val_shard")
    goal, idx = objective(task), np.arange(min(_VAL_FRAMES, len(data)))
    batches = [data.batch(idx[i:i + 100]) for i in range(0, len(idx), 100)]

    @torch.inference_mode()
    def check(net: MiniTeacherNet) -> float:
        net.eval()
        return float(sum(goal.loss(net(x), y) * len(x) for x, y in batches) / len(idx))

    check.frames = len(idx)  # type: ignore[attr-defined]
    return check


@torch.inference_mode()
def evaluate_teacher(net: MiniTeacherNet, task: str, test_shard: str | os.PathLike[str],
                     train_shard: str | os.PathLike[str], *, batch_size: int = 100) -> dict:
    """Held-out loss of ``net`` on the test shard, beside the trivial baseline's (the best constant, fitted on
    training frames) and, for the image-to-image tasks with a corrupted input, the input's own loss."""
    task = resolve_task(task)
    goal = objective(task)
    constant = goal.constant(MiniTaskonomy(task, shard=train_shard).targets(_BASELINE_FRAMES))
    test = MiniTaskonomy(task, shard=test_shard)
    sums: dict[str, float] = {}
    net.eval()
    for start in range(0, len(test), batch_size):
        idx = np.arange(start, min(start + batch_size, len(test)))
        x, y = test.batch(idx)
        pred = net(x)
        const = constant.expand_as(pred)
        parts = {"loss": goal.loss(pred, y), "baseline_loss": goal.loss(const, y)}
        if task in _INPUT_BASELINE_TASKS:
            parts["input_loss"] = goal.loss((x + 1.0) / 2.0, y)
        if goal.accuracy is not None:
            parts["accuracy"] = goal.accuracy(pred, y)
            parts["baseline_accuracy"] = goal.accuracy(const, y)
        for key, value in parts.items():
            sums[key] = sums.get(key, 0.0) + float(value) * len(idx)
    out = {key: value / len(test) for key, value in sums.items()}
    out.update(loss_name=goal.loss_name, test_frames=len(test), loss_ratio=out["loss"] / out["baseline_loss"])
    if goal.accuracy is not None:
        out["accuracy_name"] = goal.accuracy_name
    return out


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _train_and_save(task: str, out_dir: str, train_shard: str, val_shard: str | None, test_shard: str,
                    config: TrainConfig, log_every: int) -> dict:
    torch.set_num_threads(config.threads)
    net, record = train_teacher(task, train_shard, config, val_shard=val_shard, log_every=log_every)
    record.update(evaluate_teacher(net, task, test_shard, train_shard))
    path = Path(out_dir) / f"{task}.pt"
    buffer = io.BytesIO()  # saved through a buffer: torch names the archive inside the file after the file's name
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    record.update(file=path.name, sha256=file_sha256(path), parameters=_count(net),
                  encoder_parameters=_count(net.encoder), decoder_parameters=_count(net.decoder))
    return record


def train_zoo(out_dir: str | os.PathLike[str], *, train_shard: str | os.PathLike[str],
              test_shard: str | os.PathLike[str], val_shard: str | os.PathLike[str] | None = None,
              tasks: Sequence[str] | None = None, config: TrainConfig = TrainConfig(), jobs: int = 1,
              log_every: int = 0) -> dict:
    """Train the teachers of ``tasks`` (default all 20) with ``jobs`` processes, each kept at its best val state when
    ``val_shard`` is given; write ``<task>.pt`` (fp16 state dicts) and update ``manifest.json`` in ``out_dir``.
    Returns the manifest."""
    tasks = list(dict.fromkeys(resolve_task(t) for t in (tasks or ALL_TASKS)))
    jobs = check_int(jobs, name="jobs", minimum=1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    val = None if val_shard is None else str(val_shard)
    args = [(t, str(out), str(train_shard), val, str(test_shard), config, log_every) for t in tasks]
    t0 = time.perf_counter()
    if jobs == 1:
        records = [_train_and_save(*a) for a in args]
    else:
        with ProcessPoolExecutor(jobs) as pool:
            records = list(pool.map(_train_and_save, *zip(*args)))
    manifest_path = out / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"teachers": {}}
    manifest["teachers"].update({r["task"]: r for r in records})
    manifest["teachers"] = {t: manifest["teachers"][t] for t in ALL_TASKS if t in manifest["teachers"]}
    # Each run that wrote teachers is kept, so a zoo retrained in parts still says how every teacher was made.
    manifest.update(format=1, input_size=64, representation=[8, 16, 16])
    manifest.setdefault("runs", []).append({
        "tasks": tasks, "config": asdict(config), "jobs": jobs, "wall_seconds": time.perf_counter() - t0,
        "torch": torch.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "train_shard": _shard_summary(train_shard), "test_shard": _shard_summary(test_shard),
        **({"val_shard": _shard_summary(val_shard)} if val_shard is not None else {})})
    with atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _shard_summary(path: str | os.PathLike[str]) -> dict:
    meta, _ = load_shard(path, [])
    return {k: meta[k] for k in ("split", "first_seed", "count", "size")}
