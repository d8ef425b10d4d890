"""Writing outputs so that nothing is ever half-written: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rsa_toolkit.errors import UserInputError

__all__ = ["check_output_path", "atomic_path", "current_umask", "file_sha256", "WRITE_FAULTS", "write_fault_message",
           "write_faults"]


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
