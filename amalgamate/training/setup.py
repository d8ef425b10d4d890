"""What a run is made of: its checked config, its method, its teacher zoo, its target teachers and its student.

:func:`setup_run` is shared by training (:func:`amalgamate.training.run.train`) and evaluation
(:func:`amalgamate.evaluation.evaluate.evaluate_run`), so both see the same teachers for the same config.
"""

from __future__ import annotations

from dataclasses import dataclass

from rsa_toolkit.errors import UserInputError

from amalgamate.config import METHODS, AmalgamateConfig
from amalgamate.methods import Method
from amalgamate.zoo import AmalgamationTeacher, TeacherZoo, open_zoo

__all__ = ["RunSetup", "setup_run"]


@dataclass
class RunSetup:
    config: AmalgamateConfig
    zoo: TeacherZoo
    targets: list[AmalgamationTeacher]
    architecture: str
    method: Method


def setup_run(config: AmalgamateConfig) -> RunSetup:
    """The zoo and the target teachers of a (checked) config; a target without a teacher fails here."""
    zoo = open_zoo(weights_dir=config.weights_dir, zoo_dir=config.zoo_dir, zoo_file=config.zoo_file)
    targets = []
    for task in config.targets:
        try:
            targets.append(zoo.target(task))
        except UserInputError as exc:
            raise UserInputError(f"target '{task}' has no teacher: {exc}") from None
    return RunSetup(config, zoo, targets, config.architecture or zoo.default_architecture, METHODS.get(config.method))
