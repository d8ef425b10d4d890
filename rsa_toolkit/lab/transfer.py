"""Measured transfer on mini-Taskonomy, the Taskonomy way: how well each teacher's frozen representation serves
every other task, replicated over readout seeds and training splits, with its own reliability.

For every (source, target) pair, every readout seed and every training split: the source teacher's encoder is
frozen, a :class:`~rsa_toolkit.lab.readout.TransferReadout` (two 3 x 3 convolutions, then the target's decoder
architecture, output bias at the target's constant prediction) is trained on its 8 x 16 x 16 representation with early
stopping on val frames, and its loss on every held-out test frame is kept. Two reference rows get the same readout:

* ``pixels``: the frame folded by a 4 x 4 space-to-depth into 48 x 16 x 16 (Taskonomy's "from pixels" networks);
* ``scratch``: a randomly initialised, frozen encoder of the teachers' architecture (seeded by ``config.seed``).

The constant prediction (the target's best constant under its loss, fitted on the split's training frames) is the
floor: a target whose best readout does not beat it is flagged (``reliability.csv``, ``recipe.json``) and left blank
in ``transfer.csv`` and ``ahp.csv``, never silently scored.

Splits: split k trains on train-shard frames ``[k * train_frames, (k + 1) * train_frames)`` (disjoint seed ranges of
the train split, the frames the teachers trained on); every readout is selected on the same val frames and scored on
the same test frames (rsa_toolkit.scenes.shards.split_seeds). Seeds: readout seed i changes the initialisation and the
batch order; for a given (target, seed, split) both are the same whatever the source, so sources differ only in their
representation.

Each finished readout is one file under ``OUT/parts/`` (written atomically), so an interrupted run continues where it
stopped; :func:`rsa_toolkit.lab.transfer_tables.run_transfer` then writes, from the parts:

* ``losses.npz``: ``"<source>/<target>"`` -> (seeds, splits, M) per-image test losses; ``"constant/<target>"`` ->
  (splits, M); ``"test_seeds"`` -> (M,);
* ``loss.csv``: mean test loss, sources + pixels + scratch + constant rows x targets;
* ``transfer.csv``: ``gain[s, t] = 1 - loss[s, t] / loss[pixels, t]`` over the 20 task sources (the file
  ``rsa-toolkit evaluate --truth mini-transfer`` reads; blank = flagged target);
* ``winrate.csv``: share of test frames on which the source beats pixels (losses averaged over seeds and splits);
* ``ahp.csv``: AHP affinities per target (:func:`rsa_toolkit.analysis.affinity.ahp_affinities` on the seed- and
  split-averaged per-image losses of the task sources; each column sums to 1; blank = flagged target);
* ``reliability.csv``: per target, the seed-repeat and split-repeat Spearman of the AHP and gain columns, the AHP
  split-half (Spearman-Brown), the best readout, its loss, the constant's loss, ``beats_constant`` and the reason;
* ``recipe.json``: zoo manifest hash, config, seeds, splits, shards, times, torch version, machine, flags.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.files import atomic_path
from rsa_toolkit.lab.dataset import MiniTaskonomy
from rsa_toolkit.lab.readout import TransferReadout, fit_readout
from rsa_toolkit.scenes import ALL_TASKS
from rsa_toolkit.scenes.shards import load_shard
from rsa_toolkit.tasks import resolve_task
from rsa_toolkit.validation import check_int
from rsa_toolkit.lab.transfer_config import BUDGETS, TransferConfig
from rsa_toolkit.zoo.mini.embedded import mini_teacher
from rsa_toolkit.zoo.mini.net import MiniEncoder
from rsa_toolkit.zoo.mini.objectives import objective

__all__ = ["TransferConfig", "BUDGETS", "PIXELS", "SCRATCH", "CONSTANT", "REFERENCES", "train_parts", "part_path",
           "read_part", "readout_seed", "frames_of_split", "zoo_manifest_hash"]

PIXELS = "pixels"
SCRATCH = "scratch"
CONSTANT = "constant"
REFERENCES = (PIXELS, SCRATCH)
_INPUT_KINDS = {"denoising": "denoising", "colorization": "colorization", "inpainting": "inpainting"}
_PARTS = "parts"
_FINGERPRINT = "fingerprint.json"


def readout_seed(config: TransferConfig, target: str, seed: int, split: int) -> int:
    """Seed of the readout's initialisation and batch order: one per (target, seed, split), shared by all sources."""
    return config.seed * 1_000_000 + seed * 10_000 + split * 100 + ALL_TASKS.index(target)


def part_path(out_dir: str | os.PathLike[str], source: str, target: str, seed: int, split: int) -> Path:
    return Path(out_dir) / _PARTS / f"{source}__{target}__seed{seed}__split{split}.npz"


