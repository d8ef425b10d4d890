"""Taskonomy weights from a local directory: find, verify, load and save visualpriors checkpoints.

The released networks are the PyTorch port's files (PyPI package ``visualpriors``, repository
github.com/alexsax/visual-prior): one file per task and part, named ``{task}_{encoder|decoder}-<sha256>.pth``
(:data:`~rsa_toolkit.zoo.taskonomy.release.VISUALPRIORS_WEIGHT_FILES`), each ``torch.save({'state_dict': ...})``.
Users download the files (``rsa-toolkit weights fetch``, :mod:`rsa_toolkit.zoo.taskonomy.fetch`, or by hand) and point
``--weights-dir`` (or the ``RSA_TOOLKIT_WEIGHTS`` environment variable) at the folder; this module never downloads
anything and never unpickles arbitrary objects
(``torch.load(..., weights_only=True)``, no fallback).

A directory may hold, per task and part, either the visualpriors name ``{task}_{part}-<hex>.pth`` (``hex`` = the
file's SHA-256 or a prefix of it of at least 8 hex digits, the torch.hub convention) or the plain name
``{task}_{part}.pth``; ``task`` is the canonical (visualpriors) task name.

What catches a wrong file:

- a corrupted or swapped file whose name carries a hash: the hash check (:func:`verify_hash`);
- a swapped *encoder* without a hash in its name: nothing can, because the encoders of all 20 tasks have identical
  keys and shapes; only a hash tells them apart. A file whose digest is one of visualpriors' released files is
  still recognised, whatever its name;
- a decoder of another task: the output layer's channel count differs (unless both tasks have the same count, e.g.
  depth_zbuffer and reshading), and the error names the tasks whose decoder the file would fit;
- an encoder given as a decoder or the other way round: recognised by the key names.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.files import atomic_path, file_sha256
from rsa_toolkit.tasks import list_tasks, resolve_task
from rsa_toolkit.zoo.taskonomy.decoder import TaskonomyDecoder, build_decoder
from rsa_toolkit.zoo.taskonomy.encoder import TaskonomyEncoder
from rsa_toolkit.zoo.taskonomy.release import (_RELEASED_BY_DIGEST, DECODER_CHANNELS, ENCODER_ONLY_TASKS,
                                               VISUALPRIORS_SOURCE, VISUALPRIORS_WEIGHT_FILES, checkpoint_filename)
from rsa_toolkit.zoo.taskonomy.state_dict import load_into, load_state_dict_file  # part of this module's API

__all__ = [
    "WEIGHTS_ENV", "VISUALPRIORS_SOURCE", "resolve_weights_dir", "find_checkpoint", "hash_prefix_from_name",
    "verify_hash", "load_state_dict_file", "load_into", "load_taskonomy_encoder", "load_taskonomy_decoder",
    "available_taskonomy_tasks", "save_visualpriors_checkpoint",
]

#: Environment variable naming the weights directory when no ``weights_dir`` / ``--weights-dir`` is given.
WEIGHTS_ENV = "RSA_TOOLKIT_WEIGHTS"

Part = Literal["encoder", "decoder"]
_PARTS: tuple[str, ...] = ("encoder", "decoder")
_MIN_HEX = 8
_HEX_IN_NAME = re.compile(rf"-([0-9a-fA-F]{{{_MIN_HEX},64}})\.pth$")


# --------------------------------------------------------------------------------------------------------------------
# Finding files
# --------------------------------------------------------------------------------------------------------------------

def resolve_weights_dir(weights_dir: str | os.PathLike[str] | None) -> Path:
    """The weights directory: ``weights_dir`` if given, else ``$RSA_TOOLKIT_WEIGHTS``.

    Errors (``UserInputError``) when neither is set, when the directory does not exist, and when it holds no
    ``.pth`` file; the message lists the file names expected and where to obtain them.
    """
    if weights_dir is None or str(weights_dir) == "":
        from_env = os.environ.get(WEIGHTS_ENV, "")
        if not from_env:
            raise UserInputError(
                f"No Taskonomy weights directory given: pass --weights-dir DIR (weights_dir= in Python) or set the "
                f"environment variable {WEIGHTS_ENV}=DIR, where DIR holds the visualpriors checkpoint files "
                f"({{task}}_encoder-<sha256>.pth, {{task}}_decoder-<sha256>.pth, e.g. {VISUALPRIORS_WEIGHT_FILES[0]}). "
                f"{VISUALPRIORS_SOURCE}.")
        source = f"{WEIGHTS_ENV}={from_env!r}"
        path = Path(from_env).expanduser()
    else:
        path = Path(weights_dir).expanduser()
        source = f"weights_dir '{weights_dir}'"
    if not path.exists():
        raise UserInputError(
            f"Taskonomy weights directory '{path}' (from {source}) does not exist; expected a folder holding the "
            f"visualpriors checkpoint files ({_expected_files_text()}). {VISUALPRIORS_SOURCE}; then pass that "
            f"folder.")
    if not path.is_dir():
        raise UserInputError(
            f"Taskonomy weights directory '{path}' (from {source}) is a file, not a folder; pass the folder that "
            f"holds the visualpriors checkpoint files ({_expected_files_text()}).")
    if not any(p.is_file() for p in path.glob("*.pth")):
        raise UserInputError(
            f"Taskonomy weights directory '{path}' (from {source}) holds no .pth file; expected the visualpriors "
            f"checkpoint files ({_expected_files_text()}). {VISUALPRIORS_SOURCE}; then put them in '{path}'.")
    return path


def _expected_files_text() -> str:
    return ("named {task}_encoder-<sha256>.pth / {task}_decoder-<sha256>.pth, or plain {task}_encoder.pth; "
            "visualpriors' files: " + ", ".join(VISUALPRIORS_WEIGHT_FILES))


def _check_part(part: object) -> str:
    if part not in _PARTS:
        raise UserInputError(f"part must be 'encoder' or 'decoder', got {part!r}.")
    return str(part)


def find_checkpoint(weights_dir: str | os.PathLike[str], task: str, part: Part) -> Path:
    """The file in ``weights_dir`` holding ``task``'s ``part`` ("encoder" or "decoder").

    Accepts ``{task}_{part}-<hex>.pth`` (``hex``: the SHA-256 or a prefix of it of ≥ 8 hex digits) and
    ``{task}_{part}.pth``, with ``task`` the canonical visualpriors name; ``task`` itself may be an alias
    (``depth`` → ``depth_zbuffer``). Exactly one file must match: none, or several, is a ``UserInputError``
    listing the expected names (and where to obtain them) or the candidates.
    """
    task = resolve_task(task)
    part = _check_part(part)
    directory = Path(weights_dir)
    if not directory.is_dir():
        raise UserInputError(f"Taskonomy weights directory '{directory}' does not exist or is not a folder; "
                             f"expected the folder holding the visualpriors checkpoint files.")
    stem = f"{task}_{part}"
    pattern = re.compile(rf"{re.escape(stem)}(?:-[0-9a-fA-F]{{{_MIN_HEX},64}})?\.pth")
    names = sorted(p.name for p in directory.iterdir() if p.is_file())
    candidates = [n for n in names if pattern.fullmatch(n)]
    if len(candidates) > 1:
        raise UserInputError(
            f"Several checkpoints for the {task} {part} in '{directory}': {', '.join(candidates)}; expected "
            f"exactly one. Remove or move the others.")
    if candidates:
        return directory / candidates[0]
    released = checkpoint_filename(task, part)  # type: ignore[arg-type]
    expected = [n for n in (released, f"{stem}.pth") if n]
    near = [n for n in names if n.startswith(stem) and n not in expected]
    near_text = (f" Files with a similar name that do not fit the pattern {stem}[-<≥{_MIN_HEX} hex digits>].pth: "
                 f"{', '.join(near)}." if near else "")
    if released is None:
        not_released = (f" visualpriors released no {part} for {task}"
                        + (f" (it ships only the encoder); tasks with a decoder: "
                           f"{', '.join(t for t, c in DECODER_CHANNELS.items() if c and t not in ENCODER_ONLY_TASKS)}"
                           if part == "decoder" else "")
                        + ".")
    else:
        not_released = ""
    raise UserInputError(
        f"No checkpoint for the {task} {part} in '{directory}': expected a file named "
        f"{' or '.join(repr(n) for n in expected)}.{near_text}{not_released} {VISUALPRIORS_SOURCE}.")


def available_taskonomy_tasks(weights_dir: str | os.PathLike[str]) -> list[str]:
    """Canonical tasks whose encoder checkpoint is in ``weights_dir``, in :func:`rsa_toolkit.tasks.list_tasks` order.

    Only the file names are checked (not the hash or the content); a task with several encoder files counts.
    """
    directory = Path(weights_dir)
    if not directory.is_dir():
        raise UserInputError(f"Taskonomy weights directory '{directory}' does not exist or is not a folder.")
    names = [p.name for p in directory.iterdir() if p.is_file()]
    found = []
    for task in list_tasks():
        pattern = re.compile(rf"{re.escape(task.name)}_encoder(?:-[0-9a-fA-F]{{{_MIN_HEX},64}})?\.pth")
        if any(pattern.fullmatch(n) for n in names):
            found.append(task.name)
    return found


# --------------------------------------------------------------------------------------------------------------------
# Hashes
# --------------------------------------------------------------------------------------------------------------------

def hash_prefix_from_name(name: str | os.PathLike[str]) -> str | None:
    """The hex part of a ``…-<hex>.pth`` file name (≥ 8 hex digits, lower-cased), or None."""
    match = _HEX_IN_NAME.search(Path(name).name)
    return match.group(1).lower() if match else None


def verify_hash(path: str | os.PathLike[str]) -> str:
    """The file's SHA-256 (hex, streamed), after checking it against the hex part of the name, if any.

    torch.hub convention: ``name-<hex>.pth`` promises that the SHA-256 starts with ``hex`` (≥ 8 hex digits). A
    mismatch is a ``UserInputError``: the file is corrupted or is not the checkpoint its name claims.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"Checkpoint '{path}' does not exist or is not a file.")
    digest = file_sha256(path)
    prefix = hash_prefix_from_name(path)
    if prefix is not None and not digest.startswith(prefix):
        raise UserInputError(
            f"Checkpoint '{path}' fails its hash check: the name promises a SHA-256 starting with {prefix}, the "
            f"file's SHA-256 is {digest}; the file is corrupted or is not the checkpoint its name claims. Download "
            f"it again (or, for a file you made yourself, rename it to end in -{digest}.pth).")
    return digest


