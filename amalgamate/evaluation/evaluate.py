"""Evaluating a trained run: metrics against ground truth and against the teachers, sizes and inference times.

``evaluate_run(RUN_DIR)`` loads the student (``student.pt``, or the latest checkpoint of an unfinished run) and runs
it beside its target teachers over held-out images:

* mini zoo: frames of the mini-Taskonomy **test** split (``eval_frames``, default 500) with exact labels, so every
  model is scored against ground truth, and the student also against its teachers;
* ``eval_images`` (any zoo), or for Taskonomy teachers without it the training images: a folder of images, scored
  against the teachers only (there are no labels).

It returns an :class:`amalgamate.evaluation.results.Evaluation` and writes ``metrics.json`` (everything: its
:meth:`~amalgamate.evaluation.results.Evaluation.to_json`), ``metrics.csv`` (one row per model, task, reference and
metric) and ``examples.npz`` (the first frames with the student's, the teachers' and the true outputs, for the
report's figure). Inference time per image is measured on one batch, best of a few repeats, with the networks in
eval mode under ``torch.inference_mode``, for the student and for the n teachers together.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.validation import check_int

from amalgamate.evaluation.metrics import MetricSums, task_metric_sums
from amalgamate.evaluation.results import (EvalSet, Evaluation, InferenceTimes, ModelOrigin, Parameters,
                                           StudentScores)
from amalgamate.run_dir import RunDir
from amalgamate.run_files import json_bytes, write_files
from amalgamate.student import build_from_spec, count_parameters
from amalgamate.training.images import EvalFrames, folder_images, image_batch
from amalgamate.training.setup import setup_run

__all__ = ["evaluate_run", "load_student", "time_per_image", "time_together", "metric_rows", "EXAMPLES"]

EXAMPLES = 4  # frames kept in examples.npz
_FIX = "make the run directory writable, or copy the run where it can be"


def load_student(run: RunDir) -> tuple[nn.Module, dict[str, Any]]:
    """The run's final student (or its latest checkpoint's), in eval mode, and where it came from."""
    if run.file("student.pt").is_file():
        saved = run.load_torch("student.pt")
        origin = {"file": "student.pt", "step": run.read_json("run.json").get("step")}
    elif (ckpt := run.load_checkpoint()) is not None:  # the newest readable one
        saved = {"state_dict": ckpt["model"], "spec": ckpt["spec"]}
        origin = {"file": "checkpoint.pt", "step": int(ckpt["step"])}
    else:
        raise UserInputError(f"'{run.path}' has no student.pt or checkpoint.pt yet; train it first "
                             f"(amalgamate train --out {run.path}).")
    model = build_from_spec(saved["spec"])
    model.load_state_dict(saved["state_dict"])
    return model.eval(), origin


def time_per_image(fn: Callable[[], object], n_images: int, repeats: int = 3) -> float:
    """Milliseconds per image of ``fn`` (one batch of ``n_images``), best of ``repeats`` after one warm-up call."""
    return time_together({"fn": fn}, n_images, rounds=repeats)["fn"]


def time_together(calls: dict[str, Callable[[], object]], n_images: int, rounds: int = 5) -> dict[str, float]:
    """Milliseconds per image of each call (one batch of ``n_images`` each), best of ``rounds`` rounds in which every
    call runs once, after one warm-up round. Interleaving puts every model under the same machine load, so their
    ratios hold even when the absolute times drift."""
    for fn in calls.values():
        fn()
    best = {name: math.inf for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            _synchronize()
            t0 = time.perf_counter()
            fn()
            _synchronize()  # a GPU runs asynchronously: the clock must wait for its work
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: 1000.0 * seconds / n_images for name, seconds in best.items()}


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def evaluate_run(run_dir: str | os.PathLike[str], *, eval_frames: int | None = None, batch_size: int = 32,
                 device: str | torch.device = "cpu", progress: bool = False) -> Evaluation:
    """Evaluate the run in ``run_dir`` (see the module docstring) with the models on ``device``; ``eval_frames``
    overrides the run's setting."""
    from rsa_toolkit.devices import resolve_device
    from rsa_toolkit.progress import progress as progress_lines

    dev = resolve_device(device)

    run = RunDir(run_dir)
    if not run.has_run():
        raise UserInputError(f"'{run.path}' is not an amalgamate run directory (no config.json); give the --out "
                             "directory of amalgamate train.")
    config = run.config()
    aux = run.read_json("aux.json")["chosen"]  # damaged files stop the evaluation before any work
    run.check_writable(what="run directory", fix=_FIX)
    if eval_frames is not None:
        check_int(eval_frames, name="eval_frames", minimum=1, parameter="eval_frames")
        config = dataclasses.replace(config, eval_frames=eval_frames)
    setup = setup_run(config)
    model, origin = load_student(run)
    model.to(dev)
    tasks = list(config.targets)
    spaces = {t.name: t.space for t in setup.targets}
    # the zoo's labelled frames where it has them (mini: in-domain, whatever the student was trained on)
    frames: EvalFrames | None = None if config.eval_images else setup.zoo.eval_frames(
        tasks, config.eval_frames, shard=config.eval_shard)
    if config.eval_images:
        images, truth = folder_images(config.eval_images), False
        source = f"folder {config.eval_images} (no labels: against the teachers only)"
    elif frames is not None:
        images, truth, source = frames.probe, True, frames.source
    else:
        if not config.images:
            raise UserInputError("evaluation needs images: set eval_images (a folder) in the run's config.")
        images, truth = folder_images(config.images), False
        source = f"the training images {config.images} (no held-out set was named; against the teachers only)"
    n = len(images)
    teachers = {t.name: t.teacher.build().eval().to(dev) for t in setup.targets}
    sums = MetricSums()
    examples: dict[str, np.ndarray] = {}
    prep = setup.zoo.student_preprocessing
    with torch.inference_mode():
        for start in progress_lines(range(0, n, batch_size), desc=f"evaluating on {n} images", unit="batch",
                                    enabled=progress):
            idx = np.arange(start, min(start + batch_size, n))
            x = image_batch(images, idx, prep).to(dev)
            _, outputs = model(x)
            for t in setup.targets:
                xt = x if t.teacher.preprocessing == prep else image_batch(images, idx, t.teacher.preprocessing).to(dev)
                reference = t.teacher.run(teachers[t.name], xt, [t.output])[t.output]
                sums.add(("student", t.name, "teacher"),
                         task_metric_sums(t.name, t.space, outputs[t.name], reference, truth=False))
                if truth:
                    y = frames.targets(t.name, idx).to(dev)  # type: ignore[union-attr]
                    sums.add(("student", t.name, "truth"), task_metric_sums(t.name, t.space, outputs[t.name], y,
                                                                            truth=True))
                    sums.add(("teacher", t.name, "truth"), task_metric_sums(t.name, t.space, reference, y, truth=True))
                if start == 0:
                    k = min(EXAMPLES, len(idx))
                    examples[f"{t.name}/student"] = outputs[t.name][:k].float().cpu().numpy()
                    examples[f"{t.name}/teacher"] = reference[:k].float().cpu().numpy()
                    if truth:
                        examples[f"{t.name}/truth"] = frames.targets(t.name, idx[:k]).numpy()  # type: ignore[union-attr]
            if start == 0:
                examples["image"] = np.stack([images.load(int(i)) for i in idx[:EXAMPLES]])
        timing_idx = np.arange(min(batch_size, n))
        timing_x = image_batch(images, timing_idx, prep).to(dev)
        student_ms = time_per_image(lambda: model(timing_x), len(timing_idx))
        teacher_x = {t.name: image_batch(images, timing_idx, t.teacher.preprocessing).to(dev) for t in setup.targets}
        teacher_ms = {t.name: time_per_image(lambda t=t: teachers[t.name](teacher_x[t.name]), len(timing_idx))
                      for t in setup.targets}
    params = {t: count_parameters(m) for t, m in teachers.items()}
    result = Evaluation(
        run=str(run.path), device=str(dev), method=config.method, targets=tuple(tasks),
        aux=aux, weighting=config.weighting,
        model=ModelOrigin(origin["file"], origin["step"]), steps=config.steps,
        eval_set=EvalSet(source, n, truth), spaces={t: spaces[t].name for t in tasks},
        student={t: StudentScores(sums.result(("student", t, "teacher")),
                                  sums.result(("student", t, "truth")) if truth else None) for t in tasks},
        teachers={t: sums.result(("teacher", t, "truth")) for t in tasks} if truth else {},
        parameters=Parameters(count_parameters(model), params, sum(params.values()),
                              count_parameters(model) / sum(params.values()),
                              {t: count_parameters(s) for t, s in model.students.items()}
                              if setup.method.ensemble else None),
        inference_ms_per_image=InferenceTimes(student_ms, sum(teacher_ms.values()), teacher_ms,
                                              student_ms / sum(teacher_ms.values())))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **examples)
    write_files({run.file("examples.npz"): buffer.getvalue(), run.file("metrics.csv"): _csv(result),
                 run.file("metrics.json"): json_bytes(result.to_json())}, fix=_FIX)  # together, or none
    return result


def metric_rows(result: Evaluation) -> list[dict[str, Any]]:
    """One row per (model, task, reference, metric) of an evaluation result."""
    return result.metric_rows()


def _csv(result: Evaluation) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, ["model", "task", "reference", "metric", "value"])
    writer.writeheader()
    for row in metric_rows(result):
        writer.writerow({**row, "value": "" if row["value"] is None or (
            isinstance(row["value"], float) and math.isnan(row["value"])) else f"{row['value']:.6g}"})
    return text.getvalue().encode()
