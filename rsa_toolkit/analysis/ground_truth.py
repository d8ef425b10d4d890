"""Transfer ground truth: how well each source task's representation transfers to each target task.

A ground truth is a table G (S, T): rows are source tasks, columns target tasks, higher is better, NaN where the
transfer was not measured. Built-in tables (``GROUND_TRUTHS``):

- ``taskonomy-affinity``: Taskonomy's first-order transfer affinities after its AHP normalisation (Zamir et al.,
  CVPR 2018), 19 sources x 17 targets of our 20 tasks; the DDS paper's ground truth.
- ``taskonomy-winrate``: Taskonomy's win rate of each transfer against a network trained from pixels (16k images),
  20 sources x 18 targets.
- ``mini-transfer``: measured transfer between the teachers of the embedded mini zoo, ``data/mini_transfer``
  (written by ``rsa-toolkit mini transfer``).

Any CSV in the same layout works too (first row = target names, first column = source names, blank = missing).
Task names and aliases are resolved to the canonical names of :mod:`rsa_toolkit.tasks`; other names are kept as
they are, so teachers that are not tasks still match by exact name. Where the numbers come from:
``data/taskonomy/README.md``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsa_toolkit.registry import Registry
from rsa_toolkit.package_data import shipped_data_dir
from rsa_toolkit.errors import TruthZooWarning, UserInputError
from rsa_toolkit.tasks import try_resolve_task

__all__ = ["GroundTruth", "GROUND_TRUTHS", "DATA_ENV", "data_dir", "load_ground_truth", "read_ground_truth_csv",
           "canonical_name", "losses_file", "truth_samples_from_losses", "check_truth_zoo"]

DATA_ENV = "RSA_TOOLKIT_DATA"
_MISSING = {"", "nan", "na", "n/a"}  # what a blank cell may look like after a spreadsheet round trip


@dataclass(frozen=True)
class GroundTruth:
    """``values`` (S, T) float64, NaN where missing; ``values[i, j]`` is the transfer from ``sources[i]`` to
    ``targets[j]``."""

    values: np.ndarray
    sources: list[str]
    targets: list[str]
    name: str
    higher_is_better: bool = True
    description: str = ""
    # sha256 of the mini zoo's manifest.json the truth was measured on (its recipe.json), "" when not known
    zoo_manifest_sha256: str = ""


def data_dir() -> Path:
    """``$RSA_TOOLKIT_DATA``, else the shipped data (:func:`rsa_toolkit.package_data.shipped_data_dir`)."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else shipped_data_dir()


def canonical_name(name: str) -> str:
    """The canonical task name when ``name`` is a task or alias, else ``name`` itself (a teacher that is no task)."""
    task = try_resolve_task(name)
    return task.name if task is not None else name


GROUND_TRUTHS: Registry[Callable[[], GroundTruth]] = Registry("ground truth")


@GROUND_TRUTHS.register("taskonomy-affinity")
def taskonomy_affinity() -> GroundTruth:
    return _builtin("taskonomy-affinity", Path("taskonomy", "affinity_first_order.csv"),
                    "Taskonomy first-order transfer affinities (AHP-normalised; results/affinities/all_affinities.pkl)",
                    fix="reinstall from a source checkout, or point $RSA_TOOLKIT_DATA at a copy of data/")


@GROUND_TRUTHS.register("taskonomy-winrate")
def taskonomy_winrate() -> GroundTruth:
    return _builtin("taskonomy-winrate", Path("taskonomy", "winrate_vs_pixels_16k_first_order.csv"),
                    "Taskonomy win rate vs a network trained from pixels, 16k images "
                    "(results/winrates/wins_vs_pixels_16k.pkl)",
                    fix="reinstall from a source checkout, or point $RSA_TOOLKIT_DATA at a copy of data/")


@GROUND_TRUTHS.register("mini-transfer")
def mini_transfer() -> GroundTruth:
    return _builtin("mini-transfer", Path("mini_transfer", "transfer.csv"),
                    "measured transfer between the mini-Taskonomy teachers (data/mini_transfer)",
                    fix="create it with `rsa-toolkit mini transfer`")


