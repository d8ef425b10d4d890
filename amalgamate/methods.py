"""The training methods of amalgamate, one registry: what each method's step is and what it takes.

=============  ====================================================  ================  =========  ============
method         step (:mod:`amalgamate.training.steps`)                default weighting  auxiliary  students
=============  ====================================================  ================  =========  ============
``soka``       :func:`soka_step`: collaboration, then competition    ``gradnorm``      yes        one, n heads
``kd``         :func:`kd_step`: one joint step on ``sum_i L_i``       ``equal``         no         one, n heads
``kd-n-to-n``  :func:`kd_step`, on n single-task students            ``equal``         no         n
=============  ====================================================  ================  =========  ============

Only a self-coordinated method (SOKA, Luo et al., ECCV 2020) chooses its weighting, guides the shared
representation and logs when its competition balances; the KD baselines (Hinton et al. 2015) keep equal fixed
weights. :data:`amalgamate.config.METHODS` is this registry; the CLI's choices and the checks of a config read it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rsa_toolkit.registry import Registry

__all__ = ["Method", "METHODS"]


@dataclass(frozen=True)
class Method:
    """One training method. ``step(trainer, x, knowledge_batch)`` does one step and returns what it logs;
    ``ensemble``: n single-task students (of matched total size) instead of one student with n heads.

    The step is named (``step_name`` in :mod:`amalgamate.training.steps`) and imported when first used, so reading
    the registry (the CLI's help, a config check) does not import torch."""

    name: str
    label: str  # in reports: "SOKA", "KD n-to-1", ...
    step_name: str
    default_weighting: str
    uses_auxiliary: bool
    self_coordinated: bool  # chooses its weighting, guides the representation, logs the balance
    ensemble: bool = False

    @property
    def step(self) -> Callable[..., dict[str, Any]]:
        return getattr(importlib.import_module("amalgamate.training.steps"), self.step_name)


METHODS: Registry[Method] = Registry("method")

for _method in (
        Method("soka", "SOKA", "soka_step", "gradnorm", uses_auxiliary=True, self_coordinated=True),
        Method("kd", "KD n-to-1", "kd_step", "equal", uses_auxiliary=False, self_coordinated=False),
        Method("kd-n-to-n", "KD n-to-n", "kd_step", "equal", uses_auxiliary=False, self_coordinated=False,
               ensemble=True)):
    METHODS.register(_method.name)(_method)
