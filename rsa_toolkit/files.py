"""Writing outputs so that nothing is ever half-written: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from rsa_toolkit.errors import UserInputError

__all__ = ["check_output_path", "atomic_path", "current_umask", "file_sha256", "WRITE_FAULTS", "write_fault_message",
           "write_faults", "check_name", "safe_child", "NAME_RULE", "STALE_AFTER_S", "remove_stale_temporaries",
           "remove_files_untouched_since"]

#: what a name that becomes a file name (teacher, layer, task) may be, for error messages
NAME_RULE = ("a plain name: no '/' or '\\', not '.' or '..', no NUL or control characters (e.g. 'depth', "
             "'features.3')")


def check_name(name: object, *, what: str = "name") -> str:
    """``name`` when it is safe as one file-name component (teacher, layer and task names become file names);
    otherwise a :class:`UserInputError` naming it and what is allowed (:data:`NAME_RULE`). Names are data, never
    paths: no separators, no ``.``/``..``, no NUL or control characters, not empty."""
    if not isinstance(name, str):
        raise UserInputError(f"{what} {name!r}: expected a string, got {type(name).__name__}.")
    problem = None
    if not name:
        problem = "is empty"
    elif name in (".", ".."):
        problem = "is a directory reference"
    elif "/" in name or "\\" in name:
        problem = "contains a path separator" + (" (an absolute path)" if name.startswith(("/", "\\")) else "")
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        problem = "contains NUL or a control character"
    if problem:
        raise UserInputError(f"{what} {name!r} {problem}; names are used as file names, so each must be {NAME_RULE}.")
    return name


def safe_child(directory: str | os.PathLike[str], name: str, *, suffix: str = "", what: str = "name") -> Path:
    """``directory / (name + suffix)``, after :func:`check_name` on ``name`` and a check that the result lies in
    ``directory`` (symbolic links resolved): the one way a name becomes a path inside an output directory."""
    directory = Path(directory)
    child = directory / (check_name(name, what=what) + suffix)
    base = directory.resolve()
    if child.resolve().parent != base:
        raise UserInputError(f"{what} {name!r}: the path '{child}' would lie outside the directory '{directory}'; "
                             f"each name must be {NAME_RULE}.")
    return child


def check_output_path(path: str | os.PathLike[str], *, what: str = "output") -> Path:
    """The output path, after checking that its directory exists and is writable (a user mistake otherwise)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserInputError(f"{what} path '{path}': directory '{parent}' does not exist; create it first.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserInputError(f"{what} path '{path}': directory '{parent}' is not writable; choose another place.")
    if path.is_dir():
        raise UserInputError(f"{what} path '{path}' is a directory; expected a file name.")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; on success rename it onto ``path``, on error delete it.

    The temporary name keeps the target's suffix, so writers that pick a format from the extension still work.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_sha256(path: str | os.PathLike[str], *, chunk: int = 1 << 22) -> str:
    """The sha256 hex digest of a file's bytes, read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
#: errno values of a destination that cannot take the write: full, over quota, read-only, or forbidden
WRITE_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def write_fault_message(path: str | os.PathLike[str], exc: OSError, *, fix: str = "choose another --out") -> str | None:
    """One line for an OSError of :data:`WRITE_FAULTS` while writing ``path`` (what, where and the fix); None for
    any other error (a bug or a fault worth its traceback)."""
    if exc.errno not in WRITE_FAULTS:
        return None
    reason = os.strerror(exc.errno)
    advice = f"free space or {fix}" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else fix
    return f"cannot write '{path}': {reason}; {advice}."


@contextlib.contextmanager
def write_faults(path: str | os.PathLike[str], *, fix: str = "choose another --out") -> Iterator[None]:
    """Turn a full, read-only or forbidden destination met in the block into one :class:`UserInputError` naming
    ``path`` (:func:`write_fault_message`); enter it outside :func:`atomic_path`, whose temporary file is then
    already gone."""
    try:
        yield
    except OSError as exc:
        message = write_fault_message(path, exc, fix=fix)
        if message is None:
            raise
        raise UserInputError(message) from None


#: A temporary file untouched this long belongs to a killed writer, not to one still at work.
STALE_AFTER_S = 600.0


def remove_stale_temporaries(target: str | os.PathLike[str], *, now: float | None = None) -> list[Path]:
    """Remove the temporary files that :func:`atomic_path` left for ``target`` when its writer was killed (hidden
    ``.<stem>.<random><suffix>`` files beside it, untouched for :data:`STALE_AFTER_S`); returns what was removed."""
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    limit = (now if now is not None else time.time()) - STALE_AFTER_S
    return remove_files_untouched_since(
        directory.glob(f".{glob.escape(target.stem)}.*{glob.escape(target.suffix)}"), limit)


def remove_files_untouched_since(paths: Iterable[Path], limit: float) -> list[Path]:
    """Unlink the regular files among ``paths`` last modified before ``limit`` (a ``time.time()`` value): the one rule
    by which temporaries of killed writers are swept, beside an output or in a cache. Returns what was removed."""
    removed = []
    for path in paths:
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
                removed.append(path)
        except OSError:  # gone meanwhile, or not ours to remove: harmless
            continue
    return removed
