"""One registry per family of named things (RDM methods, comparisons, ...).

Entries register by decorator; unknown names fail with "Unknown <kind> 'x'. Available: ..." and the closest names;
CLI choices and docs read :meth:`Registry.names`. Modelled on timm's ``models/_registry.py`` layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from rsa_toolkit.errors import UserInputError, unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(entry: T) -> T:
            if name in self._entries:
                raise RuntimeError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = entry
            return entry

        return decorator

    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UserInputError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        return unknown_name(f"Unknown {self.kind} '{name}'", name, self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
