"""The teachers' knowledge for every training image: computed once and cached on disk, or run live per batch.

Per image, amalgamation needs each target teacher's output (the soft target) and representation, and the auxiliary's
representation. Teacher outputs are deterministic for a fixed image, so :func:`build_knowledge` computes them once
through the toolkit's feature cache: one memory-mapped float32 ``.npy`` per (teacher, layer, image set,
preprocessing) under ``<cache>/features``, keyed by the sha256 of the teacher's weights hash, source, layer, the
image set's content hash and the preprocessing (:func:`rsa_toolkit.features.extract.cache_key`), where the source
carries the teacher's definition hash (:func:`teacher_definition`: weights hash, source, every layer of the network
in order, preprocessing and how it is run), so two teachers that share a name never share entries; a changed input
is a new entry, an unchanged one is never recomputed, and training then runs no teacher at all. ``live=True`` (for
augmentation-heavy setups) runs the teachers under ``torch.inference_mode`` on each batch instead.

A cache entry proves itself against the fingerprint in its sidecar (shape, dtype, byte size and blake2b:
:func:`rsa_toolkit.features.cache.check_entry`); one that does not match it (overwritten, truncated, emptied,
garbage) or cannot be read is a cache miss, computed again by the feature extraction with a
:class:`rsa_toolkit.errors.FeatureCacheWarning` naming the file. A full, read-only or forbidden cache directory is one
error naming it.

Both kinds answer :meth:`Knowledge.batch` with the same :class:`KnowledgeBatch`, whose fields name each tensor's role
(the target teachers' outputs and representations by task, the auxiliary's representation on its own), and both
carry the standardisation statistics of every representation (:class:`RepresentationStats`, by the same roles: mean
and standard deviation over the first :data:`STATS_IMAGES` images, in float64), which the guidance mixture uses.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rsa_toolkit.devices import resolve_device
from rsa_toolkit.features.extract import cache_key, default_cache_dir, extract_features
from rsa_toolkit.files import write_faults
from rsa_toolkit.images.probe import ProbeSet
from rsa_toolkit.zoo.teachers import Teacher

from amalgamate.training.images import image_batch
from amalgamate.zoo import AmalgamationTeacher

__all__ = ["KnowledgeBatch", "RepresentationStats", "Knowledge", "CachedKnowledge", "LiveKnowledge", "build_knowledge",
           "STATS_IMAGES", "AUXILIARY", "teacher_definition"]

STATS_IMAGES = 512
AUXILIARY = "auxiliary"  # the auxiliary's role name beside the target tasks' (guidance adapters, logs)


Stats = tuple[float, float]  # (mean, standard deviation) of one teacher's representation


@dataclass
class KnowledgeBatch:
    """The knowledge of a batch of B images, by role.

    ``outputs``: target task -> the target teacher's raw output (B, ...); ``representations``: target task -> the
    target teacher's representation (B, 8, 16, 16), in target order; ``auxiliary``: the auxiliary teacher's
    representation (B, 8, 16, 16), None without an auxiliary; ``masks``: pixel task -> validity mask (B, 1, H, W),
    when the run has masks (:mod:`amalgamate.training.masks`)."""

    outputs: dict[str, Tensor]
    representations: dict[str, Tensor]
    auxiliary: Tensor | None = None
    masks: dict[str, Tensor] = dataclasses.field(default_factory=dict)

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> KnowledgeBatch:
        """On ``device``, floating-point tensors in ``dtype`` (default: as they are)."""
        def move(v: Tensor) -> Tensor:
            return v.to(device, dtype) if dtype is not None and v.is_floating_point() else v.to(device)

        return KnowledgeBatch({k: move(v) for k, v in self.outputs.items()},
                              {k: move(v) for k, v in self.representations.items()},
                              None if self.auxiliary is None else move(self.auxiliary),
                              {k: move(v) for k, v in self.masks.items()})

    def guides(self) -> dict[str, Tensor]:
        """The guiding representations by role: each target task's, then ``"auxiliary"`` (when there is one)."""
        return {**self.representations, **({AUXILIARY: self.auxiliary} if self.auxiliary is not None else {})}


@dataclass(frozen=True)
class RepresentationStats:
    """Standardisation statistics of the guiding representations, by role: ``targets`` (target task -> (mean, std))
    and ``auxiliary`` ((mean, std), None without an auxiliary)."""

    targets: dict[str, Stats]
    auxiliary: Stats | None = None

    def guides(self) -> dict[str, Stats]:
        """The statistics by role, as :meth:`KnowledgeBatch.guides`."""
        return {**self.targets, **({AUXILIARY: self.auxiliary} if self.auxiliary is not None else {})}


