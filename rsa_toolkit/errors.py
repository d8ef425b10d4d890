"""The one exception type for user mistakes.

The CLI turns a :class:`UserInputError` into one line on stderr and exit code 2; any other exception is our bug and
keeps its traceback. Subclassing ``ValueError`` lets notebook users catch it the usual way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["UserInputError", "closest_names"]


class UserInputError(ValueError):
    """A bad input: the message says what is wrong, what was expected and how to fix it."""


def closest_names(name: str, valid: Iterable[str], *, n: int = 3) -> list[str]:
    """The valid names nearest to ``name`` (case-insensitive), best first, for "did you mean" hints."""
    valid = sorted(set(valid))
    by_lower = {v.lower(): v for v in valid}
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.5)
    return [by_lower[h] for h in hits]
