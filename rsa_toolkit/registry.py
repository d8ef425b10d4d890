"""One registry per family of named things (RDM methods, comparisons, ...).

Entries register by decorator; unknown names fail with "Unknown <kind> 'x'. Available: ..." and the closest names;
CLI choices and docs read :meth:`Registry.names`. Modelled on timm's ``models/_registry.py`` layout.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from rsa_toolkit.errors import UserInputError, unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind. ``providers``: modules (by name) that register more entries when imported; they
    are imported the first time the registry is read (get, names, ``in``), so a family can take entries from
    packages it must not import itself."""

    def __init__(self, kind: str, *, providers: Sequence[str] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._providers = list(providers)

    def _load_providers(self) -> None:
        while self._providers:
            importlib.import_module(self._providers.pop(0))

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(entry: T) -> T:
            if name in self._entries:
                raise RuntimeError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = entry
            return entry

        return decorator

    def names(self) -> list[str]:
        self._load_providers()
        return list(self._entries)

    def get(self, name: str) -> T:
        self._load_providers()
        try:
            return self._entries[name]
        except KeyError:
            raise UserInputError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        self._load_providers()
        return unknown_name(f"Unknown {self.kind} '{name}'", name, self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_providers()
        return name in self._entries
