"""The transfer truth's tables, from the readouts' parts (:mod:`rsa_toolkit.lab.transfer` trains them): per-image
losses gathered over seeds and splits, the constant-prediction reference, loss gain and win rate over pixels, AHP
affinities, each target's reliability (seed, split and split-half repeats) and the targets no readout makes better than
the constant, written as CSVs with ``recipe.json``. :func:`run_transfer` is the whole measurement: train what is
missing, then write the tables.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from rsa_toolkit.analysis.affinity import ahp_affinities, reliability, split_half
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.files import atomic_path
from rsa_toolkit.lab.dataset import MiniTaskonomy
from rsa_toolkit.scenes import ALL_TASKS
from rsa_toolkit.scenes.shards import load_shard
from rsa_toolkit.tasks import resolve_task
from rsa_toolkit.zoo.mini.objectives import objective
from rsa_toolkit.lab.transfer import (CONSTANT, PIXELS, REFERENCES, TransferConfig, frames_of_split, part_path,
                                      read_part, train_parts, zoo_manifest_hash)

__all__ = ["collect_parts", "summarise", "write_outputs", "run_transfer"]


def _constant_losses(target: str, shards: dict[str, str], config: TransferConfig) -> np.ndarray:
    """(splits, M) per-image test losses of the constant prediction fitted on each split's training frames."""
    goal = objective(target)
    train = MiniTaskonomy(target, shard=shards["train"])
    _, y_test = MiniTaskonomy(target, shard=shards["test"]).batch(np.arange(config.test_frames))
    rows = []
    for split in range(config.splits):
        constant = goal.constant(train.batch(frames_of_split(split, config))[1])
        pred = constant.expand(len(y_test), *constant.shape[1:])
        if pred.ndim == 4:
            pred = pred.expand(-1, -1, *y_test.shape[-2:])
        rows.append([float(goal.loss(pred[i:i + 1], y_test[i:i + 1])) for i in range(len(y_test))])
    return np.array(rows, dtype=np.float64)


def collect_parts(out_dir: str | os.PathLike[str], shards: dict[str, str | os.PathLike[str]], *,
                  tasks: Sequence[str] | None = None, config: TransferConfig = TransferConfig()) -> dict:
    """Read the finished parts: ``{"tasks", "sources" (tasks + pixels + scratch), "losses": {source: {target:
    (seeds, splits, M)}}, "constant": {target: (splits, M)}, "records": [...], "test_seeds": (M,)}``."""
    tasks = list(dict.fromkeys(resolve_task(t) for t in (tasks or ALL_TASKS)))
    shards = {k: str(v) for k, v in shards.items()}
    sources = [*tasks, *REFERENCES]
    losses: dict[str, dict[str, np.ndarray]] = {}
    records, missing = [], []
    for source in sources:
        losses[source] = {}
        for target in tasks:
            block = np.full((config.seeds, config.splits, config.test_frames), np.nan)
            for seed in range(config.seeds):
                for split in range(config.splits):
                    path = part_path(out_dir, source, target, seed, split)
                    if not path.is_file():
                        missing.append(path.name)
                        continue
                    block[seed, split], record = read_part(path)
                    records.append(record)
            losses[source][target] = block
    if missing:
        raise UserInputError(f"{len(missing)} readouts are not finished (e.g. {missing[0]}); run the transfer "
                             f"again with the same recipe to train them.")
    meta, _ = load_shard(shards["test"], [])
    return {"tasks": tasks, "sources": sources, "losses": losses, "records": records,
            "constant": {t: _constant_losses(t, shards, config) for t in tasks},
            "test_seeds": meta["first_seed"] + np.arange(config.test_frames)}


def _nan_if_undefined(fn, *args, **kwargs) -> float:  # noqa: ANN001
    try:
        return float(fn(*args, **kwargs))
    except UserInputError:  # too few sources or repeats for a ranking
        return math.nan


