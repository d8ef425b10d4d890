"""The typed result of evaluating a run (:func:`amalgamate.evaluation.evaluate.evaluate_run`), and its JSON form.

:class:`Evaluation` is what the library returns and what reports read; ``RUN_DIR/metrics.json`` is
:meth:`Evaluation.to_json` (NaN, a metric without a valid pixel, as null) and :meth:`Evaluation.from_json` reads it
back. Metric values are keyed by metric name (``rmse``, ``rel``, ``delta1``, ...:
:data:`amalgamate.evaluation.metrics.METRIC_ORDER`); a value read back from JSON may be None where it was NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rsa_toolkit.console import json_safe

__all__ = ["Scores", "ModelOrigin", "EvalSet", "StudentScores", "Parameters", "InferenceTimes", "Evaluation"]

Scores = dict[str, float | None]  # metric -> value


@dataclass(frozen=True)
class ModelOrigin:
    """Which file the student came from (``student.pt``, or ``checkpoint.pt`` of an unfinished run), at which step."""

    file: str
    step: int | None


@dataclass(frozen=True)
class EvalSet:
    source: str  # in words
    images: int
    ground_truth: bool  # labelled frames: every model is also scored against the truth


@dataclass(frozen=True)
class StudentScores:
    """One task's scores of the student: against its teacher's outputs, and against the truth where known."""

    vs_teacher: Scores
    vs_truth: Scores | None = None


@dataclass(frozen=True)
class Parameters:
    student: int
    teachers: dict[str, int]  # per target teacher
    teachers_total: int
    student_over_teachers: float
    per_student: dict[str, int] | None = None  # the single-task students of an ensemble (KD n-to-n)


@dataclass(frozen=True)
class InferenceTimes:
    """Milliseconds per image: the student, the n teachers together, each teacher, and the ratio."""

    student: float
    teachers: float
    per_teacher: dict[str, float]
    student_over_teachers: float


@dataclass(frozen=True)
class Evaluation:
    """Everything an evaluation measured; ``teachers``: task -> the teacher's scores against the truth (empty
    without ground truth)."""

    run: str
    device: str
    method: str
    targets: tuple[str, ...]
    aux: str | None
    weighting: str
    model: ModelOrigin
    steps: int
    eval_set: EvalSet
    spaces: dict[str, str]  # task -> output space name
    student: dict[str, StudentScores]
    teachers: dict[str, Scores]
    parameters: Parameters
    inference_ms_per_image: InferenceTimes

    def to_json(self) -> dict[str, Any]:
        """The content of ``metrics.json``."""
        parameters: dict[str, Any] = {"student": self.parameters.student, "teachers": self.parameters.teachers,
                                      "teachers_total": self.parameters.teachers_total,
                                      "student_over_teachers": self.parameters.student_over_teachers}
        if self.parameters.per_student is not None:
            parameters["per_student"] = self.parameters.per_student
        times = self.inference_ms_per_image
        return json_safe({
            "run": self.run, "device": self.device, "method": self.method, "targets": list(self.targets),
            "aux": self.aux, "weighting": self.weighting,
            "model": {"file": self.model.file, "step": self.model.step}, "steps": self.steps,
            "eval_set": {"source": self.eval_set.source, "images": self.eval_set.images,
                         "ground_truth": self.eval_set.ground_truth},
            "spaces": dict(self.spaces),
            "student": {t: {"vs_teacher": s.vs_teacher, **({"vs_truth": s.vs_truth} if s.vs_truth is not None else {})}
                        for t, s in self.student.items()},
            "teachers": {t: {"vs_truth": scores} for t, scores in self.teachers.items()},
            "parameters": parameters,
            "inference_ms_per_image": {"student": times.student, "teachers": times.teachers,
                                       "per_teacher": times.per_teacher,
                                       "student_over_teachers": times.student_over_teachers},
        })

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evaluation:
        """An evaluation as :meth:`to_json` wrote it (``metrics.json``)."""
        p, t = data["parameters"], data["inference_ms_per_image"]
        return cls(
            run=data["run"], device=data["device"], method=data["method"], targets=tuple(data["targets"]),
            aux=data["aux"], weighting=data["weighting"],
            model=ModelOrigin(data["model"]["file"], data["model"]["step"]), steps=data["steps"],
            eval_set=EvalSet(**data["eval_set"]), spaces=dict(data["spaces"]),
            student={task: StudentScores(s["vs_teacher"], s.get("vs_truth")) for task, s in data["student"].items()},
            teachers={task: s["vs_truth"] for task, s in data["teachers"].items()},
            parameters=Parameters(p["student"], p["teachers"], p["teachers_total"], p["student_over_teachers"],
                                  p.get("per_student")),
            inference_ms_per_image=InferenceTimes(t["student"], t["teachers"], t["per_teacher"],
                                                  t["student_over_teachers"]))

    def metric_rows(self) -> list[dict[str, Any]]:
        """One row per (model, task, reference, metric): the student's, then the teachers'."""
        rows = []
        for task, s in self.student.items():
            for reference, values in (("teacher", s.vs_teacher), ("truth", s.vs_truth)):
                if values is not None:
                    rows += [{"model": "student", "task": task, "reference": reference, "metric": m, "value": v}
                             for m, v in values.items()]
        for task, values in self.teachers.items():
            rows += [{"model": "teacher", "task": task, "reference": "truth", "metric": m, "value": v}
                     for m, v in values.items()]
        return rows


