"""The embedded default: the 20 mini-Taskonomy teachers shipped in ``data/mini_zoo`` and the rendered probe set.

    >>> from rsa_toolkit.zoo.mini.embedded import mini_zoo, mini_probe
    >>> teachers = mini_zoo()                  # 20 Teacher objects; weights load on first use
    >>> probe = mini_probe()                   # 500 frames, seeds 3,000,000 .. 3,000,499, 64 x 64

Weights are fp16 state dicts loaded with ``torch.load(weights_only=True)`` after their sha256 is checked against the
manifest. ``$RSA_TOOLKIT_MINI_ZOO`` (or ``zoo_dir``) points at another trained zoo (``rsa-toolkit mini train``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rsa_toolkit.package_data import shipped_data_dir
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.images.preprocess import PlainPreprocessing
from rsa_toolkit.images.probe import ProbeSet
from rsa_toolkit.tasks import resolve_task
from rsa_toolkit.zoo.teachers import Teacher, hook_features, list_layers
from rsa_toolkit.zoo.mini.net import INPUT_SIZE, build_teacher_net, check_frame_size
from rsa_toolkit.scenes.shards import render_frames, split_seeds
from rsa_toolkit.files import file_sha256
from rsa_toolkit.validation import check_int

__all__ = ["MINI_PREPROCESSING", "PROBE_SIZE", "MANIFEST", "default_zoo_dir", "read_manifest", "other_figures", "mini_teacher",
           "mini_zoo",
           "mini_probe", "RenderedProbe"]

#: Frames in [0, 1] -> [-1, 1] at 64 x 64 (other images: centre crop and resize first).
MINI_PREPROCESSING = PlainPreprocessing(size=INPUT_SIZE, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
PROBE_SIZE = 500
MANIFEST = "manifest.json"  # the zoo directory's index: tasks, weight files and their sha256, held-out figures


def default_zoo_dir() -> Path:
    env = os.environ.get("RSA_TOOLKIT_MINI_ZOO")
    return Path(env).expanduser() if env else shipped_data_dir() / "mini_zoo"


def read_manifest(zoo_dir: str | os.PathLike[str] | None = None) -> dict:
    directory = Path(zoo_dir) if zoo_dir is not None else default_zoo_dir()
    path = directory / MANIFEST
    if not path.is_file():
        raise UserInputError(f"no mini-Taskonomy zoo at '{directory}' ({MANIFEST} missing); train one with "
                             "rsa-toolkit mini train, or unset $RSA_TOOLKIT_MINI_ZOO.")
    manifest = json.loads(path.read_text())
    manifest["directory"] = str(directory)
    return manifest


def other_figures(entry: dict) -> str:
    """A manifest entry's figures beside its loss: the input's own loss (image-to-image tasks with a corrupted
    input) and the accuracy with its baseline (class-like tasks); empty when there are none."""
    other = []
    if "input_loss" in entry:
        other.append(f"the input itself: {entry['input_loss']:.4g}")
    if "accuracy" in entry:
        other.append(f"{entry['accuracy_name']} {entry['accuracy']:.3f} (baseline {entry['baseline_accuracy']:.3f})")
    return "; ".join(other)


def mini_teacher(task: str, zoo_dir: str | os.PathLike[str] | None = None, *, manifest: dict | None = None) -> Teacher:
    """The mini teacher of ``task`` (any alias), tapped at ``encoder`` (the 8 x 16 x 16 representation) by default;
    every submodule of the network can be tapped."""
    task = resolve_task(task)
    manifest = manifest or read_manifest(zoo_dir)
    entry = manifest["teachers"].get(task)
    if entry is None:
        raise UserInputError(f"the mini zoo at '{manifest['directory']}' has no teacher for '{task}'; it has "
                             f"{', '.join(manifest['teachers'])}.")
    path = Path(manifest["directory"]) / entry["file"]

    @functools.cache
    def build() -> nn.Module:
        if not path.is_file():
            raise UserInputError(f"mini teacher '{task}': weights file '{path}' is missing.")
        if file_sha256(path) != entry["sha256"]:
            raise UserInputError(f"mini teacher '{task}': '{path}' does not match the sha256 in {MANIFEST}; "
                                 "the file is corrupt or was replaced.")
        net = build_teacher_net(task)
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        return net.eval()

    return Teacher(name=task, layers=tuple(list_layers(build_teacher_net(task))), default_layer="encoder",
                   preprocessing=MINI_PREPROCESSING, weights_sha256=entry["sha256"], build=build, run=hook_features,
                   source=f"mini-taskonomy:{task}", task=task)


def mini_zoo(tasks: Sequence[str] | None = None, zoo_dir: str | os.PathLike[str] | None = None) -> list[Teacher]:
    """The mini teachers of ``tasks`` (default: every teacher in the manifest, in task-registry order)."""
    manifest = read_manifest(zoo_dir)
    chosen = [resolve_task(t) for t in tasks] if tasks else list(manifest["teachers"])
    return [mini_teacher(t, manifest=manifest) for t in dict.fromkeys(chosen)]


@dataclass(frozen=True, eq=False)
class RenderedProbe(ProbeSet):
    """A probe set of rendered frames held in memory: ``frames`` (N, H, W, 3) uint8, ids ``seed-<seed>``."""

    frames: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    def load(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"image index {i} out of range for a probe set of {len(self)} images")
        return self.frames[i].astype(np.float32) / 255.0


def mini_probe(count: int = PROBE_SIZE, *, size: int = INPUT_SIZE, jobs: int = 1) -> RenderedProbe:
    """``count`` frames of the probe split (seeds 3,000,000 + i), rendered at ``size`` and quantised to uint8; the
    content hash covers the seeds, the size and every pixel, so a renderer change is a new probe set."""
    check_int(count, name="count", minimum=3, form="a probe set needs at least 3 frames for an RDM comparison, "
                                                   "got {value!r}.")
    seeds = split_seeds("probe", count)
    frames = render_frames(seeds, check_frame_size(size), tasks=(), jobs=jobs)["rgb"]
    digest = hashlib.sha256(f"mini-probe:{size}:{seeds[0]}:{count}".encode())
    digest.update(frames.tobytes())
    return RenderedProbe(ids=[f"seed-{s}" for s in seeds], source=f"builtin:mini ({count} frames, {size} px)",
                         content_hash=digest.hexdigest(), paths=(), frames=frames)
