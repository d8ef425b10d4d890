"""The one exception type for user mistakes, and the one "unknown name" message.

The CLI turns a :class:`UserInputError` into one line on stderr and exit code 2; any other exception is our bug and
keeps its traceback. Subclassing ``ValueError`` lets notebook users catch it the usual way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["UserInputError", "FeatureCacheWarning", "SmallProbeSetWarning", "TruthZooWarning", "closest_names", "did_you_mean", "unknown_name"]


class UserInputError(ValueError):
    """A bad input: the message says what is wrong, what was expected and how to fix it.

    ``parameter`` names the function parameter (or a tuple of the parameters) the message is about. The message
    refers to it as ``parameter=`` (``device='cuda:7': ...; use device=cpu.``) or starts with it (``eval_frames must
    be ...``); the command line rewrites each such reference to the option that sets the parameter (``--device
    'cuda:7': ...; use --device cpu.``), see :func:`rsa_toolkit.console.as_command_line`.
    """

    def __init__(self, message: str, *, parameter: str | tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter

    @property
    def parameters(self) -> tuple[str, ...]:
        """The parameters the message is about, as a tuple (empty when none)."""
        if self.parameter is None:
            return ()
        return (self.parameter,) if isinstance(self.parameter, str) else tuple(self.parameter)


def closest_names(name: str, valid: Iterable[str], *, n: int = 3) -> list[str]:
    """The valid names nearest to ``name`` (case-insensitive), best first, for "did you mean" hints."""
    valid = sorted(set(valid))
    by_lower = {v.lower(): v for v in valid}
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.5)
    return [by_lower[h] for h in hits]


def did_you_mean(name: object, valid: Iterable[str], *, n: int = 3, hints: Iterable[str] | None = None) -> str:
    """" Did you mean 'a', 'b'?" with the valid names closest to ``name`` (or the ``hints`` given), or "" if none."""
    hints = closest_names(str(name), valid, n=n) if hints is None else list(hints)
    return f" Did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""


def unknown_name(problem: str, name: object, valid: Iterable[str], *, listing: str = "Available",
                 shown: str | None = None, n: int = 3, hints: Iterable[str] | None = None) -> str:
    """The message for a name that is not one of ``valid``: "<problem>. Did you mean ...? <listing>: <shown>."

    ``problem`` says what is wrong ("Unknown comparison 'x'"); ``shown`` replaces the comma-separated ``valid``
    names in the listing; ``n`` and ``hints`` are :func:`did_you_mean`'s.
    """
    valid = list(valid)
    shown = ", ".join(valid) if shown is None else shown
    return f"{problem}.{did_you_mean(name, valid, n=n, hints=hints)} {listing}: {shown}."


class FeatureCacheWarning(UserWarning):
    """A feature cache entry could not be used (damaged or incomplete) and is computed again."""


class SmallProbeSetWarning(UserWarning):
    """A probe set too small for stable similarity estimates; the CLIs print it as one ``warning:`` line."""


class TruthZooWarning(UserWarning):
    """A measured ground truth comes from other teachers than the ones being scored (its recipe names another zoo
    manifest): the scores compare a zoo with another zoo's transfers."""