def _check_released_identity(digest: str, task: str, part: str, path: Path) -> None:
    """A file whose digest is one of visualpriors' released files must be that task's and part's file."""
    released_as = _RELEASED_BY_DIGEST.get(digest)
    if released_as is not None and released_as != f"{task}_{part}":
        raise UserInputError(
            f"Checkpoint '{path}' was loaded as the {task} {part}, but its SHA-256 {digest} is that of visualpriors' "
            f"{released_as}.pth: the file is another task's checkpoint under a wrong name. Rename it, and put the "
            f"{task} {part} ('{checkpoint_filename(task, part)}') in its place.")  # type: ignore[arg-type]


def load_taskonomy_encoder(task: str, weights_dir: str | os.PathLike[str] | None = None, *,
                           normalize_outputs: bool = False) -> tuple[TaskonomyEncoder, str]:
    """``task``'s Taskonomy encoder with its weights from the local directory, and the checkpoint's SHA-256.

    ``weights_dir`` defaults to ``$RSA_TOOLKIT_WEIGHTS``; ``normalize_outputs`` is passed to
    :class:`TaskonomyEncoder`. The module is in eval mode. The hash in the file's name (if any) is verified: it is
    the only thing that tells one task's encoder from another's (all encoders have the same shapes).
    """
    task = resolve_task(task)
    directory = resolve_weights_dir(weights_dir)
    path = find_checkpoint(directory, task, "encoder")
    digest = verify_hash(path)
    _check_released_identity(digest, task, "encoder", path)
    state_dict = load_state_dict_file(path)
    encoder = TaskonomyEncoder(normalize_outputs=normalize_outputs)
    load_into(encoder, state_dict, what=f"Checkpoint '{path}' ({task} encoder)")
    encoder.eval()
    return encoder, digest


