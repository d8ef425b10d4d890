"""Training runs: from a config to a run directory, through the teachers' knowledge and the steps.

:func:`train` checks the config and every input before it touches RUN_DIR, chooses the auxiliary (``--auto-aux``: the
zoo's RSA ranking), builds the teachers' knowledge (cached once, or live), then runs :class:`amalgamate.steps.Trainer`
steps with a progress bar, a JSONL log line per step and atomic checkpoints; ``resume`` continues a killed run to the
same final weights. What one step does (SOKA's collaboration and competition, or KD) is in :mod:`amalgamate.steps`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.extract import default_cache_dir, resolve_device

from .auxiliary import AuxChoice, given_auxiliary, rank_zoo
from .config import AmalgamateConfig, check_config, config_from_dict, config_to_dict, merge_config
from .images import folder_images, mini_frames, shard_frames
from .knowledge import build_knowledge
from .masks import mask_files
from .run_dir import RunDir
from .steps import Trainer, TrainingDiverged
from .student import count_parameters, model_spec
from .teachers import AmalgamationTeacher, TeacherZoo, mini_source, taskonomy_source

__all__ = ["TrainingDiverged", "TrainResult", "RunSetup", "setup_run", "train"]



@dataclass
class TrainResult:
    run_dir: Path
    step: int
    finished: bool
    aux: AuxChoice
    balanced_at: int | None
    last: dict[str, Any] = field(default_factory=dict)  # the last log entry
    computed_teachers: list[str] = field(default_factory=list)  # teachers run to fill the knowledge cache
    student_parameters: int = 0
    teacher_parameters: int = 0  # the target teachers' total


# --- what a run is made of --------------------------------------------------------------------------------------------

@dataclass
class RunSetup:
    config: AmalgamateConfig
    zoo: TeacherZoo
    targets: list[AmalgamationTeacher]
    architecture: str


def setup_run(config: AmalgamateConfig) -> RunSetup:
    """The zoo and the target teachers of a (checked) config; a target without a teacher fails here."""
    zoo = taskonomy_source(config.weights_dir) if config.weights_dir else mini_source(config.zoo_dir)
    zoo = dataclasses.replace(zoo, zoo_file=config.zoo_file)
    targets = []
    for task in config.targets:
        try:
            targets.append(zoo.target(task))
        except UserInputError as exc:
            raise UserInputError(f"target '{task}' has no teacher: {exc}") from None
    return RunSetup(config, zoo, targets, config.architecture or zoo.default_architecture)


def _cache_dir(config: AmalgamateConfig) -> Path:
    return Path(config.cache_dir) if config.cache_dir else default_cache_dir()


def _training_images(config: AmalgamateConfig, zoo: TeacherZoo):  # noqa: ANN202 - a ProbeSet
    if config.images:
        return folder_images(config.images)
    if config.train_shard:
        return shard_frames(config.train_shard)
    if zoo.family != "mini":
        raise UserInputError("Taskonomy teachers need training images: --images DIR (any folder of photos; no labels "
                             "are needed).")
    return mini_frames("train", config.train_frames, cache_dir=_cache_dir(config))


def _choose_aux(config: AmalgamateConfig, zoo: TeacherZoo, images, progress: bool) -> AuxChoice:  # noqa: ANN001
    if not config.auto_aux:
        return given_auxiliary(config.aux)
    from rsa_toolkit.probe import resolve_probe

    if config.probe:
        probe = resolve_probe(config.probe)
    elif zoo.family == "mini":
        from rsa_toolkit.mini.zoo import mini_probe

        probe = mini_probe(config.probe_frames)
    else:
        probe = images  # the training images are the probe set when no other is named
    return rank_zoo(config.targets, zoo, probe, n_bootstrap=config.aux_bootstrap, seed=config.seed,
                    cache_dir=_cache_dir(config), progress=progress)


# --- the entry point --------------------------------------------------------------------------------------------------

def train(run_dir: str | os.PathLike[str], config: AmalgamateConfig | Mapping[str, Any] | None = None, *,
          resume: bool = False, overwrite: bool = False, stop_after: int | None = None,
          progress: bool = False) -> TrainResult:
    """Train (or, with ``resume``, continue) the student of ``config`` in ``run_dir``.

    ``config``: an :class:`AmalgamateConfig` or a mapping of settings over the defaults; on ``resume`` only the
    settings to check against the run's (targets, ...) or to change (:data:`amalgamate.run_dir.RESUME_CHANGEABLE`).
    ``stop_after``: stop once this many steps are done (a checkpoint is written), as if the run had been killed
    there; ``resume`` continues it. Library code: prints nothing; ``progress`` shows a tqdm bar.
    """
    from tqdm.auto import tqdm

    run = RunDir(run_dir)
    settings = config_to_dict(config) if isinstance(config, AmalgamateConfig) else dict(config or {})
    if resume:
        if overwrite:
            raise UserInputError("give either --resume or --overwrite, not both.")
        config = check_config(config_from_dict(run.stored_config(settings)))
    else:
        config = check_config(merge_config(settings))
        run.check_new(overwrite=overwrite)
    if stop_after is not None and (isinstance(stop_after, bool) or not isinstance(stop_after, int) or stop_after < 1):
        raise UserInputError(f"stop-after must be an integer >= 1, got {stop_after!r}.")
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    setup = setup_run(config)
    images = _training_images(config, setup.zoo)
    masks = mask_files(images, config.masks) if config.masks else None
    if config.batch_size > len(images):
        raise UserInputError(f"--batch-size {config.batch_size} is larger than the {len(images)} training images; "
                             "lower it or give more images.")
    if resume:
        record = run.read_json("aux.json")
        aux = AuxChoice(record["chosen"], record)
    else:
        aux = _choose_aux(config, setup.zoo, images, progress)
    try:
        aux_teacher = setup.zoo.auxiliary(aux.name) if aux.name else None
    except UserInputError as exc:
        raise UserInputError(f"auxiliary '{aux.name}': {exc}") from None
    knowledge = build_knowledge(setup.targets, aux_teacher, images, live=config.live_teachers,
                                cache_dir=_cache_dir(config), device=device, progress=progress)
    trainer = Trainer(config, setup, knowledge, run, device, masks)
    trainer.check_shapes()
    if not resume:  # every check has passed: only now does the directory change
        run.start(overwrite=overwrite)
        run.write_json("config.json", config_to_dict(config))
        run.write_json("aux.json", aux.record)
    if resume:
        if run.file("checkpoint.pt").is_file():
            trainer.load(run.load_torch("checkpoint.pt"))
        run.truncate_log(trainer.step)
    else:
        run.write_json("knowledge.json", knowledge.describe())
    computed = list(getattr(knowledge, "computed", []))
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    bar = tqdm(total=config.steps, initial=trainer.step, disable=not progress, desc="amalgamate", unit="step")
    t0 = time.perf_counter()
    entry: dict[str, Any] = {}
    with open(run.file("log.jsonl"), "a") as log:
        while trainer.step < end:
            entry = trainer.train_step()
            log.write(_json_line(entry))
            log.flush()
            bar.update(1)
            bar.set_postfix_str(_postfix(entry), refresh=False)
            if trainer.step % config.checkpoint_every == 0 or trainer.step == end:
                trainer.checkpoint()
    bar.close()
    finished = trainer.step >= config.steps
    if finished:
        run.save_torch("student.pt", {"state_dict": trainer.model.state_dict(),
                                      "spec": model_spec(trainer.model, config.method)})
    summary = {"step": trainer.step, "steps": config.steps, "finished": finished, "aux": aux.name,
               "balanced_at": trainer.balanced_at, "student_parameters": count_parameters(trainer.model),
               "teacher_parameters": {t.name: count_parameters(t.teacher.build()) for t in setup.targets},
               "seconds_this_session": time.perf_counter() - t0, "computed_teachers": computed,
               "knowledge": "live" if config.live_teachers else "cached"}
    run.write_json("run.json", summary)
    return TrainResult(run.path, trainer.step, finished, aux, trainer.balanced_at, entry, computed,
                       summary["student_parameters"], sum(summary["teacher_parameters"].values()))


def _json_line(entry: Mapping[str, Any]) -> str:
    import json

    return json.dumps(entry, sort_keys=True) + "\n"


def _postfix(entry: Mapping[str, Any]) -> str:
    parts = [f"{t[:6]} {v:.3g}/w{entry['weights'][t]:.2f}" for t, v in entry["losses"].items()]
    if "guide" in entry:
        parts.append(f"guide {entry['guide']:.3g}")
    return " ".join(parts)