class Knowledge(abc.ABC):
    """The knowledge of ``targets`` (and ``auxiliary``) on an image set of ``len(self)`` images; ``stats``: the
    standardisation of every guiding representation (:class:`RepresentationStats`)."""

    def __init__(self, targets: Sequence[AmalgamationTeacher], auxiliary: AmalgamationTeacher | None,
                 images: ProbeSet) -> None:
        self.targets, self.auxiliary, self.images = list(targets), auxiliary, images
        self.tasks = [t.name for t in self.targets]
        self.stats = RepresentationStats({})

    @property
    def sources(self) -> list[AmalgamationTeacher]:
        """Every teacher of the run: the targets, then the auxiliary (the order of runs and records)."""
        return self.targets + ([self.auxiliary] if self.auxiliary else [])

    def __len__(self) -> int:
        return len(self.images)

    @abc.abstractmethod
    def batch(self, indices: Sequence[int] | np.ndarray) -> KnowledgeBatch:
        """The knowledge of images ``indices``."""

    def _by_role(self, output: Callable[[AmalgamationTeacher], Tensor],
                 representation: Callable[[AmalgamationTeacher], Tensor]) -> KnowledgeBatch:
        """A batch from a teacher's output and representation."""
        return KnowledgeBatch({t.name: output(t) for t in self.targets},
                              {t.name: representation(t) for t in self.targets},
                              representation(self.auxiliary) if self.auxiliary else None)

    def _stats_by_role(self, stats: Callable[[AmalgamationTeacher], Stats]) -> RepresentationStats:
        return RepresentationStats({t.name: stats(t) for t in self.targets},
                                   stats(self.auxiliary) if self.auxiliary else None)

    def stats_of(self, teacher: AmalgamationTeacher) -> Stats:
        """The (mean, std) of ``teacher``'s representation, a target's or the auxiliary's."""
        if teacher is self.auxiliary:
            return self.stats.auxiliary  # type: ignore[return-value]
        return self.stats.targets[teacher.name]

    def describe(self) -> dict[str, object]:
        return {"mode": "live" if isinstance(self, LiveKnowledge) else "cached",
                "images": self.images.describe(),
                "teachers": [{"name": t.name, "role": "target" if t.output else "auxiliary",
                              "weights_sha256": t.teacher.weights_sha256, "source": t.teacher.source,
                              "definition_sha256": teacher_definition(t.teacher),
                              "layers": t.layers, "preprocessing": t.teacher.preprocessing.describe(),
                              "representation_mean": mu, "representation_std": sigma}
                             for t, (mu, sigma) in ((t, self.stats_of(t)) for t in self.sources)]}


def _stats(rows: np.ndarray) -> Stats:
    x = np.asarray(rows, dtype=np.float64)
    return float(x.mean()), float(max(x.std(), 1e-6))


class CachedKnowledge(Knowledge):
    """Knowledge read from memory-mapped cache entries; ``computed`` names the teachers that had to run to fill the
    cache in this call (empty when everything was cached)."""

    def __init__(self, targets: Sequence[AmalgamationTeacher], auxiliary: AmalgamationTeacher | None,
                 images: ProbeSet, arrays: dict[str, dict[str, np.ndarray]], computed: list[str],
                 keys: dict[str, dict[str, str]]) -> None:
        super().__init__(targets, auxiliary, images)
        self.arrays, self.computed, self.keys = arrays, computed, keys
        n = min(STATS_IMAGES, len(images))
        self.stats = self._stats_by_role(lambda t: _stats(arrays[t.name][t.representation][:n]))

    def batch(self, indices: Sequence[int] | np.ndarray) -> KnowledgeBatch:
        idx = np.asarray(indices, dtype=np.int64)
        rows = lambda a: torch.from_numpy(np.ascontiguousarray(a[idx]))  # noqa: E731
        return self._by_role(lambda t: rows(self.arrays[t.name][t.output]),
                             lambda t: rows(self.arrays[t.name][t.representation]))

    def describe(self) -> dict[str, object]:
        record = super().describe()
        for entry, t in zip(record["teachers"], self.sources):  # type: ignore[arg-type]
            entry["cache_keys"] = self.keys[t.name]
            entry["computed_now"] = t.name in self.computed
        return record


