"""Training runs: from a config to a run directory, through the teachers' knowledge and the steps.

:func:`train` goes through named stages: :func:`_checked_config` (the config and every argument, before RUN_DIR is
touched), :func:`_join_processes` (threads, device, ``torchrun``'s process group), :func:`_training_images`,
:func:`_auxiliary_choice` (``--auto-aux``: the zoo's RSA ranking; a resumed run reads its recorded choice),
:func:`_knowledge` (the teachers' knowledge, cached once, or live), :func:`_start_run_dir` (the run directory's first
files), :func:`_resume` (the last checkpoint), :func:`_loop` (the :class:`amalgamate.training.trainer.Trainer` steps
with progress (a bar on a terminal, timed lines in a log), a JSONL log line per step and atomic checkpoints) and
:func:`_finish` (the student, run.json and the :class:`TrainResult`). ``resume`` continues a killed run to the same final weights. What one step does
(SOKA's collaboration and competition, or KD) is in :mod:`amalgamate.training.steps`.

Ctrl-C during the steps lets the step in progress finish, checkpoints it, and raises :class:`TrainingInterrupted`
(a ``KeyboardInterrupt``) naming the step and the command that continues; a second Ctrl-C stops at once. A
``KeyboardInterrupt`` raised inside a step (not by the signal) checkpoints only when the step had not begun to change
the trainer; otherwise the last checkpoint stands and is named.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rsa_toolkit import distributed
from rsa_toolkit.devices import resolve_device
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.features.extract import default_cache_dir
from rsa_toolkit.images.probe import ProbeSet
from rsa_toolkit.progress import progress as progress_lines, stage
from rsa_toolkit.validation import check_int

from amalgamate.config import AmalgamateConfig, check_config, config_to_dict, merge_config
from amalgamate.run_dir import RunDir
from amalgamate.run_files import json_bytes, write_files
from amalgamate.student import count_parameters, model_spec
from amalgamate.training.auxiliary import AuxChoice, given_auxiliary, rank_zoo
from amalgamate.training.images import folder_images, shard_frames
from amalgamate.training.knowledge import Knowledge, build_knowledge
from amalgamate.training.masks import mask_files
from amalgamate.training.setup import RunSetup, setup_run
from amalgamate.training.trainer import Trainer, TrainingDiverged
from amalgamate.zoo import TeacherZoo

__all__ = ["TrainingDiverged", "TrainingInterrupted", "TrainResult", "RunSetup", "setup_run", "train"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C); ``step``: the last checkpointed step (None: none yet); the message names
    it and the command that continues the run."""

    def __init__(self, message: str, step: int | None) -> None:
        super().__init__(message)
        self.step = step


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


# --- the entry point --------------------------------------------------------------------------------------------------

