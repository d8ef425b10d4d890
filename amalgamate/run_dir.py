"""A run directory: what an amalgamation run writes, and the rules for starting, resuming or replacing one.

==================  ===============================================================================================
file                holds
==================  ===============================================================================================
``config.json``     the complete settings of the run (it identifies the run: targets, method, seed, ...)
``aux.json``        the auxiliary and why: with ``--auto-aux`` the RSA ranking of the zoo with scores
``knowledge.json``  the teachers' knowledge: cache keys, weights hashes, representation statistics
``log.jsonl``       one JSON object per training step: losses, weights, learning rate, balance
``checkpoint.pt``   the latest checkpoint (model, optimisers, schedulers, weighting, RNG and data order)
``student.pt``      the final student: ``{"state_dict", "spec"}``
``run.json``        summary: steps done, finished, parameters, seconds, balance step
``metrics.json``    ``amalgamate eval``: every metric; ``metrics.csv`` the same as a table
``examples.npz``    ``amalgamate eval``: a few test frames with student, teacher and ground-truth outputs
==================  ===============================================================================================

Every file is written atomically (temporary name, then rename). A directory that holds another run is refused
unless ``resume`` (continue it) or ``overwrite`` (delete the files above and the old run's ``report/`` files, and
only those) is given; a directory with other files is never used.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rsa_toolkit.files import atomic_path
from rsa_toolkit.errors import UserInputError

__all__ = ["RUN_FILES", "RESUME_CHANGEABLE", "RunDir"]

RUN_FILES = ("config.json", "aux.json", "knowledge.json", "log.jsonl", "checkpoint.pt", "student.pt", "run.json",
             "metrics.json", "metrics.csv", "examples.npz")
REPORT_DIR = "report"  # amalgamate report's default output directory, inside the (first) run directory
_REPORT_PATTERNS = ("table*_*.md", "table*_*.csv", "curves.html", "predictions-*.png", "report.md")
#: Settings that may differ on --resume: they do not change what is computed.
RESUME_CHANGEABLE = frozenset({"device", "threads", "checkpoint_every", "cache_dir", "eval_frames", "eval_shard",
                               "eval_images"})


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
        others = sorted(p.name for p in self.path.iterdir() if p.name not in ours) if self.path.is_dir() else []
        if others or (self.path.is_dir() and any(self.path.iterdir()) and not self.has_run()):
            shown = others or sorted(p.name for p in self.path.iterdir())
            raise UserInputError(f"run_dir='{self.path}' is not empty and holds no amalgamate run "
                                 f"({', '.join(shown[:5])}{' ...' if len(shown) > 5 else ''}); choose a new or empty "
                                 "directory.", parameter="run_dir")

    def start(self, *, overwrite: bool) -> None:
        """Make the directory ready for a new run (``overwrite``: delete a previous run's files first)."""
        self.check_new(overwrite=overwrite)
        for name in RUN_FILES:
            self.file(name).unlink(missing_ok=True)
        report = self.file(REPORT_DIR)
        if report.is_dir():  # the old run's report is stale; files of other kinds in it stay
            for pattern in _REPORT_PATTERNS:
                for path in report.glob(pattern):
                    path.unlink()
            if not any(report.iterdir()):
                report.rmdir()
        self.path.mkdir(exist_ok=True)

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

    # --- files ------------------------------------------------------------------------------------------------------

    def read_json(self, name: str) -> Any:
        path = self.file(name)
        if not path.is_file():
            raise UserInputError(f"'{self.path}' has no {name}; is it an amalgamate run directory?")
        return json.loads(path.read_text())

    def write_json(self, name: str, data: Any) -> None:
        with atomic_path(self.file(name)) as tmp:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=_json_default) + "\n")

    def save_torch(self, name: str, data: Any) -> Path:
        buffer = io.BytesIO()  # torch names the archive inside after the file name: save through a buffer
        torch.save(data, buffer)
        with atomic_path(self.file(name)) as tmp:
            tmp.write_bytes(buffer.getvalue())
        return self.file(name)

    def load_torch(self, name: str) -> Any:
        path = self.file(name)
        if not path.is_file():
            raise UserInputError(f"'{self.path}' has no {name}; train the run first (amalgamate train --out "
                                 f"{self.path}).")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign file is the user's input
            raise UserInputError(f"'{path}' could not be read as a checkpoint ({type(exc).__name__}: {exc}).") from None

    def log_entries(self) -> list[dict[str, Any]]:
        path = self.file("log.jsonl")
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def truncate_log(self, step: int) -> None:
        """Keep the log lines of steps <= ``step`` (a killed run may have logged past its last checkpoint)."""
        kept = [e for e in self.log_entries() if e["step"] <= step]
        with atomic_path(self.file("log.jsonl")) as tmp:
            tmp.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in kept))


def _normalised(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
