"""amalgamate: training one multi-talent student from a zoo of teachers (SOKA-Net, Luo et al., ECCV 2020).

The RSA ranking of :mod:`rsa_toolkit` picks the auxiliary teacher; the student (a shared encoder and one head per
target task) learns from the target teachers' outputs without labels, its shared representation guided by the
teachers' and the auxiliary's representations, with self-coordinated loss weights. docs/amalgamate.md has the
method, the commands and the files.

    >>> from amalgamate import train, evaluate_run
    >>> train("runs/dn", {"targets": ["depth", "normal"], "auto_aux": True, "steps": 2000})
    >>> metrics = evaluate_run("runs/dn")

Names are imported on first use (PEP 562), so ``import amalgamate`` does not load torch.
"""

from __future__ import annotations

from rsa_toolkit.lazy import lazy_exports as _lazy_exports

_EXPORTS: dict[str, str] = {
    "config": "AmalgamateConfig METHODS load_config_file",
    "evaluation.evaluate": "evaluate_run load_student",
    "evaluation.results": "Evaluation",
    "training.knowledge": "build_knowledge CachedKnowledge LiveKnowledge",
    "training.losses": "distillation_loss guidance_loss GuidanceAdapters positive_weight",
    "evaluation.metrics": "regression_sums angular_sums accuracy_sums",
    "evaluation.report": "write_report",
    "student": "Student StudentEnsemble build_student count_parameters",
    "zoo": "TeacherZoo mini_source taskonomy_source open_zoo",
    "training.run": "train TrainResult TrainingDiverged",
    "training.weighting": "WEIGHTINGS Weighting GradNorm build_weighting",
}
__all__, __getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS)