def _input_kind(target: str) -> str:
    return _INPUT_KINDS.get(target, "rgb")


def _scratch_encoder(config: TransferConfig) -> nn.Module:
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(10_000_000 + config.seed)
    encoder = MiniEncoder().eval()
    torch.random.set_rng_state(generator_state)
    return encoder


def _encoder(source: str, config: TransferConfig) -> nn.Module | None:
    if source == PIXELS:
        return None
    if source == SCRATCH:
        return _scratch_encoder(config)
    return mini_teacher(source).build().encoder.eval()


@torch.inference_mode()
def _encode(encoder: nn.Module | None, inputs: Tensor, device: torch.device, batch: int = 250) -> Tensor:
    """(N, 8, 16, 16) representations of a source encoder, or (``None``, the pixels row) the space-to-depth frames."""
    if encoder is None:
        return F.pixel_unshuffle(inputs, 4).to(device)
    encoder = encoder.to(device)
    return torch.cat([encoder(inputs[i:i + batch].to(device)) for i in range(0, len(inputs), batch)])


@torch.inference_mode()
def _per_frame_losses(task: str, model: nn.Module, z: Tensor, y: Tensor) -> np.ndarray:
    loss = objective(task).loss
    pred = torch.cat([model(z[i:i + 250]) for i in range(0, len(z), 250)]).cpu()
    y = y.cpu()
    return np.array([float(loss(pred[i:i + 1], y[i:i + 1])) for i in range(len(pred))], dtype=np.float64)


# Losses of the objectives module that build CPU tensors inside (the per-component scales; the metric loss's pixel
# sample): on another device they are computed on CPU copies, through which autograd still flows.
_CPU_LOSS_TASKS = ("room_layout", "vanishing_point", "segment_unsup2d", "segment_unsup25d")


def _loss_for(task: str, device: torch.device):  # noqa: ANN202
    loss = objective(task).loss
    if device.type == "cpu" or task not in _CPU_LOSS_TASKS:
        return loss
    return lambda pred, target: loss(pred.cpu(), target.cpu())


def frames_of_split(split: int, config: TransferConfig) -> np.ndarray:
    return np.arange(split * config.train_frames, (split + 1) * config.train_frames)


def _write_part(path: Path, test_losses: np.ndarray, record: dict) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, test_losses=test_losses, record=np.array(json.dumps(record)))
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def read_part(path: Path) -> tuple[np.ndarray, dict]:
    with np.load(path) as data:
        return data["test_losses"], json.loads(str(data["record"]))


def _source_parts(source: str, targets: Sequence[str], shards: dict[str, str], config: TransferConfig,
                  out_dir: str, device: str, verbose: bool) -> int:
    """Train every missing readout of ``source`` (all targets, seeds, splits); returns how many it trained."""
    todo = {t: [(k, s) for k in range(config.splits) for s in range(config.seeds)
                if not part_path(out_dir, source, t, s, k).is_file()] for t in targets}
    todo = {t: pairs for t, pairs in todo.items() if pairs}
    if not todo:
        return 0
    dev = torch.device(device)
    threads = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(1)
    t0, trained = time.perf_counter(), 0
    try:
        encoder = _encoder(source, config)
        by_kind: dict[str, list[str]] = {}
        for t in todo:
            by_kind.setdefault(_input_kind(t), []).append(t)
        train_idx = np.arange(config.splits * config.train_frames)
        for kind, kind_targets in by_kind.items():
            data_task = kind if kind != "rgb" else "autoencoding"
            z = {name: _encode(encoder, MiniTaskonomy(data_task, shard=shards[name]).batch(idx)[0], dev)
                 for name, idx in (("train", train_idx), ("val", np.arange(config.val_frames)),
                                   ("test", np.arange(config.test_frames)))}
            for target in kind_targets:
                goal = objective(target)
                y = {name: MiniTaskonomy(target, shard=shards[name]).batch(idx)[1].to(dev)
                     for name, idx in (("train", train_idx), ("val", np.arange(config.val_frames)),
                                       ("test", np.arange(config.test_frames)))}
                for split, seed in todo[target]:
                    rows = torch.from_numpy(frames_of_split(split, config)).to(dev)
                    z_train, y_train = z["train"][rows], y["train"][rows]
                    value = readout_seed(config, target, seed, split)
                    torch.manual_seed(value)
                    model = TransferReadout(z_train.shape[1], target, width=config.width,
                                            decoder_widths=config.decoder_widths, head_hidden=config.head_hidden)
                    model.init_output_bias(goal.constant(y_train.cpu()))
                    model = model.to(dev)
                    fit = fit_readout(model, _loss_for(target, dev), z_train, y_train, z["val"], y["val"],
                                      max_steps=config.max_steps, eval_every=config.eval_every,
                                      patience=config.patience, batch_size=config.batch_size, lr=config.lr,
                                      weight_decay=config.weight_decay, warmup_steps=config.warmup_steps, seed=value)
                    losses = _per_frame_losses(target, model, z["test"], y["test"])
                    record = {"source": source, "target": target, "seed": seed, "split": split,
                              "readout_seed": value, "best_step": fit.best_step, "steps_run": fit.steps_run,
                              "best_val_loss": fit.best_val_loss, "stopped_early": fit.stopped_early,
                              "seconds": fit.seconds, "cpu_seconds": fit.cpu_seconds, "val_curve": fit.val_curve,
                              "device": str(dev), "test_loss": float(losses.mean())}
                    _write_part(part_path(out_dir, source, target, seed, split), losses, record)
                    trained += 1
    finally:
        torch.set_num_threads(threads)
    if verbose:
        print(f"transfer: source {source}: {trained} readouts in {time.perf_counter() - t0:.0f} s", flush=True)
    return trained


