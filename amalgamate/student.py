"""The multi-talent student: one shared encoder -> 8 x 16 x 16 shared representation -> one head per target task.

SOKA-Net (Luo et al., "Collaboration by Competition: Self-coordinated Knowledge Amalgamation for Multi-talent
Student Learning", ECCV 2020): the student keeps the teachers' contract (an 8-channel 16 x 16 representation) so that
the teachers' and the auxiliary's representations can guide it, and it has one decoder per pixel task (a head per
image-level task). Two architectures, one interface (:data:`ARCHITECTURES`):

===========  ===================================================  =============================================
name         encoder                                              heads
===========  ===================================================  =============================================
compact      :class:`rsa_toolkit.zoo.mini.net.MiniEncoder`             PixelDecoder (C x 64 x 64), slimmer than the
             (3 x 64 x 64 -> 8 x 16 x 16; the mini teachers')      teachers' / VectorHead (K), as the teachers
taskonomy    :class:`rsa_toolkit.zoo.taskonomy.net.TaskonomyEncoder`  the visualpriors decoders
             (3 x 256 x 256 -> 8 x 16 x 16; the seed's student)    (:func:`~rsa_toolkit.zoo.taskonomy.net.build_decoder`)
===========  ===================================================  =============================================

Why slimmer decoders: a mini teacher's decoder costs as much compute as its encoder (both ~0.19 GFLOP per 64 px
frame, most of it at full resolution), so a student with the teachers' decoders could never run in half the time of
its n teachers, which is the point of one multi-talent student (the seed's Table 3: 0.51 for 3 tasks, where the
ResNet-50 encoder dominates). :data:`COMPACT_DECODER_WIDTHS` cuts a decoder to ~0.41 of a teacher's compute.

``forward(x)`` returns ``(z, {task: output})``. For GradNorm the encoder is split into :meth:`Student.trunk` (every
shared layer but the last) and :meth:`Student.represent` (the last shared layer, whose weight
:meth:`Student.shared_weight` the per-task gradient norms are taken on).

:class:`StudentEnsemble` is the KD n-to-n baseline: one single-task student per target, narrower so that the total
number of parameters matches the n-to-1 student.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from rsa_toolkit.registry import Registry
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.tasks import resolve_task

from amalgamate.methods import METHODS

__all__ = ["ARCHITECTURES", "Student", "StudentEnsemble", "build_student", "count_parameters", "input_size",
           "init_output_biases", "model_spec", "build_from_spec",
           "COMPACT_WIDTHS", "COMPACT_DECODER_WIDTHS"]

COMPACT_WIDTHS = (16, 32, 64, 96)  # the mini teachers' encoder widths
COMPACT_DECODER_WIDTHS = (48, 32, 16)  # the teachers' are (64, 48, 32); see the module docstring

ARCHITECTURES: Registry[Callable[..., "_Parts"]] = Registry("student architecture")


class _Parts:
    """What an architecture provides: the encoder, its trunk/last-layer split, one head per task, the input size."""

    def __init__(self, encoder: nn.Module, trunk: Callable[[Tensor], Tensor], represent: Callable[[Tensor], Tensor],
                 shared_weight: Callable[[], nn.Parameter], heads: dict[str, nn.Module], size: int,
                 linear_outputs: bool) -> None:
        self.encoder, self.trunk, self.represent = encoder, trunk, represent
        self.shared_weight, self.heads, self.size = shared_weight, heads, size
        self.linear_outputs = linear_outputs  # every head ends in a layer ``out`` with a bias and no activation


@ARCHITECTURES.register("compact")
def _compact(tasks: Sequence[str], widths: tuple[int, int, int, int] = COMPACT_WIDTHS) -> _Parts:
    from rsa_toolkit.zoo.mini.net import INPUT_SIZE, MiniEncoder, PixelDecoder, VectorHead, output_channels
    from rsa_toolkit.scenes import LABEL_SPECS

    encoder = MiniEncoder(widths)
    heads = {t: PixelDecoder(output_channels(t), COMPACT_DECODER_WIDTHS) if LABEL_SPECS[t].per_pixel
             else VectorHead(output_channels(t)) for t in tasks}
    body = list(encoder.children())[:-1]  # stem .. block3; the encoder ends in the linear 1 x 1 "representation"

    def trunk(x: Tensor) -> Tensor:
        for module in body:
            x = module(x)
        return x

    return _Parts(encoder, trunk, lambda h: encoder.representation(h), lambda: encoder.representation.weight,
                  heads, INPUT_SIZE, linear_outputs=True)


@ARCHITECTURES.register("taskonomy")
def _taskonomy(tasks: Sequence[str], widths: object = None) -> _Parts:
    from rsa_toolkit.zoo.taskonomy.net import TaskonomyEncoder, build_decoder

    if widths is not None:
        raise UserInputError("the taskonomy student has the fixed ResNet-50 widths; narrower students (the n-to-n "
                             "baseline) exist for the compact architecture only.")
    encoder = TaskonomyEncoder(normalize_outputs=False)

    def trunk(x: Tensor) -> Tensor:
        x = encoder.maxpool(encoder.relu(encoder.bn1(encoder.conv1(x))))
        for i in range(1, 5):
            x = getattr(encoder, f"layer{i}")(x)
        return x

    def represent(h: Tensor) -> Tensor:
        return encoder.relu1(encoder.compress_bn(encoder.compress1(h)))

    return _Parts(encoder, trunk, represent, lambda: encoder.compress1.weight,
                  {t: build_decoder(t) for t in tasks}, 256, linear_outputs=False)  # most decoders end in tanh


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class Student(nn.Module):
    """Shared encoder and one head per task in ``tasks`` (canonical names), architecture ``architecture``."""

    def __init__(self, tasks: Sequence[str], *, architecture: str = "compact",
                 widths: tuple[int, int, int, int] | None = None) -> None:
        super().__init__()
        build = ARCHITECTURES.get(architecture)
        self.tasks = tuple(resolve_task(t) for t in tasks)
        self.architecture = architecture
        parts = build(self.tasks) if widths is None else build(self.tasks, widths)
        self.encoder = parts.encoder
        self.heads = nn.ModuleDict(parts.heads)
        # plain functions over the registered encoder (not modules: the parameters stay registered once)
        self._trunk, self._represent, self._shared_weight = parts.trunk, parts.represent, parts.shared_weight
        self.input_size = parts.size
        self.linear_outputs = parts.linear_outputs
        self.train()

    def trunk(self, x: Tensor) -> Tensor:
        """Every shared layer but the last: (B, 3, S, S) -> hidden features."""
        return self._trunk(x)

    def represent(self, h: Tensor) -> Tensor:
        """The last shared layer: hidden features -> (B, 8, 16, 16) shared representation."""
        return self._represent(h)

    def shared_weight(self) -> nn.Parameter:
        """The weight of the last shared layer (GradNorm's W)."""
        return self._shared_weight()

    def decode(self, z: Tensor) -> dict[str, Tensor]:
        return {task: self.heads[task](z) for task in self.tasks}

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        z = self.represent(self.trunk(x))
        return z, self.decode(z)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.encoder.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        return self.heads.parameters()


class StudentEnsemble(nn.Module):
    """KD n-to-n: one single-task :class:`Student` per task, each with encoder ``widths``; ``forward`` returns
    ``(None, {task: output})`` (there is no shared representation)."""

    def __init__(self, tasks: Sequence[str], *, architecture: str = "compact",
                 widths: tuple[int, int, int, int] | None = None) -> None:
        super().__init__()
        self.tasks = tuple(resolve_task(t) for t in tasks)
        self.architecture = architecture
        self.widths = tuple(widths) if widths is not None else COMPACT_WIDTHS
        self.students = nn.ModuleDict({t: Student([t], architecture=architecture, widths=widths)
                                       for t in self.tasks})
        self.input_size = self.students[self.tasks[0]].input_size

    def forward(self, x: Tensor) -> tuple[None, dict[str, Tensor]]:
        return None, {t: self.students[t](x)[1][t] for t in self.tasks}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        for student in self.students.values():
            yield from student.shared_parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        for student in self.students.values():
            yield from student.head_parameters()


def matched_widths(tasks: Sequence[str], budget: int) -> tuple[int, int, int, int]:
    """Compact encoder widths (the teachers' widths times one factor) whose n single-task students have in total the
    number of parameters closest to ``budget`` (the n-to-1 student's)."""
    best: tuple[int, tuple[int, int, int, int]] | None = None
    for percent in range(10, 101):
        widths = tuple(max(4, round(w * percent / 100)) for w in COMPACT_WIDTHS)
        total = count_parameters(StudentEnsemble(tasks, widths=widths))  # type: ignore[arg-type]
        if best is None or abs(total - budget) < best[0]:
            best = (abs(total - budget), widths)  # type: ignore[assignment]
        if total > budget:
            break
    return best[1]  # type: ignore[index]


def build_student(tasks: Sequence[str], *, architecture: str = "compact", method: str = "soka") -> nn.Module:
    """The student of ``method``: one :class:`Student` for soka and kd; for kd-n-to-n a :class:`StudentEnsemble`
    whose total size matches the n-to-1 student's (a method with ``ensemble``, :data:`amalgamate.config.METHODS`).
    Initialisation follows the caller's torch seed."""
    if not METHODS.get(method).ensemble:
        return Student(tasks, architecture=architecture)
    if architecture != "compact":
        raise UserInputError("method=kd-n-to-n needs the compact architecture (its single-task students are "
                             "narrower encoders, which the fixed ResNet-50 has no version of).", parameter="method")
    with torch.random.fork_rng():  # sizing builds throw-away networks; they must not move the seed
        budget = count_parameters(Student(tasks, architecture=architecture))
        widths = matched_widths(tasks, budget)
    return StudentEnsemble(tasks, architecture=architecture, widths=widths)


def init_output_biases(model: nn.Module, means: Mapping[str, Tensor]) -> list[str]:
    """Start each head in ``means`` (task -> the teacher's mean output per channel) at that mean, through the bias of
    its linear output layer; returns the tasks set. Heads ending in a nonlinearity (the taskonomy decoders' tanh) are
    left alone.

    Why: a regression head starting near 0 (log depth in metres has a mean near 1.6 here) spends its first hundreds of
    steps on the offset, and the inflated initial loss L_i(0) misleads GradNorm's and DWA's training rates
    L_i(t) / L_i(0) into reading that task as fast.
    """
    students = model.students.values() if isinstance(model, StudentEnsemble) else [model]
    done = []
    for student in students:
        if not student.linear_outputs:
            continue
        for task in student.tasks:
            if task in means:
                bias = student.heads[task].out.bias
                with torch.no_grad():
                    bias.copy_(means[task].reshape(bias.shape).to(bias.dtype))
                done.append(task)
    return done


def model_spec(model: nn.Module, method: str) -> dict[str, object]:
    """What rebuilds ``model`` (:func:`build_from_spec`): its tasks, architecture, method and, for KD n-to-n, widths."""
    spec: dict[str, object] = {"tasks": list(model.tasks), "architecture": model.architecture, "method": method}
    if METHODS.get(method).ensemble:
        spec["widths"] = list(model.widths)
    return spec


def build_from_spec(spec: Mapping[str, object]) -> nn.Module:
    if METHODS.get(str(spec["method"])).ensemble:
        return StudentEnsemble(spec["tasks"], architecture=spec["architecture"], widths=tuple(spec["widths"]))
    return Student(spec["tasks"], architecture=spec["architecture"])


def input_size(model: nn.Module) -> int:
    return int(model.input_size)
