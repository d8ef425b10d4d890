"""A run directory: what an amalgamation run writes, and the rules for starting, resuming or replacing one.

==================  ===============================================================================================
file                holds
==================  ===============================================================================================
``config.json``     the complete settings of the run (it identifies the run: targets, method, seed, ...)
``aux.json``        the auxiliary and why: with ``--auto-aux`` the RSA ranking of the zoo with scores
``knowledge.json``  the teachers' knowledge: cache keys, weights hashes, representation statistics
``log.jsonl``       one JSON object per training step: losses, weights, learning rate, balance
``checkpoint.pt``   the latest checkpoint (model, optimisers, schedulers, weighting, RNG and data order)
``checkpoint.prev.pt`` the one before it, used (with a warning) when the latest cannot be read
``student.pt``      the final student: ``{"state_dict", "spec"}``
``run.json``        summary: steps done, finished, parameters, seconds, balance step
``metrics.json``    ``amalgamate eval``: every metric; ``metrics.csv`` the same as a table
``examples.npz``    ``amalgamate eval``: a few test frames with student, teacher and ground-truth outputs
==================  ===============================================================================================

Every file is written atomically (temporary name ``.<stem>.<random><suffix>``, then rename); ``log.jsonl`` grows by
whole lines (:class:`RunLog`: one write per line, a failed write cut back off). A directory that holds another run is
refused unless ``resume`` (continue it) or ``overwrite`` (delete the files above and the old run's ``report/`` files,
and only those) is given; a directory with other files is never used. Temporary files left by a killed writer are
ours too: they never block ``overwrite`` and are removed when a run starts or resumes.

Run state always resumes: a partial last log line (a kill or a full disk mid-write) is skipped with a warning and cut
away before the log grows again; the JSON files are read through :meth:`RunDir.read_json`, whose error names the file
and the fix; a full, read-only or forbidden disk is one error naming the file (:func:`rsa_toolkit.files.write_faults`).
Warnings are :class:`RunWarning` (the CLI prints each as one line).
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rsa_toolkit.files import atomic_path, write_faults
from rsa_toolkit.errors import UserInputError

from amalgamate import run_files
from amalgamate.run_files import RunLog, RunWarning, json_bytes, read_json, write_bytes

__all__ = ["RUN_FILES", "RESUME_CHANGEABLE", "RunDir"]

RUN_FILES = ("config.json", "aux.json", "knowledge.json", "log.jsonl", "checkpoint.pt", "checkpoint.prev.pt",
             "student.pt", "run.json", "metrics.json", "metrics.csv", "examples.npz")
CHECKPOINTS = ("checkpoint.pt", "checkpoint.prev.pt")  # the newest first
REPORT_DIR = "report"  # amalgamate report's default output directory, inside the (first) run directory
_REPORT_PATTERNS = ("table*_*.md", "table*_*.csv", "curves.html", "predictions-*.png", "report.md")
#: Settings that may differ on --resume: they do not change what is computed.
RESUME_CHANGEABLE = frozenset({"device", "threads", "checkpoint_every", "cache_dir", "eval_frames", "eval_shard",
                               "eval_images"})
#: What each JSON file of a run holds, and what to do when it is damaged (the second line of its error).
_JSON_FILES = {
    "config.json": ("the run's settings", "restore it from a copy, or start the run again with --overwrite"),
    "aux.json": ("the auxiliary's choice", "restore it from a copy, or start the run again with --overwrite"),
    "knowledge.json": ("the teachers' knowledge record", "start the run again with --overwrite"),
    "run.json": ("the run's summary", "delete it and rewrite it with amalgamate train --resume {run}"),
    "metrics.json": ("the run's metrics", "delete it and rewrite it with amalgamate eval {run}"),
}
_REQUIRED_KEYS = {"config.json": ("targets", "method"), "aux.json": ("chosen",)}


def _is_temp_of(name: str, target: str) -> bool:
    """Whether ``name`` is a temporary file of :func:`rsa_toolkit.files.atomic_path` for ``target``."""
    stem, suffix = os.path.splitext(target)
    return name.startswith(f".{stem}.") and name.endswith(suffix) and len(name) > len(stem) + len(suffix) + 2


class RunDir:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    # --- starting ---------------------------------------------------------------------------------------------------

    def has_run(self) -> bool:
        return self.file("config.json").is_file()

    def check_new(self, *, overwrite: bool) -> None:
        """Refuse a directory that cannot take a new run (changes nothing)."""
        if self.path.exists() and not self.path.is_dir():
            raise UserInputError(f"run_dir='{self.path}' is a file; give a directory for the run.", parameter="run_dir")
        if not self.path.parent.is_dir():
            raise UserInputError(f"run_dir='{self.path}': directory '{self.path.parent}' does not exist; create it "
                                 "first.", parameter="run_dir")
        if self.has_run():
            if not overwrite:
                stored = self.read_json("config.json")
                raise UserInputError(
                    f"run_dir='{self.path}' holds another run (targets {', '.join(stored.get('targets', []))}, method "
                    f"{stored.get('method')}); continue it with resume=, replace it with overwrite=, or choose a "
                    "new directory.", parameter=("run_dir", "resume", "overwrite"))
        ours = (*RUN_FILES, REPORT_DIR)
        others = sorted(p.name for p in self.path.iterdir() if p.name not in ours and not self._is_temp(p.name)) \
            if self.path.is_dir() else []
        if others or (self.path.is_dir() and any(not self._is_temp(p.name) for p in self.path.iterdir())
                      and not self.has_run()):
            shown = others or sorted(p.name for p in self.path.iterdir())
            raise UserInputError(f"run_dir='{self.path}' is not empty and holds no amalgamate run "
                                 f"({', '.join(shown[:5])}{' ...' if len(shown) > 5 else ''}); choose a new or empty "
                                 "directory.", parameter="run_dir")

    def start(self, *, overwrite: bool) -> None:
        """Make the directory ready for a new run (``overwrite``: delete a previous run's files first)."""
        self.check_new(overwrite=overwrite)
        self.remove_stale_temps()
        for name in RUN_FILES:
            with write_faults(self.file(name)):
                self.file(name).unlink(missing_ok=True)
        report = self.file(REPORT_DIR)
        if report.is_dir():  # the old run's report is stale; files of other kinds in it stay
            for pattern in _REPORT_PATTERNS:
                for path in report.glob(pattern):
                    path.unlink()
            if not any(report.iterdir()):
                report.rmdir()
        with write_faults(self.path):
            self.path.mkdir(exist_ok=True)

    def check_writable(self, *, what: str = "--out", fix: str = "choose another --out") -> None:
        """Refuse a run directory that cannot be written (read-only, or no permission), before any long work: the
        directory itself, or the one it will be made in."""
        where = self.path if self.path.is_dir() else self.path.parent
        if not os.access(where, os.W_OK | os.X_OK):
            raise UserInputError(f"{what} '{self.path}': cannot write in '{where}' (read-only or no permission); "
                                 f"{fix}.")

    @staticmethod
    def _is_temp(name: str) -> bool:
        return any(_is_temp_of(name, target) for target in RUN_FILES)

    def remove_stale_temps(self, before: float | None = None) -> list[Path]:
        """Delete the temporary files a killed writer left (``.checkpoint.*.pt``, ...), those older than ``before``
        (a time.time(); default: now); returns them."""
        before = time.time() if before is None else before
        if not self.path.is_dir():
            return []
        stale = [p for p in self.path.iterdir() if self._is_temp(p.name) and p.is_file()
                 and p.stat().st_mtime <= before]
        for p in stale:
            with write_faults(p):
                p.unlink(missing_ok=True)
        return stale

    def stored_config(self, requested: Mapping[str, Any] | None) -> dict[str, Any]:
        """The run's settings for ``--resume``, after checking ``requested`` (explicitly given settings) against them:
        the targets must be the same tasks, other settings equal unless in :data:`RESUME_CHANGEABLE` (applied)."""
        if not self.has_run():
            raise UserInputError(f"resume: '{self.path}' holds no run (no config.json); start one without "
                                 "resume=.", parameter="resume")
        stored = self.read_json("config.json")
        changes = {k: v for k, v in (requested or {}).items() if v is not None}
        if "targets" in changes:
            from amalgamate.zoo import resolve_targets

            asked = resolve_targets(list(changes.pop("targets")))
            if asked != list(stored["targets"]):
                raise UserInputError(
                    f"resume: the run in '{self.path}' was trained for targets {', '.join(stored['targets'])}, "
                    f"not {', '.join(asked)}; resume with the same targets, or start a new run with overwrite= or "
                    "another run_dir=.", parameter=("resume", "overwrite", "run_dir"))
        for key, value in changes.items():
            if key in RESUME_CHANGEABLE:
                stored[key] = value
            elif _normalised(value) != _normalised(stored.get(key)):
                raise UserInputError(
                    f"resume: the run in '{self.path}' has {key.replace('_', '-')} = {stored.get(key)!r}, got "
                    f"{value!r}; a resumed run keeps its settings (only {', '.join(sorted(RESUME_CHANGEABLE))} may "
                    "change). Drop the option, or start a new run.", parameter="resume")
        return stored

    def config(self, stored: Mapping[str, Any] | None = None, *, checked: bool = False) -> Any:
        """The run's settings (``stored``, default: config.json's) as an :class:`amalgamate.config.AmalgamateConfig`,
        ``checked`` with :func:`amalgamate.config.check_config`; settings no config can hold (a damaged file) are one
        error naming config.json."""
        from amalgamate.config import check_config, config_from_dict

        stored = self.read_json("config.json") if stored is None else stored
        try:
            config = config_from_dict(stored)
            return check_config(config) if checked else config
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # UserInputError is a ValueError
            what, fix = _JSON_FILES["config.json"]
            raise UserInputError(f"'{self.file('config.json')}' is damaged ({exc}); it holds {what}; {fix}.") from None

    # --- files ------------------------------------------------------------------------------------------------------

    def read_json(self, name: str) -> Any:
        """A JSON file of the run, checked (:func:`read_json`): a damaged one is one error naming it and the fix."""
        what, fix = _JSON_FILES.get(name, (f"the run's {name}", "start the run again with --overwrite"))
        if not self.file(name).is_file():
            raise UserInputError(f"'{self.path}' has no {name}; is it an amalgamate run directory?")
        return read_json(self.file(name), what=what, fix=fix.format(run=self.path), keys=_REQUIRED_KEYS.get(name, ()))

    def write_json(self, name: str, data: Any, *, fix: str = "choose another --out") -> None:
        write_bytes(self.file(name), json_bytes(data), fix=fix)

    def save_torch(self, name: str, data: Any) -> Path:
        buffer = io.BytesIO()  # torch names the archive inside after the file name: save through a buffer
        torch.save(data, buffer)
        return write_bytes(self.file(name), buffer.getvalue())

    def load_torch(self, name: str) -> Any:
        path = self.file(name)
        if not path.is_file():
            raise UserInputError(f"'{self.path}' has no {name}; train the run first (amalgamate train --out "
                                 f"{self.path}).")
        try:
            return _torch_load(path)
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign file is the user's input
            raise UserInputError(f"'{path}' could not be read as a checkpoint ({type(exc).__name__}: {exc}).") from None

    # --- checkpoints ------------------------------------------------------------------------------------------------

    def save_checkpoint(self, state: Any) -> Path:
        """Write ``state`` as ``checkpoint.pt``, the one before it kept as ``checkpoint.prev.pt``: the new file is
        complete (and synced) before either rename, and each rename is atomic, so a kill at any moment leaves at
        least one whole checkpoint."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        newest, older = (self.file(n) for n in CHECKPOINTS)
        with write_faults(newest), atomic_path(newest) as tmp:
            run_files.fsync_write(tmp, buffer.getvalue())
            if newest.is_file():
                os.replace(newest, older)
        return newest

    def load_checkpoint(self, *, repair: bool = False) -> dict[str, Any] | None:
        """The newest readable checkpoint (None when the run has none yet); when ``checkpoint.pt`` cannot be read,
        ``checkpoint.prev.pt`` with a :class:`RunWarning` (``repair``: it then replaces the unreadable one, so the
        next checkpoint keeps it as the older); when neither can, one error naming both."""
        problems: list[str] = []
        for name in CHECKPOINTS:
            path = self.file(name)
            if not path.is_file():
                continue
            try:
                ckpt = _torch_load(path)
                if not isinstance(ckpt, dict) or "step" not in ckpt:
                    raise ValueError("not a training checkpoint")
            except Exception as exc:  # noqa: BLE001 - a truncated or damaged file is worked around or reported
                problems.append(f"'{path}' ({_short(exc)})")
                continue
            if problems:
                warnings.warn(f"{problems[0]} cannot be read; resuming from the older '{path}' (step "
                              f"{int(ckpt['step'])}).", RunWarning, stacklevel=2)
                if repair:
                    with write_faults(self.file(CHECKPOINTS[0])):
                        os.replace(path, self.file(CHECKPOINTS[0]))
            return ckpt
        if problems:
            raise UserInputError(f"no checkpoint of '{self.path}' can be read: {' and '.join(problems)}; start the run "
                                 f"again with --overwrite.")
        return None

    # --- the log ----------------------------------------------------------------------------------------------------

    def log_entries(self, *, repair: bool = False) -> list[dict[str, Any]]:
        """The log's entries. A partial last line (the run was killed, or the disk filled, mid-write) is skipped
        with a :class:`RunWarning`; with ``repair`` it is also cut off the file. A damaged line before the last
        is an error."""
        path = self.file("log.jsonl")
        if not path.is_file():
            return []
        data = path.read_bytes()
        entries: list[dict[str, Any]] = []
        lines = data.split(b"\n")
        last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
        offset = 0  # bytes of the whole lines before this one
        for i, line in enumerate(lines):
            terminated = i < len(lines) - 1  # a newline follows: the line was written whole
            if line.strip():
                entry = _log_entry(line) if terminated else None
                if entry is None:
                    if i != last:
                        raise UserInputError(f"'{path}' line {i + 1} is damaged (not a JSON step entry); the run's log "
                                             "cannot be continued; start the run again with --overwrite.")
                    warnings.warn(f"'{path}' line {i + 1} is partial (the run stopped while writing it); skipped"
                                  + (" and cut off." if repair else "."), RunWarning, stacklevel=2)
                    if repair:
                        with write_faults(path):
                            os.truncate(path, offset)
                    break
                entries.append(entry)
            offset += len(line) + terminated
        return entries

    def truncate_log(self, step: int) -> None:
        """Keep the log lines of steps <= ``step`` (a killed run may have logged past its last checkpoint); a
        partial last line is dropped (with a warning)."""
        kept = [e for e in self.log_entries(repair=True) if e["step"] <= step]
        write_bytes(self.file("log.jsonl"), "".join(json.dumps(e, sort_keys=True) + "\n" for e in kept).encode())

    def open_log(self) -> RunLog:
        return RunLog(self.file("log.jsonl"))


def _log_entry(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(line.decode("utf-8"))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return None
    return entry if isinstance(entry, dict) and "step" in entry else None


def _torch_load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def _normalised(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