def summarise(collected: dict, config: TransferConfig) -> dict:
    """The tables of the outputs from :func:`collect_parts`' per-image losses (float64)."""
    tasks, sources, losses = collected["tasks"], collected["sources"], collected["losses"]
    mean_image = {s: np.stack([losses[s][t].mean(axis=(0, 1)) for t in tasks]) for s in sources}  # (T, M)
    loss = np.array([[mean_image[s][j].mean() for j in range(len(tasks))] for s in sources])  # (S + 2, T)
    constant = np.array([collected["constant"][t].mean() for t in tasks])
    n = len(tasks)
    pixels = loss[sources.index(PIXELS)]
    gain = 1.0 - loss[:n] / pixels[None, :]
    winrate = np.array([[np.mean(mean_image[s][j] < mean_image[PIXELS][j]) for j in range(n)] for s in tasks])
    ahp = np.full((n, n), np.nan)
    rows = []
    for j, target in enumerate(tasks):
        per_image = np.stack([mean_image[s][j] for s in tasks])  # (S, M)
        best = int(np.argmin(loss[:, j]))
        beats = bool(loss[best, j] < constant[j])
        reason = "" if beats else (f"best readout ({sources[best]}, loss {loss[best, j]:.6g}) does not beat the "
                                   f"constant prediction (loss {constant[j]:.6g})")
        if n >= 2:
            ahp[:, j] = ahp_affinities(per_image)
        by_seed = np.stack([losses[s][target].mean(axis=1) for s in tasks], axis=1)  # (seeds, S, M)
        by_split = np.stack([losses[s][target].mean(axis=0) for s in tasks], axis=1)  # (splits, S, M)
        pix_seed = losses[PIXELS][target].mean(axis=(1, 2))  # (seeds,)
        pix_split = losses[PIXELS][target].mean(axis=(0, 2))  # (splits,)
        rows.append({
            "target": target,
            "seed_rho_ahp": _repeat_rho([_ahp_or_nan(r) for r in by_seed]),
            "split_rho_ahp": _repeat_rho([_ahp_or_nan(r) for r in by_split]),
            "split_half_ahp": _nan_if_undefined(split_half, per_image, seed=config.seed) if n >= 3 else math.nan,
            "seed_rho_gain": _repeat_rho([1.0 - r.mean(axis=1) / p for r, p in zip(by_seed, pix_seed)]),
            "split_rho_gain": _repeat_rho([1.0 - r.mean(axis=1) / p for r, p in zip(by_split, pix_split)]),
            "best_readout": sources[best], "best_loss": float(loss[best, j]), "constant_loss": float(constant[j]),
            "beats_constant": beats, "reason": reason})
    flagged = {r["target"]: r["reason"] for r in rows if not r["beats_constant"]}
    for j, target in enumerate(tasks):  # flagged targets are not scored
        if target in flagged:
            gain[:, j] = np.nan
            ahp[:, j] = np.nan
    return {"loss": loss, "constant": constant, "gain": gain, "winrate": winrate, "ahp": ahp,
            "reliability": rows, "flagged": flagged}


def _ahp_or_nan(per_image: np.ndarray) -> np.ndarray:
    return ahp_affinities(per_image) if len(per_image) >= 2 else np.full(len(per_image), np.nan)


def _repeat_rho(columns: list[np.ndarray]) -> float:
    columns = np.asarray(columns, dtype=np.float64)
    if len(columns) < 2 or columns.shape[1] < 3 or not np.isfinite(columns).all():
        return math.nan
    return _nan_if_undefined(reliability, columns)


