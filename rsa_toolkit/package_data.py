"""Where the shipped data lives: the embedded mini zoo, the mini transfer truth and the Taskonomy tables.

In a source checkout they are the top-level ``data/`` folder; a wheel or sdist install carries the same folder as the
package ``rsa_toolkit.data`` (setup.py maps it), found with :mod:`importlib`. A checkout is recognised by its
``pyproject.toml`` beside ``data/``, never by a bare ``data/`` folder next to the package: site-packages may hold an
unrelated one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["shipped_data_dir"]

_PACKAGE = "rsa_toolkit.data"


def shipped_data_dir() -> Path:
    """The folder of the shipped data (``data/`` of the checkout, or ``rsa_toolkit/data`` of an installed copy)."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "data").is_dir():
        return checkout / "data"
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return checkout / "data"  # neither: the caller's "missing file" message names this path
