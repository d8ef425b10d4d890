"""The teachers of an amalgamation run, from the mini zoo or from Taskonomy checkpoints, behind one contract.

A target teacher gives two things for every image: its task output (the soft target the student distils) and its
8 x 16 x 16 representation (which guides the student's shared representation); the auxiliary teacher gives only its
representation. Both are :class:`rsa_toolkit.zoo.Teacher` objects tapped at named layers, so the knowledge cache is
the toolkit's feature cache (one entry per teacher, layer, image set and preprocessing):

=============  ==================================  =============================================================
zoo            target teacher (layers)             auxiliary (layer)
=============  ==================================  =============================================================
``mini``       mini teacher: ``encoder``,          any mini teacher: ``encoder``
               ``decoder`` (the task output)
``taskonomy``  visualpriors encoder + decoder:     a Taskonomy encoder: ``encoder_output``
               ``encoder``, ``decoder``
=============  ==================================  =============================================================

Each zoo is one implementation of :class:`TeacherZoo` (:class:`MiniZoo`, :class:`TaskonomyZoo`; :func:`open_zoo`
picks one from a run's settings). Code that uses a zoo asks it (its teachers, its student preprocessing and default
architecture, its default training, probe and labelled evaluation images) and never tests which family it is.

A zoo file (:mod:`rsa_toolkit.zoo.zoo_file`, ``--zoo FILE``) adds its teachers to either zoo as auxiliary candidates,
tapped at their default layer: ``--auto-aux`` ranks them with the rest, and ``--aux NAME`` can name one. Guidance
needs the auxiliary's representation to have the student's shape (8 x 16 x 16), checked before training.
"""

from __future__ import annotations

import abc
import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from torch import Tensor, nn

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.registry import Registry
from rsa_toolkit.images.preprocess import Preprocessing, TaskonomyPreprocessing, taskonomy_preprocessing
from rsa_toolkit.tasks import resolve_task, try_resolve_task
from rsa_toolkit.zoo.teachers import Teacher, hook_features

from amalgamate.spaces import OutputSpace, output_space

if TYPE_CHECKING:
    from rsa_toolkit.images.probe import ProbeSet

    from amalgamate.training.images import EvalFrames

__all__ = ["AmalgamationTeacher", "TeacherZoo", "MiniZoo", "TaskonomyZoo", "ZOO_KINDS", "mini_source", "taskonomy_source",
           "open_zoo", "resolve_targets", "check_auxiliary"]


@dataclass(frozen=True)
class AmalgamationTeacher:
    """One teacher as amalgamation uses it: ``teacher`` tapped at ``representation`` (8 x 16 x 16) and, for a target,
    at ``output`` (the task output, in ``space``)."""

    name: str
    teacher: Teacher = field(repr=False)
    representation: str
    output: str | None = None  # None: an auxiliary, whose output is not distilled
    space: OutputSpace | None = None

    @property
    def layers(self) -> list[str]:
        return [self.representation] + ([self.output] if self.output else [])


