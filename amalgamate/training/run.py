"""Training runs: from a config to a run directory, through the teachers' knowledge and the steps.

:func:`train` checks the config and every input before it touches RUN_DIR, chooses the auxiliary (``--auto-aux``: the
zoo's RSA ranking), builds the teachers' knowledge (cached once, or live), then runs :class:`amalgamate.training.trainer.Trainer`
steps with a progress bar, a JSONL log line per step and atomic checkpoints; ``resume`` continues a killed run to the
same final weights. What one step does (SOKA's collaboration and competition, or KD) is in :mod:`amalgamate.training.trainer`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rsa_toolkit import distributed
from rsa_toolkit.devices import resolve_device
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.features.extract import default_cache_dir
from rsa_toolkit.validation import check_int

from amalgamate.training.auxiliary import AuxChoice, given_auxiliary, rank_zoo
from amalgamate.config import AmalgamateConfig, check_config, config_from_dict, config_to_dict, merge_config
from amalgamate.training.images import folder_images, mini_frames, shard_frames
from amalgamate.training.knowledge import build_knowledge
from amalgamate.training.masks import mask_files
from amalgamate.run_dir import RunDir
from amalgamate.training.trainer import Trainer, TrainingDiverged
from amalgamate.student import count_parameters, model_spec
from amalgamate.zoo import AmalgamationTeacher, TeacherZoo, mini_source, taskonomy_source

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
        raise UserInputError("Taskonomy teachers need training images: images=DIR (any folder of photos; no labels "
                             "are needed).", parameter="images")
    return mini_frames("train", config.train_frames, cache_dir=_cache_dir(config))


def _choose_aux(config: AmalgamateConfig, zoo: TeacherZoo, images, progress: bool) -> AuxChoice:  # noqa: ANN001
    if not config.auto_aux:
        return given_auxiliary(config.aux)
    from rsa_toolkit.images.probe import resolve_probe

    if config.probe:
        probe = resolve_probe(config.probe)
    elif zoo.family == "mini":
        from rsa_toolkit.zoo.mini.embedded import mini_probe

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

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every process calls this: they join the process group, split each
    global batch of ``batch_size`` images (:mod:`amalgamate.training.data_parallel`), and rank 0 alone fills the caches first
    and writes the run directory; feature extraction for the knowledge cache is shared by the ranks.
    """
    from tqdm.auto import tqdm

    run = RunDir(run_dir)
    settings = config_to_dict(config) if isinstance(config, AmalgamateConfig) else dict(config or {})
    if resume:
        if overwrite:
            raise UserInputError("give either resume= or overwrite=, not both.", parameter=("resume", "overwrite"))
        config = check_config(config_from_dict(run.stored_config(settings)))
    else:
        config = check_config(merge_config(settings))
        run.check_new(overwrite=overwrite)
    check_int(stop_after, name="stop-after", minimum=1, optional=True, expected="an integer >= 1")
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device, local=True)
    if distributed.init_from_env(device) and config.batch_size % distributed.world_size():
        raise UserInputError(f"batch_size={config.batch_size} (the global batch) must split evenly over the "
                             f"{distributed.world_size()} processes; use a multiple of {distributed.world_size()}.",
                             parameter="batch_size")
    main = distributed.is_main()
    setup = setup_run(config)
    with distributed.main_first():  # rank 0 renders (and caches) the default frames, the others read them
        images = _training_images(config, setup.zoo)
    masks = mask_files(images, config.masks) if config.masks else None
    if config.batch_size > len(images):
        raise UserInputError(f"batch_size={config.batch_size} is larger than the {len(images)} training images; "
                             "lower it or give more images.", parameter="batch_size")
    if resume:
        record = run.read_json("aux.json")
        aux = AuxChoice(record["chosen"], record)
    else:
        # under torchrun, every rank extracts its share of the features (rsa_toolkit.features.extract)
        aux = _choose_aux(config, setup.zoo, images, progress and main)
    try:
        aux_teacher = setup.zoo.auxiliary(aux.name) if aux.name else None
    except UserInputError as exc:
        raise UserInputError(f"auxiliary '{aux.name}': {exc}") from None
    knowledge = build_knowledge(setup.targets, aux_teacher, images, live=config.live_teachers,
                                cache_dir=_cache_dir(config), device=device, progress=progress and main)
    trainer = Trainer(config, setup, knowledge, run, device, masks)
    trainer.check_shapes()
    distributed.barrier()  # every rank has passed every check (and read the run directory)
    if main and not resume:  # only now does the directory change
        run.start(overwrite=overwrite)
        run.write_json("config.json", config_to_dict(config))
        run.write_json("aux.json", aux.record)
        run.write_json("knowledge.json", knowledge.describe())
    if resume:
        if run.file("checkpoint.pt").is_file():
            trainer.load(run.load_torch("checkpoint.pt"))
        if main:
            run.truncate_log(trainer.step)
    distributed.barrier()  # no rank reads the checkpoint while rank 0 may write the next one
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    bar = tqdm(total=config.steps, initial=trainer.step, disable=not (progress and main), desc="amalgamate",
               unit="step")
    t0 = time.perf_counter()
    entry: dict[str, Any] = {}
    with open(run.file("log.jsonl"), "a") if main else contextlib.nullcontext() as log:
        while trainer.step < end:
            entry = trainer.train_step()
            bar.update(1)
            bar.set_postfix_str(_postfix(entry), refresh=False)
            if log is None:
                continue
            log.write(_json_line(entry))
            log.flush()
            if trainer.step % config.checkpoint_every == 0 or trainer.step == end:
                trainer.checkpoint()
    bar.close()
    finished = trainer.step >= config.steps
    teachers = {t.name: count_parameters(t.teacher.build()) for t in setup.targets}
    result = TrainResult(run.path, trainer.step, finished, aux, trainer.balanced_at, entry,
                         list(getattr(knowledge, "computed", [])), count_parameters(trainer.model),
                         sum(teachers.values()))
    if main:
        _write_results(run, config, trainer, result, teachers, time.perf_counter() - t0)
    distributed.barrier()  # the run directory is complete before any rank returns
    return result


def _write_results(run: RunDir, config: AmalgamateConfig, trainer: Trainer, result: TrainResult,
                   teachers: dict[str, int], seconds: float) -> None:
    if result.finished:
        run.save_torch("student.pt", {"state_dict": trainer.model.state_dict(),
                                      "spec": model_spec(trainer.model, config.method)})
    run.write_json("run.json", {
        "step": result.step, "steps": config.steps, "finished": result.finished, "aux": result.aux.name,
        "balanced_at": result.balanced_at, "student_parameters": result.student_parameters,
        "teacher_parameters": teachers, "seconds_this_session": seconds, "computed_teachers": result.computed_teachers,
        "knowledge": "live" if config.live_teachers else "cached", "processes": distributed.world_size()})


def _json_line(entry: Mapping[str, Any]) -> str:
    import json

    return json.dumps(entry, sort_keys=True) + "\n"


def _postfix(entry: Mapping[str, Any]) -> str:
    parts = [f"{t[:6]} {v:.3g}/w{entry['weights'][t]:.2f}" for t, v in entry["losses"].items()]
    if "guide" in entry:
        parts.append(f"guide {entry['guide']:.3g}")
    return " ".join(parts)