def load_ground_truth(name_or_path: str | os.PathLike[str]) -> GroundTruth:
    """A built-in ground truth by name (``GROUND_TRUTHS.names()``), or a CSV file (rows = sources, columns =
    targets, first row and column = names, blank = missing). An existing file wins over a built-in name, as a
    file called ``mini`` wins over ``--zoo mini``."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if text in GROUND_TRUTHS and not path.is_file():
        return GROUND_TRUTHS.get(text)()
    if path.is_file():
        return read_ground_truth_csv(path, name=text, description=f"CSV file {path}")
    if path.suffix or os.sep in text or "/" in text:  # meant as a file
        raise UserInputError(f"ground truth '{text}': no such file. Give a CSV (rows = sources, columns = targets) "
                             f"or a built-in name: {', '.join(GROUND_TRUTHS.names())}.")
    raise UserInputError(GROUND_TRUTHS.unknown_message(text).rstrip(".") + ", or the path of a CSV file.")


def read_ground_truth_csv(path: str | os.PathLike[str], *, name: str | None = None,
                          description: str = "") -> GroundTruth:
    """Read a ground-truth CSV: first row = target names, first column = source names, blank cells = missing."""
    path = Path(path)
    try:
        rows = [r for r in csv.reader(path.read_text().splitlines()) if r]  # blank lines are not rows
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"could not read ground-truth CSV '{path}': {str(exc).rstrip('.')}.") from None
    if len(rows) < 2 or len(rows[0]) < 2:
        raise UserInputError(f"ground-truth CSV '{path}' needs a header row of target names and at least one row "
                             f"of values, with the source name in the first column.")
    header, body = rows[0], rows[1:]
    for row in body:
        if len(row) != len(header):
            raise UserInputError(f"ground-truth CSV '{path}': row '{row[0]}' has {len(row) - 1} values, the header "
                                 f"names {len(header) - 1} targets; every row needs one cell per target "
                                 f"(blank for missing).")
    targets = _names([h.strip() for h in header[1:]], path, "target")
    sources = _names([r[0].strip() for r in body], path, "source")
    values = np.array([[_cell(v, path, s, t) for v, t in zip(r[1:], targets)] for r, s in zip(body, sources)])
    if np.isnan(values).all():
        raise UserInputError(f"ground-truth CSV '{path}' holds no values (every cell is blank).")
    return GroundTruth(values=values, sources=sources, targets=targets, name=name or str(path),
                       description=description, zoo_manifest_sha256=_recipe_zoo(path))


def _recipe_zoo(path: Path) -> str:
    """The zoo manifest hash in the recipe.json beside a measured truth's CSV ("" without one)."""
    try:
        recipe = json.loads((path.parent / "recipe.json").read_text())
    except (OSError, ValueError):
        return ""
    value = recipe.get("zoo_manifest_sha256") if isinstance(recipe, dict) else None
    return value if isinstance(value, str) else ""


def check_truth_zoo(truth: GroundTruth, manifest: str | os.PathLike[str]) -> None:
    """Warn (:class:`TruthZooWarning`) when ``truth`` was measured on another mini zoo than the one whose
    ``manifest.json`` is given: its transfers are then not those of the teachers being scored."""
    if not truth.zoo_manifest_sha256:
        return
    from rsa_toolkit.files import file_sha256

    try:
        current = file_sha256(manifest)
    except OSError:
        return
    if current != truth.zoo_manifest_sha256:
        warnings.warn(TruthZooWarning(
            f"the ground truth '{truth.name}' was measured on another mini zoo (manifest sha256 "
            f"{truth.zoo_manifest_sha256[:12]}...) than the one scored here ({current[:12]}...): its transfers are "
            "not these teachers'. Measure them with `rsa-toolkit mini transfer OUT` and pass --truth "
            "OUT/transfer.csv."), stacklevel=2)


def _builtin(name: str, relative: Path, description: str, *, fix: str) -> GroundTruth:
    path = data_dir() / relative
    if not path.is_file():
        raise UserInputError(f"ground truth '{name}': '{path}' is missing; {fix}.")
    return read_ground_truth_csv(path, name=name, description=description)