@dataclass(frozen=True)
class TeacherZoo(abc.ABC):
    """Where the teachers come from (:class:`MiniZoo` or :class:`TaskonomyZoo`), at ``location``, plus the auxiliary
    candidates of an optional ``zoo_file``. A zoo says which teachers it has, builds them as targets and auxiliaries,
    and names its default images: what the student trains on, ranks with and is evaluated on when no folder is
    given."""

    family: ClassVar[str]  # its name in records and messages: "mini" or "taskonomy"
    default_architecture: ClassVar[str]  # the student that matches its teachers
    location: str
    zoo_file: str | None = None  # extra auxiliary candidates

    @property
    @abc.abstractmethod
    def student_preprocessing(self) -> Preprocessing:
        """What the student sees of an image."""

    @abc.abstractmethod
    def _names(self) -> list[str]:
        """The zoo's own teachers (the zoo file's aside)."""

    @abc.abstractmethod
    def _ranking_teachers(self) -> list[Teacher]:
        """The zoo's own teachers at their RSA layer."""

    @abc.abstractmethod
    def _target_teacher(self, task: str) -> Teacher:
        """The teacher of target ``task`` (canonical), tapped at ``encoder`` and ``decoder``."""

    @abc.abstractmethod
    def _auxiliary_teacher(self, task: str) -> Teacher:
        """The teacher of ``task`` as an auxiliary, tapped at its default layer."""

    @abc.abstractmethod
    def training_images(self, frames: int, *, cache_dir: str | os.PathLike[str]) -> ProbeSet:
        """The default training images (no folder or shard given): ``frames`` of them where the zoo renders its own."""

    @abc.abstractmethod
    def probe_images(self, frames: int) -> ProbeSet | None:
        """The default probe set of the ``--auto-aux`` ranking; None: the training images are the probe set."""

    @abc.abstractmethod
    def eval_frames(self, tasks: Sequence[str], count: int, *,
                    shard: str | os.PathLike[str] | None = None) -> EvalFrames | None:
        """Labelled test frames for ``tasks`` (``count``, or those of ``shard``); None where the zoo has no labels."""

    def file_teachers(self) -> list[Teacher]:
        """The zoo file's teachers (none without a zoo file), read once per process."""
        return [] if self.zoo_file is None else list(_zoo_file_teachers(str(Path(self.zoo_file).resolve())))

    def available(self) -> list[str]:
        """Names of every teacher in the zoo (targets and auxiliary candidates)."""
        return self._names() + [t.name for t in self.file_teachers()]

    def ranking_teachers(self) -> list[Teacher]:
        """Every teacher of the zoo at its RSA layer (the representation), for ``--auto-aux``."""
        teachers = self._ranking_teachers()
        teachers += self.file_teachers()
        names = [t.name for t in teachers]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise UserInputError(f"zoo_file='{self.zoo_file}' names teachers the {self.family} zoo already has: "
                                 f"{', '.join(repeated)}; rename them in the zoo file.", parameter="zoo_file")
        return teachers

    def target(self, task: str) -> AmalgamationTeacher:
        """The teacher of target ``task`` (any alias); a missing teacher is a user error naming the zoo."""
        task = resolve_task(task)
        teacher = self._target_teacher(task)
        return AmalgamationTeacher(task, teacher, "encoder", "decoder", output_space(task, self.family))

    def auxiliary(self, name: str) -> AmalgamationTeacher:
        for teacher in self.file_teachers():
            if teacher.name == name:
                return AmalgamationTeacher(name, teacher, teacher.default_layer)
        task = resolve_task(name)
        teacher = self._auxiliary_teacher(task)
        return AmalgamationTeacher(task, teacher, teacher.default_layer)

    def describe(self) -> dict[str, str | None]:
        return {"family": self.family, "location": self.location, "zoo_file": self.zoo_file}


@dataclass(frozen=True)
class MiniZoo(TeacherZoo):
    """A mini-Taskonomy zoo directory: small teachers of all 20 tasks, with the renderer's labelled frames."""

    family: ClassVar[str] = "mini"
    default_architecture: ClassVar[str] = "compact"

    @property
    def student_preprocessing(self) -> Preprocessing:
        from rsa_toolkit.zoo.mini.embedded import MINI_PREPROCESSING

        return MINI_PREPROCESSING

    def _names(self) -> list[str]:
        from rsa_toolkit.zoo.mini.embedded import read_manifest

        return list(read_manifest(self.location)["teachers"])

    def _ranking_teachers(self) -> list[Teacher]:
        from rsa_toolkit.zoo.mini.embedded import mini_zoo

        return mini_zoo(zoo_dir=self.location)

    def _target_teacher(self, task: str) -> Teacher:
        from rsa_toolkit.zoo.mini.embedded import mini_teacher

        return mini_teacher(task, self.location)

    def _auxiliary_teacher(self, task: str) -> Teacher:
        return self._target_teacher(task)

    def training_images(self, frames: int, *, cache_dir: str | os.PathLike[str]) -> ProbeSet:
        from amalgamate.training.images import mini_frames

        return mini_frames("train", frames, cache_dir=cache_dir)

    def probe_images(self, frames: int) -> ProbeSet | None:
        from rsa_toolkit.zoo.mini.embedded import mini_probe

        return mini_probe(frames)

    def eval_frames(self, tasks: Sequence[str], count: int, *,
                    shard: str | os.PathLike[str] | None = None) -> EvalFrames | None:
        from amalgamate.training.images import mini_eval_frames

        return mini_eval_frames(tasks, count, shard=shard)


