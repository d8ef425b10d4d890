"""The CLI's torch-free lists of names match the registries they stand for."""

from __future__ import annotations

import subprocess
import sys

from amalgamate.choices import ARCHITECTURE_NAMES, WEIGHTING_NAMES
from amalgamate.student import ARCHITECTURES
from amalgamate.training.weighting import WEIGHTINGS


def test_names_match_the_registries() -> None:
    assert list(ARCHITECTURE_NAMES) == ARCHITECTURES.names()
    assert list(WEIGHTING_NAMES) == WEIGHTINGS.names()


def test_amalgamate_parser_does_not_import_torch() -> None:
    code = "import sys, amalgamate.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
