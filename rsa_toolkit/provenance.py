"""Provenance recorded in every output: package versions, inputs' hashes and the options, never a timestamp
(the same inputs must give byte-identical outputs)."""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["provenance"]

_PACKAGES = ("rsa-toolkit", "numpy", "scipy", "scikit-learn", "torch", "networkx", "plotly", "matplotlib")


def provenance(**details: object) -> dict[str, object]:
    """A JSON-ready record of the software and the ``details`` given (options, seeds, input hashes)."""
    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"python": platform.python_version(), "packages": versions, **details}
