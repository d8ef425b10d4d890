"""Progress for long work, readable both on a terminal and in a log.

On a terminal (stderr is a TTY) it is a tqdm bar. Elsewhere (``nohup``, ``| tee``, a batch system's log) a bar's
carriage returns make an unreadable log, so it writes plain lines instead: once the work has gone ``interval``
seconds without a line, a line saying what started, then one at least every ``interval`` seconds (done/total, rate,
ETA and any postfix such as the current losses), and one when it ends. The silence is counted across reporters, so a
long run of short ones (20 teachers of 3 s each) still gets a line every ``interval``; work shorter than ``interval``
writes nothing, so a quick command (or one that stops at a user mistake, which is one line) keeps a clean log.
``enabled=False`` (the CLI's ``--quiet``) silences both.

    >>> for batch in progress(batches, desc="teacher depth", unit="img", total=n):
    ...     ...
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

__all__ = ["progress", "Progress", "stage"]

LOG_INTERVAL = 10.0  # seconds between plain lines in a log

# Log mode, across reporters: since when the log has had no line, and when any reporter last made progress (a gap
# longer than an interval, or a clock that went back, starts a new burst of work with its own silence).
_silent_since: float | None = None
_last_activity: float | None = None


def _begin(now: float, interval: float) -> None:
    global _silent_since, _last_activity
    if _silent_since is None or _last_activity is None or not 0 <= now - _last_activity <= interval:
        _silent_since = now
    _last_activity = now


def _due(now: float, interval: float) -> bool:
    global _last_activity
    _last_activity = now
    return _silent_since is not None and now - _silent_since >= interval


def _wrote(now: float) -> None:
    global _silent_since
    _silent_since = now


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True, stream: TextIO | None = None, interval: float = LOG_INTERVAL) -> Progress:
    """A progress reporter over ``iterable`` (or updated by hand with :meth:`Progress.update`)."""
    return Progress(iterable, total=total, desc=desc, unit=unit, enabled=enabled, stream=stream, interval=interval)


def stage(message: str, *, enabled: bool = True, stream: TextIO | None = None) -> None:
    """One plain line naming a stage of work that has begun (both on a terminal and in a log)."""
    if enabled:
        print(message, file=stream or sys.stderr, flush=True)


class Progress:
    """tqdm on a terminal, timed plain lines elsewhere; an iterable and a context manager."""

    def __init__(self, iterable: Iterable[Any] | None, *, total: int | None, desc: str, unit: str, enabled: bool,
                 stream: TextIO | None, interval: float) -> None:
        self._iterable = iterable
        self._stream = stream or sys.stderr
        self._desc, self._unit, self._interval = desc, unit, interval
        self.total = total if total is not None else _length(iterable)
        self.n = 0
        self._postfix = ""
        self._bar = None
        self._enabled = enabled
        self._lines = enabled and not _is_terminal(self._stream)
        if enabled and not self._lines:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit=unit, file=self._stream, leave=False,
                             dynamic_ncols=True)
        self._start = time.monotonic()
        if self._lines:
            _begin(self._start, interval)
        self._announced = False  # the start line is written once the log has been silent for an interval
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        if self._iterable is None:
            raise TypeError("this progress reporter was made without an iterable; call update() instead")
        try:
            for item in self._iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._lines and not (self.total and self.n >= self.total):  # the end line follows
            now = time.monotonic()
            if _due(now, self._interval):
                self._announce()
                self._write(self._status(now))
                _wrote(now)

    def set_postfix(self, text: str) -> None:
        """Extra words for the next line or the bar, e.g. the current losses."""
        self._postfix = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self._lines:
            now = time.monotonic()
            if _due(now, self._interval):
                self._announce()
            if self._announced:
                self._write(f"{self._desc}: done, {self.n} {self._unit} in {_duration(now - self._start)}")
                _wrote(now)

    def _announce(self) -> None:
        if not self._announced:
            self._announced = True
            of = f" ({self.total} {self._unit})" if self.total is not None else ""
            self._write(f"{self._desc}: started{of}")

    def _status(self, now: float) -> str:
        elapsed = now - self._start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        eta = ""
        if self.total and rate > 0:
            eta = f", ETA {_duration((self.total - self.n) / rate)}"
        extra = f", {self._postfix}" if self._postfix else ""
        return f"{self._desc}: {done} {self._unit} ({rate:.3g} {self._unit}/s{eta}){extra}"

    def _write(self, line: str) -> None:
        print(line, file=self._stream, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _length(iterable: Iterable[Any] | None) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