def train(run_dir: str | os.PathLike[str], config: AmalgamateConfig | Mapping[str, Any] | None = None, *,
          resume: bool = False, overwrite: bool = False, stop_after: int | None = None,
          progress: bool = False, notify: Callable[[str], None] | None = None) -> TrainResult:
    """Train (or, with ``resume``, continue) the student of ``config`` in ``run_dir``.

    ``config``: an :class:`AmalgamateConfig` or a mapping of settings over the defaults; on ``resume`` only the
    settings to check against the run's (targets, ...) or to change (:data:`amalgamate.run_dir.RESUME_CHANGEABLE`).
    ``stop_after``: stop once this many steps are done (a checkpoint is written), as if the run had been killed
    there; ``resume`` continues it. Library code: prints nothing but progress; ``progress`` names each stage on
    stderr and shows the steps (:mod:`rsa_toolkit.progress`: a bar on a terminal, in a log a line at least every
    ~10 s with the current losses and weights); ``notify`` is called with what the caller may want to show
    ("resuming from step N").

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every process calls this: they join the process group, split each
    global batch of ``batch_size`` images (:mod:`amalgamate.training.data_parallel`), and rank 0 alone fills the
    caches first and writes the run directory; feature extraction for the knowledge cache is shared by the ranks.
    """
    started = time.time()  # temporary files older than this were left by a killed writer
    run = RunDir(run_dir)
    config = _checked_config(run, config, resume=resume, overwrite=overwrite, stop_after=stop_after)
    device = _join_processes(config)
    main = distributed.is_main()
    setup = setup_run(config)
    images, masks = _training_images(config, setup.zoo)
    speak = progress and main
    if config.auto_aux and not resume:
        stage(f"ranking auxiliaries for {', '.join(config.targets)} (RSA over the zoo)", enabled=speak)
    aux = _auxiliary_choice(run, config, setup.zoo, images, resume=resume, progress=speak)
    stage(f"building knowledge: the teachers' outputs on {len(images)} training images"
          + (" (live: on every batch)" if config.live_teachers else ""), enabled=speak)
    knowledge = _knowledge(config, setup, aux, images, device, progress=speak)
    trainer = Trainer(config, setup, knowledge, run, device, masks)
    trainer.check_shapes()
    distributed.barrier()  # every rank has passed every check (and read the run directory)
    if main and not resume:  # only now does the directory change
        _start_run_dir(run, config, aux, knowledge, overwrite=overwrite)
    if resume:
        if main:
            run.remove_stale_temps(before=started)
        _resume(run, trainer, main=main, notify=notify)
    distributed.barrier()  # no rank reads the checkpoint while rank 0 may write the next one
    t0 = time.perf_counter()
    last = _loop(run, config, trainer, stop_after=stop_after, progress=progress and main, main=main)
    return _finish(run, config, setup, trainer, knowledge, aux, last, t0=t0, main=main)


# --- the stages -------------------------------------------------------------------------------------------------------

def _checked_config(run: RunDir, config: AmalgamateConfig | Mapping[str, Any] | None, *, resume: bool,
                    overwrite: bool, stop_after: int | None) -> AmalgamateConfig:
    """The run's checked config: the stored one on ``resume`` (with the changes allowed), else the defaults under
    ``config``; a new run's directory must be free (or ``overwrite``). Nothing is written."""
    settings = config_to_dict(config) if isinstance(config, AmalgamateConfig) else dict(config or {})
    if resume:
        if overwrite:
            raise UserInputError("give either resume= or overwrite=, not both.", parameter=("resume", "overwrite"))
        if run.has_run():
            run.config(checked=True)  # the stored settings themselves are whole (a damaged file is one line)
        config = check_config(run.config(run.stored_config(settings)))
    else:
        config = check_config(merge_config(settings))
        run.check_new(overwrite=overwrite)
    run.check_writable()  # before the auxiliary's ranking, the knowledge and the steps
    check_int(stop_after, name="stop-after", minimum=1, optional=True, expected="an integer >= 1")
    return config


def _join_processes(config: AmalgamateConfig) -> torch.device:
    """Torch threads, this process's device, and the process group under ``torchrun``."""
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device, local=True)
    if distributed.init_from_env(device) and config.batch_size % distributed.world_size():
        raise UserInputError(f"batch_size={config.batch_size} (the global batch) must split evenly over the "
                             f"{distributed.world_size()} processes; use a multiple of {distributed.world_size()}.",
                             parameter="batch_size")
    return device


def _cache_dir(config: AmalgamateConfig) -> Path:
    return Path(config.cache_dir) if config.cache_dir else default_cache_dir()


def _training_images(config: AmalgamateConfig, zoo: TeacherZoo) -> tuple[ProbeSet, list[Path] | None]:
    """The training images (a folder, a shard, or the zoo's own) and their validity masks."""
    with distributed.main_first():  # rank 0 renders (and caches) the default frames, the others read them
        if config.images:
            images = folder_images(config.images)
        elif config.train_shard:
            images = shard_frames(config.train_shard)
        else:
            images = zoo.training_images(config.train_frames, cache_dir=_cache_dir(config))
    masks = mask_files(images, config.masks) if config.masks else None
    if config.batch_size > len(images):
        raise UserInputError(f"batch_size={config.batch_size} is larger than the {len(images)} training images; "
                             "lower it or give more images.", parameter="batch_size")
    return images, masks


