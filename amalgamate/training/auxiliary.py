"""Choosing the auxiliary teacher: the zoo's RSA ranking for the target tasks (``--auto-aux``), or a named teacher.

The ranking is the toolkit's (Dwivedi & Roig, CVPR 2019): every teacher of the zoo runs over the probe set (cached
features), RDMs are compared pairwise (Spearman of 1 - Pearson RDMs after centring), and the candidates (every
teacher that is not a target) are ranked by their mean similarity to the targets, with the bootstrap probability of
ranking first. The record of the choice (the ranking with its scores, the probe set, the zoo) goes to
``RUN_DIR/aux.json``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.images.probe import ProbeSet
from rsa_toolkit.tasks import try_resolve_task

from amalgamate.zoo import TeacherZoo

__all__ = ["AuxChoice", "rank_zoo", "given_auxiliary"]


@dataclass(frozen=True)
class AuxChoice:
    name: str | None  # None: no auxiliary
    record: dict[str, object]


def _task_of(name: str) -> str:
    task = try_resolve_task(name)
    return task.name if task else name


def rank_zoo(targets: Sequence[str], zoo: TeacherZoo, probe: ProbeSet, *, n_bootstrap: int = 100, seed: int = 0,
             cache_dir: str | os.PathLike[str] | None = None, progress: bool = False) -> AuxChoice:
    """The best auxiliary for ``targets`` among the other teachers of ``zoo``, by RSA on ``probe``."""
    from rsa_toolkit.features.extract import zoo_features
    from rsa_toolkit.analysis.ranking import rank_auxiliaries
    from rsa_toolkit.rsa.similarity import similarity_matrix

    teachers = zoo.ranking_teachers()
    names = [t.name for t in teachers]
    candidates = [n for n in names if _task_of(n) not in targets]
    missing = [t for t in targets if t not in {_task_of(n) for n in names}]
    if missing:
        raise UserInputError(f"auto_aux: the zoo at '{zoo.location}' has no teacher for target(s) "
                             f"{', '.join(missing)}; it has {', '.join(names)}.", parameter="auto_aux")
    if not candidates:
        raise UserInputError(f"auto_aux: no candidate auxiliary is left in the zoo at '{zoo.location}': its "
                             f"teachers ({', '.join(names)}) are all targets. Use a zoo with more teachers, or train "
                             "without an auxiliary (method=kd).", parameter=("auto_aux", "method"))
    # each teacher on its own input kind, rsa_toolkit's default, so --auto-aux chooses what `rsa-toolkit pick-aux`
    # shows the user (the knowledge itself is taken on the student's clean training images: knowledge.py)
    features = zoo_features(teachers, probe, cache_dir=cache_dir, progress=progress, teacher_inputs="own")
    result = similarity_matrix(features.as_dict(), n_bootstrap=n_bootstrap, seed=seed, progress=progress)
    samples = result.bootstrap.samples if result.bootstrap else None
    ranking = rank_auxiliaries(result.matrix, result.names, list(targets), samples=samples)
    best = ranking[0]
    top1 = "" if best.top1_probability is None else f", first in {best.top1_probability:.0%} of {n_bootstrap} " \
                                                     "bootstrap resamples of the probe images"
    record = {
        "chosen": best.name,
        "how": "auto-aux",
        "why": f"{best.name} has the highest mean RSA similarity to the targets ({best.score:.4f}{top1})",
        "ranking": [{"rank": r, "name": c.name, "score": c.score, "top1_probability": c.top1_probability,
                     "per_target": c.per_target} for r, c in enumerate(ranking, 1)],
        "similarity": {"method": result.method, "normalization": result.normalization,
                       "comparison": result.comparison, "aggregate": "mean", "n_bootstrap": n_bootstrap,
                       "seed": seed, "teacher_inputs": "own"},
        "probe": probe.describe(),
        "zoo": zoo.describe(),
    }
    return AuxChoice(best.name, record)


def given_auxiliary(name: str | None) -> AuxChoice:
    """The record of an auxiliary named with ``--aux`` (or of none)."""
    if name is None:
        return AuxChoice(None, {"chosen": None, "how": "none",
                                "why": "neither --aux nor --auto-aux was given; only the target teachers guide"})
    return AuxChoice(name, {"chosen": name, "how": "--aux", "why": "named by the user with --aux"})