def load_taskonomy_decoder(task: str,
                           weights_dir: str | os.PathLike[str] | None = None) -> tuple[TaskonomyDecoder, str]:
    """``task``'s Taskonomy decoder (:func:`build_decoder`) with its weights, and the checkpoint's SHA-256.

    Tasks without a released decoder (:data:`ENCODER_ONLY_TASKS`: colorization, room_layout, vanishing_point) are a
    ``UserInputError``. The module is in eval mode.
    """
    task = resolve_task(task)
    if task in ENCODER_ONLY_TASKS:
        raise UserInputError(
            f"visualpriors released no decoder for '{task}' (only its encoder); tasks with a decoder: "
            f"{', '.join(t for t, c in DECODER_CHANNELS.items() if c and t not in ENCODER_ONLY_TASKS)}.")
    directory = resolve_weights_dir(weights_dir)
    path = find_checkpoint(directory, task, "decoder")
    digest = verify_hash(path)
    _check_released_identity(digest, task, "decoder", path)
    state_dict = load_state_dict_file(path)
    decoder = build_decoder(task)
    load_into(decoder, state_dict, what=f"Checkpoint '{path}' ({task} decoder)")
    decoder.eval()
    return decoder, digest


# --------------------------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------------------------

def save_visualpriors_checkpoint(module: nn.Module, directory: str | os.PathLike[str], task: str, part: Part, *,
                                 with_hash: bool = True) -> Path:
    """Save ``{'state_dict': module.state_dict()}`` as ``{task}_{part}-<sha256>.pth`` (or ``{task}_{part}.pth``).

    ``task`` may be an alias; the file carries the canonical name. Written to a temporary file in ``directory``,
    hashed, then renamed: no half-written checkpoint is ever visible under a final name. Returns the path.
    """
    task = resolve_task(task)
    part = _check_part(part)
    directory = Path(directory)
    if not directory.is_dir():
        raise UserInputError(f"directory '{directory}' does not exist or is not a folder; create it first.")
    fd, staging_name = tempfile.mkstemp(prefix=f".{task}_{part}.", suffix=".pth", dir=directory)
    os.close(fd)
    staging = Path(staging_name)
    try:
        torch.save({"state_dict": module.state_dict()}, staging)
        name = f"{task}_{part}-{file_sha256(staging)}.pth" if with_hash else f"{task}_{part}.pth"
        with atomic_path(directory / name) as tmp:
            os.replace(staging, tmp)
    finally:
        staging.unlink(missing_ok=True)
    return directory / name