def _auxiliary_choice(run: RunDir, config: AmalgamateConfig, zoo: TeacherZoo, images: ProbeSet, *, resume: bool,
                      progress: bool) -> AuxChoice:
    """The auxiliary: the one recorded on ``resume``, the one named, or the best of the zoo's RSA ranking."""
    if resume:
        record = run.read_json("aux.json")
        return AuxChoice(record["chosen"], record)
    if not config.auto_aux:
        return given_auxiliary(config.aux)
    # under torchrun, every rank extracts its share of the features (rsa_toolkit.features.extract)
    from rsa_toolkit.images.probe import resolve_probe, warn_if_small

    if config.probe:
        probe = resolve_probe(config.probe)  # warns when small
    else:
        probe = zoo.probe_images(config.probe_frames)
        if probe is None:
            probe = images  # the training images are the probe set when no other is named
        warn_if_small(probe)
    return rank_zoo(config.targets, zoo, probe, n_bootstrap=config.aux_bootstrap, seed=config.seed,
                    cache_dir=_cache_dir(config), progress=progress)


def _knowledge(config: AmalgamateConfig, setup: RunSetup, aux: AuxChoice, images: ProbeSet, device: torch.device, *,
               progress: bool) -> Knowledge:
    """The target teachers' and the auxiliary's knowledge of the training images."""
    try:
        aux_teacher = setup.zoo.auxiliary(aux.name) if aux.name else None
    except UserInputError as exc:
        raise UserInputError(f"auxiliary '{aux.name}': {exc}") from None
    return build_knowledge(setup.targets, aux_teacher, images, live=config.live_teachers,
                           cache_dir=_cache_dir(config), device=device, progress=progress)


def _start_run_dir(run: RunDir, config: AmalgamateConfig, aux: AuxChoice, knowledge: Knowledge, *,
                   overwrite: bool) -> None:
    """The new run directory with its config, the auxiliary's choice and the knowledge's record (rank 0)."""
    run.start(overwrite=overwrite)
    run.write_json("config.json", config_to_dict(config))
    run.write_json("aux.json", aux.record)
    run.write_json("knowledge.json", knowledge.describe())


def _resume(run: RunDir, trainer: Trainer, *, main: bool, notify: Callable[[str], None] | None) -> None:
    """The trainer at the last readable checkpoint (if one was written); rank 0 drops the log lines after it (and a
    partial last line)."""
    with distributed.main_first():  # rank 0 may replace an unreadable newest checkpoint before the others read
        ckpt = run.load_checkpoint(repair=main)
    if ckpt is not None:
        trainer.load(ckpt)
    if main:
        run.truncate_log(trainer.step)
        if notify:
            notify(f"resuming from step {trainer.step}")


