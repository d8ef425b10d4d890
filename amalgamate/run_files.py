"""Writing and reading a run directory's files whole (:mod:`amalgamate.run_dir` says which files a run holds).

Every file is written atomically (a temporary name, then a rename), several files together as a set
(:func:`write_files`), ``log.jsonl`` by whole lines (:class:`RunLog`); a full, read-only or forbidden disk is one
:class:`~rsa_toolkit.errors.UserInputError` naming the file (:func:`rsa_toolkit.files.write_faults`), and a damaged
JSON file one error naming the file and the fix (:func:`read_json`). Warnings are :class:`RunWarning`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.files import atomic_path, write_faults

__all__ = ["RunWarning", "RunLog", "read_json", "write_bytes", "write_files", "json_bytes", "fsync_write"]


class RunWarning(UserWarning):
    """Something in a run directory was damaged and is worked around (a partial log line, an unreadable latest
    checkpoint); the message names the file. (A corrupt knowledge cache entry is the feature cache's
    :class:`rsa_toolkit.errors.FeatureCacheWarning`.)"""


def fsync_write(path: Path, data: bytes) -> None:
    """The one place run-directory files get their bytes (``path``: a temporary file of an atomic write), synced to
    disk before the rename."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_bytes(path: str | os.PathLike[str], data: bytes, *, fix: str = "choose another --out") -> Path:
    """Write ``data`` to ``path`` atomically; a full, read-only or forbidden disk is one :class:`UserInputError`
    naming ``path`` (``fix``: what to do besides freeing space), and leaves no temporary file."""
    path = Path(path)
    with write_faults(path, fix=fix), atomic_path(path) as tmp:
        fsync_write(tmp, data)
    return path


def json_bytes(data: Any) -> bytes:
    """How the run's JSON files are written (indented, sorted keys, arrays and paths as lists and strings)."""
    return (json.dumps(data, indent=1, sort_keys=True, default=_json_default) + "\n").encode()


def write_files(files: Mapping[str | os.PathLike[str], bytes], *, fix: str = "choose another --out") -> None:
    """Write several files together: each to a temporary file first, all renamed into place only when every one is
    written, so a failure (one error naming its file, as :func:`write_bytes`) leaves the old set, not a mixed one."""
    with contextlib.ExitStack() as stage:
        for path, data in files.items():
            path = Path(path)
            stage.enter_context(write_faults(path, fix=fix))
            fsync_write(stage.enter_context(atomic_path(path)), data)


def read_json(path: str | os.PathLike[str], *, what: str, fix: str, keys: tuple[str, ...] = ()) -> Any:
    """The JSON object in ``path``, checked: unreadable, not JSON, not an object or without ``keys`` is one
    :class:`UserInputError` naming the file, ``what`` it holds and the ``fix``."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"'{path}' is missing ({what}); {fix}.") from None
    except OSError as exc:
        raise UserInputError(f"'{path}' cannot be read ({exc.strerror}); it holds {what}; {fix}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(f"'{path}' is damaged (not JSON: {exc}); it holds {what}; {fix}.") from None
    if not isinstance(data, dict):
        raise UserInputError(f"'{path}' is damaged (a JSON {type(data).__name__}, not an object); it holds {what}; "
                             f"{fix}.")
    missing = [k for k in keys if k not in data]
    if missing:
        raise UserInputError(f"'{path}' is damaged (no {', '.join(missing)}); it holds {what}; {fix}.")
    return data


def _append(fd: int, data: bytes) -> int:
    """One write of ``data`` at the end of the file ``fd`` (may be short); the log's only way to its bytes."""
    return os.write(fd, data)


class RunLog:
    """``log.jsonl`` opened for appending whole lines: each :meth:`write` is one write of a full line (repeated only
    if the system wrote less), flushed to the file; a write that fails cuts the file back to where it was, so no
    partial line is left behind by a full disk. :meth:`sync` (at checkpoints and on close) fsyncs it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with write_faults(path):
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def write(self, entry: Mapping[str, Any]) -> None:
        data = (json.dumps(entry, sort_keys=True) + "\n").encode()
        with write_faults(self.path):
            start = os.fstat(self.fd).st_size
            try:
                done = 0
                while done < len(data):
                    done += _append(self.fd, data[done:])
            except BaseException:
                os.ftruncate(self.fd, start)  # no partial line: the log ends with the last whole step
                raise

    def sync(self) -> None:
        with write_faults(self.path):
            os.fsync(self.fd)

    def close(self) -> None:
        if self.fd < 0:
            return
        try:
            self.sync()
        finally:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
