"""Names of a package imported on first use (PEP 562), so importing the package loads none of its heavy modules."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[list[str], Callable[[str], Any],
                                                                    Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package`` from ``exports`` (submodule -> space-separated names)."""
    module_of = {name: module for module, names in exports.items() for name in names.split()}

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook's name
        if name not in module_of:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(f".{module_of[name]}", package), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(vars(sys.modules[package])) | set(module_of))

    return sorted(module_of), __getattr__, __dir__