@dataclass(frozen=True)
class TaskonomyZoo(TeacherZoo):
    """A directory of visualpriors checkpoints; the student sees the RSA recipe's 256 x 256 crop without the
    low-saturation clip. Its images come from the user (no renderer, no labels)."""

    family: ClassVar[str] = "taskonomy"
    default_architecture: ClassVar[str] = "taskonomy"

    @property
    def student_preprocessing(self) -> Preprocessing:
        return TaskonomyPreprocessing(low_saturation=False)

    def _names(self) -> list[str]:
        from rsa_toolkit.zoo.taskonomy.weights import available_taskonomy_tasks

        return available_taskonomy_tasks(self.location)

    def _ranking_teachers(self) -> list[Teacher]:
        from rsa_toolkit.zoo.zoo_file import build_zoo

        return build_zoo(weights_dir=self.location)

    def _target_teacher(self, task: str) -> Teacher:
        return _taskonomy_target(task, self.location)

    def _auxiliary_teacher(self, task: str) -> Teacher:
        from rsa_toolkit.zoo.teachers import taskonomy_teacher

        return taskonomy_teacher(task, self.location)

    def training_images(self, frames: int, *, cache_dir: str | os.PathLike[str]) -> ProbeSet:
        raise UserInputError("Taskonomy teachers need training images: images=DIR (any folder of photos; no labels "
                             "are needed).", parameter="images")

    def probe_images(self, frames: int) -> ProbeSet | None:
        return None  # the training images are the probe set when no other is named

    def eval_frames(self, tasks: Sequence[str], count: int, *,
                    shard: str | os.PathLike[str] | None = None) -> EvalFrames | None:
        return None


@functools.cache
def _zoo_file_teachers(path: str) -> tuple[Teacher, ...]:
    """A zoo file's teachers: the listing, ranking and auxiliary lookups of a run share one load of its models."""
    from rsa_toolkit.zoo.zoo_file import load_zoo_file

    return tuple(load_zoo_file(path))


#: The kinds of teacher zoo a run can use, by family name: each opens a zoo from its location (a directory).
ZOO_KINDS: Registry[Callable[..., TeacherZoo]] = Registry("zoo kind")


@ZOO_KINDS.register(MiniZoo.family)
def mini_source(zoo_dir: str | os.PathLike[str] | None = None, *, zoo_file: str | None = None) -> MiniZoo:
    """The mini-Taskonomy zoo (default: ``$RSA_TOOLKIT_MINI_ZOO`` or the shipped ``data/mini_zoo``)."""
    from rsa_toolkit.zoo.mini.embedded import default_zoo_dir, read_manifest

    location = str(Path(zoo_dir) if zoo_dir is not None else default_zoo_dir())
    read_manifest(location)  # a missing zoo fails here, with the fix
    return MiniZoo(location, zoo_file)


