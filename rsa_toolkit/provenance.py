"""Provenance recorded in every output: package versions, inputs' hashes and the options, never a timestamp
(the same inputs must give byte-identical outputs)."""

from __future__ import annotations

import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path

__all__ = ["provenance", "file_sha256"]

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


def file_sha256(path: str | os.PathLike[str], *, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