class LiveKnowledge(Knowledge):
    """Knowledge computed per batch: each teacher runs under ``torch.inference_mode`` on its own preprocessing of
    the images."""

    def __init__(self, targets: Sequence[AmalgamationTeacher], auxiliary: AmalgamationTeacher | None,
                 images: ProbeSet, *, device: torch.device, batch_size: int = 32) -> None:
        super().__init__(targets, auxiliary, images)
        self.device = device
        n = min(STATS_IMAGES, len(images))
        reps: dict[str, list[np.ndarray]] = {t.name: [] for t in self.sources}
        for start in range(0, n, batch_size):
            results = self._results(np.arange(start, min(start + batch_size, n)))
            for t in self.sources:
                reps[t.name].append(results[t.name][t.representation].cpu().numpy())
        self.stats = self._stats_by_role(lambda t: _stats(np.concatenate(reps[t.name])))

    def _results(self, idx: np.ndarray) -> dict[str, dict[str, Tensor]]:
        """teacher name -> layer -> its output on images ``idx`` (on the device, inference tensors)."""
        inputs: dict[str, Tensor] = {}  # one preprocessed batch per distinct preprocessing
        results: dict[str, dict[str, Tensor]] = {}
        with torch.inference_mode():
            for t in self.sources:
                key = repr(sorted(t.teacher.preprocessing.describe().items()))
                if key not in inputs:
                    inputs[key] = image_batch(self.images, idx, t.teacher.preprocessing).to(self.device)
                model = t.teacher.build().to(self.device).eval()
                results[t.name] = t.teacher.run(model, inputs[key], t.layers)
        return results

    def batch(self, indices: Sequence[int] | np.ndarray) -> KnowledgeBatch:
        results = self._results(np.asarray(indices, dtype=np.int64))
        # clones outside inference mode are ordinary tensors, usable as targets of losses that autograd records; they
        # stay on the teachers' device, which is the student's (no round trip through the host on a GPU)
        return self._by_role(lambda t: results[t.name][t.output].clone(),
                             lambda t: results[t.name][t.representation].clone())


# --- the cached knowledge: its keys and entries ----------------------------------------------------------------

_CACHE_FIX = "choose another --cache-dir"


def teacher_definition(teacher: Teacher) -> str:
    """The sha256 of what defines a teacher's outputs, known without loading it: its weights hash, source, every
    layer of its network in order (the architecture's structure), preprocessing and the function that runs it."""
    run = getattr(teacher.run, "__qualname__", type(teacher.run).__qualname__)
    payload = {"weights": teacher.weights_sha256, "source": teacher.source, "layers": list(teacher.layers),
               "default_layer": teacher.default_layer, "preprocessing": teacher.preprocessing.describe(),
               "run": f"{getattr(teacher.run, '__module__', '')}.{run}"}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def build_knowledge(targets: Sequence[AmalgamationTeacher], auxiliary: AmalgamationTeacher | None,
                    images: ProbeSet, *, live: bool = False, cache_dir: str | os.PathLike[str] | None = None,
                    batch_size: int = 32, device: str | torch.device = "cpu",
                    progress: bool = False) -> Knowledge:
    """The knowledge of ``targets`` and ``auxiliary`` on ``images``: cached (computed on a cache miss, then read
    from memory maps) or, with ``live``, computed per batch."""
    device = resolve_device(device)
    if live:
        return LiveKnowledge(targets, auxiliary, images, device=device, batch_size=batch_size)
    sources = list(targets) + ([auxiliary] if auxiliary else [])
    computed: list[str] = []
    arrays: dict[str, dict[str, np.ndarray]] = {}
    keys: dict[str, dict[str, str]] = {}
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    for source in sources:
        teacher = source.teacher

        def build(teacher=teacher):  # noqa: ANN202 - records that this teacher ran (a cache miss)
            computed.append(teacher.name)
            return teacher.build()

        # the definition in the source: the cache key covers what the teacher is, not only its name
        counted = dataclasses.replace(teacher, build=build,
                                      source=f"{teacher.source}#definition={teacher_definition(teacher)[:16]}")
        # the student's training images are shown to every teacher clean (teacher_inputs='clean'), as before the
        # option existed: the student learns to map clean images to each teacher's knowledge of them
        keys[source.name] = {layer: cache_key(counted, layer, images, teacher_inputs="clean")
                             for layer in source.layers}
        # extract_features checks every entry against its sidecar and computes a damaged one again, with a warning
        with write_faults(root / "features", fix=_CACHE_FIX):
            arrays[source.name] = extract_features(counted, images, layers=source.layers, batch_size=batch_size,
                                                   device=device, cache_dir=root, progress=progress,
                                                   teacher_inputs="clean")
    return CachedKnowledge(targets, auxiliary, images, arrays, list(dict.fromkeys(computed)), keys)
