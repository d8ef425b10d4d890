"""The names in amalgamate's torch-side registries, readable without importing torch: the CLI's help lists them,
and `amalgamate --help` should not wait ~4 s for torch. ``tests/amalgamate/test_choices.py`` checks each tuple
against its registry (same names, same order), so a new entry fails the tests until it is named here too."""

from __future__ import annotations

__all__ = ["ARCHITECTURE_NAMES", "WEIGHTING_NAMES"]

#: :data:`amalgamate.student.ARCHITECTURES`
ARCHITECTURE_NAMES = ("compact", "taskonomy")
#: :data:`amalgamate.training.weighting.WEIGHTINGS`
WEIGHTING_NAMES = ("equal", "gradnorm", "uncertainty", "dwa", "imtl-l", "famo")