def _names(raw: list[str], path: Path, axis: str) -> list[str]:
    if "" in raw:
        raise UserInputError(f"ground-truth CSV '{path}': a {axis} name is empty; every row and column needs a name.")
    names = [canonical_name(n) for n in raw]
    seen: dict[str, str] = {}
    for given, name in zip(raw, names):
        if name in seen:
            raise UserInputError(f"ground-truth CSV '{path}': {axis}s '{seen[name]}' and '{given}' both denote "
                                 f"'{name}'; keep one.")
        seen[name] = given
    return names


def _cell(text: str, path: Path, source: str, target: str) -> float:
    if text.strip().lower() in _MISSING:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UserInputError(f"ground-truth CSV '{path}': cell (source '{source}', target '{target}') is "
                             f"'{text}', not a finite number; leave it blank if the value is missing.")
    return value


def losses_file(truth: GroundTruth) -> Path | None:
    """The per-seed, per-image losses behind a measured-transfer truth, when they exist: ``losses.npz`` beside the
    truth's CSV (``rsa-toolkit mini transfer OUT`` writes both; the built-in ``mini-transfer`` is
    ``data/mini_transfer``). None for the Taskonomy tables, for a CSV without one, and for every table of such a
    run but ``transfer.csv``: the losses resample the loss gain, not the AHP affinities (``ahp.csv``) or another
    table, which would otherwise be scored as if it were the gain."""
    if truth.name == "mini-transfer":
        path = data_dir() / "mini_transfer" / "losses.npz"
    else:
        csv_path = Path(truth.name).expanduser()
        if not csv_path.is_file() or csv_path.name != "transfer.csv":
            return None
        path = csv_path.parent / "losses.npz"
    return path if path.is_file() else None


def truth_samples_from_losses(truth: GroundTruth, *, n_resamples: int, seed: int = 0,
                              path: str | os.PathLike[str] | None = None) -> list[GroundTruth] | None:
    """``n_resamples`` resampled copies of a gain truth (``gain[s, t] = 1 - loss[s, t] / loss[pixels, t]``, the
    layout of ``transfer.csv``) from the per-image test losses in ``losses.npz`` (``"<source>/<target>"`` ->
    (seeds, splits, M)); None when there is no such file (:func:`losses_file`).

    Resample b draws, with replacement and seeded: M test images (the same for every pair), and per target the
    readout seeds and the training splits (as many as the run had; shared by every source of that target, since
    for a given target, seed and split every source's readout has the same initialisation and batch order). The
    loss of a pair is the mean over the drawn seeds, splits and images, as the published truth is the mean over all
    of them. Cells that are blank in the truth (flagged targets) stay blank. This is the truth's own noise: what
    another run with as many seeds and splits, scored on other test frames, could have given."""
    where = Path(path) if path is not None else losses_file(truth)
    if where is None or not Path(where).is_file():
        return None
    with np.load(where) as npz:
        losses = {k: np.asarray(npz[k], dtype=np.float64) for k in npz.files if "/" in k}
    rng = np.random.default_rng(seed)
    missing = [f"{s}/{t}" for t in truth.targets for s in [*truth.sources, "pixels"]
               if f"{s}/{t}" not in losses and not (s != "pixels" and
                                                     math.isnan(truth.values[truth.sources.index(s),
                                                                             truth.targets.index(t)]))]
    if missing:
        raise UserInputError(f"'{where}' lacks the losses of {', '.join(missing[:5])}"
                             f"{' ...' if len(missing) > 5 else ''}; it does not belong to ground truth "
                             f"'{truth.name}'.")
    shape = next(iter(losses.values())).shape
    n_seeds, n_splits, m = shape
    samples = []
    for _ in range(n_resamples):
        images = rng.integers(0, m, m)
        values = np.array(truth.values, dtype=np.float64)
        for j, t in enumerate(truth.targets):
            seeds, splits = rng.integers(0, n_seeds, n_seeds), rng.integers(0, n_splits, n_splits)

            def mean_loss(key: str) -> float:
                x = losses[key][np.ix_(seeds, splits, images)]
                return float(x.mean())

            base = mean_loss(f"pixels/{t}")
            for i, s in enumerate(truth.sources):
                if not math.isnan(values[i, j]):
                    values[i, j] = 1.0 - mean_loss(f"{s}/{t}") / base
        samples.append(GroundTruth(values=values, sources=list(truth.sources), targets=list(truth.targets),
                                   name=truth.name, higher_is_better=truth.higher_is_better,
                                   description=truth.description))
    return samples