def _loop(run: RunDir, config: AmalgamateConfig, trainer: Trainer, *, stop_after: int | None, progress: bool,
          main: bool) -> dict[str, Any]:
    """Steps until ``config.steps`` (or ``stop_after``) are done; rank 0 logs each and checkpoints. Returns the last
    log entry ({} when no step ran)."""
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    progress = progress and trainer.step < end
    if progress:
        resumed = f" (steps {trainer.step + 1}-{end} of {config.steps})" if trainer.step or end < config.steps else ""
        stage(f"training {end - trainer.step} steps{resumed}", enabled=progress)
    bar = progress_lines(total=end - trainer.step, desc="training", unit="step", enabled=progress)
    entry: dict[str, Any] = {}
    with contextlib.closing(bar), run.open_log() if main else contextlib.nullcontext() as log, \
            _deferred_interrupts() as interrupt:
        while trainer.step < end:
            before = _position(trainer)
            try:
                entry = trainer.train_step()
            except KeyboardInterrupt:  # raised inside the step: its state is whole only if nothing moved yet
                raise _interrupted(run, trainer, log, checkpoint=main and _position(trainer) == before) from None
            bar.set_postfix(_postfix(entry))  # the current losses and weights, shown by the update's line
            bar.update(1)
            if log is not None:
                log.write(entry)
                if trainer.step % config.checkpoint_every == 0 or trainer.step == end:
                    log.sync()
                    trainer.checkpoint()
            if interrupt["asked"]:  # Ctrl-C during this step, which has now finished
                raise _interrupted(run, trainer, log, checkpoint=main)
    return entry


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[dict[str, bool]]:
    """A first Ctrl-C sets ``["asked"]`` (the loop stops after the step); a second raises KeyboardInterrupt at once.
    Only in the main thread of a single process with Python's own SIGINT handler; elsewhere nothing changes."""
    state = {"asked": False}
    if (threading.current_thread() is not threading.main_thread() or distributed.is_distributed()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield state
        return

    def handler(signum: int, frame: object) -> None:
        if state["asked"]:
            raise KeyboardInterrupt
        state["asked"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def _position(trainer: Trainer) -> tuple[Any, ...]:
    """What a step changes first (the data cursor and the random states): equal before and after an interrupted
    step means the step had not started changing the trainer."""
    return trainer.step, trainer.cursor, repr(trainer.rng.bit_generator.state), bytes(torch.get_rng_state().numpy())


def _interrupted(run: RunDir, trainer: Trainer, log: Any, *, checkpoint: bool) -> TrainingInterrupted:
    """The interruption to raise, after checkpointing the last completed step when ``checkpoint``."""
    if checkpoint and trainer.last_checkpoint != trainer.step:
        if log is not None:
            log.sync()
        trainer.checkpoint()
    command = f"amalgamate train --resume {shlex.quote(str(run.path))}"
    step = trainer.last_checkpoint
    if step is not None and step == trainer.step:
        message = f"interrupted after step {step}; checkpoint written. Continue with: {command}"
    elif step is not None:
        message = (f"interrupted during step {trainer.step + 1}; the last checkpoint is step {step}. Continue with: "
                   f"{command}")
    else:
        message = f"interrupted during step {trainer.step + 1}, before any checkpoint. Start again with: {command}"
    return TrainingInterrupted(message, step)


def _finish(run: RunDir, config: AmalgamateConfig, setup: RunSetup, trainer: Trainer, knowledge: Knowledge,
            aux: AuxChoice, last: dict[str, Any], *, t0: float, main: bool) -> TrainResult:
    """The result; rank 0 writes the student (when finished) and run.json. Every rank waits for them."""
    finished = trainer.step >= config.steps
    teachers = {t.name: count_parameters(t.teacher.build()) for t in setup.targets}
    result = TrainResult(run.path, trainer.step, finished, aux, trainer.balanced_at, last,
                         list(getattr(knowledge, "computed", [])), count_parameters(trainer.model),
                         sum(teachers.values()))
    if main:
        _write_results(run, config, trainer, result, teachers, time.perf_counter() - t0)
    distributed.barrier()  # the run directory is complete before any rank returns
    return result


def _write_results(run: RunDir, config: AmalgamateConfig, trainer: Trainer, result: TrainResult,
                   teachers: dict[str, int], seconds: float) -> None:
    """The student (when finished) and run.json, written together (both or neither)."""
    import io

    files = {}
    if result.finished:
        buffer = io.BytesIO()
        torch.save({"state_dict": trainer.model.state_dict(), "spec": model_spec(trainer.model, config.method)},
                   buffer)
        files[run.file("student.pt")] = buffer.getvalue()
    files[run.file("run.json")] = json_bytes({
        "step": result.step, "steps": config.steps, "finished": result.finished, "aux": result.aux.name,
        "balanced_at": result.balanced_at, "student_parameters": result.student_parameters,
        "teacher_parameters": teachers, "seconds_this_session": seconds, "computed_teachers": result.computed_teachers,
        "knowledge": "live" if config.live_teachers else "cached", "processes": distributed.world_size()})
    write_files(files)


def _postfix(entry: Mapping[str, Any]) -> str:
    parts = [f"{t[:6]} {v:.3g}/w{entry['weights'][t]:.2f}" for t, v in entry["losses"].items()]
    if "guide" in entry:
        parts.append(f"guide {entry['guide']:.3g}")
    return " ".join(parts)