def write_outputs(collected: dict, out_dir: str | os.PathLike[str], config: TransferConfig, *,
                  shards: dict[str, str | os.PathLike[str]], run: dict) -> dict:
    """Write losses.npz, loss.csv, transfer.csv, winrate.csv, ahp.csv, reliability.csv and recipe.json into
    ``out_dir``; returns the summary tables. ``run``: what this invocation did (jobs, device, times, counts)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks, sources = collected["tasks"], collected["sources"]
    tables = summarise(collected, config)
    arrays = {f"{s}/{t}": collected["losses"][s][t] for s in sources for t in tasks}
    arrays.update({f"{CONSTANT}/{t}": collected["constant"][t] for t in tasks})
    arrays["test_seeds"] = collected["test_seeds"]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with atomic_path(out / "losses.npz") as tmp:
        tmp.write_bytes(buffer.getvalue())
    csvs = {"transfer.csv": (tables["gain"], tasks), "winrate.csv": (tables["winrate"], tasks),
            "ahp.csv": (tables["ahp"], tasks),
            "loss.csv": (np.vstack([tables["loss"], tables["constant"][None]]), [*sources, CONSTANT])}
    for name, (values, rows) in csvs.items():
        with atomic_path(out / name) as tmp:
            _write_rect_csv(values, rows, tasks, tmp)
    with atomic_path(out / "reliability.csv") as tmp:
        _write_records_csv(tables["reliability"], tmp)
    records = collected["records"]
    seconds = [r["seconds"] for r in records]
    cpu = [r.get("cpu_seconds", math.nan) for r in records]
    recipe = {
        "what": "per-image held-out losses of Taskonomy-style readouts (two 3x3 convs + the target's decoder, output "
                "bias at the constant prediction, early stopping on val) on frozen source encoders, per (source, "
                "target, seed, split); transfer.csv = 1 - loss / loss(pixels), ahp.csv = AHP affinities; rows = "
                "sources; blank columns = flagged targets",
        "config": {**asdict(config), "decoder_widths": list(config.decoder_widths)},
        "budget": run.get("budget"),
        "tasks": tasks, "sources": sources,
        "seeds": list(range(config.seeds)),
        "readout_seed": "config.seed * 1e6 + seed * 1e4 + split * 100 + the target's index in ALL_TASKS "
                        "(initialisation and batch order; the same for every source)",
        "splits": [{"split": k, "train_frames": [int(frames_of_split(k, config)[0]), int(frames_of_split(k, config)[-1]) + 1]}
                   for k in range(config.splits)],
        "val_frames": config.val_frames, "test_frames": config.test_frames,
        "scratch_encoder_seed": 10_000_000 + config.seed,
        "shards": {k: str(v) for k, v in shards.items()},
        "zoo_manifest_sha256": zoo_manifest_hash(),
        "flagged_targets": tables["flagged"],
        "readouts": len(records),
        "readout_seconds": {"sum": float(np.sum(seconds)), "median": float(np.median(seconds)),
                            "max": float(np.max(seconds))},
        "readout_cpu_seconds": {"sum": float(np.sum(cpu)), "median": float(np.median(cpu))},
        "readout_steps": {"median_best_step": float(np.median([r["best_step"] for r in records])),
                          "median_steps_run": float(np.median([r["steps_run"] for r in records])),
                          "stopped_early": int(sum(r["stopped_early"] for r in records)),
                          "hit_max_steps": int(sum(r["steps_run"] >= config.max_steps for r in records))},
        "torch": torch.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        **run,
    }
    with atomic_path(out / "recipe.json") as tmp:
        tmp.write_text(json.dumps(recipe, indent=2) + "\n")
    return tables


def run_transfer(out_dir: str | os.PathLike[str], shards: dict[str, str | os.PathLike[str]], *,
                 tasks: Sequence[str] | None = None, config: TransferConfig = TransferConfig(), jobs: int = 1,
                 device: str = "cpu", budget: str | None = None, verbose: bool = False) -> dict:
    """Train the missing readouts (resumable), then write every output file; returns the summary tables plus
    ``"trained"`` (readouts trained by this call) and ``"seconds"`` (its wall time)."""
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    trained = train_parts(out_dir, shards, tasks=tasks, config=config, jobs=jobs, device=device, verbose=verbose)
    collected = collect_parts(out_dir, shards, tasks=tasks, config=config)
    run = {"budget": budget, "jobs": jobs, "device": device, "started": started.isoformat(timespec="seconds"),
           "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "wall_seconds_this_call": time.perf_counter() - t0, "readouts_trained_this_call": trained}
    tables = write_outputs(collected, out_dir, config, shards=shards, run=run)
    return {**tables, "tasks": collected["tasks"], "sources": collected["sources"], "trained": trained,
            "seconds": run["wall_seconds_this_call"]}


def _write_rect_csv(values: np.ndarray, rows: Sequence[str], cols: Sequence[str], path: Path) -> None:
    """As sim.csv: first row the targets, first column the sources, full float precision, blank = NaN."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["", *cols])
    writer.writerows([r, *("" if math.isnan(v) else repr(float(v)) for v in row)] for r, row in zip(rows, values))
    path.write_text(buffer.getvalue())


def _write_records_csv(rows: list[dict], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if isinstance(v, float) and math.isnan(v) else repr(v) if isinstance(v, float) else v)
                      for k, v in row.items()} for row in rows)
    path.write_text(buffer.getvalue())
