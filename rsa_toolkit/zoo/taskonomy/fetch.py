"""Download the visualpriors Taskonomy checkpoints into a folder: resumable, and verified against their sha256.

This is the only code in rsa-toolkit that downloads anything; every other command reads local files only
(``--weights-dir``, :mod:`rsa_toolkit.zoo.taskonomy.weights`). It runs only when asked
(``rsa-toolkit weights fetch`` or :func:`fetch_weights`), uses the standard library (``urllib.request``) and
contacts only ``base_url``.

The released files (:data:`~rsa_toolkit.zoo.taskonomy.net.VISUALPRIORS_WEIGHT_FILES`) are named
``{task}_{encoder|decoder}-<sha256>.pth`` and live under :data:`VISUALPRIORS_BASE_URL` (the URL visualpriors itself
downloads them from). Per file:

1. ``DEST/<name>`` already there with the sha256 of its name: skipped ("already present"), no request is made.
2. Otherwise the bytes go to ``DEST/.<name>.part``. If that partial file exists, its bytes are hashed and the rest is
   asked for with an HTTP ``Range: bytes=<size>-`` request; a server that ignores the range (status 200) is read
   from byte 0 again, and a server that refuses it (416) has the partial file dropped and the file fetched whole.
3. The sha256 is computed while streaming; it must equal the one in the name, else the partial file is deleted and
   the error names the file, the expected and the computed hash. Only then is the file renamed into place
   (``os.replace``), so ``DEST/<name>`` is always complete and verified.

A transfer cut short (fewer bytes than announced, a reset connection, a timeout) keeps its partial file: running the
same command again resumes it. Every failure is a one-line :class:`~rsa_toolkit.errors.UserInputError`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.tasks import list_tasks, resolve_task
from rsa_toolkit.zoo.taskonomy import net as _net

__all__ = ["VISUALPRIORS_BASE_URL", "FETCH_PARTS", "DEFAULT_TIMEOUT", "FetchProgress", "released_checkpoints",
           "fetch_weights"]

#: Where visualpriors publishes its PyTorch checkpoints; a file's URL is this plus its name.
VISUALPRIORS_BASE_URL = "https://github.com/alexsax/visual-prior/raw/networks/assets/pytorch/"

#: The parts a task's checkpoint comes in; RSA needs only the encoders.
FETCH_PARTS: tuple[str, ...] = ("encoder", "decoder")

#: Seconds a connection or a read may stall before the download is abandoned (and can be resumed).
DEFAULT_TIMEOUT = 60.0

_CHUNK = 1 << 20
_RELEASED_NAME = re.compile(r"(?P<stem>[a-z0-9_]+_(?:encoder|decoder))-(?P<sha>[0-9a-f]{64})\.pth")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

Event = Literal["present", "not_released", "start", "data", "done"]


@dataclass(frozen=True)
class FetchProgress:
    """One step of :func:`fetch_weights`, for a progress display (the library itself prints nothing).

    ``event``: ``"present"`` (the file is already in DEST, verified; nothing fetched), ``"not_released"`` (``name`` is
    ``"{task}_{part}"``: visualpriors released no such checkpoint), ``"start"`` (a request was answered; ``done`` bytes
    are already on disk from an earlier, interrupted run), ``"data"`` (``done`` bytes of ``total`` so far, after each
    block), ``"done"`` (downloaded and verified). ``total`` is None where the server does not announce a size;
    ``resumed_from`` is the number of bytes this transfer did not have to fetch again.
    """

    name: str
    event: Event
    done: int = 0
    total: int | None = None
    resumed_from: int = 0


ProgressCallback = Callable[[FetchProgress], None]


# --------------------------------------------------------------------------------------------------------------------
# What to fetch
# --------------------------------------------------------------------------------------------------------------------

def released_checkpoints(tasks: Iterable[str] | None = None, *, parts: Sequence[str] = ("encoder",),
                         files: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """The released file names for ``tasks`` × ``parts``, and the ``"{task}_{part}"`` pairs that were not released.

    ``tasks``: names or aliases (``depth`` → ``depth_zbuffer``); None means all 20. ``files``: the release's file
    names, by default :data:`~rsa_toolkit.zoo.taskonomy.net.VISUALPRIORS_WEIGHT_FILES`. Unknown tasks are a
    ``UserInputError`` with the closest names; so is a task none of whose requested parts was released (it would
    fetch nothing), naming the parts that exist; with ``tasks=None`` such a task is only listed as not released.
    """
    task_names = _check_tasks(tasks)
    explicit = tasks is not None  # with all tasks, one without the requested part is only reported
    part_names = _check_parts(parts)
    by_stem = _release_by_stem(files)
    wanted: list[str] = []
    not_released: list[str] = []
    nothing: list[str] = []
    for task in task_names:
        found = [by_stem[f"{task}_{part}"] for part in part_names if f"{task}_{part}" in by_stem]
        if not found and explicit:
            nothing.append(task)
        wanted.extend(found)
        not_released.extend(f"{task}_{part}" for part in part_names if f"{task}_{part}" not in by_stem)
    if nothing:
        listed = "; ".join(f"{t} (released: {', '.join(_released_parts(t, by_stem)) or 'nothing'})" for t in nothing)
        raise UserInputError(
            f"No checkpoint in the visualpriors release for the requested part{'s' if len(part_names) > 1 else ''} "
            f"({', '.join(part_names)}) of {listed}; drop {'it' if len(nothing) == 1 else 'them'} from --tasks or "
            f"ask for another part with --parts.")
    return wanted, not_released


def _check_tasks(tasks: Iterable[str] | None) -> list[str]:
    if tasks is None:
        return [t.name for t in list_tasks()]
    if isinstance(tasks, str):
        tasks = [tasks]
    names = list(dict.fromkeys(resolve_task(t) for t in tasks))
    if not names:
        raise UserInputError("tasks is empty; name at least one task (e.g. depth normal), or 'all'.")
    return names


def _check_parts(parts: Sequence[str]) -> list[str]:
    if isinstance(parts, str):
        parts = [parts]
    bad = [p for p in parts if p not in FETCH_PARTS]
    if bad or not parts:
        raise UserInputError(f"parts must be one or both of {', '.join(FETCH_PARTS)}, got "
                             f"{', '.join(map(repr, bad)) if bad else 'none'}.")
    return list(dict.fromkeys(parts))


def _release_by_stem(files: Sequence[str] | None) -> dict[str, str]:
    names = _net.VISUALPRIORS_WEIGHT_FILES if files is None else files
    by_stem: dict[str, str] = {}
    for name in names:
        match = _RELEASED_NAME.fullmatch(name)
        if match is None:
            raise UserInputError(f"release file name {name!r} does not have the form "
                                 f"{{task}}_{{encoder|decoder}}-<64 hex digits of its sha256>.pth.")
        by_stem[match["stem"]] = name
    return by_stem


def _released_parts(task: str, by_stem: dict[str, str]) -> list[str]:
    return [part for part in FETCH_PARTS if f"{task}_{part}" in by_stem]


# --------------------------------------------------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------------------------------------------------

def fetch_weights(dest: str | os.PathLike[str], tasks: Iterable[str] | None, *,
                  parts: Sequence[str] = ("encoder",), base_url: str = VISUALPRIORS_BASE_URL,
                  files: Sequence[str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                  progress: ProgressCallback | None = None) -> list[Path]:
    """Download ``tasks``' visualpriors checkpoints into ``dest``; return their paths (fetched or already present).

    Args:
        dest: the folder to fill (created if missing; its parent must exist). Use it as ``--weights-dir``.
        tasks: task names or aliases; None for all 20.
        parts: ``("encoder",)`` (default; what RSA needs), ``("decoder",)`` or both. A requested part that was not
            released (the decoders of colorization, room_layout, vanishing_point) is reported through ``progress``
            as ``"not_released"`` and skipped.
        base_url: the folder URL (http or https) holding the files, default :data:`VISUALPRIORS_BASE_URL`.
        files: the release's file names ``{task}_{part}-<sha256>.pth``, default
            :data:`~rsa_toolkit.zoo.taskonomy.net.VISUALPRIORS_WEIGHT_FILES` (looked up at call time).
        timeout: seconds a connection or read may stall.
        progress: called with a :class:`FetchProgress` at each step; None for silence.

    Every check on the arguments happens before the first request. See the module docstring for the skip, resume
    and verify rules. Errors (``UserInputError``, one line): unknown tasks, bad arguments, an HTTP error status, an
    unreachable server, an interrupted transfer (the partial file is kept for resuming), a hash mismatch (the partial
    file is deleted). Files fetched before an error stay in ``dest``, complete and verified.
    """
    names, not_released = released_checkpoints(tasks, parts=parts, files=files)
    base = _check_base_url(base_url)
    folder = _check_dest(dest)
    if timeout is None or not timeout > 0:
        raise UserInputError(f"timeout must be a positive number of seconds, got {timeout!r}.")
    report = progress or (lambda event: None)
    for stem in not_released:
        report(FetchProgress(stem, "not_released"))
    created = not folder.exists()
    folder.mkdir(exist_ok=True)
    try:
        return [_fetch_one(folder, name, base + urllib.parse.quote(name), timeout, report) for name in names]
    finally:
        if created and not any(folder.iterdir()):
            folder.rmdir()


def _check_base_url(base_url: str) -> str:
    parsed = urllib.parse.urlsplit(str(base_url))
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UserInputError(f"base URL must be an http:// or https:// URL of the folder holding the files, got "
                             f"{base_url!r} (default {VISUALPRIORS_BASE_URL}).")
    return str(base_url) if str(base_url).endswith("/") else f"{base_url}/"


def _check_dest(dest: str | os.PathLike[str]) -> Path:
    folder = Path(dest).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"destination '{folder}' exists and is not a folder; name a folder for the checkpoints.")
    parent = folder.parent if str(folder.parent) else Path(".")
    if not folder.exists() and not parent.is_dir():
        raise UserInputError(f"cannot create destination '{folder}': its parent folder '{parent}' does not exist.")
    if not os.access(folder if folder.exists() else parent, os.W_OK | os.X_OK):
        raise UserInputError(f"destination '{folder}' is not writable; choose another folder.")
    return folder


def _expected_sha256(name: str) -> str:
    match = _RELEASED_NAME.fullmatch(name)
    assert match is not None  # checked in _release_by_stem
    return match["sha"]


def _sha256_of(path: Path) -> tuple[hashlib._Hash, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
            size += len(block)
    return digest, size


def _fetch_one(folder: Path, name: str, url: str, timeout: float, report: ProgressCallback) -> Path:
    final = folder / name
    partial = folder / f".{name}.part"
    expected = _expected_sha256(name)
    if final.is_file() and _sha256_of(final)[0].hexdigest() == expected:
        report(FetchProgress(name, "present"))
        return final
    # A file under the final name with another hash is damaged: it is replaced once the new copy is verified.
    digest, offset = _sha256_of(partial) if partial.is_file() else (hashlib.sha256(), 0)
    if offset and digest.hexdigest() == expected:  # an earlier run got every byte but stopped before the rename
        return _install(partial, final, name, offset, offset, report)
    response = _open(url, offset, name, timeout)
    if response is None:  # the server refused the range (416): the partial file is stale
        partial.unlink()
        digest, offset = hashlib.sha256(), 0
        response = _open(url, 0, name, timeout)
        assert response is not None
    with response:
        resumed, total = _resume_point(response, offset)
        if resumed != offset:  # the server sent the whole file: start over
            digest = hashlib.sha256()
        _stream(response, partial, name, url, digest, resumed, total, report)
    got = digest.hexdigest()
    if got != expected:
        partial.unlink(missing_ok=True)
        raise UserInputError(
            f"Downloaded '{name}' from {url} fails its hash check: expected sha256 {expected} (from its name), got "
            f"{got}; the partial file was deleted. Run the command again; if it fails again the server does not "
            f"serve the released file (check --base-url).")
    return _install(partial, final, name, resumed, partial.stat().st_size, report)


def _install(partial: Path, final: Path, name: str, resumed: int, size: int, report: ProgressCallback) -> Path:
    os.replace(partial, final)
    report(FetchProgress(name, "done", size, size, resumed))
    return final


def _open(url: str, offset: int, name: str, timeout: float) -> http.client.HTTPResponse | None:
    """The response for ``url`` (from byte ``offset`` if > 0); None when the server answers 416 to the range."""
    headers = {"User-Agent": "rsa-toolkit (weights fetch)", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) only, checked above
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return None
        raise UserInputError(
            f"Downloading '{name}' failed: HTTP {exc.code} {exc.reason} from {url}; check --base-url (default "
            f"{VISUALPRIORS_BASE_URL}) and that the file is published there.") from None
    except urllib.error.URLError as exc:
        raise UserInputError(
            f"Downloading '{name}' failed: cannot reach {url} ({_reason(exc.reason)}); check the network "
            f"connection and --base-url.") from None
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise UserInputError(
            f"Downloading '{name}' failed: no answer from {url} ({_reason(exc)}); check the network connection "
            f"and --base-url.") from None


def _reason(exc: object) -> str:
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "timed out"
    return str(exc).replace("\n", " ") or type(exc).__name__


def _resume_point(response: http.client.HTTPResponse, offset: int) -> tuple[int, int | None]:
    """Where the body starts in the file (``offset`` for a honoured range, 0 otherwise) and the file's size."""
    length = response.headers.get("Content-Length")
    body = int(length) if length and length.isdigit() else None
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch((response.headers.get("Content-Range") or "").strip())
        if match is not None and int(match[1]) == offset:
            size = match[3]
            return offset, int(size) if size != "*" else (offset + body if body is not None else None)
        raise UserInputError(
            f"The server answered the resume request for byte {offset} with Content-Range "
            f"{response.headers.get('Content-Range')!r} from {response.url}; delete the partial file and run again.")
    return 0, body


def _stream(response: http.client.HTTPResponse, partial: Path, name: str, url: str, digest: hashlib._Hash,
            start: int, total: int | None, report: ProgressCallback) -> None:
    done = start
    report(FetchProgress(name, "start", done, total, start))
    fh: BinaryIO
    with partial.open("r+b" if start else "wb") as fh:
        fh.seek(start)
        fh.truncate()
        try:
            while block := response.read(_CHUNK):
                fh.write(block)
                digest.update(block)
                done += len(block)
                report(FetchProgress(name, "data", done, total, start))
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            fh.flush()
            raise UserInputError(_interrupted(name, url, done, total, partial, _reason(exc))) from None
        fh.flush()
        os.fsync(fh.fileno())
    if total is not None and done < total:
        raise UserInputError(_interrupted(name, url, done, total, partial, "the connection closed early"))


def _interrupted(name: str, url: str, done: int, total: int | None, partial: Path, why: str) -> str:
    of = f" of {total:,}" if total is not None else ""
    return (f"Downloading '{name}' from {url} stopped after {done:,}{of} bytes ({why}); the bytes so far are kept in "
            f"'{partial}': run the same command again to resume.")