@ZOO_KINDS.register(TaskonomyZoo.family)
def taskonomy_source(weights_dir: str | os.PathLike[str] | None = None, *,
                     zoo_file: str | None = None) -> TaskonomyZoo:
    """Taskonomy teachers from a local directory of visualpriors checkpoints (default ``$RSA_TOOLKIT_WEIGHTS``)."""
    from rsa_toolkit.zoo.taskonomy.weights import resolve_weights_dir

    location = str(resolve_weights_dir(weights_dir))
    return TaskonomyZoo(location, zoo_file)


def open_zoo(*, weights_dir: str | os.PathLike[str] | None = None, zoo_dir: str | os.PathLike[str] | None = None,
             zoo_file: str | None = None) -> TeacherZoo:
    """The zoo of a run: Taskonomy checkpoints when ``weights_dir`` is given, else the mini zoo (``zoo_dir``)."""
    kind, location = (TaskonomyZoo.family, weights_dir) if weights_dir else (MiniZoo.family, zoo_dir)
    return ZOO_KINDS.get(kind)(location, zoo_file=zoo_file)


def resolve_targets(names: Sequence[str]) -> list[str]:
    """Canonical task names of the targets: at least two, each a task name or alias, no task twice."""
    if isinstance(names, str) or len(names) < 2:
        got = [names] if isinstance(names, str) else list(names)
        raise UserInputError(f"targets: a multi-talent student needs at least two target tasks, got {len(got)} "
                             f"({', '.join(map(str, got)) or 'none'}); e.g. targets=depth normal.", parameter="targets")
    tasks = [resolve_task(n) for n in names]
    for i, task in enumerate(tasks):
        if task in tasks[:i]:
            raise UserInputError(f"targets: '{names[i]}' names task {task} again (given as "
                                 f"'{names[tasks.index(task)]}'); give each task once.", parameter="targets")
    return tasks


def check_auxiliary(name: str, targets: Sequence[str]) -> str:
    """The auxiliary's canonical name (a task's, or a zoo-file teacher's name as given); it must not be a target.
    Whether the zoo has it is checked with the zoo (:meth:`TeacherZoo.auxiliary`)."""
    task = try_resolve_task(name)
    canonical = task.name if task else name
    if canonical in targets:
        raise UserInputError(f"aux='{name}' is one of the targets ({canonical}); the auxiliary must be another "
                             f"teacher. Choose one outside {', '.join(targets)}, or let auto_aux= rank them.",
                             parameter=("aux", "auto_aux"))
    return canonical


class _EncoderDecoder(nn.Module):
    """A Taskonomy encoder and decoder run in sequence; hooks on ``encoder`` and ``decoder`` tap both."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


def _taskonomy_target(task: str, weights_dir: str) -> Teacher:
    """A Taskonomy target teacher (encoder + decoder); files are found and hashed now, loaded on a cache miss."""
    from rsa_toolkit.zoo.taskonomy.net import ENCODER_ONLY_TASKS
    from rsa_toolkit.zoo.taskonomy.weights import (find_checkpoint, load_taskonomy_decoder, load_taskonomy_encoder,
                                                   verify_hash)

    if task in ENCODER_ONLY_TASKS:
        raise UserInputError(f"target '{task}' has no Taskonomy decoder (visualpriors released only its encoder), "
                             "so there is no output to distil; it can still be the auxiliary (aux=).", parameter="aux")
    digests = [verify_hash(find_checkpoint(weights_dir, task, part)) for part in ("encoder", "decoder")]

    @functools.cache
    def build() -> nn.Module:
        encoder, _ = load_taskonomy_encoder(task, weights_dir)
        decoder, _ = load_taskonomy_decoder(task, weights_dir)
        return _EncoderDecoder(encoder, decoder).eval()

    return Teacher(name=task, layers=("encoder", "decoder"), default_layer="encoder",
                   preprocessing=taskonomy_preprocessing(task),
                   weights_sha256=hashlib.sha256("+".join(digests).encode()).hexdigest(), build=build,
                   run=hook_features, source=f"taskonomy:{task}:encoder+decoder")
