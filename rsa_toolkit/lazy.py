"""Names of a package imported on first use (PEP 562), so importing the package loads none of its heavy modules."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

__all__ = ["lazy_exports"]


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
        """The exports, the dunder names and the submodules imported so far: not the package's own imports
        (``annotations``, ``lazy_exports``)."""
        names = vars(sys.modules[package])
        own = {n for n, v in names.items() if n.startswith("__")
               or (isinstance(v, ModuleType) and v.__name__ == f"{package}.{n}")}
        return sorted(own | set(module_of))

    return sorted(module_of), __getattr__, __dir__