def _shard_identity(path: str) -> dict:
    meta, _ = load_shard(path, [])
    return {k: meta[k] for k in ("version", "split", "first_seed", "size")}


def _fingerprint(config: TransferConfig, shards: dict[str, str]) -> dict:
    """What a finished part depends on: the recipe (not how many seeds or splits), the zoo and the shards' frames."""
    recipe = {k: v for k, v in asdict(config).items() if k not in ("seeds", "splits")}
    recipe["decoder_widths"] = list(recipe["decoder_widths"])
    return {"config": recipe, "zoo_manifest_sha256": zoo_manifest_hash(),
            "shards": {name: _shard_identity(path) for name, path in shards.items()}}


def _check_inputs(shards: dict[str, str], config: TransferConfig) -> dict[str, str]:
    need = {"train": config.splits * config.train_frames, "val": config.val_frames, "test": config.test_frames}
    expected_split = {"train": "train", "val": "val", "test": "test"}
    out = {}
    for name in ("train", "val", "test"):
        if name not in shards:
            raise UserInputError(f"shards must name a train, val and test shard; '{name}' is missing.")
        meta, _ = load_shard(shards[name], [])
        if meta["split"] != expected_split[name]:
            raise UserInputError(f"the {name} shard '{shards[name]}' holds {meta['split']} frames; give a shard of "
                                 f"the {expected_split[name]} split (rsa-toolkit mini render --split "
                                 f"{expected_split[name]}).")
        if meta["count"] < need[name]:
            raise UserInputError(f"the {name} shard '{shards[name]}' has {meta['count']} frames, the config needs "
                                 f"{need[name]}" + (f" ({config.splits} splits x {config.train_frames})"
                                                    if name == "train" else "")
                                 + "; render a larger shard or lower the frame counts.")
        out[name] = str(shards[name])
    return out


def train_parts(out_dir: str | os.PathLike[str], shards: dict[str, str | os.PathLike[str]], *,
                tasks: Sequence[str] | None = None, config: TransferConfig = TransferConfig(), jobs: int = 1,
                device: str = "cpu", verbose: bool = False) -> int:
    """Train every missing readout (sources = ``tasks`` + pixels + scratch, targets = ``tasks``) into
    ``out_dir/parts``; returns how many were trained. ``shards``: {"train", "val", "test"} shard directories."""
    tasks = list(dict.fromkeys(resolve_task(t) for t in (tasks or ALL_TASKS)))
    jobs = check_int(jobs, name="jobs", minimum=1)
    shards = _check_inputs({k: str(v) for k, v in shards.items()}, config)
    parts = Path(out_dir) / _PARTS
    parts.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(config, shards)
    stored = parts / _FINGERPRINT
    if stored.is_file():
        if json.loads(stored.read_text()) != fingerprint:
            raise UserInputError(f"'{parts}' holds readouts of another recipe, zoo or shards (see {stored}); write "
                                 f"to a new output directory, or delete '{parts}' to start over.")
    else:
        with atomic_path(stored) as tmp:
            tmp.write_text(json.dumps(fingerprint, indent=2) + "\n")
    args = [(s, tasks, shards, config, str(out_dir), device, verbose) for s in [*tasks, *REFERENCES]]
    if jobs == 1:
        return sum(_source_parts(*a) for a in args)
    # CUDA cannot be used in forked children once the parent touched it: spawn there.
    context = multiprocessing.get_context("spawn" if torch.device(device).type != "cpu" else None)
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        return sum(pool.map(_source_parts, *zip(*args)))


def zoo_manifest_hash() -> str:
    from rsa_toolkit.files import file_sha256
    from rsa_toolkit.zoo.mini.embedded import MANIFEST, default_zoo_dir

    return file_sha256(default_zoo_dir() / MANIFEST)


